# Upstream targets found through DNS (issue 4): a host name target is
# resolved through the `resolver:` servers and followed by the helper
# process as its TTL runs out (or after `resolver: valid`); a failed
# lookup keeps the last good addresses, at run time and at reload;
# `discovery: dns_srv` fills the targets (ports, weights, lowest priority
# only) from SRV records; a reload never lets the old generation's
# lookups, or a rejected config's, change the running peers; a name that
# does not resolve at start stops the start but not `-t`.
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
my ($c1_port, $c2_port, $c3_port) = map { $t->port($_) } qw(C1 C2 C3);

# Backend B shares A's port on 127.0.0.2: bound here, before the plan, so
# that a machine without 127.0.0.2 skips rather than fails.
my $b_sock = IO::Socket::INET->new(LocalAddr => '127.0.0.2',
                                   LocalPort => $app_port, Proto => 'tcp');
plan(skip_all => "cannot bind 127.0.0.2:$app_port: $@") unless $b_sock;

$t->plan(55);

my $back_a = $t->backend(id => 'a', port => $app_port);
my $back_b = Test::Portico::Backend->new(id => 'b', port => $app_port,
                                         dir => $t->testdir,
                                         socket => $b_sock);
my $c1 = $t->backend(id => 'c1');
my $c2 = $t->backend(id => 'c2');


# ---- dnsmasq ---------------------------------------------------------------

my %DNS;     # name => { name, pid, port, ttl, hosts, log, probe, extra }

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
    my $spec = { name => $name, ttl => $ttl, probe => $probe,
                 extra => \@extra, hosts => "$dir/hosts-$name",
                 log => "$dir/dnsmasq-$name.log" };
    write_hosts($spec->{hosts}, $hosts_text);
    for my $attempt (1 .. 5) {
        my $d = dns_spawn($spec, free_udp_port());
        return $d if $d;
    }
    die "dnsmasq $name did not start:\n"
        . join('', map { Test::Portico::_read_file($_) }
                   $spec->{log}, "$spec->{log}.out");
}

# The same dnsmasq again, on its old port, after dns_stop().
sub dns_restart ($d, $hosts_text) {
    write_hosts($d->{hosts}, $hosts_text);
    for my $attempt (1 .. 20) {
        return if dns_spawn($d, $d->{port});
        sleep 0.1;
    }
    die "dnsmasq $d->{name} did not restart on port $d->{port}\n";
}

# One try on $port: the entry in %DNS, or undef if it did not answer.
sub dns_spawn ($spec, $port) {
    my $log = $spec->{log};
    my $user = getpwuid($<) // 'root';
    my $group = getgrgid($() // 'root';
    my @argv = ($t->daemon('dnsmasq'), '--no-daemon', '--no-resolv',
                '--no-hosts', "--addn-hosts=$spec->{hosts}",
                "--local-ttl=$spec->{ttl}", '--bind-interfaces',
                '--listen-address=127.0.0.1', "--port=$port", '--pid-file=',
                '--conf-file=/dev/null', '--local=/test/', "--user=$user",
                "--group=$group", "--log-facility=$log", '--log-queries',
                @{$spec->{extra}});
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        # Never outlive the test, even one killed by SIGKILL:
        # prctl(PR_SET_PDEATHSIG, SIGKILL), syscall 157 on x86-64.
        syscall(157, 1, 9) if $Config{archname} =~ /^x86_64-linux/;
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE CHLD);
        POSIX::sigprocmask(POSIX::SIG_SETMASK(), POSIX::SigSet->new);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$log.out";
        open STDERR, '>&', \*STDOUT;
        Test::Portico::Backend::close_fds_except(1);
        exec { $argv[0] } @argv or POSIX::_exit(127);
    }
    $spec->{pid} = $pid;
    $spec->{port} = $port;
    my $deadline = time + 3;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {     # the port was taken?
            $spec->{pid} = undef;
            return undef;
        }
        if (dns_a($port, $spec->{probe})) {
            $DNS{$spec->{name}} = $spec;
            return $spec;
        }
        sleep 0.05;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    $spec->{pid} = undef;
    return undef;
}

sub dns_stop ($name) {
    my $d = delete $DNS{$name} or return;
    my $pid = delete $d->{pid} or return;
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
# once dnsmasq answers with the new addresses (so that what the gateway
# does next is the gateway's doing), with the TTL it answers.
sub dns_move ($name, $hosts_text, $qname, @want) {
    my $d = $DNS{$name};
    my $want = join ' ', sort @want;
    write_hosts($d->{hosts}, $hosts_text);
    kill 'HUP', $d->{pid};
    my $deadline = time + 5;
    while (time < $deadline) {
        my @ans = dns_a($d->{port}, $qname);
        return $ans[0][1]
            if @ans && join(' ', sort map { $_->[0] } @ans) eq $want;
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

# Polls until $n GETs of $path in a row come from $id, for at most $secs.
sub wait_via_all ($path, $id, $secs, $n = 6) {
    my $start = time;
    while (time - $start < $secs) {
        my $c = tally($path, $n);
        return time - $start if ($c->{$id} // 0) == $n;
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

# Polls /status until upstream $name lists exactly the addresses @$want
# (sorted); false after $secs.
sub wait_addrs ($name, $want, $secs) {
    my $deadline = time + $secs;
    while (1) {
        return 1 if join(' ', @{status_addrs($name)}) eq join(' ', @$want);
        return 0 if time > $deadline;
        sleep 0.1;
    }
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


# SRV: two records of priority 0 (weights 1 and 3) and a backup of
# priority 1 on C3, where nothing listens: it must never be used while the
# first group exists (RFC 2782).
my $dns1 = dns_start('one', 2, "127.0.0.1 app.test\n"
                               . "127.0.0.1 s1.test s2.test s3.test\n",
                     'app.test',
                     "--srv-host=_http._tcp.svc.test,s1.test,$c1_port,0,1",
                     "--srv-host=_http._tcp.svc.test,s2.test,$c2_port,0,3",
                     "--srv-host=_http._tcp.svc.test,s3.test,$c3_port,1,50");
my $srv_hosts = "127.0.0.1 s1.test s2.test s3.test\n";

$gw = $t->port('GW');

$t->write_config(<<"EOF")->run();
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
resolver: { servers: ["127.0.0.1:$dns1->{port}"] }
upstreams:
  app:
    targets: [ "app.test:%%PORT_APP%%" ]
  svc:
    discovery: { dns_srv: _http._tcp.svc.test }
  mix:
    targets:
      - { address: "127.0.0.1:%%PORT_C1%%", weight: 1 }
      - { address: "s2.test:%%PORT_C2%%", weight: 3 }
routes:
  - { name: app, match: { path: /app/ }, upstream: app }
  - { name: svc, match: { path: /svc/ }, upstream: svc }
  - { name: mix, match: { path: /mix/ }, upstream: mix }
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

# Smooth weighted round robin over weights 1 and 3 sends a quarter to C1
# (near enough exactly: each of the two workers cycles through the
# weights), nothing to the backup C3.
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
          '/status: svc lists the priority-0 SRV targets with their ports '
          . 'and weights, not the backup')
    or diag explain $st->{upstreams};


# A plain address and a name in one upstream: the name's addresses take
# the weight of its target.
%srv = map { ($_->{address} => $_->{weight}) }
       @{$st->{upstreams}{mix}{targets} // []};
is_deeply(\%srv, { "127.0.0.1:$c1_port" => 1, "127.0.0.1:$c2_port" => 3 },
          '/status: mix lists the address and the resolved name, weighted')
    or diag explain $st->{upstreams};
%codes = http_many(40, '/mix/x', port => $gw, concurrency => 4);
my $m1 = $c1->requests - $n1;
my $m2 = $c2->requests - $n2;
ok(($codes{200} // 0) == 40 && $m1 + $m2 == 40 && $m1 >= 6 && $m1 <= 14,
   "mix: 40 requests split about 1:3 (C1 $m1, C2 $m2)")
    or diag explain \%codes;


# ---- a name followed within its TTL ----------------------------------------

# A slow request is in flight on A when app.test moves to 127.0.0.2.
# dnsmasq answers with TTL 2, so within the TTL and a few seconds' margin
# every new request goes to B, while the one in flight completes on A.
my $slow = http_get('/app/slow?delay=2500', port => $gw, timeout => 15,
                    start => 1);
my $ttl = dns_move('one', "127.0.0.2 app.test s2.test\n"
                          . "127.0.0.1 s1.test s3.test\n",
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

my $r = eval { parse_response(http_end($slow, timeout => 10)) } // {};
is(($r->{status} // 0) . ' ' . ($r->{headers}{'x-backend-id'} // ''), '200 a',
   'the request in flight on the old address completed on A');
my ($up, $idle);
for (1 .. 20) {
    $up = ($t->status // {})->{upstreams}{app} // {};
    $idle = join ',', $up->{inflight} // '?',
                      map { $_->{inflight} } @{$up->{targets} // []};
    last if $idle eq '0,0';
    sleep 0.1;
}
is($idle, '0,0', '/status: nothing left in flight on app')
    or diag explain $up;

# The host of an SRV record moved too (s2.test): the SRV upstream
# follows the address of its target.
my $srv_moved = [sort "127.0.0.1:$c1_port", "127.0.0.2:$c2_port"];
ok(wait_addrs('svc', $srv_moved, 8),
   'SRV: /status follows the new address of a target host')
    or diag explain status_addrs('svc');

# A name with two addresses gives two peers, both used (and s2.test is
# back at 127.0.0.1).
dns_move('one', "127.0.0.1 app.test\n127.0.0.2 app.test\n$srv_hosts",
         'app.test', '127.0.0.1', '127.0.0.2');
my $both = ["127.0.0.1:$app_port", "127.0.0.2:$app_port"];
my $srv_both = [sort "127.0.0.1:$c1_port", "127.0.0.1:$c2_port"];
ok(wait_addrs('app', $both, 8),
   'app.test with two addresses: /status lists both')
    or diag explain status_addrs('app');
my $seen = tally('/app/x', 20);
ok(keys %$seen == 2 && ($seen->{a} // 0) >= 5 && ($seen->{b} // 0) >= 5,
   'and traffic goes to both A and B') or diag explain $seen;
ok(wait_addrs('svc', $srv_both, 8), 'SRV: s2.test back at 127.0.0.1')
    or diag explain status_addrs('svc');


# ---- a failed lookup keeps the last good addresses -------------------------

# With dnsmasq gone every lookup fails: the helper says so in the error
# log, and past the TTL the addresses of the last good answer stay in use.
my $log_mark = length $t->error_log;
my $killed_at = time;
dns_stop('one');
my $kept = qr/\[warn\].*upstream "app": .*lookup failed.*keeping the last/;
ok(wait_log_since($log_mark, $kept, 15),
   'error log: the lookup failed and the last addresses are kept')
    or diag log_since($log_mark);
like(log_since($log_mark), qr/\[warn\].*upstream "svc": .*lookup failed/,
     'the SRV lookup failure is logged too');
# The failed lookup above was made because the TTL (2 s) ran out: we are
# past it.
$seen = tally('/app/x', 20);
ok(keys %$seen == 2 && ($seen->{a} // 0) + ($seen->{b} // 0) == 20,
   'past the TTL with no DNS: every request served, by A and B')
    or diag explain $seen;
my %svc = %{tally('/svc/x', 8)};
is(($svc{c1} // 0) + ($svc{c2} // 0), 8,
   'past the TTL with no DNS: the SRV targets still serve')
    or diag explain \%svc;
is_deeply(status_addrs('app'), $both,
          '/status: app still lists the last good addresses');
is_deeply(status_addrs('svc'), $srv_both,
          '/status: svc still lists both SRV targets');

# DNS back (app.test now at 127.0.0.2 alone): the failed lookups were
# retried, and the next answer is followed again.
dns_restart($dns1, "127.0.0.2 app.test\n$srv_hosts");
$took = wait_via_all('/app/x', 'b', 8);
ok(defined $took, 'DNS back: the gateway follows app.test again')
    or diag log_since($log_mark);
is_deeply(status_addrs('app'), ["127.0.0.2:$app_port"],
          '/status: app lists the new answer');

# A reload onto a resolver that never answers: the SRV lookup times out
# (3 s) and svc keeps the peers it has, with a warning.  app, now a plain
# address, gets exactly that address: the old generation's helper, which
# went on following app.test (at B) while the new generation loaded, must
# not have the last word.
my $hole = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                 Proto => 'udp') or die "udp: $@";
my $hole_port = $hole->sockport;
$log_mark = length $t->error_log;
$t->write_config(<<"EOF")->reload;
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
resolver: { servers: ["127.0.0.1:$hole_port"] }
upstreams:
  app:
    targets: [ "127.0.0.1:%%PORT_APP%%" ]
  svc:
    discovery: { dns_srv: _http._tcp.svc.test }
routes:
  - { name: app, match: { path: /app/ }, upstream: app }
  - { name: svc, match: { path: /svc/ }, upstream: svc }
EOF
ok($t->wait_generation(2, 15), 'reload with DNS down: generation 2 runs')
    or diag log_since($log_mark);
like(log_since($log_mark),
     qr/upstream "svc": cannot resolve "_http\._tcp\.svc\.test", keeping/,
     'the reload warns that svc keeps its current peers');
is_deeply(status_addrs('svc'), $srv_both,
          'generation 2: svc still lists both SRV targets');
%svc = %{tally('/svc/x', 8)};
is(($svc{c1} // 0) + ($svc{c2} // 0), 8, 'generation 2: svc serves')
    or diag explain \%svc;
# Once the old generation's helper is gone it can no longer publish.
ok(wait_until(sub { !kill 0, $helper }, 10),
   "generation 1's helper ($helper) has exited");
is_deeply(status_addrs('app'), ["127.0.0.1:$app_port"],
          'generation 2: app lists its one static address');
is_deeply(tally('/app/x', 10), { a => 10 },
          'generation 2: all app traffic goes to the static address');


# ---- resolver.valid overrides a long TTL -----------------------------------

# A second dnsmasq answers with TTL 3600.  Without `valid` the gateway
# keeps the answer for its TTL; with `valid: 1s` it asks every second.
# Next to val, `fixed` is a plain address.
my $dns2 = dns_start('two', 3600, "127.0.0.1 val.test\n", 'val.test');

sub val_config (%o) {
    my $v = $o{valid} ? ", valid: $o{valid}" : '';
    my $fixed = $o{fixed} // '127.0.0.1';
    my $ghost = $o{ghost} ? qq{  ghost:\n    targets: [ "$o{ghost}:80" ]\n}
                          : '';
    return <<"EOF";
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
resolver: { servers: ["127.0.0.1:$dns2->{port}"]$v }
upstreams:
  val:
    targets: [ "val.test:%%PORT_APP%%" ]
  fixed:
    targets: [ "$fixed:%%PORT_APP%%" ]
$ghost
routes:
  - { name: val, match: { path: /val/ }, upstream: val }
  - { name: fixed, match: { path: /fixed/ }, upstream: fixed }
EOF
}

# The A queries for val.test dnsmasq two has logged.
sub val_queries () {
    my @q = Test::Portico::_read_file($dns2->{log}) =~ /query\[A\] val\.test /g;
    return scalar @q;
}

# Generation 3, no `valid`: resolved at load to A (the old generation
# has no /val/ route, so the first 200 comes from the new one).
my $queries = val_queries();
$t->write_config(val_config())->reload;
ok($t->wait_generation(3, 10) && defined wait_via('/val/x', 'a', 5),
   'reload to generation 3: val.test resolved at load, A serves');

# Past the helper's first round (1 s after it starts: the first query for
# val.test that dnsmasq logs after the master's, at load), move
# val.test: the TTL of 3600 s holds the old answer, so seconds later A
# still gets all.  (The 2.5 s are the window watched, not a wait.)
ok(wait_until(sub { val_queries() >= $queries + 2 }, 10),
   "generation 3's helper looked val.test up") or diag val_queries();
$ttl = dns_move('two', "127.0.0.2 val.test\n", 'val.test', '127.0.0.2');
die "setup: dnsmasq two answers with TTL $ttl\n" if $ttl < 1000;
sleep 2.5;
is_deeply(tally('/val/x', 10), { a => 10 },
          'without valid, the answer is kept for its TTL');

# A reload that fails on a name that does not resolve changes nothing:
# not the address of `fixed` (127.0.0.2 in the rejected config), not val
# (whose name now resolves to 127.0.0.2).
$log_mark = length $t->error_log;
$t->write_config(val_config(fixed => '127.0.0.2', ghost => 'nowhere.test'))
  ->reload;
ok(wait_log_since($log_mark, qr/reload failed, keeping generation 3/, 10),
   'a config with an unresolvable new name: reload failed')
    or diag log_since($log_mark);
like(log_since($log_mark), qr/cannot resolve "nowhere\.test"/,
     '...because nowhere.test cannot be resolved');
is_deeply(tally('/fixed/x', 5), { a => 5 },
          'after the failed reload, fixed still goes to its address');
is_deeply(tally('/val/x', 5), { a => 5 },
          'after the failed reload, val still goes to its last answer');
is_deeply([status_addrs('fixed'), status_addrs('val')],
          [["127.0.0.1:$app_port"], ["127.0.0.1:$app_port"]],
          '/status: fixed and val unchanged by the failed reload');

# Generation 4 with `valid: 1s` resolves at load (to B), then follows a
# move back to 127.0.0.1 within about a second, whatever the TTL says.
$t->write_config(val_config(valid => '1s'))->reload;
ok($t->wait_generation(4, 10) && defined wait_via('/val/x', 'b', 5),
   'reload to generation 4: val.test resolved at load to B');
dns_move('two', "127.0.0.1 val.test\n", 'val.test', '127.0.0.1');
$took = wait_via('/val/x', 'a', 5);
ok(defined $took, 'valid: 1s follows the move despite a TTL of 3600 s')
    or diag $t->error_log;
note(sprintf 'followed after %.1f s', $took) if defined $took;
is_deeply(tally('/val/x', 10), { a => 10 }, 'then all traffic goes to A');
is_deeply(status_addrs('val'), ["127.0.0.1:$app_port"],
          '/status: val lists 127.0.0.1:APP');
$st = $t->status // {};
my $helper4 = $st->{helper} // 0;
ok($helper4 > 0 && $helper4 != $helper,
   'generation 4 has its own helper process');

# A helper that dies is respawned, and the new one goes on following.
$t->allow_alerts(qr/worker $helper4 exited on signal 9/);
kill 'KILL', $helper4;
my $helper5 = wait_until(sub {
    my $h = ($t->status // {})->{helper} // 0;
    return $h && $h != $helper4 ? $h : undef;
}, 5, 0.1) // 0;
ok($helper5 && $helper5 != $helper4, 'a killed helper is respawned');
dns_move('two', "127.0.0.2 val.test\n", 'val.test', '127.0.0.2');
ok(defined wait_via('/val/x', 'b', 6),
   'the respawned helper follows the next move');


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
die "setup: nowhere.test resolves\n" if dns_a($dns2->{port}, 'nowhere.test');
my ($rc, $out) = run_cmd(15, $t2->binary, '-t', '-p', $t2->testdir,
                         '-c', $t2->config_path);
is($rc, 0, '-t with an unresolvable upstream name exits 0') or diag $out;
like($out, qr/test is successful/, '-t says the test is successful');
ok(!$t2->try_run, 'the gateway does not start with an unresolvable name');
my $why = $t2->error_log . $t2->stderr_log;
like($why, qr/upstream "ghost": cannot resolve "nowhere\.test"/,
     'the error names the upstream and the name') or diag $why;

# The first gateway never noticed.
is(via('/val/x'), 'b', 'the running gateway still serves');
