#!/usr/bin/perl

# The client-facing limits of SPEC 2 `limits:` with their statuses:
# header_timeout, body_timeout, idle_timeout, send_timeout (408 or a
# close), max_header_size (414/431), max_headers (431), max_body_size
# (413) and max_connections (beyond it connections wait in the backlog).
# Limits are small so that every case is quick.

use strict;
use warnings;
use v5.36;

use lib 't/lib';
use Test::More;
use Test::Portico;

use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Time::HiRes qw(time sleep);

my $t = Test::Portico->new()->has_module(qw/router log/)->plan(54);
my $b = $t->backend(id => 'b1');
my $json = JSON::PP->new;

$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
limits:
  header_timeout: 1s
  body_timeout: 1s
  idle_timeout: 5s
  send_timeout: 1s
  max_header_size: 1k
  max_headers: 10
  max_body_size: 1k
access_log: { path: access.log, format: json }
upstreams:
  b1: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - name: respond
    match: { path: "=/r" }
    respond: { status: 200, body: "hi" }
  - name: proxy
    match: { path: / }
    upstream: b1
EOF


# ---- header_timeout ---------------------------------------------------------

# A partial head and then silence: 408 with a JSON body, then a close.
my $s = conn();
send_all($s, "GET /partial HTTP/1.1\r\nHost: localhost\r\n");
my ($r, $closed) = read_response($s, 5);
is($r && $r->{status}, 408, 'header_timeout: partial head gets 408');
is_json_error($r, 408, 'header_timeout');
ok(wait_eof($s, 5), 'header_timeout: connection closed after the 408');

# The whole head must arrive in time: a byte every 200 ms (a slowloris)
# does not keep resetting the timer.
$s = conn();
my $t0 = time;
my $head = "GET /slow HTTP/1.1\r\nHost: localhost\r\n" . "X-Drip: " . 'a' x 40;
my $got = '';
for my $c (split //, $head) {
    last if !send_all($s, $c) || time - $t0 > 6;
    last if IO::Select->new($s)->can_read(0.2)
            && !sysread($s, $got, 4096, length $got);
    last if length $got;
}
($r) = read_response($s, 3, $got);
is($r && $r->{status}, 408, 'header_timeout: a dripping head gets 408');

# A connection that never sends a byte is closed without a response.
$s = conn();
my ($eof, $extra) = wait_eof($s, 5);
ok($eof, 'header_timeout: silent connection closed');
is($extra, '', 'header_timeout: silent connection gets no response');


# ---- body_timeout -----------------------------------------------------------

# Content-Length: 100, 10 bytes of it, then silence: 408, and the
# upstream never gets a complete request.
$s = conn();
send_all($s, "POST /stalled-body HTTP/1.1\r\nHost: localhost\r\n"
             . "Content-Length: 100\r\n\r\n" . '0123456789');
($r) = read_response($s, 6);
is($r && $r->{status}, 408, 'body_timeout: stalled body gets 408');
is_json_error($r, 408, 'body_timeout');
ok(wait_eof($s, 5), 'body_timeout: connection closed after the 408');
ok(!grep({ $_->{uri} eq '/stalled-body' && $_->{complete} } $b->requests),
   'body_timeout: no complete request upstream');


# ---- idle_timeout -----------------------------------------------------------

# A keep-alive connection outlives header_timeout while idle (2 s idle
# here, header_timeout 1s), and is closed silently after idle_timeout
# (5s).  The idle time is the point, so it is slept; the 3 s between it
# and idle_timeout leave room for a slow host.
$s = conn();
send_all($s, "GET /r HTTP/1.1\r\nHost: localhost\r\n\r\n");
($r) = read_response($s, 5);
is($r && $r->{status}, 200, 'idle_timeout: first keep-alive request');
sleep 2;
send_all($s, "GET /r HTTP/1.1\r\nHost: localhost\r\n\r\n");
($r) = read_response($s, 5);
is($r && $r->{status}, 200,
   'idle_timeout: idle longer than header_timeout, still open');
($eof, $extra) = wait_eof($s, 8);
ok($eof, 'idle_timeout: idle keep-alive connection closed');
is($extra, '', 'idle_timeout: closed without a response');


# ---- a timer ends with its phase -------------------------------------------

# A partial head on a keep-alive connection after a first request: the
# next head is held to header_timeout as well.
$s = conn();
send_all($s, "GET /r HTTP/1.1\r\nHost: localhost\r\n\r\n");
($r) = read_response($s, 5);
is($r && $r->{status}, 200, 'keep-alive: first request');
send_all($s, "GET /r HTTP/1.1\r\nHo");
($r) = read_response($s, 5);
is($r && $r->{status}, 408, 'header_timeout: second head incomplete: 408');

# A chunked body that stalls after its first chunk: 408.
$s = conn();
send_all($s, "POST /stalled-chunks HTTP/1.1\r\nHost: localhost\r\n"
             . "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
($r) = read_response($s, 6);
is($r && $r->{status}, 408, 'body_timeout: stalled chunked body gets 408');
ok(!grep({ $_->{uri} eq '/stalled-chunks' && $_->{complete} }
         $b->requests),
   'body_timeout: stalled chunked body never complete upstream');

# A slow upstream (2.5 s) outlasts header_timeout, body_timeout and
# send_timeout (1s each): none of them may fire once the client has sent
# everything.  The three run side by side.
my %slow = (
    'slow GET'      => "GET /slow-get?delay=2500 HTTP/1.1\r\n",
    'slow POST'     => "POST /slow-post?delay=2500 HTTP/1.1\r\n"
                       . "Content-Length: 3\r\n",
    'slow body'     => "GET /slow-body?size=10&head_delay=2500 HTTP/1.1\r\n",
);
my %sock;
for my $name (sort keys %slow) {
    $sock{$name} = conn();
    send_all($sock{$name}, $slow{$name} . "Host: localhost\r\n"
                           . "Connection: close\r\n\r\n"
                           . ($name eq 'slow POST' ? 'abc' : ''));
}
for my $name (sort keys %slow) {
    ($r) = read_response($sock{$name}, 8);
    ok($r && $r->{status} == 200 && length $r->{body},
       "$name: served although the upstream took 2.5 s") or diag(explain $r);
}


# ---- max_header_size --------------------------------------------------------

# A request line longer than max_header_size: 414.
my $long = '/long/' . 'a' x 1100;
$r = resp(http_get($long));
is($r && $r->{status}, 414, 'max_header_size: long request line gets 414');
is_json_error($r, 414, 'max_header_size 414');

# A request line under it passes.
$r = resp(http_get('/long/' . 'a' x 800));
is($r && $r->{status}, 200, 'max_header_size: 806-byte target passes');

# A short request line with headers that make the head too long: 431.
my @big = map { ("X-Big-$_" => 'v' x 300) } 1 .. 4;
$r = resp(http_get('/bighead', headers => [@big]));
is($r && $r->{status}, 431, 'max_header_size: long head gets 431');
is_json_error($r, 431, 'max_header_size 431');

# Headers that fit pass.
$r = resp(http_get('/fits', headers => [@big[0 .. 3]]));
is($r && $r->{status}, 200, 'max_header_size: a 680-byte head passes');

# The header-level cases never reached the backend.
ok(!grep({ $_->{uri} =~ m{^/(?:long/a{1000}|bighead)} } $b->requests),
   'max_header_size: rejected requests not proxied');


# ---- max_headers ------------------------------------------------------------

# Host + Connection + 8 = 10 headers pass; one more is 431.
my @h8 = map { ("X-H$_" => $_) } 1 .. 8;
$r = resp(http_get('/ten-headers', headers => [@h8]));
is($r && $r->{status}, 200, 'max_headers: exactly 10 headers pass');
$r = resp(http_get('/eleven-headers', headers => [@h8, 'X-H9' => 9]));
is($r && $r->{status}, 431, 'max_headers: 11 headers get 431');
is_json_error($r, 431, 'max_headers');
ok(!grep({ $_->{uri} eq '/eleven-headers' } $b->requests),
   'max_headers: rejected request not proxied');


# ---- max_body_size ----------------------------------------------------------

# Content-Length over the limit: 413 on the head alone, before any body
# byte is sent; the backend never sees the request.
$s = conn();
send_all($s, "POST /too-big HTTP/1.1\r\nHost: localhost\r\n"
             . "Content-Length: 2000\r\n\r\n");
($r) = read_response($s, 5);
is($r && $r->{status}, 413, 'max_body_size: Content-Length over it gets 413');
is_json_error($r, 413, 'max_body_size');
close $s;

# Exactly the limit passes, body intact.
my $kb = join '', map { chr(65 + $_ % 26) } 0 .. 1023;
$r = resp(http("POST /exact HTTP/1.1\r\nHost: localhost\r\n"
               . "Content-Length: 1024\r\nConnection: close\r\n\r\n$kb"));
is($r && $r->{status}, 200, 'max_body_size: exactly 1k passes');
my $j = $r && eval { $json->decode($r->{body}) };
is($j && $j->{body_length}, 1024, 'max_body_size: 1k body arrives intact');

# A chunked body that grows past the limit: 413, never complete upstream.
$s = conn();
send_all($s, "POST /chunked-too-big HTTP/1.1\r\nHost: localhost\r\n"
             . "Transfer-Encoding: chunked\r\n\r\n");
my $buf = '';
for (1 .. 5) {
    last unless send_all($s, sprintf("%x\r\n%s\r\n", 500, 'c' x 500));
    last if IO::Select->new($s)->can_read(0.1)
            && !sysread($s, $buf, 4096, length $buf);
    last if length $buf;
}
send_all($s, "0\r\n\r\n") unless length $buf;
($r) = read_response($s, 5, $buf);
is($r && $r->{status}, 413, 'max_body_size: chunked body over it gets 413');
is_json_error($r, 413, 'max_body_size chunked');
ok(!grep({ $_->{uri} eq '/too-big' } $b->requests),
   'max_body_size: Content-Length case never reached the backend');
ok(!grep({ $_->{uri} eq '/chunked-too-big' && $_->{complete} }
         $b->requests),
   'max_body_size: chunked case never complete upstream');
close $s;


# ---- send_timeout -----------------------------------------------------------

# A client that never reads a 20 MB response: once the socket buffers are
# full the gateway waits send_timeout (1s) and closes the connection.
my $size = 20_000_000;
$s = conn(rcvbuf => 4096);
send_all($s, "GET /huge?size=$size HTTP/1.1\r\nHost: localhost\r\n"
             . "Connection: close\r\n\r\n");
my $line = $t->wait_log(qr/client timed out receiving the response.*huge/,
                        15);
ok($line, 'send_timeout: logged') or diag($t->error_log);
my $read = 0;
($eof, $read) = drain($s, 15);
ok($eof, 'send_timeout: connection closed');
cmp_ok($read, '<', $size, 'send_timeout: the response was cut short');
my $entry = wait_access(qr{"path":"/huge"}, 5);
ok($entry && $entry->{bytes_sent} < $size,
   'send_timeout: access log shows the partial send')
    or diag(explain $entry);


# ---- limits keep the gateway healthy ----------------------------------------

$r = resp(http_get('/r'));
is($r && $r->{status}, 200, 'a normal request after all the limits');


# ---- max_connections: beyond it, wait in the backlog ------------------------

$t->stop;
$t->write_config(<<'EOF')->run();
workers: 1
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
limits:
  max_connections: 2
  header_timeout: 20s
  idle_timeout: 20s
routes:
  - name: respond
    match: { path: / }
    respond: { status: 200, body: "${path}" }
EOF

# Two keep-alive connections use up the worker's two slots.
my $c1 = conn();
my $c2 = conn();
for my $c ([$c1, 'c1'], [$c2, 'c2']) {
    send_all($c->[0], "GET /$c->[1] HTTP/1.1\r\nHost: localhost\r\n\r\n");
    ($r) = read_response($c->[0], 5);
    is($r && $r->{body}, "/$c->[1]", "max_connections: $c->[1] served");
}

# The third connects (the kernel queues it) but is not served yet.
my $c3 = conn();
ok($c3, 'max_connections: third connection not refused');
send_all($c3, "GET /c3 HTTP/1.1\r\nHost: localhost\r\n\r\n");
($r, my $c3_closed, my $c3_raw) = read_response($c3, 1.5);
ok(!$r && !$c3_closed && $c3_raw eq '',
   'max_connections: third waits while two are open');

# Once one closes, the waiting connection is accepted and served.
close $c1;
($r) = read_response($c3, 10, $c3_raw);
is($r && $r->{body}, '/c3', 'max_connections: third served after a close');

# The remaining connection still works.
send_all($c2, "GET /c2-again HTTP/1.1\r\nHost: localhost\r\n\r\n");
($r) = read_response($c2, 5);
is($r && $r->{body}, '/c2-again', 'max_connections: second still served');

# With c2 and c3 open a fourth waits too, and a refusal would show here.
my $c4 = conn();
send_all($c4, "GET /c4 HTTP/1.1\r\nHost: localhost\r\n"
              . "Connection: close\r\n\r\n");
($r, my $c4_closed, my $c4_raw) = read_response($c4, 1.5);
ok(!$r && !$c4_closed, 'max_connections: fourth waits');
close $c2;
close $c3;
($r) = read_response($c4, 10, $c4_raw);
is($r && $r->{body}, '/c4', 'max_connections: fourth served after closes');
ok(wait_eof($c4, 5), 'max_connections: Connection: close honoured');


# ---- helpers ----------------------------------------------------------------

# A connected socket to the gateway; rcvbuf => N shrinks the receive buffer
# before the handshake, so a client that does not read stalls the sender.
sub conn (%o) {
    my $s = IO::Socket::INET->new(Proto => 'tcp')
        or die "socket: $!";
    if ($o{rcvbuf}) {
        setsockopt($s, SOL_SOCKET, SO_RCVBUF, $o{rcvbuf})
            or die "SO_RCVBUF: $!";
    }
    my $addr = Socket::pack_sockaddr_in($t->port('GW'),
                                        Socket::inet_aton('127.0.0.1'));
    if (!connect($s, $addr)) {
        diag("connect: $!");
        return undef;
    }
    return $s;
}


sub send_all ($s, $data) {
    local $SIG{PIPE} = 'IGNORE';
    $s->blocking(1);
    while (length $data) {
        my $n = syswrite($s, $data);
        return 0 unless $n;
        substr($data, 0, $n, '');
    }
    return 1;
}


# Reads one complete response (Content-Length framed).  Returns (the
# parsed response or undef, whether the peer closed, the raw bytes).
sub read_response ($s, $timeout, $in = '') {
    my $deadline = time + $timeout;
    my $sel = IO::Select->new($s);
    my $closed = 0;
    $s->blocking(0);
    while (1) {
        if ($in =~ /\r\n\r\n/) {
            my $r = eval { parse_response($in) };
            if ($r && ($closed || $r->{headers}{'content-length'}
                       || $r->{status} == 204)) {
                return ($r, $closed, $in);
            }
        }
        last if $closed;
        my $left = $deadline - time;
        last if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread($s, $in, 65536, length $in);
        $closed = 1 if !defined $n ? !$!{EAGAIN} && !$!{EINTR} : !$n;
    }
    return (undef, $closed, $in);
}


# Waits for the peer to close; returns (closed?, bytes that came first).
sub wait_eof ($s, $timeout) {
    my $deadline = time + $timeout;
    my $sel = IO::Select->new($s);
    my $in = '';
    $s->blocking(0);
    while ((my $left = $deadline - time) > 0) {
        next unless $sel->can_read($left);
        my $n = sysread($s, $in, 65536, length $in);
        next if !defined $n && ($!{EAGAIN} || $!{EINTR});
        return wantarray ? (1, $in) : 1 if !$n;
    }
    return wantarray ? (0, $in) : 0;
}


# Reads and discards until the peer closes; returns (closed?, bytes read).
sub drain ($s, $timeout) {
    my $deadline = time + $timeout;
    my $sel = IO::Select->new($s);
    my ($total, $buf) = (0, '');
    $s->blocking(0);
    while ((my $left = $deadline - time) > 0) {
        next unless $sel->can_read($left);
        my $n = sysread($s, $buf, 262144);
        next if !defined $n && ($!{EAGAIN} || $!{EINTR});
        return (1, $total) if !$n;
        $total += $n;
    }
    return (0, $total);
}


sub resp ($raw) {
    return undef unless defined $raw;
    return eval { parse_response($raw) };
}


sub is_json_error ($r, $status, $name) {
    my $j = $r && eval { $json->decode($r->{body}) };
    ok($j && $j->{status} == $status && length($j->{error} // '')
       && ($j->{request_id} // '') eq ($r->{headers}{'x-request-id'} // '-'),
       "$name: JSON error body with the request id")
        or diag(explain($r));
}


# The first access-log entry matching $re (the log is buffered: flushed
# every second), decoded, or undef after $timeout.
sub wait_access ($re, $timeout) {
    my $deadline = time + $timeout;
    my $path = $t->testdir . '/access.log';
    while (1) {
        if (open my $fh, '<', $path) {
            while (my $l = <$fh>) {
                return eval { $json->decode($l) } if $l =~ $re;
            }
        }
        return undef if time > $deadline;
        sleep 0.2;
    }
}
