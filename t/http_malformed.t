#!/usr/bin/perl

# Strict request parsing (SPEC 5): every request whose framing or head is
# ambiguous or malformed gets a JSON error and a closed connection, and
# never reaches the backend.  Strictness must not reject the unusual but
# valid (leading empty line, chunk extensions, absolute form, HTTP/1.0
# without Host, a higher HTTP/1 minor version), and a valid head that
# trickles in byte by byte is proxied as usual.

use strict;
use warnings;
use v5.36;

use lib 't/lib';
use Test::More;
use Test::Portico;

use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes qw(time sleep);

my $t = Test::Portico->new()->has_module(qw/router/);

my @cases;    # [ name, raw request, expected status ]

# A pipelined follow-up request rides behind every bad one: if the gateway
# kept the connection (or resynchronised on the next CRLF) it would reach
# the backend or answer it, both of which are checked below.
my $NEXT = "GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";

sub case ($name, $raw, $status = 400) {
    push @cases, [$name, $raw, $status];
}

# Framing that a front end and a back end could read differently.
case('Content-Length and Transfer-Encoding',
     "POST /te-cl HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n"
     . "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
case('Transfer-Encoding and Content-Length',
     "POST /cl-te HTTP/1.1\r\nHost: localhost\r\n"
     . "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n");
case('two different Content-Lengths',
     "POST /cl-cl HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
     . "Content-Length: 6\r\n\r\nhello!");
case('Content-Length list with different values',
     "POST /cl-list HTTP/1.1\r\nHost: localhost\r\n"
     . "Content-Length: 5, 6\r\n\r\nhello!");
case('Transfer-Encoding: gzip (final coding not chunked)',
     "POST /te-gzip HTTP/1.1\r\nHost: localhost\r\n"
     . "Transfer-Encoding: gzip\r\n\r\nxxxx");
# README: a final coding other than chunked is 400; chunked under another
# coding is 501 (valid framing, a coding we do not undo).
case('Transfer-Encoding: chunked, gzip (final coding not chunked)',
     "POST /te-chunked-gzip HTTP/1.1\r\nHost: localhost\r\n"
     . "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n");
case('Transfer-Encoding: gzip, chunked (not implemented)',
     "POST /te-gzip-chunked HTTP/1.1\r\nHost: localhost\r\n"
     . "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501);
# Chunked applied twice is malformed (RFC 9112 6.1), on one line or two.
case('Transfer-Encoding: chunked, chunked (chunked twice)',
     "POST /te-cc HTTP/1.1\r\nHost: localhost\r\n"
     . "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n");
case('Transfer-Encoding: gzip, chunked , chunked (chunked twice)',
     "POST /te-gcc HTTP/1.1\r\nHost: localhost\r\n"
     . "Transfer-Encoding: gzip, chunked , chunked\r\n\r\n0\r\n\r\n");
case('Transfer-Encoding on HTTP/1.0',
     "POST /te-10 HTTP/1.0\r\nHost: localhost\r\n"
     . "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n");

# Line syntax: bare CR, bare LF, obs-fold, bad names, space before colon.
case('bare CR inside a header value',
     "GET /bare-cr HTTP/1.1\r\nHost: localhost\r\nX-A: a\rb\r\n\r\n");
case('bare CR as a line ending',
     "GET /bare-cr-eol HTTP/1.1\r\nHost: localhost\rX-A: b\r\n\r\n");
case('bare LF line endings',
     "GET /bare-lf HTTP/1.1\nHost: localhost\nX-A: b\n\n");
case('bare LF ending one header line',
     "GET /bare-lf1 HTTP/1.1\r\nHost: localhost\nX-A: b\r\n\r\n");
case('obs-fold continuation line',
     "GET /fold HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n b\r\n\r\n");
case('obs-fold with a tab',
     "GET /fold-tab HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n\tb\r\n\r\n");
case('invalid character in a header name',
     "GET /bad-name HTTP/1.1\r\nHost: localhost\r\nX(A): b\r\n\r\n");
case('space inside a header name',
     "GET /name-space HTTP/1.1\r\nHost: localhost\r\nX A: b\r\n\r\n");
case('non-ASCII byte in a header name',
     "GET /name-8bit HTTP/1.1\r\nHost: localhost\r\nX-\xe9: b\r\n\r\n");
case('empty header name',
     "GET /empty-name HTTP/1.1\r\nHost: localhost\r\n: b\r\n\r\n");
case('header line without a colon',
     "GET /no-colon HTTP/1.1\r\nHost: localhost\r\nX-A b\r\n\r\n");
case('space before the colon',
     "GET /sp-colon HTTP/1.1\r\nHost: localhost\r\nX-A : b\r\n\r\n");
case('tab before the colon (Transfer-Encoding)',
     "POST /tab-colon HTTP/1.1\r\nHost: localhost\r\n"
     . "Transfer-Encoding\t: chunked\r\nContent-Length: 3\r\n\r\nabc");
case('NUL byte in a header value',
     "GET /nul HTTP/1.1\r\nHost: localhost\r\nX-A: a\0b\r\n\r\n");
case('NUL byte in the request target',
     "GET /nul\0path HTTP/1.1\r\nHost: localhost\r\n\r\n");

# Host: required once on HTTP/1.1.
case('missing Host on HTTP/1.1',
     "GET /no-host HTTP/1.1\r\nX-A: b\r\n\r\n");
case('two Host headers',
     "GET /two-hosts HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n");

# A whitespace-preceded line before the first header would hide a
# header from us that a lenient backend might see (RFC 9112 2.2).
case('whitespace before the first header',
     "GET /ws-first HTTP/1.1\r\n X-A: evil\r\nHost: localhost\r\n\r\n");

# Host with an invalid value: MUST get 400 (RFC 9112 3.2).
case('Host with a space',
     "GET /host-space HTTP/1.1\r\nHost: a b\r\n\r\n");
case('Host with a slash',
     "GET /host-slash HTTP/1.1\r\nHost: a/b\r\n\r\n");
case('Host with userinfo',
     "GET /host-at HTTP/1.1\r\nHost: user\@a\r\n\r\n");

# More framing: chunked twice, empty values, chunk lines with bare LF,
# obs-fold in a trailer.
# Chunked applied twice is malformed (RFC 9112 6.1), not a coding left
# for someone else to undo: 400.
case('Transfer-Encoding: chunked on two lines',
     "POST /te-twice HTTP/1.1\r\nHost: localhost\r\n"
     . "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
     . "0\r\n\r\n");
case('empty Transfer-Encoding',
     "POST /te-empty HTTP/1.1\r\nHost: localhost\r\n"
     . "Transfer-Encoding: \r\n\r\n");
case('empty Content-Length',
     "POST /cl-empty HTTP/1.1\r\nHost: localhost\r\n"
     . "Content-Length: \r\n\r\n");

# Content-Length must be digits.
case('Content-Length: abc',
     "POST /cl-abc HTTP/1.1\r\nHost: localhost\r\n"
     . "Content-Length: abc\r\n\r\n");
case('Content-Length: -1',
     "POST /cl-neg HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n");
case('Content-Length: +5',
     "POST /cl-plus HTTP/1.1\r\nHost: localhost\r\nContent-Length: +5\r\n\r\n"
     . "hello");
case('Content-Length that overflows 64 bits',
     "POST /cl-big HTTP/1.1\r\nHost: localhost\r\n"
     . "Content-Length: 18446744073709551621\r\n\r\nhello");

# Request line.
case('HTTP/2.0 in an HTTP/1 request line',
     "GET /h2 HTTP/2.0\r\nHost: localhost\r\n\r\n", 505);
case('HTTP/3.0 in an HTTP/1 request line',
     "GET /h3 HTTP/3.0\r\nHost: localhost\r\n\r\n", 505);
case('method with invalid characters',
     "GE(T /bad-method HTTP/1.1\r\nHost: localhost\r\n\r\n");
case('method with a non-ASCII byte',
     "G\xc9T /bad-method2 HTTP/1.1\r\nHost: localhost\r\n\r\n");
case('space inside the request target',
     "GET /a b HTTP/1.1\r\nHost: localhost\r\n\r\n");

# README: CONNECT gets 501 (no tunnels).
case('CONNECT',
     "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
     501);

case('lower-case protocol name',
     "GET /lower HTTP/1.1\r\nHost: localhost\r\n\r\n" =~ s/HTTP/http/r);
case('HTTP/0.9 request line',
     "GET /http09\r\n\r\n");
case('invalid percent-encoding',
     "GET /pct%zz HTTP/1.1\r\nHost: localhost\r\n\r\n");
case('percent-encoded NUL',
     "GET /pct%00nul HTTP/1.1\r\nHost: localhost\r\n\r\n");

# Paths that climb above the root, plain or percent-encoded.
case('path /../ above the root',
     "GET /../etc/passwd HTTP/1.1\r\nHost: localhost\r\n\r\n");
case('path /a/../../ above the root',
     "GET /a/../../etc/passwd HTTP/1.1\r\nHost: localhost\r\n\r\n");
case('path ending in /.. above the root',
     "GET /a/../.. HTTP/1.1\r\nHost: localhost\r\n\r\n");
case('percent-encoded .. above the root',
     "GET /%2e%2e/etc/passwd HTTP/1.1\r\nHost: localhost\r\n\r\n");

# A valid head, then a chunked body that goes wrong.  The head is sent
# first and the body after a pause: the gateway streams bodies (SPEC 5), so
# it may already have passed the head on, but the upstream must never get
# a request it could take as complete (checked on the 'body' backend).
my $CH = "Host: localhost\r\nTransfer-Encoding: chunked\r\n\r\n";
case('bad chunk size',
     ["POST /body/1 HTTP/1.1\r\n$CH", "zz\r\nhello\r\n0\r\n\r\n"]);
case('chunk size with a sign',
     ["POST /body/2 HTTP/1.1\r\n$CH", "-5\r\nhello\r\n0\r\n\r\n"]);
case('chunk size that overflows',
     ["POST /body/3 HTTP/1.1\r\n$CH",
      "1000000000000000000000005\r\nhello\r\n0\r\n\r\n"]);
case('chunk data not followed by CRLF',
     ["POST /body/4 HTTP/1.1\r\n$CH", "5\r\nhelloXX\r\n0\r\n\r\n"]);
case('bad chunk after a good one',
     ["POST /body/5 HTTP/1.1\r\n$CH", "5\r\nhello\r\n", "5x\r\n"
      . "world\r\n0\r\n\r\n"]);
case('bad chunk size in one packet with the head',
     "POST /body/6 HTTP/1.1\r\n${CH}zz\r\nhello\r\n0\r\n\r\n");
case('chunk size line ending in a bare LF',
     ["POST /body/7 HTTP/1.1\r\n$CH", "5\nhello\r\n0\r\n\r\n"]);
case('obs-fold in a trailer',
     ["POST /body/8 HTTP/1.1\r\n$CH", "5\r\nhello\r\n0\r\n"
      . "X-T: a\r\n b\r\n\r\n"]);

# Unusual but valid requests that strictness must not reject: each gets a
# 200 and reaches the 'good' backend with the body intact.
my @valid = (
    ['an empty line before the request line',
     "\r\nPOST /ok/lead-crlf HTTP/1.1\r\nHost: localhost\r\n"
     . "Content-Length: 5\r\nConnection: close\r\n\r\nhello"],
    ['Transfer-Encoding: Chunked (any case)',
     "POST /ok/te-case HTTP/1.1\r\nHost: localhost\r\n"
     . "Transfer-Encoding: Chunked\r\nConnection: close\r\n\r\n"
     . "5\r\nhello\r\n0\r\n\r\n"],
    ['a chunk extension',
     "POST /ok/chunk-ext HTTP/1.1\r\nHost: localhost\r\n"
     . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
     . "5;name=value\r\nhello\r\n0\r\n\r\n"],
    ['a chunk size with leading zeros',
     "POST /ok/chunk-zeros HTTP/1.1\r\nHost: localhost\r\n"
     . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
     . "0005\r\nhello\r\n0\r\n\r\n"],
    ['the absolute form of the target',
     "POST http://localhost/ok/absolute HTTP/1.1\r\nHost: localhost\r\n"
     . "Content-Length: 5\r\nConnection: close\r\n\r\nhello"],
    ['HTTP/1.0 without Host',
     "POST /ok/http10 HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello"],
    # RFC 9110 2.5: a higher minor version is served as the highest one
    # implemented, so 505 is only for a major version we do not speak.
    ['HTTP/1.2 served as HTTP/1.1',
     "POST /ok/http12 HTTP/1.2\r\nHost: localhost\r\n"
     . "Content-Length: 5\r\nConnection: close\r\n\r\nhello"],
);

# Start lines that can never begin a request, sent alone: a client that
# sends HTTP/0.9's "GET /" waits for an answer and never sends the empty
# line that would end a head, so the line alone must get its 400 (well
# before header_timeout, which is 30 s below for that reason).
my @lone = (
    ['HTTP/0.9 request line', "GET /http09\r\n"],
    ['HTTP/0.9 request line after an empty line', "\r\nGET /\r\n"],
    ['HTTP/0.9 request line ending in a bare LF', "GET /\n"],
    ['a start line of one word', "HELLO\r\n"],
    ['a request line with a bad version', "GET / HTTP/1\r\n"],
);

# Per case: status, JSON body, closed connection, one response only.
$t->plan(5 * @cases + 2 * @valid + 3 * @lone + 8);

my $bad = $t->backend(id => 'bad');
my $good = $t->backend(id => 'good');
my $body = $t->backend(id => 'body');

$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
limits:
  header_timeout: 30s
  body_timeout: 3s
upstreams:
  bad: { targets: [ { address: "127.0.0.1:%%PORT_BAD%%" } ] }
  good: { targets: [ { address: "127.0.0.1:%%PORT_GOOD%%" } ] }
  body: { targets: [ { address: "127.0.0.1:%%PORT_BODY%%" } ] }
routes:
  - name: body
    match: { path: /body/ }
    upstream: body
  - name: good
    match: { path: /ok/ }
    upstream: good
  - name: bad
    match: { path: / }
    upstream: bad
EOF

my $json = JSON::PP->new;

for my $c (@cases) {
    my ($name, $raw, $want) = @$c;
    my @pieces = ref $raw ? @$raw : ($raw);
    $pieces[-1] .= $NEXT;
    my ($out, $closed) = exchange(shift @pieces, timeout => 8,
                                  pieces => \@pieces, pause => 0.3);

    my $r = eval { parse_response($out) };
    my $status = $r ? $r->{status} : 0;
    is($status, $want, "$name: status $want") or diag(show($out));

    my $j = $r && eval { $json->decode($r->{body}) };
    ok($j && $j->{status} == $status && length($j->{error} // '')
       && length($j->{request_id} // ''),
       "$name: JSON error body") or diag(show($out));
    ok($r && length($r->{headers}{'x-request-id'} // '')
       && $r->{headers}{'x-request-id'} eq ($j->{request_id} // ''),
       "$name: X-Request-ID matches the body");

    ok($closed, "$name: connection closed");
    is($r ? length($out) - $r->{length} : -1, 0,
       "$name: the pipelined request after it is not answered");
}

is(scalar $bad->requests, 0, 'no malformed request reached the backend')
    or diag(join "\n", map { "$_->{method} $_->{uri}" } $bad->requests);
my @partial = grep { $_->{complete} || $_->{uri} !~ m{^/body/\d$} }
              $body->requests;
is(scalar @partial, 0,
   'a broken chunked body never reaches the upstream as complete')
    or diag(explain \@partial);

# A lone bad start line: 400 and closed, long before header_timeout.
for my $c (@lone) {
    my ($name, $raw) = @$c;
    my ($out, $closed) = exchange($raw, timeout => 10);
    my $r = eval { parse_response($out) };
    is($r && $r->{status}, 400, "alone, $name: 400") or diag(show($out));
    my $j = $r && eval { $json->decode($r->{body}) };
    ok($j && $j->{status} == 400 && length($j->{request_id} // ''),
       "alone, $name: JSON error body") or diag(show($out));
    ok($closed, "alone, $name: closed within 10 s (header_timeout is 30 s)");
}

# The unusual but valid ones: 200, and the backend got the body.
for my $v (@valid) {
    my ($name, $raw) = @$v;
    my ($path) = $raw =~ m{ (?:http://localhost)?(/ok/[\w-]+) };
    my ($out) = exchange($raw, timeout => 8);
    my $r = eval { parse_response($out) };
    is($r && $r->{status}, 200, "valid, $name: 200") or diag(show($out));
    my ($seen) = grep { $_->{uri} eq $path } $good->requests;
    is($seen && $seen->{body_md5}, '5d41402abc4b2a76b9719d911017c592',
       "valid, $name: proxied with its body");
}

# A valid head sent one byte at a time is reassembled and proxied intact.
my $head = "POST /ok/slow?x=1 HTTP/1.1\r\nHost: slow.example\r\n"
           . "X-Slow: yes\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";
my @bytes = split //, $head . 'hello';
my ($out, $closed) = exchange(shift @bytes, timeout => 15, pieces => \@bytes,
                              pause => 0.002);
my $r = eval { parse_response($out) };
is($r && $r->{status}, 200, 'byte at a time: 200') or diag(show($out));
my $seen = $r && eval { $json->decode($r->{body}) };
is($seen && $seen->{uri}, '/ok/slow?x=1', 'byte at a time: request target');
ok($seen && $seen->{headers}{'x-slow'} eq 'yes'
   && $seen->{headers}{host} eq 'slow.example',
   'byte at a time: headers arrive');
is($seen && $seen->{body_md5}, '5d41402abc4b2a76b9719d911017c592',
   'byte at a time: body arrives intact');
is(scalar(grep { $_->{uri} eq '/ok/slow?x=1' } $good->requests), 1,
   'byte at a time: one request upstream');

# The gateway is still healthy after all that.
$r = eval { parse_response(http_get('/ok/after')) };
is($r && $r->{status}, 200, 'a normal request after the malformed ones');


# Sends $raw (then each of @{pieces}, `pause` seconds apart), reads until
# the server closes or `timeout`; returns (all it read, closed?).
sub exchange ($raw, %o) {
    my $deadline = time + ($o{timeout} // 5);
    my @pieces = @{$o{pieces} // []};
    local $SIG{PIPE} = 'IGNORE';
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $t->port('GW'), Proto => 'tcp',
                                  Timeout => 5)
        or return ('', 0);
    $s->blocking(0);
    my $sel = IO::Select->new($s);
    my ($in, $closed, $out) = ('', 0, $raw);

    while (!$closed && time < $deadline) {
        if ($out eq '' && @pieces) {
            sleep $o{pause} if $o{pause};
            $out = shift @pieces;
        }
        my ($r, $w) = IO::Select->select($sel, $out ne '' ? $sel : undef,
                                         undef, $out ne '' ? 0.5 : 0.2);
        if ($r && @$r) {
            my $n = sysread($s, $in, 65536, length $in);
            $closed = 1 if !defined $n ? !$!{EAGAIN} && !$!{EINTR} : !$n;
        }
        if (!$closed && $w && @$w) {
            my $n = syswrite($s, $out);
            if (defined $n) {
                substr($out, 0, $n, '');
            } elsif (!$!{EAGAIN} && !$!{EINTR}) {
                $out = '';              # peer gone: read what it sent
                @pieces = ();
            }
        }
    }
    close $s;
    return ($in, $closed);
}


sub show ($raw) {
    $raw //= '(undef)';
    $raw = substr($raw, 0, 400);
    $raw =~ s/([^\x20-\x7e\n])/sprintf '\\x%02x', ord $1/ge;
    return "got: '$raw'";
}
