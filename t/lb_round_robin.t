# Smooth weighted round robin (README: weights 5,1,1 give a a b a c a a):
# with one worker, so that one balancer state sees every request, the
# exact order of picks, and the same cycle again after it.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->has_module(qw/router lb/)->plan(2);

my %b = map { $_ => $t->backend(id => $_) } qw(a b c);

$t->write_config(<<'EOF')->run();
workers: 1
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
upstreams:
  swrr:
    targets:
      - { address: "127.0.0.1:%%PORT_A%%", weight: 5 }
      - { address: "127.0.0.1:%%PORT_B%%", weight: 1 }
      - { address: "127.0.0.1:%%PORT_C%%", weight: 1 }
routes:
  - { name: swrr, match: { path: / }, upstream: swrr }
EOF

# The backends that answered $n requests, in order ('?' for a failure).
sub picks ($n, $tag) {
    my @ids;
    for my $i (1 .. $n) {
        my $r = eval { parse_response(http_get("/$tag$i")) };
        push @ids, $r && $r->{status} == 200
                   ? $r->{headers}{'x-backend-id'} // '?' : '?';
    }
    return "@ids";
}

is(picks(7, 'x'), 'a a b a c a a', 'weights 5,1,1: a a b a c a a');
is(picks(14, 'y'), 'a a b a c a a a a b a c a a',
   'and the same cycle again, twice');
