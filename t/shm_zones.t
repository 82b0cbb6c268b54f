# Shared-memory zones: one per use, sized from shm_size or shm:, shown in
# /status, adopted with their state by a reload when the size is unchanged
# and started empty when it changes.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(14);
my $b1 = $t->backend(id => 'b1');

my $config = <<'EOF';
shm_size: 8m
%%SHM%%
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - { name: app, match: { path: / }, upstream: app }
  - { name: v, match: { path: "=/v" }, respond: { body: "%%V%%" } }
EOF

sub config ($shm, $v) {
    (my $c = $config) =~ s/%%SHM%%/$shm/;
    $c =~ s/%%V%%/$v/;
    return $c;
}

sub target_requests () {
    my $s = $t->status // {};
    return $s->{upstreams}{app}{targets}[0]{requests} // -1;
}

$t->write_config(config('', 'one'))->run();

my $s = $t->status;
my %zones = %{$s->{shm} // {}};
ok(exists $zones{core} && exists $zones{upstream},
   'one zone per use: core and upstream');
cmp_ok($zones{core}{used}, '>', 0, 'the core zone holds the process table');
cmp_ok($zones{upstream}{size}, '>', 4 * 1024 * 1024,
       'the upstream zone takes the shm_size budget left over');

http_get("/r$_", port => $t->port('GW')) for 1 .. 5;
is(target_requests(), 5, 'five requests counted for the target in shm');

# Same zone sizes: the new generation adopts the zone and its counts.
$t->write_config(config('', 'two'));
$t->reload;
$t->wait_generation(2);
is(parse_response(http_get('/v', port => $t->port('GW')))->{body}, 'two',
   'reloaded');
is(target_requests(), 5, 'the target state survived the reload');
http_get('/r6', port => $t->port('GW'));
is(target_requests(), 6, 'and keeps counting');

# An explicit size for the zone: a new zone, which starts empty.
$t->write_config(config('shm: { upstream: 1m }', 'three'));
$t->reload;
$t->wait_generation(3);
$s = $t->status;
is($s->{shm}{upstream}{size}, 1024 * 1024, 'shm: sizes the zone');
is(target_requests(), 0, 'a resized zone starts empty');
like($t->error_log, qr/shm zone "upstream" resized .*starts empty/,
     'and the log says so');
is($s->{requests} >= 6 ? 1 : 0, 1,
   'the core zone (unchanged) kept the request counter');

# A zone name nobody asked for is a config error: the reload fails.
$t->write_config(config('shm: { nonesuch: 1m }', 'four'));
$t->reload;
$t->wait_log(qr/reload failed/, 5);
like($t->error_log, qr/portico\.yaml:\d+:\d+: shm: no zone called "nonesuch"/,
     'an unknown zone in shm: is an error with its position');
is(parse_response(http_get('/v', port => $t->port('GW')))->{body}, 'three',
   'the previous generation goes on');
is($t->status->{generation}, 3, 'generation unchanged');
