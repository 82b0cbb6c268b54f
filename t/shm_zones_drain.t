# Shared-memory zones and generations draining side by side: a zone that
# generation 2 adopted from generation 1 and generation 3 resized must stay
# mapped in the master until the last generation using it is gone, since
# the master still frees the locks of its dying workers.  (It was unmapped
# with generation 1, and the master crashed when generation 2's last
# worker exited.)

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(7);
my $b1 = $t->backend(id => 'b1');

my $config = <<'EOF';
workers: 1
shm: { upstream: %%SIZE%% }
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - { name: app, match: { path: / }, upstream: app }
EOF

sub config ($size) {
    (my $c = $config) =~ s/%%SIZE%%/$size/;
    return $c;
}

my $gw = $t->port('GW');

sub slow ($name, $ms) {
    return http("GET /$name?delay=$ms HTTP/1.1\r\nHost: localhost\r\n"
                . "Connection: close\r\n\r\n", start => 1, port => $gw);
}

sub seen ($name) {
    return wait_until(sub { grep { $_->{uri} =~ m{^/$name\b} }
                            $b1->requests });
}

$t->write_config(config('256k'))->run;

# Generation 1 holds a request for 4 s.
my $a = slow('a', 4000);
ok(seen('a'), 'generation 1 is busy with a slow request');

# Generation 2 adopts the zone (same size) and holds a longer request.
$t->reload;
$t->wait_generation(2);
my $b = slow('b', 8000);
ok(seen('b'), 'generation 2 is busy with a longer one');

# Generation 3 resizes the zone: a new mapping; 1 and 2 share the old one.
$t->write_config(config('512k'));
$t->reload;
ok($t->wait_generation(3), 'generation 3 runs with the zone resized');

# Generation 1 goes first, generation 2 after: the master must outlive both.
my $ra = parse_response(http_end($a, timeout => 20) // '');
is($ra && $ra->{status}, 200, "generation 1's request finished");
my $rb = parse_response(http_end($b, timeout => 20) // '');
is($rb && $rb->{status}, 200, "generation 2's request finished");

ok(wait_until(sub { $t->error_log =~ /exited with code 0.*\n(?s:.*)exited with code 0/ }),
   'both old workers were reaped');
my $r = parse_response(http_get('/after', port => $gw) // '');
ok(kill(0, $t->pid) && $r && $r->{status} == 200,
   'the master survived them and generation 3 serves')
    or diag($t->error_log);
