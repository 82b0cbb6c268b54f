package Test::Portico;

# Test::Portico: the integration-test harness for the Portico gateway.
#
#   my $t  = Test::Portico->new()->has_module(qw/router/)->plan(2);
#   my $b1 = $t->backend(id => 'b1');
#   $t->write_config(<<'EOF')->run();
#   listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
#   ...
#   EOF
#   like(http_get('/x', port => $t->port('GW')), qr/^HTTP\/1.1 200 /);
#   is($b1->requests, 1, 'backend saw one request');
#
# plan(N) declares N + 1 tests: the harness adds "no alerts in error.log"
# when the gateway stops (at the latest in the END block below), so a test
# that leaves [alert], [emerg] or sanitizer output behind fails.
#
# Environment: PT_TEST_BINARY (default objs/portico), PT_TEST_LEAVE (keep
# the test directory), PT_TEST_VERBOSE (note what the harness does),
# PT_TEST_CATLOG (diag the error log when the gateway stops).
#
# Sanitizer builds (make test-asan): ASAN_OPTIONS and UBSAN_OPTIONS get a
# log_path in a directory of this test file, so the reports of every
# process it starts (master, workers, helper, `portico -t` runs) land in
# files that the log check reads, and END fails the file for reports no
# log check claimed.

use strict;
use warnings;
use v5.36;

# Test::More must be loaded before our END block is compiled: END blocks
# run last-defined first, so ours then runs before Test2's, which checks
# the plan and sets the exit status.
use Test::More ();

use Carp qw(croak);
use Errno ();                # for %!
use Exporter qw(import);
use File::Spec;
use File::Temp ();
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken refaddr);
use Time::HiRes qw(time sleep);

use Test::Portico::Backend;

our @EXPORT = qw(http http_end http_get parse_response parse_responses
                 http_many free_port curl run_cmd write_file tls_files
                 tls_ca tls_cert s_client wait_until proc_kib proc_state);

# Lines that fail the log check: nginx-style fatal levels and whatever the
# sanitizers print (they write to stderr, so stderr.log is checked too).
my $ALERT_RE = qr/\[(?:alert|emerg)\]|ERROR: \w*Sanitizer|runtime error:/;

my %LIVE;           # refaddr => weak ref of every harness object, for END
my $SEQ = 0;        # creation order, so END stops harnesses in that order
my $CURRENT;        # weak ref to the newest harness: default port for http
my %V_OUTPUT;       # binary => its `-V` output, run once per test file
my %SAN_SEEN;       # sanitizer report file => bytes already checked
my $SAN_OWNER = $$; # forked children must not report them again

# A process's report on a pipe that a test reads, or at a worker's exit,
# could otherwise go unseen; a user's own log_path is overridden for that.
my $SAN_DIR = File::Temp->newdir('portico-san-XXXXXX', TMPDIR => 1,
                                 CLEANUP => !$ENV{PT_TEST_LEAVE});
for my $var (qw(ASAN_OPTIONS UBSAN_OPTIONS)) {
    $ENV{$var} = join ':', grep { length } $ENV{$var} // '',
                                           "log_path=$SAN_DIR/report";
}


sub new ($class, %opt) {
    my $leave = $ENV{PT_TEST_LEAVE};
    my $dir = File::Temp->newdir('portico-t-XXXXXX', TMPDIR => 1,
                                 CLEANUP => !$leave);
    my $bin = $opt{binary} // $ENV{PT_TEST_BINARY} // 'objs/portico';

    my $self = bless {
        owner    => $$,          # forked children must never tear us down
        seq      => ++$SEQ,
        dir_obj  => $dir,        # removes the directory when we go away
        dir      => "$dir",
        binary   => File::Spec->rel2abs($bin),
        ports    => {},          # NAME => port
        holders  => {},          # NAME => bound socket reserving the port
        cfg_port => {},          # NAMEs the current config uses
        allowed  => [],          # regexes exempt from the log check
        offsets  => {},          # file => bytes already checked
        backends => [],          # kept alive as long as we are
        planned  => 0,
        reported => 0,           # the +1 test was emitted
        started  => 0,           # run() since the last log check
        pid      => undef,
    }, $class;

    $LIVE{refaddr $self} = $self;
    weaken $LIVE{refaddr $self};
    $CURRENT = $self;
    weaken $CURRENT;
    Test::More::note("testdir $self->{dir} is kept (PT_TEST_LEAVE)")
        if $leave;
    return $self;
}


sub testdir ($self)     { $self->{dir} }
sub config_path ($self) { "$self->{dir}/portico.yaml" }
sub pid ($self)         { $self->{pid} }
sub binary ($self)      { $self->{binary} }


# Skips the whole test file unless `BIN -V` lists every module.
sub has_module ($self, @mods) {
    my $out = $self->_version_output;
    my ($line) = $out =~ /^modules:[ \t]*(.*)$/m;
    croak "$self->{binary} -V printed no 'modules:' line:\n$out"
        unless defined $line;
    my %have = map { $_ => 1 } split /[\s,]+/, $line;
    my @missing = grep { !$have{$_} } @mods;
    Test::More::plan(skip_all => "no module(s) @missing") if @missing;
    return $self;
}

# DESIGN.md calls it has().
sub has ($self, @mods) { $self->has_module(@mods) }


# True when the binary under test was built with sanitizers (configure
# --with-asan, recorded in configure.args next to it): memory figures
# and resource limits mean something else there.
sub sanitized ($self) {
    my $args = _read_file(File::Spec->catfile(
        (File::Spec->splitpath($self->{binary}))[1], 'configure.args'));
    return $args =~ /(?:^|\s)--with-asan(?:\s|$)/ ? 1 : 0;
}


# Skips the whole test file unless the program is installed.
sub has_daemon ($self, $name) {
    my @dirs = (File::Spec->path, qw(/usr/sbin /sbin /usr/local/sbin));
    my ($path) = grep { -f && -x } map { "$_/$name" } @dirs;
    Test::More::plan(skip_all => "$name not installed") unless $path;
    $self->{daemons}{$name} = $path;
    return $self;
}

# The path has_daemon() found, for the test to start the program.
sub daemon ($self, $name) { $self->{daemons}{$name} }


sub plan ($self, $n) {
    Test::More::plan(tests => $n + 1);
    $self->{planned} = 1;
    return $self;
}


# Error-log lines matching $re are expected (a test that provokes a fatal
# config error, say) and do not fail the log check.
sub allow_alerts ($self, @re) {
    push @{$self->{allowed}}, @re;
    return $self;
}


sub port ($self, $name) {
    $name = uc $name;
    return $self->{ports}{$name} //= $self->_hold_port($name);
}


# Binding 127.0.0.1:0 lets the kernel choose a port no one uses; keeping the
# socket bound (not listening) until run() stops parallel tests taking it.
sub _hold_port ($self, $name) {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp')
        or croak "cannot reserve a port for $name: $@";
    $self->{holders}{$name} = $s;
    return $s->sockport;
}


sub _release_holders ($self) {
    close $_ for values %{$self->{holders}};
    $self->{holders} = {};
}


sub backend ($self, %opt) {
    my $id = $opt{id} // croak 'backend: id => required';
    my $port = $opt{port} // $self->port($id);

    # Hand the reserved socket itself to the backend: no window in which
    # another test could grab the port.
    my ($name) = grep { $self->{holders}{$_}->sockport == $port }
                 keys %{$self->{holders}};
    my $sock = defined $name ? delete $self->{holders}{$name} : undef;

    my $b = Test::Portico::Backend->new(%opt, id => $id, port => $port,
                                        dir => $self->{dir},
                                        socket => $sock);
    push @{$self->{backends}}, $b;
    return $b;
}


sub write_config ($self, $yaml) {
    $self->{cfg_port} = {};
    $yaml =~ s{%%PORT_(\w+)%%}{
        my $name = uc $1;
        $self->{cfg_port}{$name} = 1;
        $self->port($name);
    }ge;
    $yaml =~ s{%%TESTDIR%%}{$self->{dir}}g;
    croak "write_config: unknown placeholder $1" if $yaml =~ /(%%\w+%%)/;

    my @defaults = ([pid_file => 'portico.pid'], [error_log => 'error.log'],
                    [log_level => 'info'], [workers => 1],
                    [daemon => 'false']);
    my $head = join '', map { "$_->[0]: $_->[1]\n" }
                        grep { $yaml !~ /^\Q$_->[0]\E[ \t]*:/m } @defaults;

    # After a leading "---" the defaults must follow it, or they would form
    # a document of their own.
    if ($yaml =~ /\A((?:[ \t]*(?:#[^\n]*)?\n|%[^\n]*\n)*---[ \t]*\n)/) {
        substr($yaml, length $1, 0) = $head;
    } else {
        $yaml = $head . $yaml;
    }

    _write_file($self->config_path, $yaml);

    # run() waits for this many workers when the config names a number.
    my $workers = _top_value($yaml, 'workers') // '';
    $self->{workers_expected} = $workers =~ /^\d+\z/ ? $workers : 1;

    my $pid_file = _top_value($yaml, 'pid_file');
    my $err_log = _top_value($yaml, 'error_log');
    $self->{pid_file} = $self->_prefixed($pid_file);
    $self->{error_log} = defined $err_log && $err_log ne 'stderr'
                         ? $self->_prefixed($err_log) : undef;

    # A config written for a reload must find its new ports free.
    $self->_release_holders if $self->{pid};
    return $self;
}


sub _top_value ($yaml, $key) {
    my ($v) = $yaml =~ /^\Q$key\E[ \t]*:[ \t]*(.*?)[ \t]*$/m or return undef;
    $v =~ s/\s+#.*//;
    $v =~ s/^(["'])(.*)\1$/$2/;
    return $v;
}


sub _prefixed ($self, $path) {
    return undef unless defined $path && length $path;
    return $path =~ m{^/} ? $path : "$self->{dir}/$path";
}


sub run ($self) {
    croak 'run: call write_config first' unless -f $self->config_path;
    croak 'run: the gateway is already running' if $self->{pid};
    croak "run: $self->{binary} is not executable (run make?)"
        unless -x $self->{binary};

    $self->_release_holders;
    unlink $self->{pid_file} if defined $self->{pid_file};
    _install_signal_handlers();

    my $pid = fork // croak "run: fork: $!";
    $self->_exec_gateway if $pid == 0;

    # Both sides set the group, so that a kill of it cannot come too early.
    POSIX::setpgid($pid, $pid);
    $self->{pid} = $pid;
    $self->{started} = 1;
    $self->{exit_note} = undef;
    _verbose("started $self->{binary} as pid $pid in $self->{dir}");

    my $err = $self->_wait_started(10);
    return $self unless defined $err;

    $self->_terminate;
    croak "portico did not start: $err\n" . $self->_tails;
}


# A start that fails here is expected to be skipped by the test, so what
# it logged is not held against the log check either.
sub try_run ($self) {
    my $ok = eval { $self->run; 1 };
    return $self if $ok;
    Test::More::note("try_run: $@");
    $self->{started} = 0;
    $self->{exit_note} = undef;
    for my $f ($self->{error_log}, "$self->{dir}/stderr.log") {
        $self->{offsets}{$f} = -s $f // 0 if defined $f;
    }
    return undef;
}


# In the forked child: never returns, never runs our END blocks.
sub _exec_gateway ($self) {
    eval {
        _child_reset();
        my $log = "$self->{dir}/stderr.log";
        open STDIN, '<', '/dev/null' or die "stdin: $!\n";
        open STDOUT, '>>', $log or die "$log: $!\n";
        open STDERR, '>&', \*STDOUT or die "stderr: $!\n";
        # Nothing of ours or of whoever started prove leaks into the
        # gateway (Perl marks its own descriptors close-on-exec, but a
        # pipe inherited from outside is not).
        Test::Portico::Backend::close_fds_except(1);
        chdir $self->{dir};    # core files and sanitizer logs land here
        my $bin = $self->{binary};
        exec { $bin } $bin, '-p', $self->{dir}, '-c', $self->config_path;
        die "exec $bin: $!\n";
    };
    print STDERR $@;
    POSIX::_exit(127);
}


# A fresh process group lets stop() kill the workers a crashed master
# leaves behind, and keeps a terminal's Ctrl-C for the test process (whose
# END block then stops the gateway).
sub _child_reset () {
    $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP QUIT PIPE CHLD USR1 USR2);
    $SIG{__DIE__} = $SIG{__WARN__} = 'DEFAULT';
    POSIX::sigprocmask(POSIX::SIG_SETMASK(), POSIX::SigSet->new);
    POSIX::setpgid(0, 0);
}


my $handlers_installed;

# exit() instead of dying on INT/TERM so that END stops what we started.
sub _install_signal_handlers () {
    return if $handlers_installed++;
    for my $sig (qw(INT TERM)) {
        next if defined $SIG{$sig} && $SIG{$sig} ne 'DEFAULT';
        $SIG{$sig} = sub { exit(128 + ($sig eq 'INT' ? 2 : 15)) };
    }
}


sub _wait_started ($self, $timeout) {
    my $deadline = time + $timeout;
    my @names = sort grep { /^(?:GW|ADMIN)/ } keys %{$self->{cfg_port}};
    my @ports = map { $self->{ports}{$_} } @names;

    while (1) {
        if (waitpid($self->{pid}, WNOHANG) == $self->{pid}) {
            my $how = _status_text($?);
            $self->{pid} = undef;
            return "it exited ($how)";
        }
        my $pid_ok = defined $self->{pid_file}
                     && _read_file($self->{pid_file}) =~ /^\d+\s*$/;
        my %listening = map { $_ => 1 } _listening_ports(@ports);
        my @waiting = grep { !$listening{$self->{ports}{$_}} } @names;
        my @workers = $self->worker_pids;
        my $workers_ok = @workers >= ($self->{workers_expected} // 1);
        return undef if $pid_ok && !@waiting && $workers_ok;

        if (time > $deadline) {
            my @what = ($pid_ok ? () : ('pid file'),
                        ($workers_ok ? () : ('workers')),
                        map { "port $_ ($self->{ports}{$_})" } @waiting);
            return "timed out after ${timeout}s waiting for "
                   . join(', ', @what);
        }
        sleep 0.05;
    }
}


# Which of @ports a socket listens on.  /proc/net/tcp answers without
# connecting, so no probe connection shows up in the gateway's logs or
# metrics; connect() is the fallback where /proc is not mounted.
sub _listening_ports (@ports) {
    my %want = map { $_ => 1 } @ports;
    my (%found, $read);

    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $fh, '<', $f or next;
        $read = 1;
        while (<$fh>) {
            # sl local_address rem_address st ...; st 0A is LISTEN
            my (undef, $local, undef, $st) = split ' ', $_;
            next unless defined $st && $st eq '0A';
            my ($hex) = $local =~ /:([0-9A-F]+)$/ or next;
            $found{hex $hex} = 1 if $want{hex $hex};
        }
    }
    return grep { $found{$_} } @ports if $read;

    return grep {
        IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $_,
                              Proto => 'tcp', Timeout => 1)
    } @ports;
}


sub stop ($self) {
    return $self unless $$ == $self->{owner};
    $self->_terminate;
    $self->_release_holders;
    $self->_check_log;
    return $self;
}


# QUIT (graceful), TERM after 10 s, KILL after 5 more; always reaps.
sub _terminate ($self) {
    my $pid = $self->{pid} or return;
    my $r = waitpid($pid, WNOHANG);

    if ($r == $pid) {
        $self->_note_exit($?, 'before stop()');
    } elsif ($r == 0) {
        for my $step (['QUIT', 10], ['TERM', 5], ['KILL', 5]) {
            my ($sig, $wait) = @$step;
            kill 'KILL', -$pid if $sig eq 'KILL';
            kill $sig, $pid;
            my $status = _wait_pid($pid, $wait);
            if (defined $status) {
                $self->_note_exit($status, 'after SIGQUIT') if $sig eq 'QUIT';
                last;
            }
            Test::More::diag("portico pid $pid ignored SIG$sig for ${wait}s")
                unless $sig eq 'KILL';
        }
    }

    # The master is gone; workers left in its group would be a bug.  A
    # zombie is not one: it has exited, and once its parent is gone only
    # init can reap it (ASan's leak-check helper of a worker killed in
    # its exit, say).
    if (kill 0, -$pid) {
        my @left = grep { !/ Z ppid / } _group_members($pid);
        $self->{exit_note} //= "processes of group $pid outlived the master: "
                               . join(', ', @left) if @left;
        kill 'KILL', -$pid;
    }
    $self->{pid} = undef;
}


# "PID (comm) state" of each process whose process group is $pgid.
sub _group_members ($pgid) {
    my @found;
    for my $stat (glob '/proc/[0-9]*/stat') {
        my $text = _read_file($stat);
        # pid (comm) state ppid pgrp ...; comm may hold spaces and ')'
        my ($p, $comm, $state, $ppid, $pgrp) =
            $text =~ /^(\d+) \((.*)\) (\S) (\d+) (\d+) / or next;
        push @found, "$p ($comm) $state ppid $ppid" if $pgrp == $pgid;
    }
    return @found;
}


# Exits by a signal we did not send, or with a non-zero status after a
# plain QUIT, are reported by the log check.  -1: the test reaped it.
sub _note_exit ($self, $status, $when) {
    return if $status == 0 || $status == -1;
    $self->{exit_note} = "master exited " . _status_text($status) . " $when";
}


# The wait status once $pid exits (-1 if someone else reaped it), or undef
# after $secs.
sub _wait_pid ($pid, $secs) {
    my $deadline = time + $secs;
    while (time < $deadline) {
        my $r = waitpid($pid, WNOHANG);
        return $? if $r == $pid;
        return -1 if $r == -1;
        sleep 0.02;
    }
    return undef;
}


sub _status_text ($status) {
    return 'exit status ' . ($status >> 8) unless $status & 127;
    return 'killed by signal ' . ($status & 127)
           . ($status & 128 ? ' (core dumped)' : '');
}


# The automatic +1 test.  It is emitted once, at the first stop; a later
# stop (after a second run()) only adds a failing test if it finds alerts,
# so problems are never hidden even where the plan cannot count them.
sub _check_log ($self) {
    if (!$self->{started}) {
        if ($self->{planned} && !$self->{reported}++) {
            Test::More::pass('gateway not started');
        }
        return;
    }
    $self->{started} = 0;

    my @bad;
    my @files = ("$self->{dir}/stderr.log");
    unshift @files, $self->{error_log} if defined $self->{error_log};
    for my $f (@files) {
        my $text = _read_file($f);
        my $from = $self->{offsets}{$f} // 0;
        $from = 0 if $from > length $text;    # truncated or rotated
        $self->{offsets}{$f} = length $text;
        for my $line (split /\n/, substr($text, $from)) {
            next unless $line =~ $ALERT_RE;
            next if grep { $line =~ $_ } @{$self->{allowed}};
            push @bad, $line;
        }
    }
    push @bad, delete $self->{exit_note} if $self->{exit_note};
    push @bad, _sanitizer_reports();

    Test::More::diag("error log:\n" . $self->error_log)
        if $ENV{PT_TEST_CATLOG};

    my $name = 'no alerts in error.log';
    if ($self->{planned} && !$self->{reported}++) {
        Test::More::ok(!@bad, $name);
    } elsif (@bad) {
        Test::More::ok(0, $name);
    }
    Test::More::diag(join "\n", @bad) if @bad;
}


# With PT_TEST_FAILURES set (make test sets it), a failing file's diag
# output is appended there too, so the end of a long parallel run can show
# it whole instead of somewhere in the interleaved output.
my $DIAG = '';
if ($ENV{PT_TEST_FAILURES}) {
    tie *DIAG_TEE, 'Test::Portico::DiagTee';
    Test::More->builder->failure_output(\*DIAG_TEE);
}

sub _record_failure ($text) {
    my $path = $ENV{PT_TEST_FAILURES} or return;
    open my $fh, '>>', $path or return;
    print $fh "=== $0 (pid $$)\n$text\n";
    close $fh;
}


# What the sanitizers wrote since the last call, one entry per report file
# (never exempt through allow_alerts).
sub _sanitizer_reports () {
    my @reports;
    for my $f (sort glob "$SAN_DIR/report.*") {
        my $text = _read_file($f);
        my $from = $SAN_SEEN{$f} // 0;
        next if length $text <= $from;
        $SAN_SEEN{$f} = length $text;
        my @lines = split /\n/, substr($text, $from);
        splice @lines, 100 if @lines > 100;
        push @reports, "sanitizer report $f:\n" . join "\n", @lines;
    }
    return @reports;
}


sub DESTROY ($self) {
    return unless ($self->{owner} // 0) == $$;
    local ($?, $@, $!);
    delete $LIVE{refaddr $self};
    # Past END no test may be emitted; END has normally stopped us anyway.
    if (${^GLOBAL_PHASE} eq 'DESTRUCT') {
        $self->_terminate;
    } else {
        $self->stop;
    }
}


END {
    local ($?, $@, $!);    # Test2 reads $? to tell a death from success
    for my $t (sort { $a->{seq} <=> $b->{seq} } grep { defined } values %LIVE)
    {
        eval { $t->stop; 1 } or warn "Test::Portico: stop failed: $@";
    }

    # Reports of processes no stopped gateway accounts for: `portico -t`
    # runs after the last stop, or a test file that never started one.
    if ($$ == $SAN_OWNER and my @reports = _sanitizer_reports()) {
        Test::More::ok(0, 'no sanitizer reports');
        Test::More::diag(join "\n", @reports);
    }

    _record_failure($DIAG) if $$ == $SAN_OWNER && length $DIAG
                               && !Test::More->builder->is_passing;
}


sub worker_pids ($self) {
    my $pid = $self->{pid} or return ();
    my @pids;
    if (open my $fh, '<', "/proc/$pid/task/$pid/children") {
        @pids = split ' ', (scalar <$fh>) // '';
    } else {
        for my $stat (glob '/proc/[0-9]*/stat') {
            my $text = _read_file($stat);
            # comm may hold spaces and parentheses: fields follow the last )
            my ($ppid) = $text =~ /\)\s+\S+\s+(\d+)/ or next;
            push @pids, $stat =~ m{/proc/(\d+)/} if $ppid == $pid;
        }
    }
    return sort { $a <=> $b } @pids;
}


# The worker that holds the gateway's end of the client connection $sock
# (a socket connected to one of our listeners), or undef while no worker
# has accepted it.  Found as nothing else can tell it without a request:
# the socket's inode in /proc/net/tcp, then which worker has it open.
sub worker_of ($self, $sock) {
    my $want = sprintf '%08X:%04X', 0x0100007F, $sock->sockport;
    my $local = sprintf ':%04X', $sock->peerport;
    my $inode;
    open my $fh, '<', '/proc/net/tcp' or return undef;
    while (<$fh>) {
        my (undef, $l, $rem, undef, undef, undef, undef, undef, undef, $ino)
            = split ' ', $_;
        next unless defined $ino && $rem eq $want && $l =~ /\Q$local\E\z/;
        $inode = $ino;
        last;
    }
    close $fh;
    return undef unless $inode;
    for my $pid ($self->worker_pids) {
        opendir my $dh, "/proc/$pid/fd" or next;
        for my $fd (readdir $dh) {
            my $to = readlink "/proc/$pid/fd/$fd" // next;
            return $pid if $to eq "socket:[$inode]";
        }
    }
    return undef;
}


# A client connection to 127.0.0.1:$port and the worker that accepted it
# (undef when none did within 5 s); () when the connect failed.  With
# avoid => PID, that worker is stopped meanwhile: a stopped process does
# not wait in epoll_wait, so the kernel hands the connection to another
# one (EPOLLEXCLUSIVE wakes a waiter).  Waiting for the workers' own
# turn-taking (each re-registers every second) could take long when they
# happen to re-register in step.
sub connect_worker ($self, $port, %o) {
    my $connect = sub {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Proto => 'tcp',
                                      Timeout => 5) or return ();
        my $pid = wait_until(sub { $self->worker_of($s) }, 5, 0.01);
        return ($s, $pid);
    };
    my $busy = $o{avoid} or return $connect->();

    kill 'STOP', $busy or return ();
    my @r;
    if (wait_until(sub { proc_state($busy) eq 'T' }, 5, 0.005)) {
        @r = eval { $connect->() };
    }
    kill 'CONT', $busy;
    return @r;
}


# The state letter of /proc/PID/stat ("S", "R", "T" when stopped...), ''
# when there is no such process.
sub proc_state ($pid) {
    open my $fh, '<', "/proc/$pid/stat" or return '';
    my ($state) = (scalar <$fh> // '') =~ /\)\s+(\S)/;
    return $state // '';
}


sub reload ($self) {
    croak 'reload: the gateway is not running' unless $self->{pid};
    $self->_release_holders;
    kill 'HUP', $self->{pid};
    return $self;
}


sub error_log ($self) {
    return _read_file($self->{error_log} // "$self->{dir}/stderr.log");
}


sub stderr_log ($self) { _read_file("$self->{dir}/stderr.log") }


# Returns the first error-log line matching $re, or undef after $timeout.
sub wait_log ($self, $re, $timeout = 10) {
    my $deadline = time + $timeout;
    while (1) {
        for my $line (split /\n/, $self->error_log) {
            return $line if $line =~ $re;
        }
        return undef if time > $deadline;
        sleep 0.05;
    }
}


sub _admin_port ($self) {
    return $self->{ports}{ADMIN} if $self->{ports}{ADMIN};
    my ($name) = sort grep { /^ADMIN/ } keys %{$self->{ports}};
    croak 'no %%PORT_ADMIN%% in the config' unless $name;
    return $self->{ports}{$name};
}


# GET /status on the admin listener: the decoded JSON, or undef.
sub status ($self) {
    my $raw = http_get('/status', port => $self->_admin_port, timeout => 5);
    return undef unless defined $raw && length $raw;
    my $st = eval {
        my $r = parse_response($raw);
        die "status $r->{status}\n" unless $r->{status} == 200;
        JSON::PP->new->decode($r->{body});
    };
    _verbose("status: $@") unless $st;
    return $st;
}


# The /status document once its generation is >= $n, or undef.
sub wait_generation ($self, $n, $timeout = 10) {
    my $deadline = time + $timeout;
    while (1) {
        my $st = $self->status;
        return $st if $st && ($st->{generation} // -1) >= $n;
        return undef if time > $deadline;
        sleep 0.1;
    }
}


sub _tails ($self) {
    my $out = '';
    for my $f ("$self->{dir}/stderr.log", $self->{error_log}) {
        next unless defined $f && -s $f;
        my @lines = split /\n/, _read_file($f);
        splice @lines, 0, -20 if @lines > 20;
        $out .= "--- tail of $f:\n" . join("\n", @lines) . "\n";
    }
    return $out;
}


sub _version_output ($self) {
    my $bin = $self->{binary};
    return $V_OUTPUT{$bin} if exists $V_OUTPUT{$bin};
    croak "$bin is not executable (run make?)" unless -x $bin;

    my $pid = open(my $fh, '-|') // croak "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec { $bin } $bin, '-V' or POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return $V_OUTPUT{$bin} = $out;
}


sub _read_file ($path) {
    open my $fh, '<:raw', $path or return '';
    local $/;
    return scalar(<$fh>) // '';
}


sub _write_file ($path, $data) {
    open my $fh, '>:raw', $path or croak "$path: $!";
    print {$fh} $data or croak "$path: $!";
    close $fh or croak "$path: $!";
}


sub _verbose ($msg) {
    Test::More::note($msg) if $ENV{PT_TEST_VERBOSE};
}


# wait_until(sub { COND }, $timeout = 10, $interval = 0.05)
# Calls COND until it returns true and returns that value; undef once
# $timeout seconds have passed (COND is tried once more at the deadline,
# so a slow machine that overslept still gets its answer).  Every wait
# for something the gateway does goes through here instead of a fixed
# sleep: it ends as soon as the condition holds, and a busy machine only
# makes it take longer, not fail.
# A field of /proc/PID/status in KiB (VmRSS, VmHWM), 0 when unknown.
sub proc_kib ($pid, $field) {
    open my $s, '<', "/proc/$pid/status" or return 0;
    while (<$s>) { return $1 if /^\Q$field\E:\s+(\d+)/ }
    return 0;
}


sub wait_until ($cond, $timeout = 10, $interval = 0.05) {
    my $deadline = time + $timeout;
    while (1) {
        my $last = time >= $deadline;
        my $v = $cond->();
        return $v if $v;
        return undef if $last;
        my $left = $deadline - time;
        sleep($left < $interval ? ($left > 0 ? $left : 0) : $interval);
    }
}


# ---- HTTP clients: raw sockets, every wait bounded by a deadline ----------


sub free_port () {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp')
        or croak "free_port: $@";
    return $s->sockport;
}


sub _default_port () {
    return $CURRENT->{ports}{GW} if $CURRENT && $CURRENT->{ports}{GW};
    croak 'port => required (no %%PORT_GW%% to default to)';
}


# http($raw, port => P, timeout => 5, start => 0, body_cb => CODE)
# Sends $raw to 127.0.0.1:P, then what body_cb returns on each call until
# it returns undef (big or slow bodies, built as they go), and returns all
# that came back until the server closed or `timeout` seconds (for the
# whole exchange) ran out; undef if the connection was refused.  It reads
# while it sends, so an early answer (413, say) is not lost to the write
# error that follows.  start => 1 returns the socket once all is sent, for
# the test to send more; http_end() then collects the answer.
sub http ($raw, %o) {
    my $port = $o{port} // _default_port();
    my $timeout = $o{timeout} // 5;
    my $deadline = time + $timeout;
    local $SIG{PIPE} = 'IGNORE';

    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => $timeout);
    if (!$s) {
        _verbose("http: connect to 127.0.0.1:$port: $@");
        return undef;
    }
    $s->blocking(0);

    my ($out, $in, $eof) = ($raw, '', 0);
    my $cb = $o{body_cb};
    my $sel = IO::Select->new($s);

    while (!$eof) {
        if ($out eq '' && $cb) {
            my $more = $cb->();
            if (defined $more) { $out = $more; next; }
            $cb = undef;
        }
        last if $out eq '';
        my $left = $deadline - time;
        last if $left <= 0;

        my ($r, $w) = IO::Select->select($sel, $sel, undef, $left);
        if ($r && @$r) {
            $eof = _read_some($s, \$in);
        }
        if (!$eof && $w && @$w) {
            my $n = syswrite($s, $out);
            if (defined $n) {
                substr($out, 0, $n, '');
            } elsif (!$!{EAGAIN} && !$!{EWOULDBLOCK} && !$!{EINTR}) {
                last;                    # EPIPE, ECONNRESET: read the rest
            }
        }
    }

    ${*$s}{pt_in} = $in;
    ${*$s}{pt_eof} = $eof;
    if ($o{start}) {
        $s->blocking(1);
        return $s;
    }
    return http_end($s, deadline => $deadline);
}


# Reads until the peer closes, an error, or the timeout; closes the socket.
sub http_end ($s, %o) {
    my $deadline = $o{deadline} // time + ($o{timeout} // 5);
    my $in = delete ${*$s}{pt_in} // '';
    my $eof = delete ${*$s}{pt_eof};
    $s->blocking(0);
    my $sel = IO::Select->new($s);

    while (!$eof) {
        my $left = $deadline - time;
        last if $left <= 0;
        $eof = _read_some($s, \$in) if $sel->can_read($left);
    }
    close $s;
    return $in;
}


# One non-blocking read into $$buf; true once there is nothing more to read.
sub _read_some ($s, $buf) {
    my $n = sysread($s, $$buf, 65536, length $$buf);
    return 1 if defined $n && $n == 0;
    return 0 if defined $n || $!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR};
    return 1;                                     # ECONNRESET and friends
}


sub _request_text ($method, $path, $headers) {
    my @h = ref $headers eq 'ARRAY' ? @$headers
          : map { ($_ => $headers->{$_}) } sort keys %$headers;
    my %seen;
    for (my $i = 0; $i < @h; $i += 2) {
        $seen{lc $h[$i]} = 1;
    }
    unshift @h, Connection => 'close' unless $seen{connection};
    unshift @h, Host => 'localhost' unless $seen{host};

    my $text = "$method $path HTTP/1.1\r\n";
    for (my $i = 0; $i < @h; $i += 2) {
        $text .= "$h[$i]: $h[$i + 1]\r\n";
    }
    return "$text\r\n";
}


# headers => { name => value } or [ name => value, ... ] (keeps order and
# duplicates); Host and Connection: close are added unless given.
sub http_get ($path, %o) {
    my $raw = _request_text('GET', $path, delete $o{headers} // {});
    return http($raw, %o);
}


# Parses the first response in $raw.  head => 1 for the answer to a HEAD.
# Returns { status, reason, version, headers, header_list, raw_headers,
# body, trailers, chunk_sizes, length (bytes of $raw it spans) }.
sub parse_response ($raw, %o) {
    croak 'parse_response: no response (undef)' unless defined $raw;
    my ($r) = _parse_one(\$raw, 0, $o{head});
    return $r;
}


# Every response in $raw (pipelined, or after a 100 Continue); methods =>
# [...] names the request method of each, so that HEAD answers are read
# without a body (an interim 1xx answer does not use up its request).
sub parse_responses ($raw, %o) {
    croak 'parse_responses: no response (undef)' unless defined $raw;
    my @methods = @{$o{methods} // []};
    my ($pos, @all) = (0);
    while ($pos < length $raw) {
        my $r = _parse_one(\$raw, $pos, ($methods[0] // '') eq 'HEAD');
        shift @methods unless $r->{status} < 200 && $r->{status} != 101;
        push @all, $r;
        $pos += $r->{length};
    }
    return @all;
}


my $TOKEN = qr/[!#\$%&'*+.^_`|~0-9A-Za-z-]+/;

sub _parse_one ($raw, $pos, $head_only) {
    my $end = index($$raw, "\r\n\r\n", $pos);
    _bad($raw, $pos, 'no end of the response head') if $end < 0;
    my $head = substr($$raw, $pos, $end + 4 - $pos);
    my ($status_line, @lines) = split /\r\n/, substr($head, 0, -4), -1;

    my ($version, $status, $reason) =
        $status_line =~ m{^HTTP/(\d\.\d) (\d{3})(?: ([^\r\n]*))?\z}
        or _bad($raw, $pos, "bad status line '$status_line'");

    my (%h, @list);
    for my $line (@lines) {
        my ($name, $value) = $line =~ /^($TOKEN):[ \t]*([^\r\n]*?)[ \t]*\z/
            or _bad($raw, $pos, "bad header line '$line'");
        push @list, [$name, $value];
        my $k = lc $name;
        $h{$k} = exists $h{$k} ? "$h{$k}, $value" : $value;
    }

    my $r = { version => $version, status => 0 + $status,
              reason => $reason // '', headers => \%h, header_list => \@list,
              raw_headers => $head, body => '' };
    my $p = $end + 4;

    if ($head_only || $status =~ /^1|^204$|^304$/) {
        # no body
    } elsif (defined $h{'transfer-encoding'}) {
        if ($h{'transfer-encoding'} =~ /(?:^|,)\s*chunked\s*$/i) {
            $p = _parse_chunked($raw, $p, $r);
        } else {
            $r->{body} = substr($$raw, $p);     # delimited by the close
            $p = length $$raw;
        }
    } elsif (defined $h{'content-length'}) {
        my %v = map { $_ => 1 } split /\s*,\s*/, $h{'content-length'};
        my ($len) = keys %v;
        _bad($raw, $pos, "bad Content-Length '$h{'content-length'}'")
            unless keys %v == 1 && $len =~ /^\d{1,15}\z/;
        my $have = length($$raw) - $p;
        _bad($raw, $pos, "truncated body: $have of $len bytes")
            if $have < $len;
        $r->{body} = substr($$raw, $p, $len);
        $p += $len;
    } else {
        $r->{body} = substr($$raw, $p);
        $p = length $$raw;
    }
    $r->{length} = $p - $pos;
    return $r;
}


sub _parse_chunked ($raw, $p, $r) {
    my (@sizes, $body);
    $body = '';
    while (1) {
        my $eol = index($$raw, "\r\n", $p);
        _bad($raw, $p, 'truncated chunked body') if $eol < 0;
        my $line = substr($$raw, $p, $eol - $p);
        my ($hex) = $line =~ /^([0-9A-Fa-f]{1,15})(?:[ \t]*;[^\r\n]*)?\z/
            or _bad($raw, $p, "bad chunk size line '$line'");
        my $size = hex $hex;
        $p = $eol + 2;
        last if $size == 0;
        _bad($raw, $p, 'truncated chunk')
            if length($$raw) < $p + $size + 2;
        _bad($raw, $p, 'chunk not followed by CRLF')
            if substr($$raw, $p + $size, 2) ne "\r\n";
        $body .= substr($$raw, $p, $size);
        push @sizes, $size;
        $p += $size + 2;
    }

    my %trailers;
    while (1) {
        my $eol = index($$raw, "\r\n", $p);
        _bad($raw, $p, 'truncated trailer section') if $eol < 0;
        my $line = substr($$raw, $p, $eol - $p);
        $p = $eol + 2;
        last if $line eq '';
        my ($n, $v) = $line =~ /^($TOKEN):[ \t]*([^\r\n]*?)[ \t]*\z/
            or _bad($raw, $p, "bad trailer line '$line'");
        $trailers{lc $n} = exists $trailers{lc $n}
                           ? "$trailers{lc $n}, $v" : $v;
    }
    @$r{qw(body chunk_sizes trailers)} = ($body, \@sizes, \%trailers);
    return $p;
}


sub _bad ($raw, $pos, $why) {
    my $show = substr($$raw, $pos, 300);
    $show =~ s/([^\x20-\x7e\n])/sprintf '\\x%02x', ord $1/ge;
    croak "malformed HTTP response: $why, at byte $pos of:\n$show";
}


# $n GETs of $path, at most `concurrency` at a time, each on its own
# connection.  Returns status => count (0: no parseable response).
sub http_many ($n, $path, %o) {
    my $port = $o{port} // _default_port();
    my $conc = $o{concurrency} // 4;
    my $timeout = $o{timeout} // 10;
    my $req = _request_text('GET', $path, $o{headers} // {});
    my (%count, %conns, $started);
    my $sel = IO::Select->new;
    local $SIG{PIPE} = 'IGNORE';
    $started = 0;

    while ($started < $n || %conns) {
        while ($started < $n && keys %conns < $conc) {
            $started++;
            my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                          PeerPort => $port, Proto => 'tcp',
                                          Timeout => $timeout);
            if (!$s) {
                $count{0}++;
                next;
            }
            $s->blocking(0);
            $conns{refaddr $s} = { s => $s, out => $req, in => '',
                                   deadline => time + $timeout };
            $sel->add($s);
        }
        last unless %conns;

        my $wsel = IO::Select->new(map { $_->{s} }
                                   grep { $_->{out} ne '' } values %conns);
        my ($r, $w) = IO::Select->select($sel, $wsel, undef, 0.2);
        for my $s (@{$w // []}) {
            my $c = $conns{refaddr $s};
            my $k = syswrite($s, $c->{out});
            substr($c->{out}, 0, $k, '') if defined $k;
        }
        my %done;
        for my $s (@{$r // []}) {
            $done{refaddr $s} = 1 if _read_some($s, \$conns{refaddr $s}{in});
        }
        for my $c (values %conns) {
            $done{refaddr $c->{s}} = 1 if time > $c->{deadline};
        }
        for my $id (keys %done) {
            my $c = delete $conns{$id};
            $sel->remove($c->{s});
            close $c->{s};
            my $st = eval { parse_response($c->{in})->{status} } // 0;
            $count{$st}++;
        }
    }
    return wantarray ? %count : \%count;
}


# Runs curl; returns (exit code, stdout).  -1 if curl cannot be run.
# Runs a command with stdout and stderr in one pipe, stdin from /dev/null,
# killed after $secs; returns (exit code or -1 on a signal, output).
sub run_cmd ($secs, @cmd) {
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', '/dev/null';
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    my ($out, $deadline) = ('', time + $secs);
    my $sel = IO::Select->new($fh);
    while ((my $left = $deadline - time) > 0) {
        next unless $sel->can_read($left);
        last unless sysread($fh, $out, 65536, length $out);
    }
    kill 'KILL', $pid if time >= $deadline;
    close $fh;
    return (($? & 127) ? -1 : $? >> 8, $out);
}


sub write_file ($path, $text) {
    open my $fh, '>', $path or die "$path: $!";
    print {$fh} $text;
    close $fh or die "$path: $!";
}


sub curl (@args) {
    open(my $fh, '-|', 'curl', '-sS', '--max-time', '20', @args)
        or return (-1, '');
    binmode $fh;
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return ($? == -1 ? -1 : $? >> 8, $out);
}


# ---- TLS test material -------------------------------------------------------

# tls_files($dir, names => [...], other_ca => 1)
# Makes, with the openssl command, a throwaway CA (ca.pem, ca.key) and a
# certificate it signs (server.pem, server.key) for `names` (default
# localhost and 127.0.0.1; IP literals become IP SANs), and with other_ca
# a second, unrelated CA (other-ca.pem, other-ca.key) for wrong-CA tests.
# Returns (ca, ca_key, cert, key[, other_ca, other_ca_key]) => path, a hash
# in list context, a hash ref in scalar context.  Idempotent per
# directory: what exists is kept (the server certificate is remade only
# when the names differ), so several calls, or tests sharing a directory,
# agree on one CA.  Dies with openssl's output when a step fails.
sub tls_files ($dir, %opt) {
    my @names = @{$opt{names} // ['localhost', '127.0.0.1']};
    croak 'tls_files: no names' unless @names;
    croak "tls_files: bad name '$_'" for grep { !/^[\w.:*-]+\z/ } @names;
    -d $dir or croak "tls_files: no directory $dir";

    my %f = (ca => "$dir/ca.pem", ca_key => "$dir/ca.key",
             cert => "$dir/server.pem", key => "$dir/server.key");
    my $stamp = "$dir/server.names";
    my $want = join(' ', @names) . "\n";

    if (!-s $f{ca} || !-s $f{ca_key}) {
        _tls_ca($dir, 'ca', 'Portico Test CA');
        unlink $stamp;       # a new CA: the old certificate is worthless
    }
    if (!-s $f{cert} || !-s $f{key} || _read_file($stamp) ne $want) {
        _tls_server($dir, \@names);
        _write_file("$stamp.tmp", $want);
        rename "$stamp.tmp", $stamp or croak "tls_files: $stamp: $!";
    }
    if ($opt{other_ca}) {
        @f{qw(other_ca other_ca_key)} =
            ("$dir/other-ca.pem", "$dir/other-ca.key");
        _tls_ca($dir, 'other-ca', 'Portico Other CA')
            unless -s $f{other_ca} && -s $f{other_ca_key};
    }
    return wantarray ? %f : \%f;
}


# The files appear under their names only once complete (rename), so an
# interrupted run is redone, never half reused.
sub _tls_ca ($dir, $base, $cn) {
    _openssl('req', '-x509', _tls_newkey(), '-keyout', "$dir/$base.key.tmp",
             '-out', "$dir/$base.pem.tmp", '-days', '3650', '-subj', "/CN=$cn",
             '-addext', 'basicConstraints=critical,CA:TRUE',
             '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    _tls_commit($dir, "$base.key", "$base.pem");
}


sub _tls_server ($dir, $names) {
    _tls_leaf($dir, 'server', names => $names);
}


# tls_ca($dir, $base = 'ca', $cn = 'Portico Test CA')
# A CA ($dir/$base.pem, $dir/$base.key), made unless both are there
# already (tls_files' CA is base 'ca'); returns (cert, key).
sub tls_ca ($dir, $base = 'ca', $cn = 'Portico Test CA') {
    croak "tls_ca: bad base '$base'" unless $base =~ /^[\w.-]+\z/;
    _tls_ca($dir, $base, $cn)
        unless -s "$dir/$base.pem" && -s "$dir/$base.key";
    return ("$dir/$base.pem", "$dir/$base.key");
}


# tls_cert($dir, $base, names => [...], key => 'ec' | 'rsa', ca => 'ca',
#          client => 0, cn => NAME, days => 3650)
# A certificate $dir/$base.pem with its key $dir/$base.key, signed by the
# CA $dir/CA.pem (made with tls_ca or tls_files), always made anew with a
# fresh serial: subjectAltName from `names` (DNS names, wildcards
# included, IP literals as IP; none at all when empty), an EC P-256 key
# or with key => 'rsa' an RSA 2048 one, for serverAuth or with client =>
# 1 for clientAuth; subject "/O=Portico Test/CN=cn" (cn defaults to the
# first name, else $base); days => 0 gives a certificate that expires the
# second it is made.  Returns (cert, key).
sub tls_cert ($dir, $base, %opt) {
    croak "tls_cert: bad base '$base'" unless $base =~ /^[\w.-]+\z/;
    _tls_leaf($dir, $base, %opt);
    return ("$dir/$base.pem", "$dir/$base.key");
}


sub _tls_leaf ($dir, $base, %opt) {
    my @names = @{$opt{names} // []};
    my $ca = $opt{ca} // 'ca';
    croak "tls_cert: bad name '$_'" for grep { !/^[\w.:*-]+\z/ } @names;
    croak "tls_cert: no CA $dir/$ca.pem" unless -s "$dir/$ca.pem";
    my $cn = $opt{cn} // $names[0] // $base;
    croak "tls_cert: bad cn '$cn'" unless $cn =~ /^[\w.:* -]+\z/;
    my @san = map { /^[\d.]+\z|:/ ? "IP:$_" : "DNS:$_" } @names;
    _write_file("$dir/$base.ext",
                (@san ? 'subjectAltName=' . join(',', @san) . "\n" : '')
                . "basicConstraints=CA:FALSE\n"
                . "keyUsage=critical,digitalSignature"
                . (($opt{key} // 'ec') eq 'rsa' ? ',keyEncipherment' : '')
                . "\n"
                . 'extendedKeyUsage='
                . ($opt{client} ? 'clientAuth' : 'serverAuth') . "\n");
    my @newkey = ($opt{key} // 'ec') eq 'rsa'
                 ? ('-newkey', 'rsa:2048', '-nodes') : _tls_newkey();
    _openssl('req', @newkey, '-keyout', "$dir/$base.key.tmp",
             '-out', "$dir/$base.csr", '-subj', "/O=Portico Test/CN=$cn");
    # A fresh random serial: a client that saw an earlier certificate
    # from this CA must not take the new one for the same.
    my $serial = sprintf '0x%08x%08x', int rand 2**31, int rand 2**32;
    _openssl('x509', '-req', '-in', "$dir/$base.csr", '-CA', "$dir/$ca.pem",
             '-CAkey', "$dir/$ca.key", '-set_serial', $serial,
             '-days', $opt{days} // 3650, '-extfile', "$dir/$base.ext",
             '-out', "$dir/$base.pem.tmp");
    unlink "$dir/$base.csr", "$dir/$base.ext";
    _tls_commit($dir, "$base.key", "$base.pem");
}


# s_client($port, args => [...], input => TEXT, timeout => 10)
# Runs `openssl s_client -connect 127.0.0.1:PORT ARGS` with TEXT on its
# stdin (and -ign_eof, so it waits for the server to close after a
# "Connection: close" request instead of leaving at the end of TEXT);
# returns (exit code, output with stderr).
sub s_client ($port, %opt) {
    my $in = File::Temp->new(TEMPLATE => 'portico-in-XXXXXX', TMPDIR => 1);
    print {$in} $opt{input} // '';
    close $in;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', "$in" or POSIX::_exit(127);
        exec 'openssl', 's_client', '-connect', "127.0.0.1:$port",
             (defined $opt{input} ? ('-ign_eof') : ()),
             @{$opt{args} // []}
            or POSIX::_exit(127);
    }
    my ($out, $deadline) = ('', time + ($opt{timeout} // 10));
    my $sel = IO::Select->new($fh);
    while ((my $left = $deadline - time) > 0) {
        next unless $sel->can_read($left);
        last unless sysread($fh, $out, 65536, length $out);
    }
    kill 'KILL', $pid if time >= $deadline;
    close $fh;
    return (($? & 127) ? -1 : $? >> 8, $out);
}


# EC P-256: made in milliseconds, unlike RSA, and every client has it.
sub _tls_newkey () {
    return ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
            '-nodes');
}


sub _tls_commit ($dir, @files) {
    for my $f (@files) {
        chmod 0600, "$dir/$f.tmp" if $f =~ /\.key\z/;
        rename "$dir/$f.tmp", "$dir/$f" or croak "tls_files: $dir/$f: $!";
    }
}


sub _openssl (@args) {
    my ($rc, $out) = run_cmd(60, 'openssl', @args);
    croak "tls_files: openssl @args failed ($rc):\n$out" if $rc != 0;
}


# The failure output handle: what goes to stderr is also kept in $DIAG.
package Test::Portico::DiagTee {
    sub TIEHANDLE ($class) { bless {}, $class }
    sub PRINT ($self, @text) {
        my $text = join '', @text;
        $DIAG .= $text if length $DIAG < 1 << 20;
        print STDERR $text;
    }
    sub PRINTF ($self, $fmt, @args) { $self->PRINT(sprintf $fmt, @args) }
    sub BINMODE { 1 }
    sub FILENO { fileno STDERR }
}

1;
