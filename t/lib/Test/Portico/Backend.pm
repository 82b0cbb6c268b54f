package Test::Portico::Backend;

# Test::Portico::Backend: a forked mock upstream for the Portico tests.
#
#   my $b = $t->backend(id => 'b1', port => $t->port('B1'));
#   ... GET /anything?status=503&delay=200 through the gateway ...
#   is(scalar $b->requests, 1);
#
# The server process accepts on 127.0.0.1:port and forks one child per
# connection, so a slow or hanging request never blocks the others.  It
# numbers connections (X-Conn-Seq) and the requests on each (X-Req-Seq),
# and appends one JSON line per request to backend-ID.log in the test
# directory.  The query string scripts the answer; see _respond().
#
# With handler => sub ($sock, $conn_seq) { ... } it is a raw server
# instead: each connection child runs the handler on the accepted socket
# (for upstreams that misbehave in ways the query string cannot script),
# killed by SIGALRM after `lifetime` seconds (default 60), so that no test
# can hang on it; it logs nothing.
#
# With tls => { cert => PEM, key => PEM } it speaks TLS (IO::Socket::SSL):
# each connection child does its own handshake, so the accept loop never
# waits on one; all share one server context, so TLS sessions resume
# across connections.  The log records and the echo body then carry
# tls => { version, sni, resumed } as well.
#
# Everything it starts lives in one process group, killed by pid in stop()
# or at the latest in the END block below.

use strict;
use warnings;
use v5.36;

use Carp qw(croak);
use Digest::MD5;
use Fcntl qw(:flock);
use File::Temp ();
use IO::Select;
use IO::Socket::INET;
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use JSON::PP ();
use POSIX qw(WNOHANG);
use Scalar::Util qw(weaken refaddr);
use Time::HiRes qw(time sleep);

use constant {
    READ_SIZE    => 65536,    # one read, and the chunk size we send
    MAX_HEAD     => 65536,    # a longer request head gets 431
    IDLE_TIMEOUT => 60,       # seconds between reads before we hang up
};

# ASCII output escapes every byte >= 0x80 as \u00XX, so header bytes that
# are not UTF-8 survive the round trip through the log unchanged.
my $JSON = JSON::PP->new->canonical->ascii;

my $PATTERN = '0123456789abcdef' x (READ_SIZE / 16);

my %REASON = (
    100 => 'Continue', 101 => 'Switching Protocols', 200 => 'OK',
    201 => 'Created', 202 => 'Accepted', 204 => 'No Content',
    206 => 'Partial Content', 301 => 'Moved Permanently', 302 => 'Found',
    304 => 'Not Modified', 307 => 'Temporary Redirect',
    400 => 'Bad Request', 401 => 'Unauthorized', 403 => 'Forbidden',
    404 => 'Not Found', 405 => 'Method Not Allowed',
    408 => 'Request Timeout', 413 => 'Content Too Large',
    429 => 'Too Many Requests', 431 => 'Request Header Fields Too Large',
    500 => 'Internal Server Error', 501 => 'Not Implemented',
    502 => 'Bad Gateway', 503 => 'Service Unavailable',
    504 => 'Gateway Timeout',
);

my %LIVE;    # refaddr => weak ref of every running backend, for END


# new(id => ID, port => PORT, [dir => DIR], [socket => BOUND_SOCKET],
#     [files => { '/path' => 'body', ... }],
#     [file_paths => { '/path' => FILE, ... }],
#     [tls => { cert => PEM_FILE, key => PEM_FILE }],
#     [handler => CODE, lifetime => SECONDS])
# socket: a socket already bound to the port (the harness's reservation);
# files: fixed bodies for exact paths, e.g. a JWKS document;
# file_paths: bodies read from FILE on every request (404 while it is
# missing), so a test changes what is served by rewriting the file;
# tls: serve TLS with that certificate (see tls_files in Test::Portico);
# handler: a raw server, CODE->($socket, $conn_seq) per connection.
sub new ($class, %opt) {
    my $id = $opt{id} // croak 'backend: id => required';
    croak "backend: bad id '$id'" unless $id =~ /^[\w.-]+\z/;
    my $port = $opt{port} // croak 'backend: port => required';

    my $tls = $opt{tls};
    croak "backend $id: handler => CODE"
        if defined $opt{handler} && ref $opt{handler} ne 'CODE';
    croak "backend $id: handler and tls do not mix"
        if $opt{handler} && $tls;
    if ($tls) {
        croak "backend $id: tls => { cert => ..., key => ... }"
            unless ref $tls eq 'HASH' && $tls->{cert} && $tls->{key};
        -r $tls->{$_} or croak "backend $id: tls $_ $tls->{$_}: not readable"
            for qw(cert key);
        # Loaded only here: cleartext tests do not depend on it.
        require IO::Socket::SSL;
        $tls = { cert => $tls->{cert}, key => $tls->{key} };
    }

    my ($tmp, $dir) = (undef, $opt{dir});
    if (!defined $dir) {
        $tmp = File::Temp->newdir('portico-b-XXXXXX', TMPDIR => 1);
        $dir = "$tmp";
    }

    # Listening before the fork: connections are queued from the moment
    # new() returns, with no start-up race. A deep queue: a forking
    # server accepts slowly (under ASan, on a busy machine), and an
    # overflowing queue drops SYNs, which turns into connect timeouts
    # (h2load's 1,000 streams in flight reach here as that many
    # connections).
    my $ls = $opt{socket};
    if ($ls) {
        $ls->listen(1024) or croak "backend $id: listen: $!";
    } else {
        $ls = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                    LocalPort => $port, Listen => 1024,
                                    ReuseAddr => 1, Proto => 'tcp')
            or croak "backend $id: cannot listen on 127.0.0.1:$port: $@";
    }

    my $self = bless {
        id    => $id,
        port  => $port,
        log   => "$dir/backend-$id.log",
        files => $opt{files} // {},
        file_paths => $opt{file_paths} // {},
        # Query parameters every request gets unless it says otherwise,
        # e.g. defaults => { delay => 300 } for a slow backend.
        defaults => $opt{defaults} // {},
        tls   => $tls,
        handler  => $opt{handler},
        lifetime => $opt{lifetime} // 60,
        owner => $$,
        tmp   => $tmp,
    }, $class;

    open my $fh, '>', $self->{log} or croak "$self->{log}: $!";
    close $fh;

    my $pid = fork // croak "backend $id: fork: $!";
    if ($pid == 0) {
        # Whatever happens, the child must not return into the test.
        eval {
            _child_reset($dir, $id, fileno $ls);
            $self->_accept_loop($ls);
        };
        POSIX::_exit(0);
    }

    # Both sides set the group, so stop() cannot race the child's setpgid.
    POSIX::setpgid($pid, $pid);
    close $ls;
    $self->{pid} = $pid;
    $LIVE{refaddr $self} = $self;
    weaken $LIVE{refaddr $self};
    return $self;
}


sub id ($self)       { $self->{id} }
sub tls ($self)      { $self->{tls} }
sub port ($self)     { $self->{port} }
sub pid ($self)      { $self->{pid} }
sub log_path ($self) { $self->{log} }


# The logged requests, oldest first (their count in scalar context).
sub requests ($self) {
    my @reqs;
    if (open my $fh, '<', $self->{log}) {
        flock $fh, LOCK_SH;
        while (my $line = <$fh>) {
            push @reqs, $JSON->decode($line);
        }
    }
    return wantarray ? @reqs : scalar @reqs;
}


sub stop ($self) {
    return $self unless $self->{pid} && $$ == $self->{owner};
    my $pid = delete $self->{pid};
    delete $LIVE{refaddr $self};

    # TERM to the server alone: it ends and reaps its connection children
    # first, so none is left a zombie under an init that does not reap.
    # KILL to the whole group is the fallback.
    kill 'TERM', $pid;
    my $deadline = time + 5;
    my $r = 0;
    while ($r == 0 && time < $deadline) {
        $r = waitpid($pid, WNOHANG);
        sleep 0.01 if $r == 0;
    }
    kill 'KILL', -$pid;
    waitpid($pid, 0) if $r == 0;
    return $self;
}


sub DESTROY ($self) {
    local ($?, $@, $!);
    $self->stop;
}


END {
    local ($?, $@, $!);
    $_->stop for grep { defined } values %LIVE;
}


sub _child_reset ($dir, $id, $keep_fd) {
    $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP QUIT USR1 USR2);
    $SIG{__DIE__} = $SIG{__WARN__} = 'DEFAULT';
    $SIG{PIPE} = 'IGNORE';       # a vanished peer is a write error
    POSIX::sigprocmask(POSIX::SIG_SETMASK(), POSIX::SigSet->new);
    POSIX::setpgid(0, 0);
    %LIVE = ();

    # A fork inherits every descriptor of the test: port reservations
    # (which would then stay bound, or listening, after their owner let
    # them go), client sockets (whose close() the server would then never
    # see) and the TAP pipe (which prove reads until every holder exits).
    open STDIN, '<', '/dev/null';
    open STDOUT, '>', '/dev/null';
    open STDERR, '>>', "$dir/backend-$id.err";
    close_fds_except(0, $keep_fd);
}


# Lets go of every descriptor above 2 but @keep, in a freshly forked
# child.  Before exec ($for_exec true) it closes them.  A child that goes
# on running Perl must not: PerlIO counts users per descriptor number, so
# once the kernel reused a number closed under a live Perl handle, close()
# on the new socket would leave it open.  There /dev/null is dup'ed over
# each one instead, which drops the socket or pipe but keeps the number.
sub close_fds_except ($for_exec, @keep) {
    my %keep = map { $_ => 1 } @keep;
    opendir my $dh, '/proc/self/fd' or return;
    my @fds = grep { /^\d+\z/ && $_ > 2 && !$keep{$_} } readdir $dh;
    closedir $dh;
    if ($for_exec) {
        POSIX::close($_) for @fds;
        return;
    }
    my $null = POSIX::open('/dev/null', POSIX::O_RDWR()) // return;
    POSIX::dup2($null, $_) for grep { $_ != $null } @fds;
}


sub _accept_loop ($self, $ls) {
    my (%kids, $stop);
    local $SIG{CHLD} = sub {
        while ((my $k = waitpid(-1, WNOHANG)) > 0) {
            delete $kids{$k};
        }
    };
    local $SIG{TERM} = sub { $stop = 1 };
    my $conn_seq = 0;

    # One context for all connection children: they inherit its session
    # ticket keys, so a client can resume on its next connection.
    my $ctx;
    if ($self->{tls}) {
        $ctx = IO::Socket::SSL::SSL_Context->new({
            SSL_server => 1,
            SSL_cert_file => $self->{tls}{cert},
            SSL_key_file => $self->{tls}{key},
        }) or die "backend $self->{id}: TLS context: "
                  . IO::Socket::SSL::errstr() . "\n";
    }

    until ($stop) {
        my $c = $ls->accept;
        if (!$c) {
            # EINTR (a child ended) retries at once; EMFILE waits a little
            sleep 0.01 unless $stop || $!{EINTR};
            next;
        }
        $conn_seq++;
        # Head and body go out in separate writes: without this, Nagle
        # holds the body until the peer's delayed ACK, 40 ms a response.
        setsockopt($c, IPPROTO_TCP, TCP_NODELAY, 1);
        my $pid = fork;
        if (!defined $pid) {
            close $c;
            sleep 0.01;
            next;
        }
        if ($pid == 0) {
            # The listening socket must die with the server, not with us.
            close $ls;
            $SIG{CHLD} = $SIG{TERM} = 'DEFAULT';
            if ($self->{handler}) {
                $SIG{ALRM} = 'DEFAULT';          # dies, whatever it does
                alarm $self->{lifetime};
                eval { $self->{handler}->($c, $conn_seq) };
                warn "handler: $@" if $@;
                POSIX::_exit(0);
            }
            eval {
                my $tls = $ctx ? _start_tls($c, $ctx) : undef;
                if (!$ctx || $tls) {
                    $self->_serve($c, $conn_seq, $tls);
                    # close_notify, as a cleartext close sends a FIN
                    $c->close(SSL_fast_shutdown => 1) if $tls;
                }
            };
            POSIX::_exit(0);
        }
        $kids{$pid} = 1;
        close $c;
    }

    close $ls;
    for my $k (keys %kids) {
        next if waitpid($k, WNOHANG) != 0;    # gone, maybe reused: hands off
        kill 'KILL', $k;
        waitpid($k, 0);
    }
}


# The server side of the handshake, in the connection child; what it
# agreed, or undef (and why, in backend-ID.err) when it failed.
sub _start_tls ($sock, $ctx) {
    if (!IO::Socket::SSL->start_SSL($sock, SSL_server => 1,
                                    SSL_reuse_ctx => $ctx,
                                    Timeout => IDLE_TIMEOUT))
    {
        warn "TLS handshake failed: " . IO::Socket::SSL::errstr() . "\n";
        return undef;
    }
    return { version => $sock->get_sslversion,
             sni     => $sock->get_servername,
             resumed => $sock->get_session_reused ? JSON::PP::true
                                                  : JSON::PP::false };
}


# One connection: keep-alive requests until either side closes.
sub _serve ($self, $sock, $conn_seq, $tls = undef) {
    my $c = { sock => $sock, buf => '', conn_seq => $conn_seq, req_seq => 0,
              tls => $tls };

    while (1) {
        my $head = _read_head($c);
        return unless defined $head;
        $c->{req_seq}++;

        my $req = ref $head ? "431 $$head" : _parse_head($head);
        if (!ref $req) {
            # Logged as well: a test must see that garbage arrived here.
            my ($status, $why) = split / /, $req, 2;
            $self->_log($c, { error => $why }, 0);
            $self->_error($c, $status, $why);
            return;
        }

        if (($req->{headers}{expect} // '') =~ /^100-continue$/i
            && $req->{framing} ne 'none')
        {
            _write($c, "HTTP/1.1 100 Continue\r\n\r\n") or return;
        }

        my $complete = _read_body($c, $req);
        $self->_log($c, $req, $complete);
        return unless $complete;
        return if $self->_respond($c, $req) eq 'close';
    }
}


# The next request head, a reference to an error string, or undef when the
# peer has gone.
sub _read_head ($c) {
    while (1) {
        $c->{buf} =~ s/\A(?:\r\n)+//;      # RFC 9112: ignore leading CRLFs
        my $end = index($c->{buf}, "\r\n\r\n");
        if ($end >= 0) {
            my $head = substr($c->{buf}, 0, $end);
            substr($c->{buf}, 0, $end + 4, '');
            return $head;
        }
        return \'request head too long' if length $c->{buf} > MAX_HEAD;
        return undef unless _fill($c);
    }
}


# Reads more into the buffer: false on EOF, error or idle timeout.  TLS
# may hold decrypted bytes that select() cannot see.
sub _fill ($c) {
    return 0 unless ($c->{tls} && $c->{sock}->pending)
                    || IO::Select->new($c->{sock})->can_read(IDLE_TIMEOUT);
    my $n = sysread($c->{sock}, $c->{buf}, READ_SIZE, length $c->{buf});
    return $n;
}


my $TOKEN = qr/[!#\$%&'*+.^_`|~0-9A-Za-z-]+/;

# Strict, like a careful origin server: a gateway that forwards ambiguous
# framing gets a 400 here, and the test sees it.
sub _parse_head ($head) {
    my ($line, @lines) = split /\r\n/, $head, -1;
    my ($method, $uri, $version) =
        $line =~ m{^($TOKEN) (\S+) HTTP/(\d\.\d)\z}
        or return "400 bad request line";

    my (%h, @list);
    for my $l (@lines) {
        my ($n, $v) = $l =~ /^($TOKEN):[ \t]*([^\r\n]*?)[ \t]*\z/
            or return "400 bad header line";
        push @list, [$n, $v];
        $h{lc $n} = exists $h{lc $n} ? "$h{lc $n}, $v" : $v;
    }

    my $req = { method => $method, uri => $uri, version => $version,
                headers => \%h, header_list => \@list, framing => 'none' };
    my ($te, $cl) = @h{'transfer-encoding', 'content-length'};

    if (defined $te) {
        return "400 both Transfer-Encoding and Content-Length" if defined $cl;
        return "400 Transfer-Encoding not ending in chunked"
            unless $te =~ /(?:^|,)[ \t]*chunked\z/i;
        $req->{framing} = 'chunked';
    } elsif (defined $cl) {
        my %v = map { $_ => 1 } split /[ \t]*,[ \t]*/, $cl;
        my ($len) = keys %v;
        return "400 bad Content-Length"
            unless keys %v == 1 && $len =~ /^\d{1,15}\z/;
        @$req{qw(framing length)} = ('length', 0 + $len);
        $req->{framing} = 'none' if $len == 0;
    }
    return $req;
}


# Streams the body through MD5: memory stays bounded whatever its size.
# Returns true once the whole body was read.
sub _read_body ($c, $req) {
    my $md5 = Digest::MD5->new;
    $req->{body_length} = 0;
    my $ok = 1;

    if ($req->{framing} eq 'length') {
        $ok = _consume($c, $req->{length}, $md5, $req);
    } elsif ($req->{framing} eq 'chunked') {
        $ok = _read_chunked($c, $md5, $req);
    }
    $req->{body_md5} = $md5->hexdigest;
    return $ok;
}


sub _consume ($c, $len, $md5, $req) {
    while ($len > 0) {
        if ($c->{buf} eq '') {
            return 0 unless _fill($c);
        }
        my $take = $len < length $c->{buf} ? $len : length $c->{buf};
        $md5->add(substr($c->{buf}, 0, $take, ''));
        $req->{body_length} += $take;
        $len -= $take;
    }
    return 1;
}


sub _read_line ($c) {
    while (1) {
        my $eol = index($c->{buf}, "\r\n");
        if ($eol >= 0) {
            my $line = substr($c->{buf}, 0, $eol);
            substr($c->{buf}, 0, $eol + 2, '');
            return $line;
        }
        return undef if length $c->{buf} > 8192 || !_fill($c);
    }
}


sub _read_chunked ($c, $md5, $req) {
    while (1) {
        my $line = _read_line($c) // return 0;
        my ($hex) = $line =~ /^([0-9A-Fa-f]{1,15})(?:[ \t]*;.*)?\z/
            or return 0;
        my $size = hex $hex;
        last if $size == 0;
        _consume($c, $size, $md5, $req) or return 0;
        (_read_line($c) // return 0) eq '' or return 0;
    }
    my %trailers;
    while (1) {
        my $line = _read_line($c) // return 0;
        last if $line eq '';
        my ($n, $v) = $line =~ /^($TOKEN):[ \t]*(.*?)[ \t]*\z/ or return 0;
        $trailers{lc $n} = $v;
    }
    $req->{trailers} = \%trailers if %trailers;
    return 1;
}


# One JSON line per request, under flock so that lines from concurrent
# connection children never interleave.  Written before the answer, so a
# test that has its response also finds the request logged.
sub _log ($self, $c, $req, $complete) {
    my %rec = (
        id          => $self->{id},
        method      => $req->{method},
        uri         => $req->{uri},
        version     => $req->{version},
        headers     => $req->{headers},
        body_length => $req->{body_length},
        body_md5    => $req->{body_md5},
        conn_seq    => $c->{conn_seq},
        req_seq     => $c->{req_seq},
        time        => time,
        complete    => $complete ? JSON::PP::true : JSON::PP::false,
    );
    $rec{trailers} = $req->{trailers} if $req->{trailers};
    $rec{error} = $req->{error} if $req->{error};
    $rec{tls} = $c->{tls} if $c->{tls};

    open my $fh, '>>', $self->{log} or return;
    flock $fh, LOCK_EX;
    syswrite $fh, $JSON->encode(\%rec) . "\n";
    close $fh;
}


sub _error ($self, $c, $status, $why) {
    _write($c, "HTTP/1.1 $status " . ($REASON{$status} // 'Error') . "\r\n"
               . "X-Backend-Id: $self->{id}\r\nX-Mock-Error: $why\r\n"
               . "Content-Length: 0\r\nConnection: close\r\n\r\n");
}


sub _query ($uri) {
    my (%q, @headers);
    my (undef, $qs) = split /\?/, $uri, 2;
    for my $pair (split /&/, $qs // '') {
        my ($k, $v) = map {
            my $s = $_ // '';
            $s =~ tr/+/ /;
            $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
            $s;
        } split /=/, $pair, 2;
        if ($k =~ /^header\.(.+)/) {
            push @headers, [$1, $v];
        } else {
            $q{$k} = $v;
        }
    }
    return (\%q, \@headers);
}


# Answers one request as its query string says:
#   status=N delay=MS head_delay=MS size=N chunked=1 close=1
#   close_after_headers=1 no_response=1 hang=1 header.NAME=VALUE
#   etag=TAG (sends ETag: "TAG", and 304 to an If-None-Match naming it)
# Returns 'close' or 'keep'.
sub _respond ($self, $c, $req) {
    my ($q, $extra) = _query($req->{uri});
    $q = { %{$self->{defaults}}, %$q };

    for my $k (qw(status delay head_delay size)) {
        my $re = $k eq 'status' ? qr/^[1-9]\d\d\z/ : qr/^\d{1,12}\z/;
        next unless defined $q->{$k} && $q->{$k} !~ $re;
        $self->_error($c, 500, "bad $k=$q->{$k}");
        return 'close';
    }
    my $status = $q->{status} // 200;
    if (defined $q->{etag}) {
        push @$extra, ['ETag', qq{"$q->{etag}"}];
        $status = 304 if index($req->{headers}{'if-none-match'} // '',
                               qq{"$q->{etag}"}) >= 0;
    }

    sleep $q->{delay} / 1000 if $q->{delay};
    if ($q->{hang}) {
        sleep 3600 while 1;            # until stop() kills the group
    }
    return 'close' if $q->{no_response};

    my ($path) = split /\?/, $req->{uri}, 2;
    my ($type, $len, $body);
    if (exists $self->{file_paths}{$path}) {
        if (open my $fh, '<:raw', $self->{file_paths}{$path}) {
            local $/;
            $body = <$fh> // '';
        } else {
            ($status, $body) = (404, '');
        }
        $type = $body =~ /^\s*[\[{]/ ? 'application/json' : 'text/plain';
    } elsif (exists $self->{files}{$path}) {
        $body = $self->{files}{$path};
        $type = $body =~ /^\s*[\[{]/ ? 'application/json' : 'text/plain';
    } elsif (defined $q->{size}) {
        ($type, $len) = ('text/plain', $q->{size});
    } else {
        $body = $JSON->encode({
            id          => $self->{id},
            method      => $req->{method},
            uri         => $req->{uri},
            headers     => $req->{headers},
            body_length => $req->{body_length},
            body_md5    => $req->{body_md5},
            conn_seq    => $c->{conn_seq},
            req_seq     => $c->{req_seq},
            ($c->{tls} ? (tls => $c->{tls}) : ()),
        });
        $type = 'application/json';
    }
    $len //= length $body;

    my $no_body = $status =~ /^1/ || $status == 204 || $status == 304;
    my $chunked = $q->{chunked} && !$no_body;
    my $conn = lc($req->{headers}{connection} // '');
    my $close = $q->{close} || $conn =~ /\bclose\b/
                || ($req->{version} eq '1.0' && $conn !~ /\bkeep-alive\b/);

    my @h = (['Server', 'portico-test-backend'],
             ['X-Backend-Id', $self->{id}],
             ['X-Conn-Seq', $c->{conn_seq}],
             ['X-Req-Seq', $c->{req_seq}]);
    if (!$no_body) {
        push @h, ['Content-Type', $type];
        push @h, $chunked ? ['Transfer-Encoding', 'chunked']
                          : ['Content-Length', $len];
    }
    push @h, ['Connection', 'close'] if $close;

    # header.NAME replaces our own header of that name, else is added; the
    # value goes out verbatim, so a test can also send a broken one.
    for my $x (@$extra) {
        my @same = grep { lc $_->[0] eq lc $x->[0] } @h;
        if (@same) {
            $same[0][1] = $x->[1];
        } else {
            push @h, $x;
        }
    }

    my $reason = $REASON{$status} // 'Status';
    my $head = "HTTP/1.1 $status $reason\r\n"
               . join('', map { "$_->[0]: $_->[1]\r\n" } @h) . "\r\n";
    _write($c, $head) or return 'close';
    return 'close' if $q->{close_after_headers};
    sleep $q->{head_delay} / 1000 if $q->{head_delay};

    if (!$no_body && $req->{method} ne 'HEAD') {
        _send_body($c, $body, $len, $chunked) or return 'close';
    }
    return $close ? 'close' : 'keep';
}


# $body, or $len bytes of the pattern when $body is undef, in pieces of
# READ_SIZE (the pattern repeats every 16 bytes, and READ_SIZE is a
# multiple of 16, so every piece starts the pattern afresh).
sub _send_body ($c, $body, $len, $chunked) {
    for (my $off = 0; $off < $len; $off += READ_SIZE) {
        my $n = $len - $off < READ_SIZE ? $len - $off : READ_SIZE;
        my $piece = defined $body ? substr($body, $off, $n)
                                  : substr($PATTERN, 0, $n);
        $piece = sprintf("%x\r\n", $n) . $piece . "\r\n" if $chunked;
        _write($c, $piece) or return 0;
    }
    return $chunked ? _write($c, "0\r\n\r\n") : 1;
}


sub _write ($c, $data) {
    while (length $data) {
        my $n = syswrite($c->{sock}, $data);
        return 0 unless $n;
        substr($data, 0, $n, '');
    }
    return 1;
}


1;
