#!/usr/bin/perl

# Retries, the retry budget and the max_inflight circuit breaker.
#
# `retries: N` sends an idempotent request to another target when the
# first one refuses, breaks the connection before answering, or answers
# 502/503/504, at most N times; never a POST, never once response bytes
# went to the client.  A shared budget keeps retries to about a fifth of
# the requests, so failing backends get no retry storm.  `max_inflight`
# answers 503 at once beyond that many requests in flight.  A backend
# killed under load costs no client an error.

use strict;
use warnings;
use v5.36;

use lib 't/lib';
use Test::More;
use Test::Portico;

use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);

my $t = Test::Portico->new()->has_module(qw/router lb status/)->plan(52);
my $json = JSON::PP->new;

my %b;
$b{$_} = $t->backend(id => $_) for qw(k1 k2 k3 ok c1 c2 s200 slow d1);
$b{$_} = $t->backend(id => $_, defaults => { status => 503 })
    for qw(s503 f1 f2 f3 solo);
$b{s502} = $t->backend(id => 's502', defaults => { status => 502 });
$b{s504} = $t->backend(id => 's504', defaults => { status => 504 });

# Ports bound but never listening: connections to them are refused.
my %hold = map {
    $_ => IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                Proto => 'tcp') // die "bind: $@"
} qw(R1 R2 R3);
my %port = map { $_ => $hold{$_}->sockport } keys %hold;

my $yaml = <<'EOF';
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
upstreams:
  load:
    targets: [ "127.0.0.1:%%PORT_K1%%", "127.0.0.1:%%PORT_K2%%",
               "127.0.0.1:%%PORT_K3%%" ]
    retries: 2
    health: { passive: { failures: 1, cooldown: 30s } }
  idem:
    targets:
      - { address: "127.0.0.1:@@R1@@", weight: 10 }
      - { address: "127.0.0.1:%%PORT_OK%%", weight: 1 }
    retries: 2
    health: { passive: off }     # keep picking the refusing target
  cut:
    targets: [ "127.0.0.1:%%PORT_C1%%", "127.0.0.1:%%PORT_C2%%" ]
    retries: 2
  st503:
    targets: [ { address: "127.0.0.1:%%PORT_S503%%", weight: 10 },
               { address: "127.0.0.1:%%PORT_S200%%", weight: 1 } ]
    retries: 1
  st502:
    targets: [ { address: "127.0.0.1:%%PORT_S502%%", weight: 10 },
               { address: "127.0.0.1:%%PORT_S200%%", weight: 1 } ]
    retries: 1
  st504:
    targets: [ { address: "127.0.0.1:%%PORT_S504%%", weight: 10 },
               { address: "127.0.0.1:%%PORT_S200%%", weight: 1 } ]
    retries: 1
  three:
    targets: [ "127.0.0.1:@@R1@@", "127.0.0.1:@@R2@@", "127.0.0.1:@@R3@@" ]
    retries: 1
  budget:
    targets: [ "127.0.0.1:%%PORT_F1%%", "127.0.0.1:%%PORT_F2%%",
               "127.0.0.1:%%PORT_F3%%" ]
    retries: 2
  lim:
    targets: [ "127.0.0.1:%%PORT_SLOW%%" ]
    max_inflight: 2
  solo:
    targets: [ "127.0.0.1:%%PORT_SOLO%%" ]
    retries: 2
  drop:
    targets: [ "127.0.0.1:%%PORT_D1%%" ]
    timeouts: { read: 2s }
routes:
  - { name: load, match: { path: /load/ }, upstream: load }
  - { name: idem, match: { path: /idem/ }, upstream: idem }
  - { name: cut, match: { path: /cut/ }, upstream: cut }
  - { name: st503, match: { path: /st503/ }, upstream: st503 }
  - { name: st502, match: { path: /st502/ }, upstream: st502 }
  - { name: st504, match: { path: /st504/ }, upstream: st504 }
  - { name: three, match: { path: /three/ }, upstream: three }
  - { name: budget, match: { path: /budget/ }, upstream: budget }
  - { name: lim, match: { path: /lim/ }, upstream: lim }
  - { name: solo, match: { path: /solo/ }, upstream: solo }
  - { name: drop, match: { path: /drop/ }, upstream: drop }
EOF
$yaml =~ s/@@(\w+)@@/$port{$1}/g;
$t->write_config($yaml)->run();

my $gw = $t->port('GW');
my %addr = (map({ $_ => "127.0.0.1:$port{$_}" } keys %port),
            map({ uc($_) => "127.0.0.1:" . $b{$_}->port } keys %b));


# ---- helpers -----------------------------------------------------------------

# Sends $raw to the gateway: (parsed response or undef, raw text, seconds).
sub exchange ($raw, $timeout = 10) {
    my $t0 = time;
    my $text = http($raw, port => $gw, timeout => $timeout);
    my $r = defined $text ? eval { parse_response($text) } : undef;
    return ($r, $text // '', time - $t0);
}

sub get ($path) {
    return exchange("GET $path HTTP/1.1\r\nHost: localhost\r\n"
                    . "Connection: close\r\n\r\n");
}

# The error-log lines of one request (by its X-Request-ID).
sub log_of ($r) {
    my $rid = $r && $r->{headers}{'x-request-id'} or return ();
    $t->wait_log(qr/\Q$rid\E/, 3);
    return grep { /request_id: \Q$rid\E/ } split /\n/, $t->error_log;
}

# A JSON error body with that status and the response's request id.
sub json_error ($r, $status) {
    my $body = $r && eval { $json->decode($r->{body}) } or return 0;
    return $r->{status} == $status && ($body->{status} // 0) == $status
           && length($body->{error} // '')
           && ($body->{request_id} // '') eq $r->{headers}{'x-request-id'};
}

sub count (@ids) {
    my $n = 0;
    $n += scalar $b{$_}->requests for @ids;
    return $n;
}


# ---- no helper process without active checks or DNS names -------------------

my $st = $t->status;
my @children = $t->worker_pids;
ok($st && ($st->{helper} // -1) == 0 && @children == 2,
   'no active checks, no DNS names: the two workers and no helper')
    or diag(explain($st), "children: @children");


# ---- a backend killed under load: no client error ----------------------------

# 60 GETs, 6 at a time, each held 300 ms by its backend; once the load
# is well under way (a few requests reached each backend) one of the
# three backends is killed with requests in flight.  Those are retried
# elsewhere; passive health then keeps new requests off the dead one (else
# a third of them would need a retry, more than the retry budget allows).
pipe(my $rd, my $wr) or die "pipe: $!";
my $kid = fork // die "fork: $!";
if ($kid == 0) {
    close $rd;
    my %c = http_many(60, '/load/x?delay=300', port => $gw,
                      concurrency => 6, timeout => 20);
    print {$wr} $json->encode(\%c);
    close $wr;
    POSIX::_exit(0);
}
close $wr;
wait_until(sub { count('k3') >= 3 && count(qw(k1 k2)) >= 6 }, 10, 0.01);
# SIGKILL to its whole process group: the backend and its connection
# children die at once (a crash, not a shutdown that takes its time).
kill 'KILL', -$b{k3}->pid;
my $t_kill = time;
$b{k3}->stop;
my $out = do { local $/; <$rd> } // '';
close $rd;
waitpid($kid, 0);
my $load = eval { $json->decode($out) } // {};

is_deeply($load, { 200 => 60 }, 'killed under load: all 60 requests got 200')
    or diag(explain($load));
# The backend logs a request when it starts its 300 ms wait: one logged
# less than 300 ms before the kill had no answer yet when it died (a
# sleeping process dies on SIGKILL without returning to write).
my @in_flight = grep { $_->{time} > $t_kill - 0.3 } $b{k3}->requests;
ok(scalar @in_flight, 'killed under load: the killed backend had '
                      . scalar(@in_flight) . ' request(s) in flight');
my $others = join '|', map { quotemeta $addr{$_} } qw(K1 K2);
my @retried = grep {
    my $rid = $_->{headers}{'x-request-id'} // 'none';
    $t->wait_log(qr/retrying on (?:$others) after \Q$addr{K3}\E /
                 . qr/\(retry [12] of 2\).*request_id: \Q$rid\E/, 3);
} @in_flight;
is(scalar @retried, scalar @in_flight,
   'killed under load: each of them was retried on another backend')
    or diag($t->error_log);
ok(count(qw(k1 k2)) >= 60 - scalar($b{k3}->requests) + scalar(@in_flight),
   'killed under load: the others answered the rest');


# ---- only idempotent methods are retried -------------------------------------

# "idem" weighs the refusing target 10:1, so a worker's first picks go to
# it.  A POST is not retried: one attempt, 502.
for my $case (["POST /idem/p HTTP/1.1\r\nHost: localhost\r\n"
               . "Content-Length: 5\r\nConnection: close\r\n\r\nhello",
               'POST with a body'],
              ["POST /idem/q HTTP/1.1\r\nHost: localhost\r\n"
               . "Content-Length: 0\r\nConnection: close\r\n\r\n",
               'POST without a body'])
{
    my ($raw, $name) = @$case;
    my ($r) = exchange($raw);
    ok(json_error($r, 502), "$name to a refusing target: JSON 502")
        or diag(explain($r));
    my @lines = log_of($r);
    ok(grep({ /connect\(\) failed.*\Q$addr{R1}\E/ } @lines)
       && !grep({ /retrying/ } @lines),
       "$name: one attempt, not retried") or diag(join "\n", @lines);
}
is(scalar(grep { $_->{method} eq 'POST' } $b{ok}->requests), 0,
   'no POST reached the other target');

# A GET on the same upstream is retried on the other target.
my ($r) = get('/idem/g');
is($r && $r->{status}, 200, 'GET to a refusing target: retried, 200');
is($r && $r->{headers}{'x-backend-id'}, 'ok', 'GET: served by the other');
ok(grep({ /retrying on \Q$addr{OK}\E after \Q$addr{R1}\E \(retry 1 of 2\)/ }
        log_of($r)),
   'GET: "retrying on OK after R1 (retry 1 of 2)" logged');


# ---- never after response bytes reached the client ---------------------------

# The backend sends its head (Content-Length promised) and closes: the
# client has the head, so it gets a cut response, and no other backend is
# asked.
my $text;
($r, $text) = get('/cut/x?close_after_headers=1');
like($text, qr{\AHTTP/1\.1 200 }, 'head sent then closed: the client got '
                                  . 'the head') or diag($text);
ok(!eval { parse_response($text); 1 } && $@ =~ /truncated body/,
   'head sent then closed: the body is cut short');
is(count(qw(c1 c2)), 1, 'head sent then closed: no retry to the other '
                        . 'backend');
my ($rid) = $text =~ /^X-Request-ID: (\S+)\r$/mi;
$t->wait_log(qr/\Q$rid\E/, 3) if $rid;
ok($rid && !grep({ /retrying.*\Q$rid\E/ } split /\n/, $t->error_log),
   'head sent then closed: no retry logged');


# ---- 502, 503, 504 from the upstream are retried -----------------------------

# A target answering 503 (502, 504) weighted 10:1 against one answering
# 200, so that a worker's first picks go to it; retries: 1.  Two requests
# each: both get the 200, after one attempt at the failing target.
for my $code (503, 502, 504) {
    my $failing = $b{"s$code"};
    my $ok_before = scalar $b{s200}->requests;
    my (%got, @lines);
    for my $i (1 .. 2) {
        my ($r) = get("/st$code/$i");
        $got{($r ? $r->{status} : 0) . ' '
             . ($r && $r->{headers}{'x-backend-id'} // '')}++;
        push @lines, log_of($r);
    }
    is_deeply(\%got, { '200 s200' => 2 }, "$code from one target: the "
                                          . 'client gets the 200 of the other')
        or diag(explain(\%got));
    is(scalar($failing->requests) . ' '
       . (scalar($b{s200}->requests) - $ok_before), '2 2',
       "$code: one attempt at each target per request");
    my $uc = uc $failing->id;
    is(scalar(grep { /retrying on \Q$addr{S200}\E after \Q$addr{$uc}\E /
                     && /\(retry 1 of 1\)/ } @lines), 2,
       "$code: \"retrying on S200 after S$code (retry 1 of 1)\" logged")
        or diag(join "\n", @lines);
}


# ---- retries are bounded by `retries` ----------------------------------------

# Three refusing targets, retries: 1: two attempts, then 502.
($r) = get('/three/x');
ok(json_error($r, 502), 'three refusing targets, retries: 1: JSON 502')
    or diag(explain($r));
my @lines = log_of($r);
is(scalar(grep { /connect\(\) failed/ } @lines), 2,
   'retries: 1: exactly two attempts') or diag(join "\n", @lines);
is(scalar(grep { /retrying on .* \(retry 1 of 1\)/ } @lines), 1,
   'retries: 1: one "retry 1 of 1"') or diag(join "\n", @lines);


# ---- the retry budget --------------------------------------------------------

# Every target answers 503; retries: 2 would triple the load (300 backend
# requests for 100), the budget keeps retries near a fifth of the requests
# (plus the few always allowed).
my %c = http_many(100, '/budget/x', port => $gw, concurrency => 4,
                  timeout => 10);
is_deeply(\%c, { 503 => 100 }, 'budget: 100 requests, all 503')
    or diag(explain(\%c));
my $hits = count(qw(f1 f2 f3));
ok($hits > 100 + 2, "budget: some retries were made ($hits backend "
                    . 'requests)');
ok($hits <= 100 + 100 / 5 + 10,
   "budget: $hits backend requests for 100, not up to 300");
ok($t->wait_log(qr/upstream "budget": retry budget spent/, 3),
   'budget: "retry budget spent" logged');


# ---- max_inflight ------------------------------------------------------------

# Two slow requests fill max_inflight: 2; a third gets 503 at once.
my @slow = map {
    http("GET /lim/$_?delay=3000 HTTP/1.1\r\nHost: localhost\r\n"
         . "Connection: close\r\n\r\n", port => $gw, start => 1)
} 1 .. 2;
wait_until(sub { scalar($b{slow}->requests) >= 2 }, 5);
is(scalar $b{slow}->requests, 2, 'max_inflight: two slow requests arrived');
($r) = get('/lim/third');
ok(json_error($r, 503), 'max_inflight: the third gets a JSON 503')
    or diag(explain($r));
# "At once": while neither slow one has a byte of its answer yet.
ok(!grep({ ${*$_}{pt_in} ne '' || IO::Select->new($_)->can_read(0) } @slow),
   'max_inflight: at once, before the slow ones end');
ok(($r && $r->{headers}{'retry-after'} // '') =~ /^\d+\z/,
   'max_inflight: Retry-After');
is(scalar $b{slow}->requests, 2, 'max_inflight: the third did not reach '
                                 . 'the backend');
ok(grep({ /upstream "lim": max_inflight 2 reached/ } log_of($r)),
   'max_inflight: logged');
my @done = map { eval { parse_response(http_end($_, timeout => 10)) } }
           @slow;
is(join(' ', map { $_->{status} } @done), '200 200',
   'max_inflight: the slow ones finish with 200');
($r) = get('/lim/after');
is($r && $r->{status}, 200, 'max_inflight: once they are done, requests '
                            . 'pass again');


# ---- a kept-alive upstream connection dropped before the answer --------------

# The backend reads a request on a connection it served before, then
# closes it without answering (a crashed handler, say).  README: an
# idempotent request is then sent once more on a fresh connection to the
# same peer (the close might have been an idle timeout racing the
# request), a POST never; and the client gets an answer, 502 here, within
# the read timeout: no hang.  Both requests go down one client
# connection, so the second finds the first one's upstream connection
# idle in the same worker.
sub dropped ($method, $path) {
    my $raw = "GET /drop/warm HTTP/1.1\r\nHost: localhost\r\n\r\n"
              . "$method $path HTTP/1.1\r\nHost: localhost\r\n"
              . ($method eq 'POST' ? "Content-Length: 0\r\n" : '')
              . "Connection: close\r\n\r\n";
    my $t0 = time;
    my $text = http($raw, port => $gw, timeout => 6) // '';
    my @r = eval { parse_responses($text) };
    my @seen = grep { $_->{uri} eq $path } $b{d1}->requests;
    return (join(' ', map { $_->{status} } @r), time - $t0, @seen);
}

my ($statuses, $took, @seen) = dropped('GET', '/drop/g?no_response=1');
is($seen[0] && $seen[0]{req_seq}, 2,
   'dropped GET: it came on a reused upstream connection');
is($statuses, '200 502', 'dropped GET: the client gets a 502');
ok($took < 5, sprintf('dropped GET: answered in %.1f s (read timeout 2s)',
                      $took));
is(join(' ', map { $_->{req_seq} } @seen), '2 1',
   'dropped GET: sent exactly twice, the second time on a fresh '
   . 'connection');
ok(@seen == 2 && $seen[1]{conn_seq} != $seen[0]{conn_seq},
   'dropped GET: to the same peer, on another connection');

($statuses, $took, @seen) = dropped('POST', '/drop/p?no_response=1');
is($seen[0] && $seen[0]{req_seq}, 2,
   'dropped POST: it came on a reused upstream connection');
is($statuses, '200 502', 'dropped POST: the client gets a 502');
is(scalar @seen, 1, 'dropped POST: sent once, never resent');


# ---- more retries than other targets -----------------------------------------

# One target answering 503, retries: 2: there is no other target to try,
# so the client gets the upstream's 503 (and the worker survives).
($r, $text) = get('/solo/x');
is($r && $r->{status}, 503, 'one target answering 503, retries: 2: the '
                            . 'client gets the 503') or diag($text);
is(scalar $b{solo}->requests, 1, 'one target: asked once');
($r) = get('/st503/after-solo');
is($r && $r->{status}, 200, 'the gateway still serves after that');
