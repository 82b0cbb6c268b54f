# The limits of `limits:` on HTTP/2 streams: max_body_size (413 from
# Content-Length before any byte is read, or as the body streams in),
# body_timeout (408), max_headers and http2_max_header_list_size (431),
# the SETTINGS we announce (http2_max_concurrent_streams, the header list
# size, the 64 KiB stream window); Expect: 100-continue answered with a
# 100 HEADERS frame when the body is wanted; a body without a length goes
# upstream chunked.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use Test::More;
use Test::Portico;
use Time::HiRes qw(time);

my $t = Test::Portico->new()->plan(20);
my $b1 = $t->backend(id => 'b1');

$t->write_config(<<'EOF2')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%", http2: true } ]
limits: { max_body_size: 1k, body_timeout: 1s, max_headers: 20,
          http2_max_header_list_size: 2k, http2_max_concurrent_streams: 4 }
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - { name: api, match: { path: /api/ }, upstream: app }
EOF2

my $port = $t->port('GW');

sub raw (@args) {
    my ($code, $text) = run_cmd(30, '/usr/bin/python3', 't/lib/h2raw.py',
                                $port, 'request', @args);
    my ($json) = $text =~ /^(\{.*\})\s*\z/ms;
    my $r = eval { decode_json($json // '') };
    diag("h2raw: $text") unless $r;
    return $r // {};
}

my $n = scalar $b1->requests;
my $r = raw('POST', '/api/cl', 'content-length=2000', '@stall=0');
is($r->{1}{status}, 413, 'Content-Length over max_body_size: 413');
like($r->{1}{data}, qr/"status":413/, 'with the JSON error');
is(scalar $b1->requests, $n, 'before anything went upstream');
is($r->{settings}{3}, 4, 'SETTINGS_MAX_CONCURRENT_STREAMS announced');
is($r->{settings}{6}, 2048, 'SETTINGS_MAX_HEADER_LIST_SIZE announced');
is($r->{settings}{4}, 65535, 'SETTINGS_INITIAL_WINDOW_SIZE announced');

$r = raw('POST', '/api/stream', '@body=4000');
is($r->{1}{status}, 413, 'a body without a length over the limit: 413');

$r = raw('POST', '/api/small', '@body=500');
is($r->{1}{status}, 200, 'a body within the limit: 200');
my $e = eval { decode_json($r->{1}{data}) } // {};
is($e->{body_length}, 500, 'the backend got all of it');
is($e->{headers}{'transfer-encoding'}, 'chunked',
   'without a length it went upstream chunked');

$r = raw('POST', '/api/len', 'content-length=300', '@body=300');
$e = eval { decode_json($r->{1}{data}) } // {};
is($e->{headers}{'content-length'}, '300',
   'with a length it went upstream with it');

my $start = time;
$r = raw('POST', '/api/stall', '@stall=100');
is($r->{1}{status}, 408, 'a body that stops: 408 at body_timeout');
cmp_ok(time - $start, '<', 5, 'after about a second');

$r = raw('POST', '/api/expect', 'expect=100-continue', '@wait100',
         '@body=100');
is_deeply($r->{1}{interim}, [100], 'Expect: 100-continue gets a 100');
is($r->{1}{status}, 200, 'then the answer');
$e = eval { decode_json($r->{1}{data}) } // {};
is($e->{body_length}, 100, 'with the body upstream');
ok(!exists $e->{headers}{expect}, 'Expect is not forwarded');

$r = raw('GET', '/api/many', map { "x-h$_=1" } 1 .. 21);
is($r->{1}{status}, 431, 'more than max_headers fields: 431');

$r = raw('GET', '/api/long', 'x-long=' . ('a' x 3000));
is($r->{1}{status}, 431, 'a header list over http2_max_header_list_size: 431');
is($r->{1}{rst}, undef, 'answered, not reset');
