#!/usr/bin/perl

# Expect: 100-continue (interim answer, body after it, 413 and 417 instead
# when the body will not be read) and HEAD (headers of the GET, no body,
# the connection stays usable), through the proxy and on a respond route.

use strict;
use warnings;
use v5.36;

use lib 't/lib';
use Test::More;
use Test::Portico;

use Digest::MD5 qw(md5_hex);
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes qw(time sleep);

my $t = Test::Portico->new()->has_module(qw/router/)->plan(37);
my $b = $t->backend(id => 'b1');
my $json = JSON::PP->new;

$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
limits:
  max_body_size: 1k
upstreams:
  b1: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - name: proxy
    match: { path: /p/ }
    upstream: b1
  - name: respond
    match: { path: "=/r" }
    respond:
      status: 200
      headers: { Content-Type: text/plain, X-Respond: yes }
      body: "hello world"
EOF


# ---- Expect: 100-continue ---------------------------------------------------

# The client sends the head alone and waits for the interim 100 before the
# body; the body then reaches the backend intact.
my $body = 'hello, body';
my $s = conn();
send_all($s, "POST /p/expect HTTP/1.1\r\nHost: localhost\r\n"
             . "Content-Length: " . length($body) . "\r\n"
             . "Expect: 100-continue\r\n\r\n");
my $in = read_until($s, qr/\r\n\r\n/, 5);
like($in, qr{\AHTTP/1\.1 100 Continue\r\n}, 'Expect: 100 Continue first');
send_all($s, $body);
$in = read_until($s, qr/\r\n\r\n.*"req_seq"/s, 5, $in);
my @rs = eval { parse_responses($in) };
is(scalar @rs && $rs[-1]{status}, 200, 'Expect: final 200 after the body');
my $j = @rs && eval { $json->decode($rs[-1]{body}) };
ok($j && $j->{body_md5} eq md5_hex($body)
   && $j->{body_length} == length $body,
   'Expect: the body reaches the backend intact');
ok(!grep({ $_->{status} != 100 } @rs[0 .. $#rs - 1]),
   'Expect: only 1xx before the final response');

# The connection stays usable after the exchange.
send_all($s, "GET /p/after-expect HTTP/1.1\r\nHost: localhost\r\n"
             . "Connection: close\r\n\r\n");
my $r = eval { parse_response(read_until($s, undef, 5)) };
is($r && $r->{status}, 200, 'Expect: keep-alive request after it');
close $s;

# The expectation token is case-insensitive.
$s = conn();
send_all($s, "POST /p/expect-case HTTP/1.1\r\nHost: localhost\r\n"
             . "Content-Length: 3\r\nExpect: 100-Continue\r\n"
             . "Connection: close\r\n\r\n");
$in = read_until($s, qr/\r\n\r\n/, 5);
like($in, qr{\AHTTP/1\.1 100 }, 'Expect: 100-Continue (any case) honoured');
send_all($s, 'abc');
@rs = eval { parse_responses(read_until($s, undef, 5, $in)) };
is(@rs && $rs[-1]{status}, 200, 'Expect (any case): final 200');

# A client that does not wait for the 100 is served just the same.
$r = final(http("POST /p/no-wait HTTP/1.1\r\nHost: localhost\r\n"
                . "Content-Length: 5\r\nExpect: 100-continue\r\n"
                . "Connection: close\r\n\r\nhello"));
$j = $r && eval { $json->decode($r->{body}) };
ok($r && $r->{status} == 200 && $j->{body_md5} eq md5_hex('hello'),
   'Expect: body sent without waiting is proxied');

# HTTP/1.0 clients do not know 100: the expectation is ignored (RFC 9110
# 10.1.1), so no interim response reaches them.
my $raw = http("POST /p/http10 HTTP/1.0\r\nHost: localhost\r\n"
               . "Content-Length: 5\r\nExpect: 100-continue\r\n\r\nhello");
like($raw, qr{\AHTTP/1\.1 200 }, 'Expect on HTTP/1.0: 200 and no 100');

# A Content-Length over max_body_size: 413 at once, no 100, no proxying.
$s = conn();
send_all($s, "POST /p/expect-big HTTP/1.1\r\nHost: localhost\r\n"
             . "Content-Length: 5000\r\nExpect: 100-continue\r\n\r\n");
$in = read_until($s, qr/\r\n\r\n.*\}/s, 5);
like($in, qr{\AHTTP/1\.1 413 }, 'Expect with a too large body: 413');
unlike($in, qr{ 100 Continue}, 'Expect with a too large body: no 100');
is_json_error(eval { parse_response($in) }, 413, 'Expect 413');
close $s;

# An expectation other than 100-continue: 417, not proxied.
$r = final(http("POST /p/expect-odd HTTP/1.1\r\nHost: localhost\r\n"
                . "Content-Length: 5\r\nExpect: something-else\r\n"
                . "Connection: close\r\n\r\nhello"));
is($r && $r->{status}, 417, 'unknown Expect: 417');
is_json_error($r, 417, 'unknown Expect');

# A respond route answers without needing the body.  If it answers before
# the 100, it must say whether it keeps reading (RFC 9110 10.1.1): with
# Connection: close it may close; otherwise the client may go on to send
# the body and then its next request, and that request is answered.
$s = conn();
send_all($s, "POST /r HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
             . "Expect: 100-continue\r\n\r\n");
$in = read_until($s, qr/\r\n\r\n(?:hello world|\z)/, 5);
my $early = $in !~ m{\AHTTP/1\.1 100 };
my $says_close = $in =~ /^Connection:[ \t]*close\r$/mi;
send_all($s, 'hello');
send_all($s, "GET /r HTTP/1.1\r\nHost: localhost\r\nConnection: close"
             . "\r\n\r\n");
$in = read_until($s, undef, 5, $in);
@rs = eval { parse_responses($in) };
@rs = grep { $_->{status} >= 200 } @rs;
ok(($early && $says_close && @rs == 1 && $rs[0]{status} == 200)
   || (@rs == 2 && $rs[0]{status} == 200 && $rs[1]{body} eq 'hello world'),
   'Expect on a respond route: keep-alive promise kept (or close announced)')
    or diag("got: $in");
close $s;

my %uris = map { $_->{uri} => $_ } $b->requests;
ok(!$uris{'/p/expect-big'} && !$uris{'/p/expect-odd'},
   'the 413 and 417 requests never reached the backend');


# ---- HEAD -------------------------------------------------------------------

# Through the proxy: the GET's headers (Content-Length included), no body,
# and the same connection serves a GET right after.
my $size = 1234;
my @pair = head_then_get("/p/head?size=$size");
is($pair[0] && $pair[0]{status}, 200, 'proxied HEAD: 200');
is($pair[0] && $pair[0]{headers}{'content-length'}, $size,
   'proxied HEAD: Content-Length of the GET body');
is($pair[0] && $pair[0]{headers}{'x-backend-id'}, 'b1',
   'proxied HEAD: upstream headers passed');
is($pair[1] && $pair[1]{status}, 200, 'proxied HEAD: next GET on the same '
   . 'connection answered');
is($pair[1] && length $pair[1]{body}, $size,
   'proxied HEAD: next GET gets its full body (no stray HEAD body)');
is($pair[0] && $pair[0]{headers}{'x-conn-seq'},
   $pair[1] && $pair[1]{headers}{'x-conn-seq'},
   'proxied HEAD: the upstream connection was kept too');
my ($seen) = grep { $_->{uri} eq "/p/head?size=$size" } $b->requests;
is($seen && $seen->{method}, 'HEAD', 'proxied HEAD: upstream saw HEAD');

# A chunked upstream answer to HEAD carries no body either.
@pair = head_then_get('/p/head-chunked?size=100&chunked=1');
is($pair[0] && $pair[0]{status}, 200, 'proxied HEAD (chunked): 200');
is($pair[1] && $pair[1]{status}, 200,
   'proxied HEAD (chunked): next GET answered');
is($pair[1] && length $pair[1]{body}, 100,
   'proxied HEAD (chunked): next GET body intact');

# A respond route: Content-Length of "hello world", its headers, no body.
@pair = head_then_get('/r');
is($pair[0] && $pair[0]{status}, 200, 'respond HEAD: 200');
is($pair[0] && $pair[0]{headers}{'content-length'}, 11,
   'respond HEAD: Content-Length of the body');
is($pair[0] && $pair[0]{headers}{'x-respond'}, 'yes',
   'respond HEAD: configured headers');
is($pair[1] && $pair[1]{body}, 'hello world',
   'respond HEAD: next GET on the same connection gets the body');

# An error answer to HEAD (no route: 404) has no body either.
@pair = head_then_get('/nowhere');
is($pair[0] && $pair[0]{status}, 404, 'HEAD without a route: 404');
ok($pair[0] && $pair[0]{headers}{'content-length'} > 0,
   'HEAD 404: Content-Length of the JSON error');
is($pair[1] && $pair[1]{status}, 404,
   'HEAD 404: next GET on the same connection answered');
my $ej = $pair[1] && eval { $json->decode($pair[1]{body}) };
is($ej && $ej->{status}, 404, 'HEAD 404: the GET gets the JSON body');
is($pair[1] && length $pair[1]{body},
   $pair[0] && $pair[0]{headers}{'content-length'},
   'HEAD 404: HEAD and GET agree on the length');

# Pipelined HEAD + GET in one write.
$raw = http("HEAD /p/pipe?size=50 HTTP/1.1\r\nHost: localhost\r\n\r\n"
            . "GET /p/pipe2?size=7 HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\n\r\n");
@rs = eval { parse_responses($raw, methods => [qw(HEAD GET)]) };
is(scalar @rs, 2, 'pipelined HEAD then GET: two responses');
ok(@rs == 2 && $rs[0]{headers}{'content-length'} == 50
   && $rs[1]{body} eq '0123456',
   'pipelined HEAD then GET: lengths and body right');


# ---- helpers ----------------------------------------------------------------

sub conn () {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $t->port('GW'), Proto => 'tcp',
                                  Timeout => 5)
        or die "connect: $@";
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


# Reads until what came matches $re (undef: until the peer closes) or
# $timeout; returns all read (including $in given).
sub read_until ($s, $re, $timeout, $in = '') {
    my $deadline = time + $timeout;
    my $sel = IO::Select->new($s);
    $s->blocking(0);
    while (!defined $re || $in !~ $re) {
        my $left = $deadline - time;
        last if $left <= 0;
        next unless $sel->can_read($left);
        my $n = sysread($s, $in, 65536, length $in);
        next if !defined $n && ($!{EAGAIN} || $!{EINTR});
        last unless $n;
    }
    return $in;
}


# The final response in $raw (after any 1xx), or undef.
sub final ($raw) {
    return undef unless defined $raw;
    my @all = eval { parse_responses($raw) };
    return @all ? $all[-1] : undef;
}


# On one keep-alive connection: HEAD $path, then (once its head is in)
# GET $path with Connection: close.  Returns the two parsed responses; a
# body after the HEAD answer makes the second unparseable.
sub head_then_get ($path) {
    my $s = conn();
    send_all($s, "HEAD $path HTTP/1.1\r\nHost: localhost\r\n\r\n");
    my $in = read_until($s, qr/\r\n\r\n/, 5);
    # A stray body would come before the GET's answer whenever it is
    # sent: one connection keeps the order.
    send_all($s, "GET $path HTTP/1.1\r\nHost: localhost\r\n"
                 . "Connection: close\r\n\r\n");
    $in = read_until($s, undef, 5, $in);
    close $s;
    my @r = eval { parse_responses($in, methods => [qw(HEAD GET)]) };
    diag("HEAD then GET $path: $@") if $@;
    return @r;
}


sub is_json_error ($r, $status, $name) {
    my $j = $r && eval { $json->decode($r->{body}) };
    ok($j && $j->{status} == $status && length($j->{error} // '')
       && ($j->{request_id} // '') eq ($r->{headers}{'x-request-id'} // '-'),
       "$name: JSON error body with the request id")
        or diag(explain($r));
}
