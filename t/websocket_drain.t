# Draining workers and open WebSocket tunnels. After a reload (HUP) or a
# QUIT, a tunnel of the draining worker keeps carrying messages until
# graceful_timeout, then it is closed, logged once (status 101), and the
# worker exits. New connections go to the new generation meanwhile.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Test::Portico;
use Test::Portico::WebSocket;
use Time::HiRes qw(time sleep);

if (my $why = ws_missing()) {
    plan skip_all => $why;
}

my $t = Test::Portico->new()->plan(17);
my $up = Test::Portico::WebSocket->upstream(dir => $t->testdir);

my $GRACE = 2;
my $wsport = $up->port;
$t->write_config(<<"EOF")->run();
workers: 1
limits: { graceful_timeout: ${GRACE}s, websocket_idle_timeout: 60s }
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
access_log: { path: access.log, format: json }
upstreams:
  ws: { targets: [ "127.0.0.1:$wsport" ] }
routes:
  - { name: ws, match: { path: / }, upstream: ws, websocket: true }
EOF

my $url = 'ws://127.0.0.1:' . $t->port('GW') . '/echo';

sub access_lines ($id) {
    open my $fh, '<', $t->testdir . '/access.log' or return ();
    return grep { ($_->{request_id} // '') eq $id }
           map { eval { decode_json($_) } // () } <$fh>;
}

# A client that echoes a message every 0.2 s until the tunnel closes
# (at most 30 s); returns it once the tunnel is open.
sub hold ($id) {
    my $c = ws_client_start('hold', $url, '--wait', 30, '--request-id', $id);
    my $open = $c->next_json(10);
    return ($c, $open && $open->{open});
}

# Checks one drained tunnel: echoes went on after $at, it closed about
# graceful_timeout after $at, and was logged once.
sub check_drained ($what, $c, $at, $id) {
    my $res = $c->next_json($GRACE + 20) // {};
    $c->finish;
    my @after = grep { $_ > $at + 0.5 } @{$res->{echo_times} // []};
    ok(@after >= 2, "$what: the tunnel carried messages after it")
        or diag explain $res;
    my $closed = ($res->{closed_at} // 0) - $at;
    cmp_ok($closed, '>=', $GRACE - 0.2,
           "$what: the tunnel lived until graceful_timeout");
    cmp_ok($closed, '<', $GRACE + 4, "$what: then it was closed");
    ok(wait_until(sub { scalar access_lines($id) }),
       "$what: the tunnel is in the access log");
    my @l = access_lines($id);
    ok(@l == 1 && $l[0]{status} == 101
       && $l[0]{duration_ms} >= $GRACE * 1000,
       "$what: once, status 101, with its duration")
        or diag explain \@l;
}


# ---- reload ----------------------------------------------------------------

my ($c, $opened) = hold('drain-hup');
ok($opened, 'a tunnel is open');
my ($old) = $t->worker_pids;

my $hup_at = time;
$t->reload;
ok($t->wait_generation(2), 'reloaded');

my $res = ws_client('echo', $url, '--request-id', 'after-hup');
ok($res->{binary_ok} && $res->{text_ok},
   'a new tunnel works meanwhile (new generation)');

check_drained('reload', $c, $hup_at, 'drain-hup');
ok(wait_until(sub { !kill 0, $old }, 10),
   'the old worker exits once its tunnel is closed');
like($t->error_log,
     qr/WebSocket tunnel closed: graceful_timeout passed.*request_id: drain-hup/,
     'reload: the close is logged at info');


# ---- quit ------------------------------------------------------------------

($c, $opened) = hold('drain-quit');
ok($opened, 'another tunnel is open');

my $master = $t->pid;
my $quit_at = time;
kill 'QUIT', $master;

check_drained('QUIT', $c, $quit_at, 'drain-quit');

my $deadline = time + 15;
my $status;
while (time < $deadline) {
    if (waitpid($master, WNOHANG) == $master) {
        $status = $?;
        last;
    }
    sleep 0.02;
}
is($status, 0, 'QUIT: the master exited with status 0');
$t->stop;
