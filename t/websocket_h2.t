# WebSocket over HTTP/2 (RFC 8441): the server's SETTINGS offer extended
# CONNECT; a CONNECT with :protocol websocket reaches a route with
# `websocket: true` and goes to the HTTP/1.1 upstream as a normal Upgrade
# (a key of ours, its accept checked); the 101 comes back as 200 and the
# stream's DATA is the tunnel: text and 1 MiB binary echo, ping/pong, the
# close handshake, over h2c and over TLS (ALPN h2). An upstream's refusal
# is passed back as is; routes that do not tunnel, other protocols and
# other versions are refused; the idle timeout ends the stream; a reset
# tunnel leaves the connection serving.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use MIME::Base64 qw(decode_base64);
use Test::More;
use Test::Portico;
use Test::Portico::WebSocket;

if (my $why = ws_missing()) {
    plan skip_all => $why;
}

my $t = Test::Portico->new()->plan(40);
my $dir = $t->testdir;
my $up = Test::Portico::WebSocket->upstream(dir => $dir);
tls_ca($dir);
tls_cert($dir, 'srv', names => ['localhost']);
my $upport = $up->port;

$t->write_config(<<"EOF")->run();
listen:
  - { address: "127.0.0.1:%%PORT_H2C%%", http2: true }
  - address: "127.0.0.1:%%PORT_TLS%%"
    http2: true
    tls:
      certificates: [ { cert: $dir/srv.pem, key: $dir/srv.key } ]
limits: { websocket_idle_timeout: 3s }
access_log: { path: access.log, format: json, buffer: 0 }
upstreams:
  ws: { targets: [ "127.0.0.1:$upport" ] }
routes:
  - name: ws
    match: { path: /ws/ }
    rewrite: { strip_prefix: /ws }
    websocket: true
    upstream: ws
  - name: plain
    match: { path: /plain/ }
    rewrite: { strip_prefix: /plain }
    upstream: ws
  - name: local
    match: { path: "=/local" }
    respond: { status: 200, body: "local\\n" }
EOF

my $h2c = $t->port('H2C');
my $tls = $t->port('TLS');

sub client ($port, $path, $scenario, @opt) {
    my ($rc, $out) = run_cmd(60, '/usr/bin/python3', 't/lib/ws_h2_client.py',
                             $port, $path, $scenario, @opt);
    my ($last) = reverse grep { /^\{/ } split /\n/, $out // '';
    my $res = defined $last ? eval { decode_json($last) } : undef;
    return $res // { error => "no result (exit $rc): $out" };
}

sub field ($res, $name) {
    my ($f) = grep { $_->[0] eq $name } @{$res->{headers} // []};
    return $f ? $f->[1] : undef;
}

# ---- the tunnel over h2c ----------------------------------------------------

my $r = client($h2c, '/ws/echo', 'echo');
is($r->{settings}{8}, 1, 'SETTINGS_ENABLE_CONNECT_PROTOCOL = 1');
is($r->{status}, 200, 'extended CONNECT answered 200 (the 101 upstream)')
    or diag explain $r;
is_deeply($r->{texts}, ['hello', "h\x{e9}llo over h2"], 'text echo');
ok($r->{binary_ok}, '1 MiB binary message echoed whole');
is($r->{pong}, 'p-1', 'ping answered with its pong');
is($r->{close_code}, 4001, 'close handshake: the code came back');
is($r->{close_reason}, 'bye', 'and the reason');
ok($r->{server_ended_first}, 'END_STREAM after the upstream closed');
is($r->{rst}, undef, 'no reset');
ok(!defined field($r, 'sec-websocket-accept')
   && !defined field($r, 'upgrade'),
   'no Upgrade or Sec-WebSocket-Accept in the HTTP/2 answer');

# What the upstream was sent: a plain HTTP/1.1 Upgrade with our key.
my ($open) = grep { $_->{event} eq 'open' && $_->{path} eq '/echo' }
             $up->events;
my %h = map { (lc $_->[0] => $_->[1]) } @{$open->{headers} // []};
is(lc($h{upgrade} // ''), 'websocket', 'upstream: Upgrade: websocket');
like(lc($h{connection} // ''), qr/\bupgrade\b/, 'upstream: Connection');
is($h{'sec-websocket-version'}, '13', 'upstream: version 13');
is(length(decode_base64($h{'sec-websocket-key'} // '')), 16,
   'upstream: a Sec-WebSocket-Key of 16 bytes, made by the gateway');
is($h{host}, "localhost:$h2c", ':authority became Host');

# ---- over TLS, h2 by ALPN, with a subprotocol -------------------------------

$r = client($tls, '/ws/echo', 'echo', '--tls', "$dir/ca.pem",
            '--subprotocol', 'chat');
is($r->{status}, 200, 'extended CONNECT over TLS (ALPN h2)')
    or diag explain $r;
is(field($r, 'sec-websocket-protocol'), 'chat',
   'the subprotocol the upstream chose is in the 200');
ok($r->{binary_ok}, '1 MiB binary echo over TLS');
is($r->{close_code}, 4001, 'close handshake over TLS');

# ---- refusals ---------------------------------------------------------------

$r = client($h2c, '/ws/refuse', 'refused');
is($r->{status}, 403, "an upstream's refusal is passed back as is");
is(field($r, 'x-refused'), 'yes', 'with its fields');
is($r->{body}, "refused by upstream\n", 'and its body');
ok($r->{ended}, 'and the stream ends');

$r = client($h2c, '/plain/echo', 'refused');
is($r->{status}, 501, 'a proxied route without websocket: true: 501');
$r = client($h2c, '/local', 'refused');
is($r->{status}, 501, 'a local response never answers a CONNECT: 501');
$r = client($h2c, '/ws/echo', 'refused', '--protocol', 'connect-udp');
is($r->{status}, 501, 'another :protocol: 501');
$r = client($h2c, '/ws/echo', 'refused', '--version', '8');
is($r->{status}, 426, 'Sec-WebSocket-Version 8: 426');
is(field($r, 'sec-websocket-version'), '13', 'naming version 13');
$r = client($h2c, '/ws/echo', 'refused', '--key',
            'dGhlIHNhbXBsZSBub25jZQ==');
is($r->{status}, 400, 'a Sec-WebSocket-Key in an extended CONNECT: 400');
is(scalar(grep { $_->{event} eq 'open' && $_->{path} eq '/echo' }
          $up->events), 2, 'no refused request reached the upstream');

# ---- idle timeout and reset -------------------------------------------------

$r = client($h2c, '/ws/echo', 'idle', '--wait', '20');
is($r->{status}, 200, 'an idle tunnel opens');
ok($r->{ended} || defined $r->{rst}, 'and the gateway ends it');
cmp_ok($r->{seconds}, '>=', 2.5, "not before websocket_idle_timeout (3s): "
       . "$r->{seconds}s");
cmp_ok($r->{seconds}, '<', 15, 'but soon after it');
ok($t->wait_log(qr/WebSocket tunnel closed after 3000 ms without traffic/),
   'the idle close is logged');

$r = client($h2c, '/ws/echo', 'reset');
is_deeply($r->{first}, ['first'], 'a tunnel echoes, then the client '
          . 'resets it');
is($r->{second_status}, 200, 'the same connection opens another tunnel');
is_deeply($r->{second}, ['second'], 'which echoes');

# ---- the access log ---------------------------------------------------------

sub tunnels () {
    return grep { ($_->{route} // '') eq 'ws' && $_->{status} == 101 }
           map { eval { decode_json($_) } // () }
           split /\n/, Test::Portico::_read_file("$dir/access.log");
}

# Two echoes, the idle one, and the two of the reset scenario (the last
# ends when that client goes).
Test::Portico::wait_until(sub { tunnels() >= 5 }, 10);
my @tunnels = tunnels();
is(scalar @tunnels, 5, 'each tunnel logged once, with the 101 it began '
   . 'with');
is_deeply([sort map { $_->{method} } @tunnels], [('GET') x 5],
          'as the GET Upgrade it stands for');
