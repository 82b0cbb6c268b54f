# TLS session resumption works whichever worker takes the next
# connection: with two workers, a session made on one is resumed on 20
# connections placed alternately on each (openssl s_client -sess_out,
# then -sess_in), by TLS 1.3 tickets, TLS 1.2 tickets, and the shared
# session cache for TLS 1.2 clients without tickets (-no_ticket). /status
# tells which worker served how many requests. After a reload (HUP), the
# new workers still resume every kind of session.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Socket::INET;
use JSON::PP;
use Test::More;
use Test::Portico;

my $N = 20;
my @MODES = (
    [ 'TLS 1.3 tickets', [ '-tls1_3' ] ],
    [ 'TLS 1.2 tickets', [ '-tls1_2' ] ],
    [ 'TLS 1.2 session cache (no tickets)', [ '-tls1_2', '-no_ticket' ] ],
);

my $t = Test::Portico->new()->plan(1 + 7 * @MODES + 1 + 2 + @MODES);
my $dir = $t->testdir;

tls_ca($dir);
tls_cert($dir, 'srv', names => ['localhost']);

$t->write_config(<<"EOF")->run();
workers: 2
listen:
  - address: "127.0.0.1:%%PORT_TLS%%"
    tls:
      certificates: [ { cert: $dir/srv.pem, key: $dir/srv.key } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
routes:
  - { name: r, match: { path: / }, respond: { status: 200, body: "ok\\n" } }
EOF

my $port = $t->port('TLS');
my @workers = $t->worker_pids;
is(scalar @workers, 2, 'two workers');

my $REQ = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

# Runs $code while every worker but $pid is stopped: a stopped process
# does not wait in epoll_wait, so the kernel hands a new connection to
# $pid (EPOLLEXCLUSIVE wakes a waiter).
sub on_worker ($pid, $code) {
    my @others = grep { $_ != $pid } @workers;
    kill 'STOP', @others;
    my @r;
    if (wait_until(sub { !grep { proc_state($_) ne 'T' } @others }, 5,
                   0.005))
    {
        @r = eval { $code->() };
    }
    kill 'CONT', @others;
    return @r;
}

sub tls_get (@args) {
    my ($rc, $out) = s_client($port, input => $REQ,
                              args => ['-servername', 'localhost', @args]);
    return $out;
}

# /status, and the worker that answered it (not counted in its own
# answer, counted in the next).
sub status_and_worker () {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $t->port('ADMIN'),
                                  Proto => 'tcp', Timeout => 5)
        or return ();
    my $pid = wait_until(sub { $t->worker_of($s) }, 5, 0.01);
    print {$s} "GET /status HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    my $raw = do { local $/; <$s> } // '';
    my $st = eval { decode_json(parse_response($raw)->{body}) };
    return ($st, $pid);
}

sub requests_by_worker ($st) {
    return { map { $_->{pid} => $_->{requests} } @{$st->{workers}} };
}

my %files;
my $resumed_total = 0;

for my $mode (@MODES) {
    my ($name, $flags) = @$mode;
    (my $file = "$dir/sess-$name") =~ s/[^\w\/.-]+/_/g;
    $files{$name} = $file;

    my ($first) = on_worker($workers[0],
                            sub { tls_get(@$flags, '-sess_out', $file) });
    like($first // '', qr/^New, TLSv1\.[23]/m,
         "$name: a full handshake on worker 1");
    ok(-s $file, "$name: the session was saved");

    my ($before, $served) = status_and_worker();
    my (%placed, @reused);

    my $fresh = 0;
    for my $i (1 .. $N) {
        my $w = $workers[$i % 2];
        my ($out) = on_worker($w, sub { tls_get(@$flags, '-sess_in', $file) });
        $placed{$w}++;
        push @reused, $i if ($out // '') =~ /^Reused, TLSv1\.[23]/m;
        $fresh++ if ($out // '') =~ /Post-Handshake New Session Ticket/;
    }

    my ($after) = status_and_worker();
    is(scalar @reused, $N, "$name: all $N connections resumed");
    if ($flags->[0] eq '-tls1_3') {
        is($fresh, $N, "$name: each resumption got a fresh ticket (TLS 1.3 "
                       . "tickets are used once)");
    }

    my ($b, $a) = (requests_by_worker($before), requests_by_worker($after));
    for my $k (0, 1) {
        my $w = $workers[$k];
        is(($a->{$w} // 0) - ($b->{$w} // 0) - ($w == ($served // 0)),
           $N / 2, "$name: worker " . ($k + 1) . " served " . $N / 2);
    }

    $resumed_total += $N;
    is($after->{tls}{resumed}, $resumed_total,
       "$name: /status counts the resumed handshakes");
    # Tickets carry the session: only a client without them is cached.
    is($after->{tls}{sessions_cached}, $flags->[-1] eq '-no_ticket' ? 1 : 0,
       "$name: sessions in the shared cache");
}

# Reload: new workers, the same zones, the same keys.
$t->reload;
ok($t->wait_generation(2), 'reloaded');
ok(wait_until(sub { my @w = $t->worker_pids;
                    @w == 2 && !grep { my $x = $_; grep { $_ == $x } @workers }
                                     @w }, 15),
   'the old workers are gone');

for my $mode (@MODES) {
    my ($name, $flags) = @$mode;
    like(tls_get(@$flags, '-sess_in', $files{$name}),
         qr/^Reused, TLSv1\.[23]/m, "$name: resumed after the reload");
}
