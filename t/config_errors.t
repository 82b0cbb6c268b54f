# Configuration errors: every mistake is reported by `portico -t` as
# FILE:LINE:COL: message, at the place in the file where it is, and the
# test exits 1; a file with several mistakes reports all of them.
#
# Each case is a whole config with one mistake (Test::Portico::ConfigCheck
# finds where the error must point).

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Select;
use POSIX ();
use Test::More;
use Test::Portico;
use Test::Portico::ConfigCheck qw(pos_of);
use Time::HiRes qw(time);

my $t = Test::Portico->new()->plan(62);

# The binary under test with @args: (exit code, stdout and stderr).
sub portico (@args) { return run_cmd(10, $t->binary, @args) }
my $dir = $t->testdir;

my $HEAD = <<'EOF';
workers: 1
error_log: error.log
pid_file: portico.pid
EOF

my $LISTEN = qq(listen: [ { address: "127.0.0.1:${\ $t->port('GW')}" } ]\n);
my $ROUTE_OK = <<'EOF';
  - name: ok
    match: { path: / }
    respond: { status: 200, body: "ok" }
EOF


sub slurp ($path) {
    open my $fh, '<', $path or die "$path: $!";
    local $/;
    return scalar <$fh>;
}


my $cc = Test::Portico::ConfigCheck->new($t, $HEAD);
sub check ($body) { return $cc->check($body) }
sub one_error (@args) { return $cc->one_error(@args) }


# An admin listener without an address takes loopback's 127.0.0.1:9090.
{
    my ($rc, $out) = check("$LISTEN\nadmin: {}\nroutes:\n$ROUTE_OK");
    is($rc, 0, 'admin: {} passes -t (loopback by default)') or diag $out;
}

# A good config passes, and says so.
{
    my ($rc, $out, $file) = check("$LISTEN\nroutes:\n$ROUTE_OK");
    is($rc, 0, 'good config: -t exits 0');
    like($out, qr/configuration \Q$file\E test is successful/,
         'good config: "test is successful"') or diag $out;
}

one_error('unknown top-level key', <<EOF, qr/unknown key "bogus_key"/,
$LISTEN
bogus_key: 1
routes:
$ROUTE_OK
EOF
          ['bogus_key']);

one_error('unknown route key', <<EOF, qr/unknown key "colour"/,
$LISTEN
routes:
  - name: r
    colour: red
    match: { path: /r }
    respond: { status: 200 }
EOF
          ['colour']);

one_error('wrong type', <<EOF, qr/listen: expected a sequence/,
listen: "x"
routes:
$ROUTE_OK
EOF
          ['"x"']);

one_error('bad duration', <<EOF, qr/duration.*"10q"/,
$LISTEN
limits:
  idle_timeout: 5s
  header_timeout: 10q
routes:
$ROUTE_OK
EOF
          ['10q']);

one_error('bad size', <<EOF, qr/size.*"10x"/,
$LISTEN
limits:
  max_body_size: 10x
routes:
$ROUTE_OK
EOF
          ['10x']);

one_error('bad address', <<EOF, qr/port.*"127\.0\.0\.1:99999"/,
listen:
  - address: "127.0.0.1:99999"
routes:
$ROUTE_OK
EOF
          ['"127.0.0.1:99999"']);

# The route is the map that starts at its first key.
one_error('route without action', <<EOF, qr/route "lazy" has no action/,
$LISTEN
routes:
$ROUTE_OK
  - name: lazy
    match: { path: /lazy }
EOF
          ['name: lazy']);

# Either the second action's key or its value is the right place.
one_error('route with two actions', <<EOF, qr/two actions/,
$LISTEN
upstreams:
  app: { targets: [ { address: "127.0.0.1:1" } ] }
routes:
  - name: both
    match: { path: /both }
    upstream: app
    respond: { status: 200 }
EOF
          ['respond'], ['{ status: 200 }']);

one_error('unknown upstream', <<EOF, qr/unknown upstream "nosuch"/,
$LISTEN
upstreams:
  app: { targets: [ { address: "127.0.0.1:1" } ] }
routes:
  - name: r
    match: { path: /r }
    upstream: nosuch
EOF
          ['nosuch']);

one_error('duplicate route name', <<EOF, qr/duplicate route name "twin"/,
$LISTEN
routes:
  - name: twin
    match: { path: /a }
    respond: { status: 200 }
  - name: twin
    match: { path: /b }
    respond: { status: 200 }
EOF
          ['name: twin', 2], ['twin', 2]);

# health: is a section: lb owns health.active, the upstream module
# health.passive; a subkey neither owns is an error naming both.
one_error('unknown key in health', <<EOF,
$LISTEN
upstreams:
  app:
    targets: [ "127.0.0.1:1" ]
    health: { pasive: { failures: 2 } }
routes:
$ROUTE_OK
EOF
          qr/unknown key "pasive" in health \(passive, active\)/,
          ['pasive']);

one_error('health: passive: failures out of range', <<EOF,
$LISTEN
upstreams:
  app:
    targets: [ "127.0.0.1:1" ]
    health: { passive: { failures: 0, cooldown: 5s } }
routes:
$ROUTE_OK
EOF
          qr/health: passive: failures: a number from 1 to 100/, ['0,']);

one_error('health: passive neither a flag nor a map', <<EOF,
$LISTEN
upstreams:
  app:
    targets: [ "127.0.0.1:1" ]
    health: { passive: sometimes }
routes:
$ROUTE_OK
EOF
          qr/"sometimes"/, ['sometimes']);

one_error('health: active: healthy out of range', <<EOF,
$LISTEN
upstreams:
  app:
    targets: [ "127.0.0.1:1" ]
    health: { active: { path: /h, healthy: 101 }, passive: off }
routes:
$ROUTE_OK
EOF
          qr/health: active: healthy: a number from 1 to 100/, ['101 }']);

my $gw = $t->port('GW');
one_error('duplicate listen address', <<EOF, qr/127\.0\.0\.1:$gw/,
listen:
  - address: "127.0.0.1:$gw"
  - address: "127.0.0.1:$gw"
routes:
$ROUTE_OK
EOF
          ['address', 2], ["\"127.0.0.1:$gw\"", 2]);

one_error('duplicate YAML key', <<EOF, qr/duplicate key "limits"/,
$LISTEN
limits: { header_timeout: 5s }
routes:
$ROUTE_OK
limits: { idle_timeout: 5s }
EOF
          ['limits', 2]);

# "@" cannot start a YAML token: libyaml stops right there.
one_error('YAML syntax error', <<EOF, qr/cannot start any token/,
$LISTEN
routes:
  - name: r
    match: { path: /r }
    respond: { status: 200, body: \@oops }
EOF
          ['@oops']);


# Several mistakes of the same stage in one file: each one is reported,
# in file order, at its own place.
{
    my ($rc, $out, $file, $text) = check(<<EOF);
$LISTEN
first_bogus: 1
limits:
  header_timeout: 3parsecs
  max_body_size: lots
routes:
  - name: r
    flavour: vanilla
    match: { path: /r }
    respond: { status: 200 }
EOF
    is($rc, 1, 'several parse errors: exit 1');
    my @want = map { "$file:" . pos_of($text, $_) }
               qw(first_bogus 3parsecs lots flavour);
    my @got = $out =~ /(\Q$file\E:\d+:\d+):/g;
    is_deeply(\@got, \@want, 'several parse errors: all four, in order')
        or diag $out;
}

# Several mistakes found by validation (after the file parsed).
{
    my ($rc, $out, $file, $text) = check(<<EOF);
$LISTEN
routes:
  - name: idle
    match: { path: /idle }
  - name: lost
    match: { path: /lost }
    upstream: nowhere
  - name: lost
    match: { path: /lost2 }
    respond: { status: 200 }
EOF
    is($rc, 1, 'several validation errors: exit 1');
    like($out, qr/\Q$file\E:${\ pos_of($text, 'name: idle')}: .*no action/,
         'several validation errors: the route without action');
    like($out, qr/\Q$file\E:${\ pos_of($text, 'nowhere')}: .*unknown upstream/,
         'several validation errors: the unknown upstream');
    like($out, qr/\Q$file\E:${\ pos_of($text, 'name: lost', 2)}: .*duplicate/,
         'several validation errors: the duplicate name') or diag $out;
}

# Starting on a bad config fails the same way: the error log names the
# position, and nothing listens.
{
    my $text = $HEAD . "$LISTEN\nroutes:\n$ROUTE_OK  - name: x\n"
               . "    match: { path: /x }\n    respond: { status: 2000 }\n";
    # The harness adds lines on top: the position is taken from the file
    # it wrote.
    $t->write_config($text);
    my $pos = pos_of(slurp($t->config_path), '2000');
    ok(!defined $t->try_run, 'start on a bad config fails');
    my $log = $t->error_log . $t->stderr_log;
    like($log, qr/\Q${\ $t->config_path}\E:$pos: .*status/,
         'start on a bad config: the error log names FILE:LINE:COL')
        or diag $log;
}
