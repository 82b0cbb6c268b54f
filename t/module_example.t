# modules/example built in with ./configure --add-module into a scratch
# build directory (never objs/): -V lists it, its route key adds the
# header to that route's responses only, and a bad value fails -t at its
# position.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use File::Basename qw(dirname);
use File::Spec;
use IO::Select;
use POSIX ();
use Test::More;
use Test::Portico;
use Time::HiRes qw(time);

my $t0 = Test::Portico->new();
my $build = $t0->testdir . '/build';


# The same build flavour as the binary under test (a sanitizer run builds
# the module with the sanitizer too).
my @flavour;
my $args_file = dirname($t0->binary) . '/configure.args';
if (open my $fh, '<', $args_file) {
    my $args = <$fh> // '';
    push @flavour, grep { $args =~ /(?:^|\s)\Q$_\E(?:\s|$)/ }
                   qw(--with-debug --with-asan);
}

my ($rc, $out) = run_cmd(60, './configure', "--builddir=$build",
                         '--add-module=modules/example', @flavour);
if ($rc != 0) {
    plan tests => 1;
    fail('configure --add-module=modules/example');
    diag $out;
    exit;
}
my $stock_mtime = (stat $t0->binary)[9];
my $conf_out = $out;
($rc, $out) = run_cmd(240, 'make', '-j2', '-f', "$build/Makefile");
my $bin = "$build/portico";
if ($rc != 0 || !-x $bin) {
    plan tests => 1;
    fail("make -f $build/Makefile");
    diag $out;
    exit;
}

my $t = Test::Portico->new(binary => $bin)->plan(16);

like($conf_out, qr/adding module: example/,
     'configure added the example module');
ok(-x $bin, 'the binary is in the scratch build directory');
is((stat $t0->binary)[9], $stock_mtime, 'the stock binary was not rebuilt');

($rc, $out) = run_cmd(10, $bin, '-V');
my ($mods) = $out =~ /^modules:(.*)$/m;
like($mods // '', qr/\bexample\b/, '-V lists "example"') or diag $out;
like($out, qr/--add-module=modules\/example/,
     '-V shows the configure arguments');

my $b1 = $t->backend(id => 'b1');
$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - name: hello
    match: { path: /hello }
    upstream: app
    example_header: { name: X-Hello, value: "route ${route} ${path}" }
  - name: local
    match: { path: "=/local" }
    respond: { status: 200, body: "local" }
    example_header: { name: X-Hello, value: "local ${route}" }
  - name: plain
    match: { path: /plain }
    upstream: app
  - name: slow
    match: { path: /slow }
    upstream: app
    example_delay: 1s
EOF

# On a proxied route: the header with its template expanded.
my $r = parse_response(http_get('/hello/x'));
is($r->{status}, 200, 'proxied route with example_header: 200');
is($r->{headers}{'x-hello'}, 'route hello /hello/x',
   'X-Hello: "route ${route} ${path}" expanded');

# On a local answer too (the filter runs for every response of the route).
$r = parse_response(http_get('/local'));
is("$r->{status} " . ($r->{headers}{'x-hello'} // 'none'), '200 local local',
   'respond route: X-Hello set');

# A route without the key: no such header.
$r = parse_response(http_get('/plain/y'));
ok($r->{status} == 200 && !exists $r->{headers}{'x-hello'},
   'route without example_header: no X-Hello');

# example_delay: the PREACCESS handler suspends the request (PT_AGAIN)
# and its timer resumes it; meanwhile the worker serves others.  The fast
# request is answered while the slow one has not a byte of its answer
# yet (a worker that slept in the handler would answer the slow one
# first).  The delay is long enough that a busy machine still gets the
# fast one through inside it.
my $t1 = time;
my $slow = http("GET /slow/1 HTTP/1.1\r\nHost: t\r\nConnection: close"
                . "\r\n\r\n", port => $t->port('GW'), start => 1);
my $fast = parse_response(http_get('/plain/fast'));
my $slow_silent = ${*$slow}{pt_in} eq '' && !${*$slow}{pt_eof}
                  && !IO::Select->new($slow)->can_read(0);
$r = parse_response(http_end($slow, timeout => 10));
my $slow_done = time;
is($r->{status}, 200, 'suspended request resumed and proxied');
cmp_ok($slow_done - $t1, '>=', 0.9, 'it waited for its timer (1s)');
ok($fast->{status} == 200 && $slow_silent,
   'another request was served while it was suspended');

# A client that leaves while its request is suspended: the timer is
# cancelled with the request, and the worker goes on.  Time has to pass
# here (the timer must have been due), so this one is a plain sleep.
my @workers = $t->worker_pids;
my $gone = http("GET /slow/2 HTTP/1.1\r\nHost: t\r\n\r\n",
                port => $t->port('GW'), start => 1);
close $gone;
select(undef, undef, undef, 1.3);
$r = parse_response(http_get('/plain/after'));
ok($r->{status} == 200 && "@workers" eq join(' ', $t->worker_pids),
   'the same worker serves after a suspended client left');

# The module's own validation: a missing value is an error at the key's
# map, reported by -t with the file and position.
my $bad = $t->testdir . '/bad.yaml';
open my $fh, '>', $bad or die "$bad: $!";
print {$fh} <<'EOF';
error_log: error.log
pid_file: portico.pid
listen: [ { address: "127.0.0.1:1" } ]
routes:
  - name: hello
    match: { path: /hello }
    respond: { status: 200 }
    example_header: { name: X-Hello }
EOF
close $fh;
($rc, $out) = run_cmd(10, $bin, '-t', '-p', $t->testdir, '-c', $bad);
is($rc, 1, 'example_header without value: -t exits 1');
like($out, qr/\Q$bad\E:8:21: .*example_header needs a name and a value/,
     'example_header without value: FILE:8:21 and the reason') or diag $out;

# The stock binary does not know the key: the module really is what
# added it.
($rc, $out) = run_cmd(10, $t0->binary, '-t', '-p', $t->testdir, '-c',
                      $t->config_path);
like($out, qr/unknown key "example_header"/,
     'without the module the key is unknown') or diag $out;
