# Interim responses from an upstream (README: "Interim responses other
# than 100 from an upstream (103 Early Hints) are passed to HTTP/1.1
# clients"): a raw upstream writes 103 (with its Link fields) and then the
# final answer; an HTTP/1.1 client gets both, in order, the 103 with its
# fields; several 103s all come through; an HTTP/1.0 client gets only the
# final answer; an upstream's own 100 Continue is not passed on; and the
# client connection stays usable after.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Select;
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->has_module(qw/router/)->plan(13);

my $HINT = "HTTP/1.1 103 Early Hints\r\n"
           . "Link: </style.css>; rel=preload; as=style\r\n"
           . "Link: </app.js>; rel=preload; as=script\r\n\r\n";
my %SCRIPT = (
    hints     => [$HINT],
    two       => [$HINT, "HTTP/1.1 103 Early Hints\r\n"
                         . "Link: </font.woff2>; rel=preload\r\n\r\n"],
    continue  => ["HTTP/1.1 100 Continue\r\n\r\n"],
);

# Keep-alive: for each request, the interim answers its path names (each
# in its own write), then "HTTP/1.1 200" with a body naming the path.
my $raw = $t->backend(id => 'raw', handler => sub ($c, $n) {
    my $in = '';
    while (1) {
        while ($in !~ /\r\n\r\n/) {
            return unless IO::Select->new($c)->can_read(10);
            return unless sysread($c, $in, 4096, length $in);
        }
        $in =~ s/\A(.*?)\r\n\r\n//s;
        my ($path) = $1 =~ m{\A\S+ (\S+)};
        my ($name) = ($path // '') =~ m{([^/?]+)(?:\?.*)?\z};
        for my $step (@{$SCRIPT{$name // ''} // []}) {
            syswrite($c, $step);
        }
        my $body = "final $path";
        syswrite($c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     . "Content-Length: " . length($body) . "\r\n\r\n$body");
    }
});

$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
upstreams:
  raw: { targets: [ "127.0.0.1:%%PORT_RAW%%" ] }
routes:
  - { name: raw, match: { path: / }, upstream: raw }
EOF

sub statuses (@r) { return join ' ', map { $_->{status} } @r }

# HTTP/1.1: the 103 and then the 200, on one connection that carries a
# second request after them.
my $text = http("GET /x/hints HTTP/1.1\r\nHost: t\r\n\r\n"
                . "GET /x/plain HTTP/1.1\r\nHost: t\r\n"
                . "Connection: close\r\n\r\n");
my @r = eval { parse_responses($text, methods => [qw(GET GET)]) };
is(statuses(@r), '103 200 200', 'HTTP/1.1: 103, then the 200, then the '
                                . 'next request\'s 200') or diag($text);
is(join(', ', map { $_->[1] } grep { lc $_->[0] eq 'link' }
                  @{$r[0]{header_list} // []}),
   '</style.css>; rel=preload; as=style, </app.js>; rel=preload; as=script',
   'the 103 carries both Link fields, in order');
is($r[1] && $r[1]{body}, 'final /x/hints', 'the final answer follows it');
is($r[2] && $r[2]{body}, 'final /x/plain',
   'the connection carries the next request');
ok(!grep({ lc $_->[0] eq 'content-length'
           || lc $_->[0] eq 'transfer-encoding' }
         @{$r[0]{header_list} // []}),
   'the 103 has no body framing');

# Two 103s: both passed on, in order.
$text = http("GET /x/two HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
@r = eval { parse_responses($text) };
is(statuses(@r), '103 103 200', 'two 103s, then the 200') or diag($text);
like($r[1] && $r[1]{headers}{link} // '', qr{</font\.woff2>},
     'the second 103 with its own Link');

# HTTP/1.0: no interim response at all (RFC 9110 15.2).
$text = http("GET /x/hints HTTP/1.0\r\nHost: t\r\n\r\n");
@r = eval { parse_responses($text) };
is(statuses(@r), '200', 'HTTP/1.0: only the final 200') or diag($text);
is($r[0] && $r[0]{body}, 'final /x/hints', 'HTTP/1.0: its body');
unlike($text, qr{^HTTP/\d\.\d 103 |^Link:}mi,
       'HTTP/1.0: no trace of the hints');

# An upstream's 100 Continue (not asked for by the client) is not passed.
$text = http("GET /x/continue HTTP/1.1\r\nHost: t\r\n"
             . "Connection: close\r\n\r\n");
@r = eval { parse_responses($text) };
is(statuses(@r), '200', 'an upstream 100 Continue is not passed on')
    or diag($text);
is($r[0] && $r[0]{body}, 'final /x/continue', 'the 200 after it is');

# The gateway serves on after all of that.
my $again = eval { parse_response(http_get('/x/after')) };
is($again && $again->{body}, 'final /x/after', 'a request after them');
