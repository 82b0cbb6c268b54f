#!/usr/bin/perl

# What the client gets when the upstream fails, and what the error log
# says: refused connection -> 502, connect timeout -> 504, read timeout
# -> 504, an invalid response -> 502, a close before or in the middle of
# the response (502, or a cut-short body once the head is out), the
# route's whole-request `timeout:` -> 504, and responses whose framing is
# ambiguous (RFC 9112 6.3: a proxy answers 502 rather than guess).  Every
# failure is logged at [error] with the upstream address, the request and
# its id.  A scripted raw upstream also checks that a pooled keep-alive
# connection with stray bytes, or closed by the upstream, is not reused,
# and an upstream that stops reading the request body hits
# timeouts.write -> 504.

use strict;
use warnings;
use v5.36;

use lib 't/lib';
use Test::More;
use Test::Portico;

use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use Socket qw(SHUT_WR);
use Time::HiRes qw(time sleep);

my $t = Test::Portico->new()->has_module(qw/router/)->plan(75);
my $b = $t->backend(id => 'b1');
my $json = JSON::PP->new;
my $dir = $t->testdir;

# A port bound but never listening: connections to it are refused, and no
# other process can take it while we hold it.
my $refused = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                    LocalPort => 0, Proto => 'tcp')
    or die "bind: $@";

# A listener with a backlog of 1 that never accepts: once its queue is
# full the kernel drops further SYNs, so a connect() to it hangs.
my ($blackhole, @fillers) = blackhole();

# A raw upstream that answers each request as %SCRIPT says for the last
# segment of its path: a list of byte strings, sent 0.3 s apart (\'go'
# instead waits for the test's file "go-NAME", see exchange()), and then
# the connection closes (a final 'keep' keeps it for the next request;
# a final 'await' half-closes it and waits for the gateway to close its
# side, then leaves a file "closed-NAME" in the test directory).  Other
# paths get a keep-alive 200 whose body names the path and the
# connection number; /sink/ paths are never answered, and their body is
# never read.
my $OK2 = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
my %SCRIPT = (
    'garbage'     => ["garbage\r\n\r\n"],
    'two-cl'      => ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                      . "Content-Length: 3\r\n\r\nok!"],
    'cl-list'     => ["HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok!"],
    'bad-cl'      => ["HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nok"],
    'bare-lf'     => ["HTTP/1.1 200 OK\r\nX-A: a\nb\r\nContent-Length: 2"
                      . "\r\n\r\nok"],
    'fold'        => ["HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2"
                      . "\r\n\r\nok"],
    'sp-colon'    => ["HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 2"
                      . "\r\n\r\nok"],
    'nul'         => ["HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2"
                      . "\r\n\r\nok"],
    'bad-status'  => ["HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok"],
    'cl-te'       => ["HTTP/1.1 200 OK\r\nContent-Length: 50\r\n"
                      . "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n"
                      . "0\r\n\r\n"],
    'bad-chunk'   => ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      . "2\r\nok\r\nzz\r\nmore\r\n0\r\n\r\n"],
    'late-bad-chunk' => ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
                         . "\r\n\r\n2\r\nok\r\n", \'go',
                         "zz\r\nmore\r\n0\r\n\r\n"],
    'cut-chunked' => ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      . "2\r\nok\r\n", \'go', ''],
    'stray'       => [$OK2, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"
                            . "evil", 'await'],
    'fin'         => [$OK2, '', 'await'],
);
my $raw_backend = $t->backend(id => 'raw', handler => \&raw_serve);
my $raw_port = $raw_backend->port;

my %port = (REFUSED => $refused->sockport, BLACKHOLE => $blackhole->sockport,
            RAW => $raw_port);
my $yaml = <<'EOF';
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
limits: { max_body_size: 100m }
upstreams:
  refused: { targets: [ { address: "127.0.0.1:@@REFUSED@@" } ] }
  blackhole:
    targets: [ { address: "127.0.0.1:@@BLACKHOLE@@" } ]
    timeouts: { connect: 1s }
  raw:
    targets: [ { address: "127.0.0.1:@@RAW@@" } ]
    timeouts: { read: 2s }
    keepalive: 4
  sink:
    targets: [ { address: "127.0.0.1:@@RAW@@" } ]
    timeouts: { write: 1s, read: 30s }
  slow:
    targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ]
    timeouts: { read: 1s }
  b1: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - { name: refused, match: { path: /refused/ }, upstream: refused }
  - { name: blackhole, match: { path: /blackhole/ }, upstream: blackhole }
  - { name: raw, match: { path: /raw/ }, upstream: raw }
  - { name: sink, match: { path: /sink/ }, upstream: sink }
  - { name: slow, match: { path: /slow/ }, upstream: slow }
  - name: deadline
    match: { path: /deadline/ }
    upstream: b1
    timeout: 1s
  - { name: b1, match: { path: / }, upstream: b1 }
EOF
$yaml =~ s/@@(\w+)@@/$port{$1}/g;
$t->write_config($yaml)->run();

my $b1_addr = '127.0.0.1:' . $t->port('B1');
my $raw_addr = "127.0.0.1:$raw_port";


# Connection refused: 502 with a JSON body, logged with the address.
check_error('/refused/x', 502, "127.0.0.1:$port{REFUSED}", 'refused',
            qr/refused/i);

# An upstream that never answers, timeouts.read 1s: 504.
check_error('/slow/x?hang=1', 504, $b1_addr, 'read timeout',
            qr/timed out.*read|read.*timed out/i);

# Connect timeout: the SYN is dropped, timeouts.connect 1s: 504.
SKIP: {
    skip 'the kernel does not drop SYNs to a full accept queue', 6
        unless @fillers;
    check_error('/blackhole/x', 504, "127.0.0.1:$port{BLACKHOLE}",
                'connect timeout', qr/timed out.*connect|connect.*timed out/i);
}

# An answer that is not HTTP: 502.
check_error('/raw/garbage', 502, $raw_addr, 'invalid response',
            qr/invalid/i);

# The upstream closes without answering: 502.
check_error('/b1/x?no_response=1', 502, $b1_addr, 'close before the head',
            qr/closed/i);

# Route timeout: 1s against a 3 s answer: 504.
check_error('/deadline/x?delay=3000', 504, $b1_addr, 'route timeout',
            qr/route timeout|deadline/i);

# The upstream closes after the head, Content-Length promised: the client
# gets the head, then the connection closes with the body short of it.
my ($raw, $closed) = exchange("GET /b1/cut?close_after_headers=1 HTTP/1.1\r\n"
                              . "Host: localhost\r\n\r\n", 10);
like($raw, qr{\AHTTP/1\.1 200 }, 'cut body: the head reached the client');
ok($closed, 'cut body: the client connection is closed, not left hanging');
ok(!eval { parse_response($raw); 1 } && $@ =~ /truncated body/,
   'cut body: the body is short of its Content-Length');
my ($rid) = $raw =~ /^X-Request-ID: (\S+)\r$/mi;
my $line = $rid ? $t->wait_log(qr/\Q$rid\E/, 5) : undef;
ok($line && $line =~ /\[error\]/ && $line =~ m{/b1/cut}
   && index($line, $b1_addr) >= 0,
   'cut body: logged at [error] with the upstream address')
    or diag($t->error_log);

# Response framing a proxy must not guess at (RFC 9112 6.3 item 5, and
# header lines as strict as for requests): 502, never forwarded.
for my $case (['two-cl', 'two different Content-Lengths'],
              ['cl-list', 'Content-Length list of different values'],
              ['bad-cl', 'Content-Length: abc'],
              ['bare-lf', 'bare LF in a header'],
              ['fold', 'obs-fold in a header'],
              ['sp-colon', 'space before the colon'],
              ['nul', 'NUL in a header value'],
              ['bad-status', 'two-digit status code'])
{
    my ($path, $name) = ("/raw/$case->[0]", "upstream $case->[1]");
    my ($raw) = exchange("GET $path HTTP/1.1\r\nHost: localhost\r\n"
                         . "Connection: close\r\n\r\n", 10);
    my $r = eval { parse_response($raw) };
    is($r && $r->{status}, 502, "$name: 502") or diag($raw);
    my $rid = $r && $r->{headers}{'x-request-id'};
    my $line = $rid ? $t->wait_log(qr/\Q$rid\E/, 5) : undef;
    ok($line && $line =~ /\[error\]/ && index($line, $raw_addr) >= 0
       && index($line, $path) >= 0,
       "$name: logged with the upstream address") or diag($line);
}

# Content-Length and Transfer-Encoding both: chunked wins and the
# Content-Length is not passed on (RFC 9112 6.3 item 3, "chunked wins
# over a length" in the proxy).
($raw) = exchange("GET /raw/cl-te HTTP/1.1\r\nHost: localhost\r\n"
                  . "Connection: close\r\n\r\n", 10);
my $r = eval { parse_response($raw) };
ok($r && $r->{status} == 200 && $r->{body} eq 'ok'
   && !defined $r->{headers}{'content-length'},
   'upstream Content-Length with Transfer-Encoding: chunked alone, '
   . 'no Content-Length passed on') or diag($raw);

# An invalid chunk in the same packet as the head: the head was only
# queued, so the client gets a clean 502 (README: "an upstream failure
# after the response head was queued but before any byte of it was
# written still gets a clean 502").
($raw, $closed) = exchange("GET /raw/bad-chunk HTTP/1.1\r\n"
                           . "Host: localhost\r\n\r\n", 5);
$r = eval { parse_response($raw) };
ok($r && $r->{status} == 502 && length($raw) == $r->{length},
   'upstream bad chunk behind the head: a clean 502, nothing else')
    or diag("got '$raw'");

# An invalid chunk after the head went out: the client has the head and
# the first chunk, then a close; no last chunk is invented.
($raw, $closed) = exchange("GET /raw/late-bad-chunk HTTP/1.1\r\n"
                           . "Host: localhost\r\n\r\n", 10,
                           go => 'late-bad-chunk');
like($raw, qr{\AHTTP/1\.1 200 }, 'upstream late bad chunk: head passed on')
    or diag("got '$raw'");
ok($closed, 'upstream late bad chunk: the client connection is closed');
ok(!eval { parse_response($raw); 1 } && $@ =~ /truncated/,
   'upstream late bad chunk: the body is cut short') or diag($raw);

# A chunked body cut by a close: the client sees the close before the
# last chunk; the gateway does not end the body on the upstream's behalf.
($raw, $closed) = exchange("GET /raw/cut-chunked HTTP/1.1\r\n"
                           . "Host: localhost\r\n\r\n", 10,
                           go => 'cut-chunked');
like($raw, qr{\AHTTP/1\.1 200 }, 'upstream cut chunked: head passed on');
ok($closed, 'upstream cut chunked: the client connection is closed');
ok(!eval { parse_response($raw); 1 } && $@ =~ /truncated/,
   'upstream cut chunked: no last chunk invented') or diag($raw);

# Keep-alive to the raw upstream is in use (else the next two prove
# nothing): two requests in a row share its connection.
my @conn = map { (raw_body("/raw/ka$_") =~ /conn=(\d+)/)[0] // 0 } 1, 2;
ok($conn[0] && $conn[0] == $conn[1], 'raw upstream: keep-alive reused');

# Bytes that arrive on an idle pooled connection after its response was
# complete make it unusable: the next request must not read them.
# The raw upstream waits until the gateway closed that connection.
is(raw_body('/raw/stray'), 'ok', 'stray bytes: first response intact');
ok(wait_until(sub { -e "$dir/closed-stray" }, 10),
   'stray bytes: the gateway closed the idle connection');
like(raw_body('/raw/after-stray'), qr{^/raw/after-stray conn=},
     'stray bytes: the next request gets its own response');

# An idle pooled connection the upstream closed is not handed out again.
is(raw_body('/raw/fin'), 'ok', 'upstream close when idle: first response');
ok(wait_until(sub { -e "$dir/closed-fin" }, 10),
   'upstream close when idle: the gateway closed its side too');
like(raw_body('/raw/after-fin'), qr{^/raw/after-fin conn=},
     'upstream close when idle: the next request is served');

# An upstream that reads the head and then stops reading: the body fills
# the socket buffers, nothing moves for timeouts.write (1s): 504, logged,
# well before the read timeout (30s).
my $left = 32 * 1024 * 1024;
my $piece = 'w' x 262144;
my $t_sink = time;
($raw) = http("POST /sink/x HTTP/1.1\r\nHost: localhost\r\n"
              . "Content-Length: $left\r\nConnection: close\r\n\r\n",
              port => $t->port('GW'), timeout => 25,
              body_cb => sub {
                  return undef if $left <= 0;
                  $left -= length $piece;
                  return $piece;
              });
my $sink_took = time - $t_sink;
$r = eval { parse_response($raw) };
is($r && $r->{status}, 504, 'upstream stops reading the body: 504')
    or diag(substr($raw // '', 0, 300));
my $sink_rid = $r && $r->{headers}{'x-request-id'};
my $sink_line = $sink_rid ? $t->wait_log(qr/\Q$sink_rid\E/, 5) : undef;
ok($sink_line && $sink_line =~ /\[error\]/
   && $sink_line =~ /timed out while sending/
   && index($sink_line, $raw_addr) >= 0,
   'write timeout: "timed out while sending" logged with the upstream')
    or diag($sink_line // $t->error_log);
ok($sink_took < 20, sprintf('write timeout: answered in %.1f s, not after '
                            . 'the read timeout', $sink_took));

# The gateway serves normally after all these failures.
$r = eval { parse_response(http_get('/b1/ok')) };
is($r && $r->{status}, 200, 'a good request after the failures');


# Asserts the status, the JSON error body, the X-Request-ID, and an [error]
# line naming the upstream address, the request and its id, and saying
# why ($why).  6 tests.
sub check_error ($path, $status, $addr, $name, $why) {
    my ($raw, $closed) = exchange("GET $path HTTP/1.1\r\nHost: localhost\r\n"
                                  . "Connection: close\r\n\r\n", 10);
    my $r = eval { parse_response($raw) };
    is($r && $r->{status}, $status, "$name: $status") or diag($raw);
    my $j = $r && eval { $json->decode($r->{body}) };
    ok($j && $j->{status} == $status && length($j->{error} // ''),
       "$name: JSON error body");
    my $rid = $r && $r->{headers}{'x-request-id'};
    ok($rid && $rid eq ($j->{request_id} // ''),
       "$name: request id in the header and the body");
    my $line = $rid ? $t->wait_log(qr/\Q$rid\E/, 5) : undef;
    ok($line && $line =~ /\[error\]/ && index($line, $addr) >= 0,
       "$name: logged at [error] with the upstream address $addr")
        or diag($line // $t->error_log);
    ok($line && index($line, $path) >= 0, "$name: log line names the request");
    like($line // '', $why, "$name: log line says why");
}


# Sends $raw, reads until the server closes or $timeout; returns (what it
# read, closed?).  With go => NAME, once what was read ends in a first
# chunk "2\r\nok\r\n" it lets the raw upstream's script NAME go on (the
# client has the head, so what follows happens after it went out).
sub exchange ($raw, $timeout, %o) {
    my $deadline = time + $timeout;
    my $go = $o{go};
    my $s = http($raw, port => $t->port('GW'), start => 1, timeout => 5)
        or return ('', 0);
    my $sel = IO::Select->new($s);
    # What http() read while sending is kept in the socket's glob.
    my $in = delete ${*$s}{pt_in} // '';
    my $closed = delete ${*$s}{pt_eof} ? 1 : 0;
    $s->blocking(0);
    while (!$closed && (my $left = $deadline - time) > 0) {
        next unless $sel->can_read($left);
        my $n = sysread($s, $in, 65536, length $in);
        next if !defined $n && ($!{EAGAIN} || $!{EINTR});
        $closed = 1 unless $n;
        if (defined $go && $in =~ /\r\n\r\n2\r\nok\r\n\z/) {
            write_file("$dir/go-$go", '');
            $go = undef;
        }
    }
    close $s;
    return ($in, $closed);
}


# The listener and the connections that fill its queue; no fillers when
# the queue never fills (SYNs answered whatever the backlog).
sub blackhole () {
    my $ls = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                   Listen => 1, Proto => 'tcp')
        or die "blackhole: $@";
    my @socks;
    for (1 .. 16) {
        my $s = IO::Socket::INET->new(Proto => 'tcp', Blocking => 0)
            or die "socket: $@";
        connect($s, $ls->sockname);
        push @socks, $s;
        # Established within 0.5 s: the queue had room; try one more.
        next if IO::Select->new($s)->can_write(0.5)
                && defined getpeername($s);
        return ($ls, @socks);
    }
    return ($ls);
}


# The body of a GET through the gateway ('' if it failed).
sub raw_body ($path) {
    my $r = eval { parse_response(http_get($path, timeout => 5)) };
    return $r && $r->{status} == 200 ? $r->{body} : '';
}


# One upstream connection (the raw backend's handler): requests until the
# peer closes, a script ends it, or 10 s of silence.
sub raw_serve ($c, $n) {
    my $in = '';
    while (1) {
        while ($in !~ /\r\n\r\n/) {
            return unless IO::Select->new($c)->can_read(10);
            return unless sysread($c, $in, 4096, length $in);
        }
        $in =~ s/\A(.*?)\r\n\r\n//s;
        my ($path) = $1 =~ m{\A\S+ (\S+)};
        if (($path // '') =~ m{^/sink/}) {
            sleep 30;                   # never read, never answer
            return;
        }
        my ($name) = ($path // '') =~ m{([^/]+)\z};
        my $script = $SCRIPT{$name // ''};
        if (!$script) {
            my $body = "$path conn=$n";
            syswrite($c, "HTTP/1.1 200 OK\r\nContent-Length: "
                         . length($body) . "\r\n\r\n$body");
            next;
        }
        my @steps = @$script;
        my $last = $steps[-1];
        pop @steps if $last eq 'keep' || $last eq 'await';
        for my $i (0 .. $#steps) {
            if (ref $steps[$i]) {
                wait_until(sub { -e "$dir/go-$name" }, 10, 0.01);
                next;
            }
            sleep 0.3 if $i && !ref $steps[$i - 1];
            if (length $steps[$i]) {
                syswrite($c, $steps[$i]);
            } elsif ($last eq 'await') {
                shutdown($c, SHUT_WR);  # a FIN, but we still see theirs
            }
        }
        next if $last eq 'keep';
        if ($last eq 'await') {
            # Until the gateway closes its side (EOF; stray bytes it may
            # have sent are read and dropped).
            while (IO::Select->new($c)->can_read(10)) {
                my $n = sysread($c, my $junk, 4096);
                if (!$n) {
                    write_file("$dir/closed-$name", '');
                    last;
                }
            }
        }
        return;
    }
}
