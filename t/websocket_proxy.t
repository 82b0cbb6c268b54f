# WebSocket tunnels through a route with `websocket: true`, with real
# clients and a real upstream (python3-websockets): text and 1 MiB binary
# echo, ping/pong, the close handshake both ways, subprotocol and
# extension negotiation, what the upstream is sent, an upstream that
# refuses (its answer passed as is), bad upgrade requests (400, 426), a
# route without websocket: true (Upgrade dropped), 101s that do not
# complete the handshake (502), bytes sent before the 101, half-close,
# and one access-log line per tunnel.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Digest::SHA qw(sha1_base64);
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Socket qw(SHUT_WR);
use Test::More;
use Test::Portico;
use Test::Portico::WebSocket;
use Time::HiRes qw(time sleep);

if (my $why = ws_missing()) {
    plan skip_all => $why;
}

my $t = Test::Portico->new()->plan(61);
my $up = Test::Portico::WebSocket->upstream(dir => $t->testdir);
my %tls = tls_files($t->testdir);
my $wss = Test::Portico::WebSocket->upstream(dir => $t->testdir,
                                             name => 'wss', tls => \%tls);
my $b1 = $t->backend(id => 'b1');

my $dir = $t->testdir;
my $GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
my $KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

sub accept_of ($key) { sha1_base64($key . $GUID) . '=' }

# A raw upstream: /switch answers 101 whatever was asked (with the right
# accept when there was a key); /badaccept a 101 with a wrong accept;
# /tail a proper 101, then it reads until the end of the stream and
# answers "got:" and all it read, and closes.
my $raw = $t->backend(id => 'raw', lifetime => 40, handler => sub ($c, $n) {
    my $in = '';
    while ($in !~ /\r\n\r\n/) {
        return unless IO::Select->new($c)->can_read(10);
        return unless sysread($c, $in, 4096, length $in);
    }
    $in =~ s/\A(.*?\r\n)\r\n//s;
    my $head = $1;
    my ($path) = $head =~ m{\A\S+ (\S+)};
    my ($key) = $head =~ /^Sec-WebSocket-Key:[ \t]*(\S+)/mi;
    if ($path =~ /slow/) {
        # No answer (but a note that the request is here): wait for the
        # gateway to give up on us.
        if (open my $note, '>', "$dir/slow-arrived") {
            close $note;
        }
        1 while IO::Select->new($c)->can_read(30) && sysread($c, $in, 4096);
        if (open my $note, '>', "$dir/slow-closed") {
            close $note;
        }
        return;
    }
    my $accept = accept_of($key // '');
    $accept = 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=' if $path =~ /badaccept/;
    syswrite($c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 . "Connection: Upgrade\r\nSec-WebSocket-Accept: $accept\r\n"
                 . "\r\n");
    return unless $path =~ /tail/;
    # Longer than the client waits: only a FIN passed on ends this.
    while (IO::Select->new($c)->can_read(30)) {
        last unless sysread($c, $in, 4096, length $in);
    }
    syswrite($c, "got:$in");
});

my $wsport = $up->port;
my $wssport = $wss->port;
$t->write_config(<<"EOF")->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
access_log: { path: access.log, format: json }
upstreams:
  ws: { targets: [ "127.0.0.1:$wsport" ] }
  plain: { targets: [ "127.0.0.1:%%PORT_B1%%" ] }
  raw: { targets: [ "127.0.0.1:%%PORT_RAW%%" ] }
  wss:
    targets: [ "127.0.0.1:$wssport" ]
    tls: { ca: $tls{ca}, server_name: localhost }
routes:
  - name: ws
    match: { path: /ws/ }
    upstream: ws
    websocket: true
    rewrite: { strip_prefix: /ws }
    response_headers: { set: { X-Route: ws } }
  - { name: plain, match: { path: /plain/ }, upstream: plain }
  - { name: wss, match: { path: /wss/ }, upstream: wss, websocket: true,
      rewrite: { strip_prefix: /wss } }
  - { name: raw-ws, match: { path: /raw-ws/ }, upstream: raw,
      websocket: true }
  - { name: raw, match: { path: /raw/ }, upstream: raw }
EOF

my $port = $t->port('GW');
my $base = "ws://127.0.0.1:$port";

sub upgrade_request ($path, @extra) {
    my %h = (Key => $KEY, Version => 13, @extra);
    my $req = "GET $path HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
              . "Connection: " . ($h{Connection} // 'Upgrade') . "\r\n";
    $req .= "Sec-WebSocket-Key: $h{Key}\r\n" if defined $h{Key};
    $req .= "Sec-WebSocket-Version: $h{Version}\r\n" if defined $h{Version};
    return $req . "\r\n";
}

sub field ($r, $name) {
    my @v = map { $_->[1] } grep { lc $_->[0] eq lc $name }
            @{$r->{header_list} // $r->{headers} // []};
    return wantarray ? @v : $v[0];
}

sub events_of ($path, $event) {
    return grep { $_->{path} eq $path && $_->{event} eq $event } $up->events;
}

sub access_lines ($id) {
    open my $fh, '<', $t->testdir . '/access.log' or return ();
    return grep { ($_->{request_id} // '') eq $id }
           map { eval { decode_json($_) } // () } <$fh>;
}


# ---- echo, ping, close handshake ------------------------------------------

my $res = ws_client('echo', "$base/ws/echo", '--request-id', 'ws-echo-1',
                    '--subprotocol', 'chat');
ok(!$res->{error}, 'the client connected through the gateway')
    or diag explain $res;
ok($res->{text_ok}, 'text messages echoed (ASCII, UTF-8, 70 000 bytes)');
ok($res->{binary_ok}, 'a 1 MiB binary message echoed intact');
ok($res->{pong}, 'a ping got its pong');
is($res->{close_code}, 4001, 'the close handshake completed (code back)');

my ($closed) = wait_until(sub { (events_of('/echo', 'close'))[0] });
is($closed && $closed->{code}, 4001,
   'the upstream got the client\'s close code');
is($closed && $closed->{reason}, 'bye', 'and its reason');

# What the 101 carried to the client.
my %h101 = map { lc $_->[0] => $_->[1] } @{$res->{response_headers} // []};
is($h101{upgrade}, 'websocket', '101: Upgrade: websocket');
is($h101{connection}, 'upgrade', '101: Connection: upgrade');
ok($h101{'sec-websocket-accept'}, '101: Sec-WebSocket-Accept passed on');
is($h101{'sec-websocket-protocol'}, 'chat',
   '101: Sec-WebSocket-Protocol passed on');
is($res->{subprotocol}, 'chat', 'the subprotocol was negotiated');
like($h101{'sec-websocket-extensions'} // '', qr/^permessage-deflate/,
     '101: Sec-WebSocket-Extensions passed on');
is_deeply($res->{extensions}, ['PerMessageDeflate'],
          'the extension was negotiated end to end');
is($h101{'x-request-id'}, 'ws-echo-1', '101: our X-Request-ID');
is($h101{'x-route'}, 'ws', '101: the route\'s response header edits');

# What the upstream was sent.
my ($open) = events_of('/echo', 'open');
my %sent = map { lc $_->[0] => $_->[1] } @{$open->{headers} // []};
is($sent{upgrade}, 'websocket', 'upstream got Upgrade: websocket');
is($sent{connection}, 'upgrade', 'upstream got Connection: upgrade');
like($sent{'sec-websocket-key'} // '', qr{^[A-Za-z0-9+/]{22}==$},
     'upstream got the client\'s Sec-WebSocket-Key');
is($sent{'sec-websocket-version'}, '13', 'and Sec-WebSocket-Version');
is($sent{'sec-websocket-protocol'}, 'chat', 'and Sec-WebSocket-Protocol');
is($sent{'x-forwarded-for'}, '127.0.0.1', 'and X-Forwarded-For');

# The server closes: its code and reason reach the client.
$res = ws_client('closed', "$base/ws/close?code=4002&reason=server%20bye");
is($res->{close_code}, 4002, 'the upstream\'s close code reached the client');
is($res->{close_reason}, 'server bye', 'and its reason');


# ---- a TLS upstream ---------------------------------------------------------

$res = ws_client('echo', "$base/wss/echo", '--request-id', 'wss-echo-1');
ok($res->{text_ok} && $res->{binary_ok} && $res->{pong},
   'TLS upstream: text, 1 MiB binary and ping through the tunnel')
    or diag explain $res;
is($res->{close_code}, 4001, 'TLS upstream: the close handshake completed');
my ($wclosed) = wait_until(sub {
    (grep { $_->{event} eq 'close' && $_->{path} eq '/echo' } $wss->events)[0]
});
is($wclosed && $wclosed->{reason}, 'bye',
   'TLS upstream: it got the client\'s close reason');


# ---- an upstream that refuses ---------------------------------------------

$res = ws_client('echo', "$base/ws/refuse", '--request-id', 'ws-refused-1');
is($res->{status}, 403, 'a refusal reaches the client with its status');
ok(grep({ lc $_->[0] eq 'x-refused' && $_->[1] eq 'yes' }
        @{$res->{headers} // []}), 'and its header fields');

my $r = parse_response(http(upgrade_request('/ws/refuse')
                            =~ s/\r\n\r\n\z/\r\nConnection: close\r\n\r\n/r,
                            port => $port));
is($r->{status}, 403, 'raw: 403 as the upstream answered');
is($r->{body}, "refused by upstream\n", 'raw: with the upstream\'s body');


# ---- bad upgrade requests --------------------------------------------------

my $opens = () = grep { $_->{event} eq 'open' } $up->events;

$r = parse_response(http(upgrade_request('/ws/echo', Key => undef),
                         port => $port));
is($r->{status}, 400, 'no Sec-WebSocket-Key: 400');
like($r->{body}, qr/^\{"error":"bad request","status":400,/,
     'with the JSON error');

$r = parse_response(http(upgrade_request('/ws/echo', Key => 'c2hvcnQ='),
                         port => $port));
is($r->{status}, 400, 'a key that is not 16 bytes: 400');

$r = parse_response(http(upgrade_request('/ws/echo')
                         =~ s/^GET/POST/r, port => $port));
is($r->{status}, 400, 'POST: 400');

# Version 8, then a plain request on the same connection.
my @r = eval {
    parse_responses(http(upgrade_request('/ws/echo', Version => 8)
                         . "GET /plain/after HTTP/1.1\r\nHost: t\r\n"
                         . "Connection: close\r\n\r\n", port => $port),
                    methods => [qw(GET GET)]);
};
is($r[0] && $r[0]{status}, 426, 'version 8: 426');
is($r[0] && field($r[0], 'Sec-WebSocket-Version'), '13',
   '426 names version 13');
is($r[0] && field($r[0], 'Upgrade'), 'websocket',
   '426 has Upgrade: websocket');
is($r[0] && field($r[0], 'Connection'), 'upgrade',
   'and Connection: upgrade (kept alive)');
is($r[1] && $r[1]{status}, 200, 'the connection serves the next request');

$r = parse_response(http(upgrade_request('/ws/echo', Version => 8,
                                         Connection => 'Upgrade, close'),
                         port => $port));
is(field($r, 'Connection'), 'upgrade, close',
   'a 426 that closes says both');

is(scalar(grep { $_->{event} eq 'open' } $up->events), $opens,
   'no bad upgrade reached the upstream');


# ---- a route without websocket: true ----------------------------------------

$r = parse_response(http(upgrade_request('/plain/x', Connection =>
                                         'Upgrade, close'), port => $port));
is($r->{status}, 200, 'an upgrade on a plain route is a plain request');
my ($seen) = grep { $_->{uri} eq '/plain/x' } $b1->requests;
my %seen = %{$seen->{headers} // {}};
ok($seen && !exists $seen{upgrade}, 'the upstream saw no Upgrade')
    or diag explain $seen;
ok($seen && ($seen{connection} // '') !~ /upgrade/i,
   'nor Connection: upgrade');

# A 101 it did not ask for is the upstream's error.
$r = parse_response(http(upgrade_request('/raw/switch', Connection =>
                                         'Upgrade, close'), port => $port));
is($r->{status}, 502, 'a 101 on a route without websocket: true: 502');


# ---- 101s that do not complete the handshake --------------------------------

$r = parse_response(http(upgrade_request('/raw-ws/badaccept'),
                         port => $port));
is($r->{status}, 502, 'a 101 with a wrong Sec-WebSocket-Accept: 502');
ok($t->wait_log(qr/upstream sent a wrong Sec-WebSocket-Accept/),
   'logged as such');


# ---- bytes before the 101, and half-close -----------------------------------

# The request head and the first bytes in one write; once the 101 is in,
# the client's FIN: the upstream gets the bytes, sees the end of the
# stream, and its answer still reaches the client, which then sees the
# gateway close.
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                              Proto => 'tcp', Timeout => 5)
    or die "connect: $!";
syswrite($s, upgrade_request('/raw-ws/tail') . 'early bytes');
my ($text, $eof, $deadline) = ('', 0, time + 10);
my $shut = 0;
while (time < $deadline && IO::Select->new($s)->can_read($deadline - time)) {
    my $n = sysread($s, $text, 65536, length $text);
    if (!$n) { $eof = 1; last }
    if (!$shut && $text =~ /\r\n\r\n/) {
        shutdown($s, SHUT_WR);
        $shut = 1;
    }
}
close $s;
like($text, qr{\AHTTP/1\.1 101 }, 'tail: 101');
like($text, qr{\r\n\r\ngot:early bytes\z},
     'bytes sent with the head reached the upstream, and its answer '
     . 'after the client\'s FIN came back');
ok($eof, 'then the connection closed');


# A client that half-closes before the 101: gone (499), like any client
# that closes while its request is in flight.
$s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                           Proto => 'tcp', Timeout => 5)
    or die "connect: $!";
syswrite($s, upgrade_request('/raw-ws/slow')
             =~ s/\r\n\r\n\z/\r\nX-Request-ID: ws-gone-1\r\n\r\n/r);
ok(wait_until(sub { -e "$dir/slow-arrived" }),
   'the upgrade reached the upstream, which does not answer');
shutdown($s, SHUT_WR);
$text = '';
$deadline = time + 10;
while (time < $deadline && IO::Select->new($s)->can_read($deadline - time)) {
    last unless sysread($s, $text, 65536, length $text);
}
close $s;
is($text, '', 'a client that half-closes before the 101 gets nothing');
ok(wait_until(sub { my @l = access_lines('ws-gone-1');
                    @l && $l[0]{status} == 499 }),
   'and is logged with 499');
ok(wait_until(sub { -e "$dir/slow-closed" }),
   'the upstream connection was closed');


# ---- one access-log line per tunnel -----------------------------------------

# The refusal came after the echo tunnel ended: once its line is in, a
# second line for the tunnel would be too.
wait_until(sub { scalar(access_lines('ws-refused-1'))
                 && scalar(access_lines('ws-echo-1')) });
my @lines = access_lines('ws-echo-1');
is(scalar @lines, 1, 'one access-log line for the echo tunnel');
is($lines[0]{status}, 101, 'with status 101');
cmp_ok($lines[0]{bytes_sent} // 0, '>', 1024 * 1024,
       'and the bytes sent through the tunnel (over 1 MiB)');
is($lines[0]{upstream_addr}, "127.0.0.1:$wsport", 'and the upstream');
@lines = access_lines('ws-refused-1');
is(scalar @lines, 1, 'one line for the refused upgrade');
is($lines[0] && $lines[0]{status}, 403, 'with the upstream\'s status');
