# Upstream targets found through DNS (issue 4): a host name target is
# resolved through the `resolver:` servers and followed as its TTL runs
# out (or after `resolver: valid`), a failed lookup keeps the last good
# addresses, `discovery: dns_srv` fills the targets (ports and weights)
# from SRV records, and a name that does not resolve at start stops the
# start but not `-t`.
#
# The DNS server is a private dnsmasq on a loopback port serving a hosts
# file that the test edits (dnsmasq rereads it on SIGHUP).  Backend A
# listens on 127.0.0.1:APP and backend B on 127.0.0.2:APP, so moving the
# name app.test from one address to the other moves the traffic.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Config;
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More;
use Test::Portico;
use Test::Portico::Backend;
use Time::HiRes qw(time sleep);

my $t = Test::Portico->new()->has_module(qw(router status))
                            ->has_daemon('dnsmasq');

my $app_port = $t->port('APP');
my ($c1_port, $c2_port) = ($t->port('C1'), $t->port('C2'));

# Backend B shares A's port on 127.0.0.2: bound here, before the plan, so
# that a machine without 127.0.0.2 skips rather than fails.
my $b_sock = IO::Socket::INET->new(LocalAddr => '127.0.0.2',
                                   LocalPort => $app_port, Proto => 'tcp');
plan(skip_all => "cannot bind 127.0.0.2:$app_port: $@") unless $b_sock;

$t->plan(34);

my $back_a = $t->backend(id => 'a', port => $app_port);
my $back_b = Test::Portico::Backend->new(id => 'b', port => $app_port,
                                    dir => $t->testdir, socket => $b_sock);
my $c1 = $t->backend(id => 'c1');
my $c2 = $t->backend(id => 'c2');


# ---- dnsmasq ---------------------------------------------------------------

my %DNS;     # name => { pid, port, hosts, log, probe }

END {
    local ($?, $!);
    dns_stop($_) for keys %DNS;
}

sub write_hosts ($path, $text) {
    write_file("$path.new", $text);
    rename "$path.new", $path or die "rename $path: $!";
}

# A UDP port free at this moment (dnsmasq also wants it for TCP: a start
# that fails on it is retried on another).
sub free_udp_port () {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'udp') or die "udp port: $@";
    return $s->sockport;
}

# Starts dnsmasq `$name` on a free loopback port: only the names of its
# hosts file and @extra, answered with TTL $ttl, everything else under
# .test NXDOMAIN.  Returns once it answers $probe.
sub dns_start ($name, $ttl, $hosts_text, $probe, @extra) {
    my $dir = $t->testdir;
    my $hosts = "$dir/hosts-$name";
    my $log = "$dir/dnsmasq-$name.log";
    my $user = getpwuid($<) // 'root';
    my $group = getgrgid($() // 'root';
    write_hosts($hosts, $hosts_text);

    for my $attempt (1 .. 5) {
        my $port = free_udp_port();
        my @argv = ($t->daemon('dnsmasq'), '--no-daemon', '--no-resolv',
                    '--no-hosts', "--addn-hosts=$hosts", "--local-ttl=$ttl",
                    '--bind-interfaces', '--listen-address=127.0.0.1',
                    "--port=$port", '--pid-file=', '--conf-file=/dev/null',
                    '--local=/test/', "--user=$user", "--group=$group",
                    "--log-facility=$log", '--log-queries', @extra);
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            # Never outlive the test, even one killed by SIGKILL.
            syscall(157, 1, 9) if $Config{archname} =~ /^x86_64-linux/;
            $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE CHLD);
            POSIX::sigprocmask(POSIX::SIG_SETMASK(), POSIX::SigSet->new);
            open STDIN, '<', '/dev/null';
            open STDOUT, '>>', "$log.out";
            open STDERR, '>&', \*STDOUT;
            Test::Portico::Backend::close_fds_except(1);
            exec { $argv[0] } @argv or POSIX::_exit(127);
        }
        my $d = { pid => $pid, port => $port, hosts => $hosts, log => $log };
        my $deadline = time + 3;
        while (time < $deadline) {
            if (waitpid($pid, WNOHANG) == $pid) {
                $d->{pid} = undef;        # the port was taken, likely
                last;
            }
            if (dns_a($port, $probe)) {
                $DNS{$name} = $d;
                return $d;
            }
            sleep 0.05;
        }
        if ($d->{pid}) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
        }
    }
    die "dnsmasq $name did not start:\n"
        . join('', map { Test::Portico::_read_file($_) } $log, "$log.out");
}

sub dns_stop ($name) {
    my $d = delete $DNS{$name} or return;
    my $pid = $d->{pid} or return;
    kill 'TERM', $pid;
    my $deadline = time + 3;
    while (time < $deadline) {
        return if waitpid($pid, WNOHANG) != 0;
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

# Points the name somewhere else and has dnsmasq reread the file; returns
# once dnsmasq answers with the new address (so that what the gateway does
# next is the gateway's doing), with the TTL it answers.
sub dns_move ($name, $hosts_text, $qname, $want) {
    my $d = $DNS{$name};
    write_hosts($d->{hosts}, $hosts_text);
    kill 'HUP', $d->{pid};
    my $deadline = time + 5;
    while (time < $deadline) {
        my @ans = dns_a($d->{port}, $qname);
        return $ans[0][1] if @ans == 1 && $ans[0][0] eq $want;
        sleep 0.05;
    }
    die "dnsmasq $name did not pick up $qname -> $want\n"
        . Test::Portico::_read_file($d->{log});
}

# One A query to 127.0.0.1:$port: ([address, ttl], ...), empty on no
# answer, an error code or anything unexpected.
sub dns_a ($port, $qname) {
    my $id = int rand 65536;
    my $q = pack('n6', $id, 0x0100, 1, 0, 0, 0)
            . join('', map { chr(length) . $_ } split /\./, $qname)
            . "\0" . pack('n2', 1, 1);
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'udp') or return;
    defined $s->send($q) or return;
    IO::Select->new($s)->can_read(0.5) or return;
    my $r = '';
    defined $s->recv($r, 4096) or return;
    return if length $r < 12;
    my ($rid, $flags, $qd, $an) = unpack 'n4', $r;
    return if $rid != $id || ($flags & 0x000f) != 0;
    my $p = 12;
    for (1 .. $qd) {
        $p = dns_skip_name($r, $p) + 4;
    }
    my @out;
    for (1 .. $an) {
        $p = dns_skip_name($r, $p);
        last if $p + 10 > length $r;
        my ($type, $class, $ttl, $len) = unpack 'n n N n', substr($r, $p, 10);
        $p += 10;
        last if $p + $len > length $r;
        push @out, [join('.', unpack 'C4', substr($r, $p, 4)), $ttl]
            if $type == 1 && $len == 4;
        $p += $len;
    }
    return @out;
}

sub dns_skip_name ($r, $p) {
    while ($p < length $r) {
        my $l = ord substr($r, $p, 1);
        return $p + 2 if ($l & 0xc0) == 0xc0;
        $p += 1 + $l;
        return $p if $l == 0;
    }
    return $p;
}


# ---- the gateway -----------------------------------------------------------

my $gw;

# Which backend answered GET $path ('a', 'b', 'c1', 'c2'), or what went
# wrong instead.
sub via ($path) {
    my $raw = http_get($path, port => $gw, timeout => 5);
    my $r = eval { parse_response($raw) } or return 'no response';
    return "status $r->{status}" unless $r->{status} == 200;
    return $r->{headers}{'x-backend-id'} // 'no X-Backend-Id';
}

sub tally ($path, $n) {
    my %c;
    $c{via($path)}++ for 1 .. $n;
    return \%c;
}

# Polls until GET $path comes from $id, for at most $secs; how long it
# took, or undef.
sub wait_via ($path, $id, $secs) {
    my $start = time;
    while (time - $start < $secs) {
        return time - $start if via($path) eq $id;
        sleep 0.1;
    }
    return undef;
}

# The target addresses /status shows for upstream $name, sorted.
sub status_addrs ($name) {
    my $st = $t->status // return [];
    return [sort map { $_->{address} }
            @{$st->{upstreams}{$name}{targets} // []}];
}

# The error log from byte $from on.
sub log_since ($from) {
    my $text = $t->error_log;
    return $from < length $text ? substr($text, $from) : '';
}

sub wait_log_since ($from, $re, $secs) {
    my $deadline = time + $secs;
    while (1) {
        return 1 if log_since($from) =~ $re;
        return 0 if time > $deadline;
        sleep 0.1;
    }
}


my $dns1 = dns_start('one', 2, "127.0.0.1 app.test\n"
                               . "127.0.0.1 s1.test s2.test\n", 'app.test',
                     "--srv-host=_http._tcp.svc.test,s1.test,$c1_port,0,1",
                     "--srv-host=_http._tcp.svc.test,s2.test,$c2_port,0,3");

$gw = $t->port('GW');

$t->write_config(<<"EOF")->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
resolver: { servers: ["127.0.0.1:$dns1->{port}"] }
upstreams:
  app:
    targets: [ "app.test:%%PORT_APP%%" ]
  svc:
    discovery: { dns_srv: _http._tcp.svc.test }
routes:
  - { name: app, match: { path: /app/ }, upstream: app }
  - { name: svc, match: { path: /svc/ }, upstream: svc }
EOF

# The name was resolved at start: traffic goes to A, and /status shows the
# address it resolved to, not the name.
is_deeply(tally('/app/x', 5), { a => 5 }, 'app.test -> 127.0.0.1: A serves');
is_deeply(status_addrs('app'), ["127.0.0.1:$app_port"],
          '/status: app lists 127.0.0.1:APP');

# The re-resolution is the helper process's job: it runs next to the
# worker, a child of the master, and /status names it.
my $st = $t->status // {};
my $helper = $st->{helper} // 0;
ok($helper > 0, '/status shows a helper process') or diag explain $st;
ok((grep { $_ == $helper } $t->worker_pids)
   && !(grep { $_->{pid} == $helper } @{$st->{workers} // []}),
   'the helper is a child of the master and not a worker');


# ---- SRV discovery: ports and weights from the records -------------------

# Two SRV records, weights 1 and 3, to two ports: smooth weighted round
# robin sends about a quarter to C1 (one worker, so close to exact).
my %codes = http_many(400, '/svc/x', port => $gw, concurrency => 4);
is_deeply(\%codes, { 200 => 400 }, 'SRV upstream: 400 requests, all 200');
my ($n1, $n2) = (scalar $c1->requests, scalar $c2->requests);
is($n1 + $n2, 400, 'SRV upstream: C1 and C2 saw every request');
ok($n1 >= 70 && $n1 <= 130 && $n2 >= 270 && $n2 <= 330,
   "SRV weights 1:3 split the traffic about 1:3 (C1 $n1, C2 $n2)");

$st = $t->status // {};
my %srv = map { ($_->{address} => $_->{weight}) }
          @{$st->{upstreams}{svc}{targets} // []};
is_deeply(\%srv, { "127.0.0.1:$c1_port" => 1, "127.0.0.1:$c2_port" => 3 },
          '/status: svc lists both SRV targets with their ports and weights')
    or diag explain $st->{upstreams};


# ---- a name followed within its TTL ----------------------------------------

# app.test moves to 127.0.0.2; dnsmasq answers with TTL 2, so within the
# TTL and a few seconds' margin every request goes to B.
my $ttl = dns_move('one', "127.0.0.2 app.test\n127.0.0.1 s1.test s2.test\n",
                   'app.test', '127.0.0.2');
note("dnsmasq now answers app.test 127.0.0.2 with TTL $ttl");
my $took = wait_via('/app/x', 'b', 8);
ok(defined $took, 'the gateway follows the new address within TTL + 6 s')
    or diag $t->error_log;
note(sprintf 'followed after %.1f s', $took) if defined $took;
my $a_before = scalar $back_a->requests;
is_deeply(tally('/app/x', 20), { b => 20 }, 'then all traffic goes to B');
is(scalar $back_a->requests, $a_before, 'A sees none of it');
is_deeply(status_addrs('app'), ["127.0.0.2:$app_port"],
          '/status: app lists the new address only');


# ---- a failed lookup keeps the last good addresses -------------------------

# With dnsmasq gone every lookup fails: the helper says so in the error
# log, and past the TTL the addresses of the last good answer stay in use.
my $log_mark = length $t->error_log;
my $killed_at = time;
dns_stop('one');
my $kept = qr/upstream "app": .*lookup failed.*keeping the last addresses/;
ok(wait_log_since($log_mark, $kept, 15),
   'error log: the lookup failed and the last addresses are kept')
    or diag log_since($log_mark);
like(log_since($log_mark), qr/\[warn\].*upstream "svc": .*lookup failed/,
     'the SRV lookup failure is logged too, at warn');
sleep(3 - (time - $killed_at)) if time - $killed_at < 3;    # past TTL 2
is_deeply(tally('/app/x', 20), { b => 20 },
          'past the TTL with no DNS: all traffic still reaches B');
my %svc = %{tally('/svc/x', 8)};
is(($svc{c1} // 0) + ($svc{c2} // 0), 8,
   'past the TTL with no DNS: the SRV targets still serve')
    or diag explain \%svc;
is_deeply(status_addrs('app'), ["127.0.0.2:$app_port"],
          '/status: app still lists the last good address');
is_deeply(status_addrs('svc'),
          [sort "127.0.0.1:$c1_port", "127.0.0.1:$c2_port"],
          '/status: svc still lists both SRV targets');


# ---- resolver.valid overrides a long TTL -----------------------------------

# A second dnsmasq answers with TTL 3600.  Without `valid` the gateway
# keeps the answer for its TTL; with `valid: 1s` it asks every second.
my $dns2 = dns_start('two', 3600, "127.0.0.1 val.test\n", 'val.test');

sub val_config ($valid) {
    my $v = $valid ? ", valid: $valid" : '';
    return <<"EOF";
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
resolver: { servers: ["127.0.0.1:$dns2->{port}"]$v }
upstreams:
  val:
    targets: [ "val.test:%%PORT_APP%%" ]
routes:
  - { name: val, match: { path: /val/ }, upstream: val }
EOF
}

# Generation 2, no `valid`: resolved at load to A (the old generation
# has no /val/ route, so the first 200 comes from the new one).
$t->write_config(val_config(''))->reload;
ok($t->wait_generation(2, 10) && defined wait_via('/val/x', 'a', 5),
   'reload to generation 2: val.test resolved at load, A serves');

# Past the helper's first round, move val.test: the TTL of 3600 s holds
# the old answer, so three seconds later A still gets everything.
sleep 2;
$ttl = dns_move('two', "127.0.0.2 val.test\n", 'val.test', '127.0.0.2');
cmp_ok($ttl, '>', 1000, 'dnsmasq two answers with a long TTL');
sleep 3;
is_deeply(tally('/val/x', 10), { a => 10 },
          'without valid, the answer is kept for its TTL');

# Generation 3 with `valid: 1s` resolves at load (to B), then follows a
# move back to 127.0.0.1 within about a second, whatever the TTL says.
$t->write_config(val_config('1s'))->reload;
ok($t->wait_generation(3, 10) && defined wait_via('/val/x', 'b', 5),
   'reload to generation 3: val.test resolved at load to B');
dns_move('two', "127.0.0.1 val.test\n", 'val.test', '127.0.0.1');
$took = wait_via('/val/x', 'a', 5);
ok(defined $took, 'valid: 1s follows the move despite a TTL of 3600 s')
    or diag $t->error_log;
note(sprintf 'followed after %.1f s', $took) if defined $took;
is_deeply(tally('/val/x', 10), { a => 10 }, 'then all traffic goes to A');
is_deeply(status_addrs('val'), ["127.0.0.1:$app_port"],
          '/status: val lists 127.0.0.1:APP');
$st = $t->status // {};
ok(($st->{helper} // 0) > 0 && $st->{helper} != $helper,
   'generation 3 has its own helper process');
like($t->error_log, qr/reload generation 3 ok/, 'reload generation 3 ok');


# ---- a name that does not resolve at start ---------------------------------

# `-t` does not resolve names, so the config passes; starting with it
# fails and says which name could not be resolved.  A second harness
# keeps this gateway apart from the running one.
my $t2 = Test::Portico->new();
$t2->write_config(<<"EOF");
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
resolver: { servers: ["127.0.0.1:$dns2->{port}"] }
upstreams:
  ghost:
    targets: [ "nowhere.test:80" ]
routes:
  - { name: ghost, match: { path: / }, upstream: ghost }
EOF
ok(!dns_a($dns2->{port}, 'nowhere.test'), 'nowhere.test does not resolve');
my ($rc, $out) = run_cmd(15, $t2->binary, '-t', '-p', $t2->testdir,
                         '-c', $t2->config_path);
is($rc, 0, '-t with an unresolvable upstream name exits 0') or diag $out;
like($out, qr/test is successful/, '-t says the test is successful');
ok(!$t2->try_run, 'the gateway does not start with an unresolvable name');
my $why = $t2->error_log . $t2->stderr_log;
like($why, qr/upstream "ghost": cannot resolve "nowhere\.test"/,
     'the error names the upstream and the name') or diag $why;

# The first gateway never noticed.
is(via('/val/x'), 'a', 'the running gateway still serves');
is_deeply(status_addrs('val'), ["127.0.0.1:$app_port"],
          '...from the address it resolved');
