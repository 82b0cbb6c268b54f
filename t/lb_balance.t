# The balancers: smooth weighted round robin keeps the weights, least_conn
# and p2c steer away from a slow backend (counting requests in flight
# across workers), and consistent hashing keeps keys where they are, moving
# only about a quarter when one of four targets goes.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Test::More;
use Test::Portico;
use Time::HiRes qw(sleep time);

my $t = Test::Portico->new()->has_module(qw/lb/)->plan(16);

my %b;
$b{$_} = $t->backend(id => $_) for qw(a b c d);
my $slow = $t->backend(id => 'slow', defaults => { delay => 400 });

my $CONFIG = <<'EOF';
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
upstreams:
  weighted:
    targets:
      - { address: "127.0.0.1:%%PORT_A%%", weight: 1 }
      - { address: "127.0.0.1:%%PORT_B%%", weight: 2 }
      - { address: "127.0.0.1:%%PORT_C%%", weight: 5 }
  lc:
    balance: least_conn
    targets: [ "127.0.0.1:%%PORT_A%%", "127.0.0.1:%%PORT_SLOW%%" ]
  p2c:
    balance: p2c
    targets: [ "127.0.0.1:%%PORT_B%%", "127.0.0.1:%%PORT_SLOW%%" ]
  rr:
    targets: [ "127.0.0.1:%%PORT_C%%", "127.0.0.1:%%PORT_SLOW%%" ]
  hashed:
    balance: hash
    hash_key: ${header.X-User-ID}
    targets:
%%HASH_TARGETS%%
routes:
  - { name: w, match: { path: /w/ }, upstream: weighted }
  - { name: lc, match: { path: /lc/ }, upstream: lc }
  - { name: p2c, match: { path: /p2c/ }, upstream: p2c }
  - { name: rr, match: { path: /rr/ }, upstream: rr }
  - { name: h, match: { path: /h/ }, upstream: hashed }
EOF

sub config (@ids) {
    my $targets = join '', map { "      - \"127.0.0.1:%%PORT_\U$_\E%%\"\n" }
                           @ids;
    (my $c = $CONFIG) =~ s/%%HASH_TARGETS%%\n/$targets/;
    return $c;
}

$t->write_config(config(qw(a b c d)))->run();
my $port = $t->port('GW');

# Which backend answered each of $n requests (new connection each).
sub spread ($path, $n, %o) {
    my %count;
    for my $i (1 .. $n) {
        my $r = eval { parse_response(http_get("$path$i", port => $port,
                                               %o)) } or next;
        $count{$r->{headers}{'x-backend-id'} // 'none'}++;
    }
    return \%count;
}

# Smooth weighted round robin, 2,000 requests over two workers.
my $c = spread('/w/', 2000);
for ([a => 1], [b => 2], [c => 5]) {
    my ($id, $w) = @$_;
    my $want = 2000 * $w / 8;
    ok(abs(($c->{$id} // 0) - $want) <= 0.05 * $want,
       "weight $w: $id served " . ($c->{$id} // 0) . " of 2000 "
       . "(expected $want within 5%)");
}

# Requests arriving at a steady pace (one every 20 ms, whatever the
# answers), as real clients do; returns how many each backend served.
sub paced ($path, $n) {
    my (%count, @socks);
    for my $i (1 .. $n) {
        push @socks, http("GET $path$i HTTP/1.1\r\nHost: t\r\n"
                          . "Connection: close\r\n\r\n", port => $port,
                          start => 1);
        sleep 0.02;
    }
    for my $s (@socks) {
        my $r = eval { parse_response(http_end($s, timeout => 10)) };
        $count{$r ? $r->{headers}{'x-backend-id'} // 'none' : 'error'}++;
    }
    return \%count;
}


# Round robin ignores load: the slow backend gets half.
$c = paced('/rr/', 60);
ok(abs(($c->{slow} // 0) - 30) <= 3,
   "round robin: the slow backend still gets half ($c->{slow} of 60)");

# least_conn counts requests in flight: the slow one holds its requests
# longer, so the fast one gets most of them.
$c = paced('/lc/', 60);
cmp_ok($c->{a} // 0, '>=', 45,
       "least_conn: the fast backend served " . ($c->{a} // 0) . " of 60");
ok(($c->{slow} // 0) > 0, 'least_conn: the slow one still got some');
is($c->{error} // 0, 0, 'least_conn: no errors');

# p2c: two random choices, the less loaded wins.
$c = paced('/p2c/', 60);
cmp_ok($c->{b} // 0, '>=', 40,
       "p2c: the fast backend served " . ($c->{b} // 0) . " of 60");
is($c->{error} // 0, 0, 'p2c: no errors');

# Consistent hashing: a key sticks to its backend.
my @keys = map { "user-$_" } 1 .. 2000;
my %where;
for my $k (@keys) {
    my $r = parse_response(http_get('/h/x', port => $port,
                                    headers => { 'X-User-ID' => $k }));
    $where{$k} = $r->{headers}{'x-backend-id'} // 'none';
}
my %per = map { $_ => 0 } qw(a b c d);
$per{$_}++ for values %where;
ok(!grep({ $per{$_} < 400 } keys %per),
   'hash: keys spread over all four (' . join(', ', map { "$_ $per{$_}" }
                                              sort keys %per) . ')');

my $same = 0;
for my $k (@keys[0 .. 99]) {
    my $r = parse_response(http_get('/h/y', port => $port,
                                    headers => { 'X-User-ID' => $k }));
    $same++ if ($r->{headers}{'x-backend-id'} // '') eq $where{$k};
}
is($same, 100, 'hash: the same key goes to the same backend');

# No key: balanced round robin, not all to one place.
$c = spread('/h/nokey', 40);
cmp_ok(scalar(keys %$c), '>=', 3, 'hash: requests without a key spread');

# Remove target d: only its keys move (about a quarter).
$t->write_config(config(qw(a b c)));
$t->reload;
$t->wait_generation(2);

my ($moved, $moved_not_d) = (0, 0);
for my $k (@keys) {
    my $r = parse_response(http_get('/h/z', port => $port,
                                    headers => { 'X-User-ID' => $k }));
    my $now = $r->{headers}{'x-backend-id'} // 'none';
    next if $now eq $where{$k};
    $moved++;
    $moved_not_d++ if $where{$k} ne 'd';
}
my $share = $moved / 2000;
ok($share >= 0.20 && $share <= 0.30,
   "removing one of 4 targets moved $moved of 2000 keys ($share)");
is($moved_not_d, 0, 'only the keys of the removed target moved');

# Putting d back brings its keys home.
$t->write_config(config(qw(a b c d)));
$t->reload;
$t->wait_generation(3);
my $home = 0;
for my $k (@keys[0 .. 199]) {
    my $r = parse_response(http_get('/h/w', port => $port,
                                    headers => { 'X-User-ID' => $k }));
    $home++ if ($r->{headers}{'x-backend-id'} // '') eq $where{$k};
}
is($home, 200, 'adding the target back restores every key');

# /status shows the balancer's peers with their state.
my $s = $t->status;
is(scalar @{$s->{upstreams}{hashed}{targets} // []}, 4,
   '/status lists the four hashed targets');
