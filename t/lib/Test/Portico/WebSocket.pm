package Test::Portico::WebSocket;

# Test::Portico::WebSocket: a real WebSocket upstream and real clients
# for the WebSocket tests, both python3-websockets (10.4) run by Debian's
# interpreter, /usr/bin/python3 (the python3 on PATH may be a build
# without Debian's packages).
#
#   Test::More::plan(skip_all => $why) if my $why = ws_missing();
#   my $up = Test::Portico::WebSocket->upstream(dir => $t->testdir);
#   my $wss = Test::Portico::WebSocket->upstream(dir => $dir, name => 'wss',
#                                                tls => { cert => ..., key => ... });
#   ... targets: [ "127.0.0.1:${\ $up->port}" ] ...
#   my $res = ws_client('echo', "ws://127.0.0.1:$port/ws/echo");
#   my @open = grep { $_->{event} eq 'open' } $up->events;
#   my $c = ws_client_start('hold', $url);   # a client running meanwhile
#   my $line = $c->next_json(5);             # its next line, decoded
#
# The upstream (t/lib/ws_upstream.py) binds a port the kernel chooses and
# says which; it is stopped by pid in stop(), DESTROY, or at the latest
# in the END block below, and dies with the test process (PDEATHSIG).
# Clients (t/lib/ws_client.py) print their findings as JSON.

use strict;
use warnings;
use v5.36;

use Carp qw(croak);
use Config;
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Spec;
use IO::Select;
use JSON::PP ();
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken refaddr);
use Time::HiRes qw(time sleep);

use Test::Portico::Backend ();

our @EXPORT = qw(ws_missing ws_client ws_client_start);

my $PYTHON = '/usr/bin/python3';
my $LIB = File::Spec->rel2abs(dirname(__FILE__) . '/../..');
my $JSON = JSON::PP->new->canonical;
my %LIVE;


# Why the tests cannot run here (undef when they can).
sub ws_missing () {
    return "$PYTHON not installed" unless -x $PYTHON;
    system($PYTHON, '-c', 'import websockets') == 0
        or return 'python3-websockets not installed (scripts/deps)';
    return undef;
}


# Starts /usr/bin/python3 @argv with stdout on a pipe; returns (pid, fh).
sub _spawn ($stderr, @argv) {
    pipe(my $r, my $w) or croak "pipe: $!";
    my $pid = fork // croak "fork: $!";
    if ($pid == 0) {
        # Never outlive the test, even one killed by SIGKILL:
        # prctl(PR_SET_PDEATHSIG, SIGKILL), syscall 157 on x86-64.
        syscall(157, 1, 9) if $Config{archname} =~ /^x86_64-linux/;
        $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP PIPE CHLD);
        POSIX::sigprocmask(POSIX::SIG_SETMASK(), POSIX::SigSet->new);
        close $r;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>&', $w or POSIX::_exit(127);
        open STDERR, '>>', $stderr or POSIX::_exit(127);
        Test::Portico::Backend::close_fds_except(1);
        exec { $PYTHON } $PYTHON, @argv or POSIX::_exit(127);
    }
    close $w;
    return ($pid, $r);
}


# One line from $fh within $secs, or undef.
sub _line ($fh, $buf, $secs) {
    my $deadline = time + $secs;
    while ($$buf !~ /\n/) {
        my $left = $deadline - time;
        return undef if $left <= 0;
        return undef unless IO::Select->new($fh)->can_read($left);
        my $n = sysread($fh, $$buf, 65536, length $$buf);
        return undef unless $n;
    }
    $$buf =~ s/\A([^\n]*)\n//;
    return $1;
}


sub _stop_pid ($pid) {
    kill 'TERM', $pid;
    my $deadline = time + 5;
    while (time < $deadline) {
        return if waitpid($pid, WNOHANG) != 0;
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}


# ---- the upstream -----------------------------------------------------------

sub upstream ($class, %o) {
    my $dir = $o{dir} // croak 'upstream: dir => required';
    my $name = $o{name} // 'ws-upstream';
    my $log = "$dir/$name.log";
    my @tls = $o{tls} ? ('--cert', $o{tls}{cert}, '--key', $o{tls}{key})
                      : ();
    my ($pid, $fh) = _spawn("$dir/$name.err", "$LIB/ws_upstream.py",
                            '--log', $log, @tls);
    my $buf = '';
    my $line = _line($fh, \$buf, 15);
    if (!defined $line || $line !~ /^PORT (\d+)$/) {
        _stop_pid($pid);
        my $err = '';
        if (open my $e, '<', "$dir/$name.err") {
            local $/;
            $err = <$e> // '';
        }
        croak "ws_upstream.py did not start: $err";
    }
    my $self = bless { pid => $pid, port => $1, log => $log, fh => $fh,
                       owner => $$ }, $class;
    $LIVE{refaddr $self} = $self;
    weaken $LIVE{refaddr $self};
    return $self;
}

sub port ($self) { $self->{port} }
sub pid ($self)  { $self->{pid} }

# Every event it logged so far, decoded, in order.
sub events ($self) {
    my @ev;
    open my $fh, '<', $self->{log} or return ();
    while (my $line = <$fh>) {
        push @ev, $JSON->decode($line) if $line =~ /\}\s*\z/;
    }
    return @ev;
}

# Bytes /flood has sent once its count stopped moving for a second (its
# sends stalled), -1 if it sent none, undef after $secs.
sub wait_stalled ($self, $secs = 60) {
    my ($last, $since) = (-1, Time::HiRes::time());
    return Test::Portico::wait_until(sub {
        my @s = grep { $_->{event} eq 'sent' } $self->events;
        my $n = @s ? $s[-1]{bytes} : 0;
        ($last, $since) = ($n, Time::HiRes::time()) if $n != $last;
        return Time::HiRes::time() - $since >= 1 ? $n || -1 : 0;
    }, $secs);
}

sub stop ($self) {
    return unless $self->{pid} && $$ == $self->{owner};
    _stop_pid(delete $self->{pid});
    delete $LIVE{refaddr $self};
}

sub DESTROY ($self) { $self->stop }

END {
    $_ && $_->stop for values %LIVE;
}


# ---- clients ----------------------------------------------------------------

# Runs a scenario to its end (at most $o{timeout}, default 60 s); returns
# its JSON findings, or { error => ... } when it printed none.
sub ws_client ($scenario, $url, @args) {
    my ($rc, $out) = Test::Portico::run_cmd(60, $PYTHON,
                                            "$LIB/ws_client.py", $scenario,
                                            $url, @args);
    my ($last) = reverse grep { /^\{/ } split /\n/, $out // '';
    my $res = defined $last ? eval { $JSON->decode($last) } : undef;
    return $res // { error => "no result (exit $rc): " . ($out // '') };
}


# A scenario that runs while the test does more; read its lines with
# next_json, then finish() (which waits for it, or kills it).
sub ws_client_start ($scenario, $url, @args) {
    my $err = File::Spec->tmpdir . "/ws-client-$$.err";
    my ($pid, $fh) = _spawn($err, "$LIB/ws_client.py", $scenario, $url,
                            @args);
    return bless { pid => $pid, fh => $fh, buf => '', err => $err },
                 'Test::Portico::WebSocket::Client';
}


package Test::Portico::WebSocket::Client;

use v5.36;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

sub pid ($self) { $self->{pid} }

# Its next line within $secs, decoded, or undef.
sub next_json ($self, $secs) {
    my $line = Test::Portico::WebSocket::_line($self->{fh}, \$self->{buf},
                                                $secs);
    return undef unless defined $line;
    return eval { $JSON->decode($line) } // { error => "bad line: $line" };
}

# Waits up to $secs for it to exit; kills it after that.
sub finish ($self, $secs = 10) {
    my $pid = delete $self->{pid} or return;
    my $deadline = time + $secs;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            unlink $self->{err};
            return;
        }
        sleep 0.02;
    }
    Test::Portico::WebSocket::_stop_pid($pid);
    unlink $self->{err};
}

sub DESTROY ($self) { $self->finish(0) if $self->{pid} }


1;
