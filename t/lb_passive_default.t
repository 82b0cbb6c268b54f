#!/usr/bin/perl

# lb_passive_default.t: passive health with no health config at all.
#
# SPEC: passive ejection is on by default for connect errors, as nginx's
# max_fails=1 fail_timeout=10s: a target that refuses connections is
# skipped for 10 s after one failure, so it stops costing every request a
# retry.  A lone target is never ejected, and `passive: off` turns it off.

use strict;
use warnings;
use v5.36;

use lib 't/lib';
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use Test::Portico;

my $t = Test::Portico->new->has_module('lb')->plan(8);

my %b = map { $_ => $t->backend(id => $_) } qw(d1 d2 d3 solo);

# Ports bound but never listening: connections to them are refused.
my %hold = map {
    $_ => IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                Proto => 'tcp', ReuseAddr => 1)
          // die "bind: $!"
} qw(R1 R2);
my %port = map { $_ => $hold{$_}->sockport } keys %hold;

my $yaml = <<'EOF';
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
upstreams:
  dead:
    targets: [ "127.0.0.1:%%PORT_D1%%", "127.0.0.1:%%PORT_D2%%",
               "127.0.0.1:%%PORT_D3%%" ]
    retries: 2
  ej:
    targets: [ "127.0.0.1:@@R1@@", "127.0.0.1:%%PORT_D1%%" ]
    retries: 1
  noej:
    targets: [ "127.0.0.1:@@R2@@", "127.0.0.1:%%PORT_D1%%" ]
    retries: 1
    health: { passive: off }
  solo:
    targets: [ "127.0.0.1:%%PORT_SOLO%%" ]
    retries: 2
routes:
  - { name: dead, match: { path: /dead/ }, upstream: dead }
  - { name: ej, match: { path: /ej/ }, upstream: ej }
  - { name: noej, match: { path: /noej/ }, upstream: noej }
  - { name: solo, match: { path: /solo/ }, upstream: solo }
EOF
$yaml =~ s/@\@(\w+)@@/$port{$1}/g;
$t->write_config($yaml)->run;

my $gw = $t->port('GW');

sub connect_failures ($p) {
    my @l = grep { /connect\(\) failed.*127\.0\.0\.1:$p\b/ }
            split /\n/, $t->error_log;
    return scalar @l;
}

sub served (@ids) {
    my $n = 0;
    $n += scalar $b{$_}->requests for @ids;
    return $n;
}


# ---- the issue's scenario: a target dies under load, no client error --------

# 600 GETs, 4 at a time, from a child; after the first 150 (their
# keep-alive connections to all three targets still open), one of the
# three targets is killed, then the other 450 go.  Every request must
# still get 200.  The child waits for the kill, so a fast machine cannot
# finish the load before it.
my $n = 600;
pipe(my $rd, my $wr) or die "pipe: $!";
pipe(my $go_rd, my $go_wr) or die "pipe: $!";
my $kid = fork // die "fork: $!";
if ($kid == 0) {
    close $rd;
    close $go_wr;
    my %c = http_many($n / 4, '/dead/x', port => $gw, concurrency => 4,
                      timeout => 20);
    syswrite($wr, "half\n");
    my $go = <$go_rd>;
    my %d = http_many($n - $n / 4, '/dead/x', port => $gw, concurrency => 4,
                      timeout => 20);
    $c{$_} = ($c{$_} // 0) + $d{$_} for keys %d;
    print {$wr} JSON::PP->new->canonical->encode(\%c);
    close $wr;
    POSIX::_exit(0);
}
close $wr;
close $go_rd;

my $half = <$rd> // '';
$b{d3}->stop;
syswrite($go_wr, "go\n");
close $go_wr;

my $out = do { local $/; <$rd> } // '';
close $rd;
waitpid($kid, 0);
my $load = eval { JSON::PP->new->decode($out) } // {};

# A response the dying target had begun to send cannot be saved by any
# proxy (its bytes reached the client): such a cut answer counts as 0 and
# must match a "closed ... in the middle of the response" line.  What the
# default ejection prevents are errors: 502s once the retry budget is dry.
my $cut = () = $t->error_log =~ /closed the connection in the middle of the response/g;
my %other = map { $_ => $load->{$_} } grep { $_ ne '200' && $_ ne '0' } keys %$load;
ok(($load->{200} // 0) + ($load->{0} // 0) == $n && !%other
   && ($load->{0} // 0) <= $cut,
   "a target killed under load: no error among $n requests")
    or diag(explain($load), $t->error_log);

my $d3 = $b{d3}->port;
ok($t->error_log =~ /127\.0\.0\.1:$d3 failed 1 times in a row, ejected for 10000 ms/,
   'the dead target was ejected after one connect failure')
    or diag($t->error_log);

# Without ejection a third of the 450 remaining requests would have tried
# the dead target; with it, only those that picked it before the first
# failure was recorded (at most one per request in flight) and none after.
my $fails = connect_failures($d3);
ok($fails >= 1 && $fails <= 8, "connect failures to the dead target: $fails")
    or diag($t->error_log);


# ---- one refusal ejects; passive: off does not ---------------------------

for my $i (1 .. 10) {
    my $r = parse_response(http_get("/ej/$i", port => $gw) // '');
    last unless $r && $r->{status} == 200;
}
is(connect_failures($port{R1}), 1,
   'default: a refusing target is tried once, then skipped');

# (Here the retry budget soon runs dry and some requests get 502: the
# failure the default ejection exists to prevent.)
http_get("/noej/$_", port => $gw) for 1 .. 10;
cmp_ok(connect_failures($port{R2}), '>=', 3,
       'passive: off: the refusing target keeps being tried');


# ---- a lone target is never ejected --------------------------------------------

my $solo = $b{solo}->port;
$b{solo}->stop;
my $r = parse_response(http_get('/solo/a', port => $gw) // '');
is($r && $r->{status}, 502, 'a lone target that refuses: 502');

$b{solo2} = Test::Portico::Backend->new(id => 'solo2', port => $solo,
                                        dir => $t->testdir);
$r = parse_response(http_get('/solo/b', port => $gw) // '');
is($r && $r->{status}, 200,
   'back at once: a lone target is not ejected (no 503 for 10 s)')
    or diag(explain($r));
is(scalar $b{solo2}->requests, 1, 'the restarted target served it');
