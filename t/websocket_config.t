# The WebSocket keys in the config: routes[].websocket (a flag, only with
# the upstream: action) and limits.websocket_idle_timeout (a duration
# above 0), each error reported by `portico -t` at its place.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(8);
my $dir = $t->testdir;
my $gw = $t->port('GW');

my $HEAD = <<"EOF";
workers: 1
error_log: error.log
pid_file: portico.pid
listen: [ { address: "127.0.0.1:$gw" } ]
upstreams:
  app: { targets: [ "127.0.0.1:9" ] }
EOF

my $n = 0;

# (exit code, output, file, LINE:COL of $needle) for $body after $HEAD.
sub check ($body, $needle = undef) {
    my $file = "$dir/case" . ++$n . '.yaml';
    my $text = $HEAD . $body;
    write_file($file, $text);
    my ($rc, $out) = run_cmd(10, $t->binary, '-t', '-p', $dir, '-c', $file);
    my $pos = '';
    if (defined $needle) {
        my $at = index($text, $needle);
        my $before = substr($text, 0, $at);
        $pos = (1 + ($before =~ tr/\n//)) . ':'
               . ($at - rindex($before, "\n"));
    }
    return ($rc, $out, $file, $pos);
}

my ($rc, $out, $file, $pos) = check(<<'EOF');
limits: { websocket_idle_timeout: 90s }
routes:
  - { name: ws, match: { path: / }, upstream: app, websocket: true }
  - { name: plain, match: { path: /p }, upstream: app, websocket: false }
EOF
is($rc, 0, 'websocket: true on an upstream route, and a timeout: valid')
    or diag $out;

($rc, $out, $file, $pos) = check(<<'EOF', 'maybe');
routes:
  - { name: ws, match: { path: / }, upstream: app, websocket: maybe }
EOF
is($rc, 1, 'websocket: maybe is refused');
like($out, qr/\Q$file:$pos\E: /, 'at the value') or diag $out;

($rc, $out, $file, $pos) = check(<<'EOF', 'true');
routes:
  - { name: r, match: { path: / }, respond: { status: 200 },
      websocket: true }
EOF
is($rc, 1, 'websocket: true without upstream: is refused');
like($out, qr/\Q$file:$pos\E: websocket: needs the upstream: action/,
     'at the value, saying why') or diag $out;

($rc, $out, $file, $pos) = check(<<'EOF', 'websocket_idle_timeout');
limits:
  websocket_idle_timeout: 0
routes:
  - { name: ws, match: { path: / }, upstream: app, websocket: true }
EOF
is($rc, 1, 'websocket_idle_timeout: 0 is refused');
like($out, qr/websocket_idle_timeout must be above 0/, 'saying why')
    or diag $out;

($rc, $out) = check(<<'EOF');
limits: { websocket_idle_timeout: soon }
routes:
  - { name: ws, match: { path: / }, upstream: app, websocket: true }
EOF
is($rc, 1, 'websocket_idle_timeout: soon is refused');
