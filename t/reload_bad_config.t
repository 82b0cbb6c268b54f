# A reload onto a broken config changes nothing: the old routes keep
# answering from the same workers, the generation stays, reloads.failed
# counts the attempt, and the error log says FILE:LINE:COL why.  Once the
# config is fixed, the next HUP goes through.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Test::More;
use Test::Portico;
use Time::HiRes qw(time sleep);

my $t = Test::Portico->new()->plan(27);
my $conf = $t->config_path;

my $CONFIG = <<'EOF';
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
routes:
  - name: a
    match: { path: "=/a" }
    respond: { status: 200, body: "BODY" }
EXTRA
EOF

sub config ($body, $extra = '') {
    (my $yaml = $CONFIG) =~ s/BODY/$body/;
    $yaml =~ s/EXTRA\n/$extra/;
    $t->write_config($yaml);
}


sub slurp ($path) {
    open my $fh, '<', $path or return '';
    local $/;
    return scalar <$fh>;
}


# "LINE:COL" of the first $needle in the config file as written.
sub pos_in_config ($needle) {
    my $text = slurp($conf);
    my $at = index($text, $needle);
    die "'$needle' not in the config" if $at < 0;
    my $before = substr($text, 0, $at);
    return (1 + ($before =~ tr/\n//)) . ':' . ($at - rindex($before, "\n"));
}


# The number of lines of the error log matching $re.
sub count_log ($re) {
    return scalar grep { $_ =~ $re } split /\n/, $t->error_log;
}


# Waits for the $n-th "reload failed" line; true if it came.
sub wait_failed ($n) {
    my $deadline = time + 10;
    while (time < $deadline) {
        return 1 if count_log(qr/reload failed, keeping generation 1/) >= $n;
        sleep 0.05;
    }
    return 0;
}


# The worker pids once there are $n of them (run() returns as soon as
# the master listens, which can be before it has forked every worker).
sub wait_workers ($n) {
    my $deadline = time + 5;
    my @pids;
    while (time < $deadline) {
        @pids = $t->worker_pids;
        last if @pids == $n;
        sleep 0.02;
    }
    return @pids;
}


config('v1');
$t->run();
my @workers = wait_workers(2);
like(http_get('/a'), qr/^HTTP\/1.1 200 .*v1\z/s, 'generation 1 answers');
my $st = $t->status;
is($st->{generation}, 1, 'generation 1');
is($st->{reloads}{failed}, 0, 'no failed reloads yet');


# A YAML syntax error ("@" cannot start a token), and a new route that
# must not appear.
config('v2', <<'EOF');
  - name: b
    match: { path: "=/b" }
    respond: { status: 200, body: @broken }
EOF
my $pos = pos_in_config('@broken');
$t->reload;
ok(wait_failed(1), 'syntax error: "reload failed, keeping generation 1"');
like($t->error_log, qr/\Q$conf\E:$pos: .*cannot start any token/,
     "syntax error: the error log names $conf:$pos");
like(http_get('/a'), qr/^HTTP\/1.1 200 .*v1\z/s,
     'syntax error: the old route still answers the old body');
like(http_get('/b'), qr/^HTTP\/1.1 404 /, 'syntax error: no new route');
$st = $t->status;
is($st->{generation}, 1, 'syntax error: generation unchanged');
is($st->{reloads}{failed}, 1, 'syntax error: reloads.failed 1');
is($st->{reloads}{ok}, 0, 'syntax error: reloads.ok 0');
is_deeply([$t->worker_pids], \@workers, 'syntax error: same workers');


# An unknown key: valid YAML, refused by the config schema.
config('v3', <<'EOF');
  - name: b
    match: { path: "=/b" }
    respond: { status: 200, body: "b" }
    retry_budget: 3
EOF
$pos = pos_in_config('retry_budget');
$t->reload;
ok(wait_failed(2), 'unknown key: "reload failed, keeping generation 1"');
like($t->error_log, qr/\Q$conf\E:$pos: .*unknown key "retry_budget"/,
     "unknown key: the error log names $conf:$pos");
like(http_get('/a'), qr/^HTTP\/1.1 200 .*v1\z/s,
     'unknown key: the old route still answers the old body');
like(http_get('/b'), qr/^HTTP\/1.1 404 /, 'unknown key: no new route');
$st = $t->status;
is($st->{generation}, 1, 'unknown key: generation unchanged');
is($st->{reloads}{failed}, 2, 'unknown key: reloads.failed 2');
is_deeply([$t->worker_pids], \@workers, 'unknown key: same workers');
is_deeply([map { $_->{generation} } @{$st->{workers}}], [1, 1],
          'unknown key: /status lists the two generation 1 workers');


# Fixed: the reload goes through.
config('v4', <<'EOF');
  - name: b
    match: { path: "=/b" }
    respond: { status: 200, body: "b" }
EOF
$t->reload;
$st = $t->wait_generation(2);
ok($st, 'fixed: generation 2');
ok($t->wait_log(qr/reload generation 2 ok/, 5),
   'fixed: "reload generation 2 ok"');
like(http_get('/a'), qr/^HTTP\/1.1 200 .*v4\z/s, 'fixed: new body');
like(http_get('/b'), qr/^HTTP\/1.1 200 .*b\z/s, 'fixed: new route');
is($st->{reloads}{ok}, 1, 'fixed: reloads.ok 1');
is($st->{reloads}{failed}, 2, 'fixed: reloads.failed still 2');

# The old workers drain and go; two new ones serve.
my $deadline = time + 10;
my @now;
while (time < $deadline) {
    @now = $t->worker_pids;
    last if @now == 2 && !grep { my $p = $_; grep { $_ == $p } @workers } @now;
    sleep 0.1;
}
is(scalar @now, 2, 'fixed: two workers');
ok(!grep({ my $p = $_; grep { $_ == $p } @workers } @now),
   'fixed: they are new processes');
