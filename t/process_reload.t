# Reload under load: three HUPs, each onto a config whose answer names its
# generation, while clients keep requesting, some on a new connection each
# time, some on kept-alive ones.  No request may fail: a new-connection
# request always gets its answer; a keep-alive client may only have to
# resend a request on a reused connection that the server closed before
# sending a single byte of a response (browsers and curl do that).  Every
# answer comes from one of the generations, /status reaches generation 4,
# and after the last reload only the newest config answers.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Test::More;
use Test::Portico;
use Time::HiRes qw(time sleep);

my $t = Test::Portico->new()->plan(27);
my $b1 = $t->backend(id => 'b1');
my $dir = $t->testdir;
my $stop_file = "$dir/stop-clients";

my $CONFIG = <<'EOF';
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ], keepalive: 8 }
routes:
  - name: gen
    match: { path: "=/gen" }
    respond: { status: 200, body: "gen GEN" }
  - name: api
    match: { path: /api/ }
    upstream: app
EOF

sub config ($gen) {
    (my $yaml = $CONFIG) =~ s/GEN/$gen/;
    $t->write_config($yaml);
}

config(1);
$t->run();
my $port = $t->port('GW');


# Checks one answer; returns (ok, what).  /gen must name a generation,
# /api/... must be the backend's echo of that very request.
sub judge ($path, $r) {
    return (0, "$path: no response") unless $r;
    return (0, "$path: status $r->{status}") unless $r->{status} == 200;
    if ($path eq '/gen') {
        return $r->{body} =~ /^gen ([1-4])\z/ ? (1, "gen $1")
                                               : (0, "/gen: '$r->{body}'");
    }
    my ($uri) = $r->{body} =~ /"uri":"([^"]*)"/;
    return ($uri // '') eq $path ? (1, 'api')
                                 : (0, "$path: echo of " . ($uri // '?'));
}


sub record ($fh, $start, $ok, $what) {
    printf {$fh} "%.6f %s %s\n", $start, $ok ? 'OK' : 'FAIL', $what;
}


# A new connection per request, until the stop file appears (or 25 s).
sub new_conn_client ($out, $id) {
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    open my $fh, '>', $out or POSIX::_exit(1);
    $fh->autoflush(1);
    my $end = time + 25;
    for (my $i = 0; !-e $stop_file && time < $end; $i++) {
        my $path = $i % 2 ? '/gen' : "/api/n$id-$i?delay=100";
        my $start = time;
        my $raw = http_get($path, port => $port, timeout => 8);
        my $r = eval { parse_response($raw) };
        record($fh, $start, judge($path, $r));
    }
    POSIX::_exit(0);
}


# Sends $req on $s and reads one response.  Returns the parsed response,
# or (undef, bytes received, why).
sub exchange ($s, $req) {
    my $n = syswrite($s, $req);
    return (undef, 0, "write: $!") unless defined $n && $n == length $req;
    my ($buf, $deadline) = ('', time + 8);
    my $sel = IO::Select->new($s);
    while ((my $left = $deadline - time) > 0) {
        next unless $sel->can_read($left);
        my $got = sysread($s, $buf, 65536, length $buf);
        return (undef, length $buf, defined $got ? 'closed' : "read: $!")
            unless $got;
        my $r = eval { parse_response($buf) };
        return $r if $r;
    }
    return (undef, length $buf, 'timeout');
}


# Requests on a kept-alive connection.  Only a request on a reused
# connection that got no byte back may be resent, on a new connection.
sub keepalive_client ($out, $id) {
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    $SIG{PIPE} = 'IGNORE';
    open my $fh, '>', $out or POSIX::_exit(1);
    $fh->autoflush(1);
    my ($s, $uses) = (undef, 0);
    my $end = time + 25;
    for (my $i = 0; !-e $stop_file && time < $end; $i++) {
        my $path = $i % 3 == 2 ? "/api/k$id-$i?delay=50" : '/gen';
        my $req = "GET $path HTTP/1.1\r\nHost: t\r\n\r\n";
        my $start = time;
        my ($r, $why);
        for my $try (1 .. 3) {
            if (!$s) {
                $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                           PeerPort => $port,
                                           Proto => 'tcp', Timeout => 5);
                $uses = 0;
                if (!$s) { $why = "connect: $@"; last; }
            }
            my $reused = $uses++ > 0;
            ($r, my $got, $why) = exchange($s, $req);
            if ($r) {
                if (($r->{headers}{connection} // '') =~ /close/i) {
                    close $s;
                    $s = undef;
                }
                printf {$fh} "reused\n" if $reused;
                last;
            }
            close $s;
            $s = undef;
            last unless $reused && $got == 0;
            printf {$fh} "retry %s\n", $why;
        }
        my ($ok, $what) = judge($path, $r);
        $what .= " ($why)" if !$r && $why;
        record($fh, $start, $ok, $what);
    }
    POSIX::_exit(0);
}


my @files = map { "$dir/client-$_.log" } qw(n1 n2 n3 k1 k2);
my @pids = ((map { new_conn_client($files[$_], $_) } 0 .. 2),
            (map { keepalive_client($files[$_], $_) } 3 .. 4));

# The clients are under way once each has recorded an answer.
sub client_lines () {
    my @lines;
    for my $f (@files) {
        open my $fh, '<', $f or next;
        push @lines, <$fh>;
    }
    return @lines;
}
wait_until(sub { !grep { !-s $_ } @files }, 10);

# A slow request in flight across the first reload, and an idle
# keep-alive connection the old generation should let go of.
my $slow = http_get('/api/slow?delay=1500', start => 1, timeout => 10);
my $idle = http_get('/gen', start => 1,
                    headers => { Connection => 'keep-alive' });
my $idle_answer = read_one($idle);
wait_until(sub { grep { $_->{uri} =~ m{^/api/slow} } $b1->requests }, 5);

# Three reloads while the clients run, each waited for, and for the
# clients to get answers from it, before the next.
for my $gen (2 .. 4) {
    config($gen);
    $t->reload;
    ok($t->wait_generation($gen, 10), "reload to generation $gen");
    wait_until(sub { my $n = grep { / OK gen $gen$/ } client_lines();
                     $n >= 5 }, 10);
}

my $slow_raw = http_end($slow, timeout => 10);
like($slow_raw, qr/^HTTP\/1.1 200 .*"uri":"\/api\/slow\?delay=1500"/s,
     'a request in flight during the reload completed');
like($idle_answer, qr/^HTTP\/1.1 200 .*gen 1\z/s, 'an idle keep-alive '
     . 'connection of generation 1...');
ok(closed_within($idle, 5), '... is closed by the draining worker');

# Once the old workers have drained away, only generation 4 answers.
my ($st, $deadline) = (undef, time + 15);
while (time < $deadline) {
    $st = $t->status;
    my @procs = $t->worker_pids;
    last if $st && @{$st->{workers}} == 2 && @procs == 2
            && !grep { $_->{generation} != 4 } @{$st->{workers}};
    sleep 0.1;
}
is_deeply([map { $_->{generation} } @{$st->{workers} // []}], [4, 4],
          'the old generations drained: two workers, both generation 4');
my @procs = $t->worker_pids;
is(scalar @procs, 2, 'two worker processes left');
my %latest;
$latest{eval { parse_response(http_get('/gen'))->{body} } // 'none'}++
    for 1 .. 10;
is_deeply(\%latest, { 'gen 4' => 10 }, 'after the last reload: all gen 4');

open my $sfh, '>', $stop_file or die "$stop_file: $!";
close $sfh;
waitpid $_, 0 for @pids;


# What the clients saw.
my (%n, %gens, @fails);
for my $f (@files) {
    my $kind = $f =~ /-k\d/ ? 'ka' : 'new';
    open my $fh, '<', $f or die "$f: $!";
    while (my $line = <$fh>) {
        chomp $line;
        if ($line =~ /^(reused|retry)/) {
            $n{"$kind $1"}++;
            next;
        }
        my (undef, $ok, $what) = split ' ', $line, 3;
        $n{$kind}++;
        $gens{$what}++ if $what =~ /^gen \d$/;
        push @fails, "$kind: $what" if $ok ne 'OK';
    }
}
note(join ', ', map { "$_: $n{$_}" } sort keys %n);
note(join ', ', map { "$_: $gens{$_}" } sort keys %gens);

is_deeply([grep { /^new/ } @fails], [],
          'new-connection clients: no failed request');
is_deeply([grep { /^ka/ } @fails], [],
          'keep-alive clients: no failed request (retries allowed)');
cmp_ok($n{new} // 0, '>', 40, 'new-connection clients made many requests');
cmp_ok($n{ka} // 0, '>', 40, 'keep-alive clients made many requests');
cmp_ok($n{'ka reused'} // 0, '>', 20, 'keep-alive connections were reused');
cmp_ok($n{'ka retry'} // 0, '<', ($n{ka} // 0) / 4,
       'retries stayed the exception');
ok($gens{'gen 1'} && $gens{'gen 4'},
   'clients saw the first and the last generation');
is(scalar(grep { $gens{"gen $_"} } 1 .. 4), 4,
   'clients saw all four generations');

# The master's account.
$st = $t->status;
is($st->{generation}, 4, '/status generation 4');
is($st->{reloads}{ok}, 3, '/status reloads.ok 3');
is($st->{reloads}{failed}, 0, '/status reloads.failed 0');
for my $gen (2 .. 4) {
    ok($t->wait_log(qr/reload generation $gen ok/, 1),
       "\"reload generation $gen ok\" logged");
}
unlike($t->error_log, qr/reload failed|SIGHUP ignored|exited on signal/,
       'no failed or ignored reload, no crashed worker');

# The request counter outlives the workers that counted.
cmp_ok($st->{requests}, '>=', ($n{new} // 0) + ($n{ka} // 0) + 12,
       '/status requests counts those of the drained generations too');

# The backend saw every proxied request exactly once (no duplicate from a
# retry behind the client's back).
my %uris;
$uris{$_->{uri}}++ for $b1->requests;
is_deeply([grep { $uris{$_} > 1 } sort keys %uris], [],
          'no proxied request reached the backend twice');


# A second HUP that comes while a reload is still in progress is not
# lost: whatever config is on disk at the last HUP ends up served.  The
# first config has 10000 more routes, so that reading it takes the master
# a while (about 0.2 s): the second HUP surely comes during that reload.
config(5);
open my $cfh, '>>', $t->config_path or die "config: $!";
printf {$cfh} "  - { name: pad%d, match: { path: \"=/pad%d\" }, "
              . "respond: { status: 200 } }\n", $_, $_ for 1 .. 10000;
close $cfh or die "config: $!";
my $reloads = () = $t->error_log =~ /reloading configuration/g;
$t->reload;
wait_until(sub { (() = $t->error_log =~ /reloading configuration/g)
                 > $reloads }, 5, 0.005);
config(6);
$t->reload;
my $served = wait_until(sub {
    my $b = eval { parse_response(http_get('/gen'))->{body} } // '';
    return $b eq 'gen 6' ? $b : undef;
}, 10, 0.1);
is($served, 'gen 6', 'two quick HUPs: the config of the last one is served');


# One response from a kept-alive socket (Content-Length framed).
sub read_one ($s) {
    my ($buf, $deadline) = ('', time + 5);
    my $sel = IO::Select->new($s);
    while ((my $left = $deadline - time) > 0) {
        return $buf if eval { parse_response($buf) };
        next unless $sel->can_read($left);
        sysread($s, $buf, 65536, length $buf) or last;
    }
    return $buf;
}


# True once the server closes $s (EOF or reset) within $secs.
sub closed_within ($s, $secs) {
    my $deadline = time + $secs;
    my $sel = IO::Select->new($s);
    while ((my $left = $deadline - time) > 0) {
        next unless $sel->can_read($left);
        my $n = sysread($s, my $junk, 4096);
        return 1 unless $n;
    }
    return 0;
}
