# include: a glob of files merged into the configuration: their routes
# and upstreams join the main file's (a route in one file may use an
# upstream from another), and an error in an included file names that
# file, with its own line and column.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Select;
use JSON::PP;
use POSIX ();
use Test::More;
use Test::Portico;
use Time::HiRes qw(time);

my $t = Test::Portico->new()->plan(20);

# The binary under test with @args: (exit code, stdout and stderr).
sub portico (@args) { return run_cmd(10, $t->binary, @args) }
my $b1 = $t->backend(id => 'b1');
my $dir = $t->testdir;


# conf.d/ is relative to the prefix (-p, the test directory).  a.yaml
# brings an upstream and a route using it; b.yaml a route that uses the
# upstream of a.yaml; the main file keeps a route of its own.
mkdir "$dir/conf.d" or die "$dir/conf.d: $!";
write_file("$dir/conf.d/a.yaml", <<"EOF");
upstreams:
  app: { targets: [ { address: "127.0.0.1:${\ $t->port('B1')}" } ] }
routes:
  - name: from_a
    match: { path: /a/ }
    upstream: app
EOF
write_file("$dir/conf.d/b.yaml", <<'EOF');
routes:
  - name: from_b
    match: { path: "=/b" }
    respond: { status: 200, body: "b says ${route}" }
  - name: b_proxy
    match: { path: /bp/ }
    upstream: app
EOF
# Not matched by the glob: must not be loaded (it would not even parse).
write_file("$dir/conf.d/c.yml.off", "this: [is not yaml\n");

$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
include: [ conf.d/*.yaml ]
routes:
  - name: main
    match: { path: "=/main" }
    respond: { status: 200, body: "main says ${route}" }
EOF

my $r = parse_response(http_get('/main'));
is("$r->{status} $r->{body}", '200 main says main', 'main file route works');

$r = parse_response(http_get('/a/x'));
is($r->{status}, 200, 'route from a.yaml: 200');
my $seen = eval { decode_json($r->{body}) } // {};
is("$seen->{id} $seen->{uri}", 'b1 /a/x',
   'route from a.yaml reached the upstream from a.yaml');

$r = parse_response(http_get('/b'));
is("$r->{status} $r->{body}", '200 b says from_b', 'route from b.yaml works');

$r = parse_response(http_get('/bp/y'));
$seen = eval { decode_json($r->{body}) } // {};
is("$r->{status} $seen->{id} $seen->{uri}", '200 b1 /bp/y',
   'route in b.yaml uses the upstream defined in a.yaml');

is(scalar $b1->requests, 2, 'backend saw exactly the two proxied requests');

$r = parse_response(http_get('/c'));
is($r->{status}, 404, 'nothing else was added');


# An unknown key in an included file: -t names that file, its line and
# column, and fails.
my $idir = "$dir/inc";
mkdir $idir or die "$idir: $!";
mkdir "$idir/conf.d" or die "$idir/conf.d: $!";
write_file("$idir/conf.d/good.yaml", <<'EOF');
routes:
  - name: good
    match: { path: /good }
    respond: { status: 200 }
EOF
write_file("$idir/conf.d/typo.yaml", <<'EOF');
# a comment, so the error is not on line 1
routes:
  - name: typo
    match: { path: /typo }
    respnd: { status: 200 }
EOF
write_file("$idir/main.yaml", <<"EOF");
error_log: error.log
pid_file: portico.pid
listen: [ { address: "127.0.0.1:${\ $t->port('GW')}" } ]
include: [ conf.d/*.yaml ]
routes:
  - name: main
    match: { path: "=/main" }
    respond: { status: 200 }
EOF
my ($rc, $out) = portico('-t', '-p', $idir, '-c', "$idir/main.yaml");
is($rc, 1, 'unknown key in an included file: -t exits 1');
like($out, qr{\Q$idir\E/conf\.d/typo\.yaml:5:5: .*unknown key "respnd"},
     'the error names the included file, line 5, column 5') or diag $out;
unlike($out, qr{main\.yaml:\d+:\d+:}, 'the main file is not blamed')
    or diag $out;

# With the typo fixed, the same set of files passes.
write_file("$idir/conf.d/typo.yaml", <<'EOF');
routes:
  - name: typo
    match: { path: /typo }
    respond: { status: 200 }
EOF
($rc, $out) = portico('-t', '-p', $idir, '-c', "$idir/main.yaml");
is($rc, 0, 'fixed: -t exits 0') or diag $out;

# A route defined twice across files is caught like within one file, and
# the message points into the second file.
write_file("$idir/conf.d/typo.yaml", <<'EOF');
routes:
  - name: good
    match: { path: /again }
    respond: { status: 200 }
EOF
($rc, $out) = portico('-t', '-p', $idir, '-c', "$idir/main.yaml");
is($rc, 1, 'duplicate route name across included files: exit 1');
like($out, qr{\Q$idir\E/conf\.d/typo\.yaml:2:\d+: .*duplicate route name},
     'the duplicate is reported in the file that repeats it') or diag $out;

# A syntax error inside an included file is reported in that file.
write_file("$idir/conf.d/typo.yaml", "routes:\n  - name: [x\n");
($rc, $out) = portico('-t', '-p', $idir, '-c', "$idir/main.yaml");
is($rc, 1, 'syntax error in an included file: exit 1');
like($out, qr{\Q$idir\E/conf\.d/typo\.yaml:\d+:\d+: },
     'the syntax error names the included file') or diag $out;

# A named file that does not exist is an error at its include entry; a
# glob that matches nothing is not (conf.d/ may well be empty).
write_file("$idir/conf.d/typo.yaml", <<'EOF2');
include: [ ../main.yaml ]
EOF2
($rc, $out) = portico('-t', '-p', $idir, '-c', "$idir/main.yaml");
is($rc, 1, 'an included file including the main file: exit 1');
like($out, qr{\Q$idir\E/conf\.d/typo\.yaml:1:12: .*main\.yaml},
     'the include cycle is reported where it is') or diag $out;
unlink "$idir/conf.d/typo.yaml", "$idir/conf.d/good.yaml";

write_file("$idir/main.yaml", <<"EOF2");
error_log: error.log
pid_file: portico.pid
listen: [ { address: "127.0.0.1:${\ $t->port('GW')}" } ]
include: [ conf.d/*.yaml, extra/none.yaml ]
routes:
  - name: main
    match: { path: "=/main" }
    respond: { status: 200 }
EOF2
($rc, $out) = portico('-t', '-p', $idir, '-c', "$idir/main.yaml");
is($rc, 1, 'a missing included file: exit 1');
like($out, qr{\Q$idir\E/main\.yaml:4:27: .*extra/none\.yaml},
     'the missing file is reported at its include entry') or diag $out;

my $main = do { local (@ARGV, $/) = "$idir/main.yaml"; <> };
$main =~ s/, extra\/none\.yaml//;
write_file("$idir/main.yaml", $main);
($rc, $out) = portico('-t', '-p', $idir, '-c', "$idir/main.yaml");
is($rc, 0, 'a glob that matches nothing (empty conf.d/) is fine')
    or diag $out;
