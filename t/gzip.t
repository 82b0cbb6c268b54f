# gzip compression (routes[].compress): the Accept-Encoding negotiation,
# which responses qualify (types, min_size) and which never do (HEAD, 204,
# 304, 206, already encoded, no-transform), the head of a compressed
# response (Vary, weak ETag, no length), bodies that decompress to the
# original over HTTP/1.1 (keep-alive) and HTTP/2, a respond action as the
# producer, and a 10 MiB body with bounded worker memory, also to a client
# that stops reading halfway.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Digest::MD5 qw(md5_hex);
use IO::Socket::INET;
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use POSIX qw(WNOHANG);
use Test::More;
use Test::Portico;
use Time::HiRes qw(sleep time);

my $t = Test::Portico->new()->has_module(qw/router gzip/)->plan(70);
my $dir = $t->testdir;

# 10 MiB that deflate cannot shrink, for the slow client: the patterned
# body compresses to a few KiB, which any socket buffer holds whole.
my $rand = "$dir/random.bin";
{
    open my $in, '<:raw', '/dev/urandom' or die "/dev/urandom: $!";
    open my $out, '>:raw', $rand or die "$rand: $!";
    my $left = 10 * 1024 * 1024;
    while ($left > 0) {
        my $n = read($in, my $buf, $left < 65536 ? $left : 65536) or die;
        print {$out} $buf;
        $left -= $n;
    }
    close $out or die;
}

my $b1 = $t->backend(id => 'b1', file_paths => { '/gz/random' => $rand });

my $long = 'All work and no play makes Jack a dull boy. ' x 100;

$t->write_config(<<"EOF")->run();
workers: 1
listen: [ { address: "127.0.0.1:%%PORT_GW%%", http2: true } ]
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - name: gz
    match: { path: /gz/ }
    upstream: app
    compress: true
  - name: json-only
    match: { path: /json/ }
    upstream: app
    compress: { types: [application/json], min_size: 10, level: 9 }
  - name: off
    match: { path: /off/ }
    upstream: app
    compress: false
  - name: plain
    match: { path: /plain/ }
    upstream: app
  - name: said
    match: { path: "=/said" }
    respond:
      status: 200
      headers: { Content-Type: text/plain }
      body: "$long"
    compress: { min_size: 10 }
EOF

my $port = $t->port('GW');
my $url = "http://127.0.0.1:$port";

sub pattern ($n) {
    return substr('0123456789abcdef' x (int($n / 16) + 1), 0, $n);
}

sub gunzip_str ($in) {
    my $out;
    gunzip(\$in => \$out) or return undef;
    return $out;
}

sub get ($path, @headers) {
    return parse_response(http_get($path, port => $port,
                                   headers => [@headers]));
}

sub ce ($res) { $res->{headers}{'content-encoding'} // 'identity' }

# ---- negotiation: exactly one outcome per Accept-Encoding ----------------

my @matrix = (
    [ 'no Accept-Encoding',          [],                        'identity' ],
    [ 'gzip',                        ['gzip'],                  'gzip' ],
    [ 'GZIP',                        ['GZIP'],                  'gzip' ],
    [ 'x-gzip',                      ['x-gzip'],                'gzip' ],
    [ 'gzip;q=0',                    ['gzip;q=0'],              'identity' ],
    [ '*',                           ['*'],                     'gzip' ],
    [ '*;q=0',                       ['*;q=0'],                 'identity' ],
    [ 'gzip;q=0, *',                 ['gzip;q=0, *'],           'identity' ],
    [ '*, gzip;q=0',                 ['*, gzip;q=0'],           'identity' ],
    [ 'br',                          ['br'],                    'identity' ],
    [ 'identity',                    ['identity'],              'identity' ],
    [ 'deflate, gzip;q=0.001',       ['deflate, gzip;q=0.001'], 'gzip' ],
    # README: an element with an invalid q-value is left out of the list.
    [ 'gzip;q=1.0001 (invalid q)',   ['gzip;q=1.0001'],         'identity' ],
    [ 'gzip; Q=0.5 (OWS, upper Q)',  ['gzip; Q=0.5'],           'gzip' ],
    [ 'two fields: br, then gzip',   ['br', 'gzip'],            'gzip' ],
    [ 'two fields: gzip;q=0, then *', ['gzip;q=0', '*'],        'identity' ],
);

for my $m (@matrix) {
    my ($name, $values, $want) = @$m;
    my $res = get('/gz/x?size=2000',
                  map { ('Accept-Encoding' => $_) } @$values);
    is(ce($res), $want, "Accept-Encoding $name: $want");
}

# ---- the head and body of a compressed response --------------------------

my $res = get('/gz/x?size=5000&header.ETag=%22v1%22'
              . '&header.Accept-Ranges=bytes',
              'Accept-Encoding' => 'gzip');
is($res->{status}, 200, 'compressed: 200');
is(gunzip_str($res->{body}), pattern(5000),
   'compressed: the body decompresses to the original');
ok(!exists $res->{headers}{'content-length'}
   && ($res->{headers}{'transfer-encoding'} // '') eq 'chunked',
   'compressed: no Content-Length, chunked on HTTP/1.1');
is($res->{headers}{vary}, 'Accept-Encoding', 'compressed: Vary');
is($res->{headers}{etag}, 'W/"v1"', 'compressed: the ETag is weak');
ok(!exists $res->{headers}{'accept-ranges'}, 'compressed: no Accept-Ranges');

$res = get('/gz/x?size=5000&header.ETag=%22v1%22', );
is($res->{headers}{etag}, '"v1"', 'identity: the ETag stays strong');
is($res->{headers}{'content-length'}, 5000, 'identity: the length stays');
is($res->{headers}{vary}, 'Accept-Encoding',
   'identity: Vary all the same');

$res = get('/gz/x?size=2000&header.Vary=Accept', 'Accept-Encoding' => 'gzip');
is($res->{headers}{vary}, 'Accept, Accept-Encoding',
   'Vary: Accept-Encoding joins an existing Vary');
$res = get('/gz/x?size=2000&header.Vary=accept-encoding',
           'Accept-Encoding' => 'gzip');
is($res->{headers}{vary}, 'accept-encoding',
   'a Vary naming it already is left alone');

# ---- which types and sizes ------------------------------------------------

$res = get('/gz/x?size=2000&header.Content-Type=text/plain%3B%20charset=utf-8',
           'Accept-Encoding' => 'gzip');
is(ce($res), 'gzip', 'text/plain; charset=utf-8 matches text/*');
$res = get('/gz/x?size=2000&header.Content-Type=application/json',
           'Accept-Encoding' => 'gzip');
is(ce($res), 'gzip', 'application/json is a default type');
$res = get('/gz/x?size=2000&header.Content-Type=image/png',
           'Accept-Encoding' => 'gzip');
is(ce($res), 'identity', 'image/png is not compressed');
ok(!exists $res->{headers}{vary}, 'and gets no Vary');
$res = get('/json/x?size=2000', 'Accept-Encoding' => 'gzip');
is(ce($res), 'identity', 'types: [application/json] leaves text/plain');
$res = get('/json/x?size=2000&header.Content-Type=Application/JSON',
           'Accept-Encoding' => 'gzip');
is(ce($res), 'gzip', 'and takes application/json, case-insensitively');
$res = get('/gz/x?size=1023', 'Accept-Encoding' => 'gzip');
is(ce($res), 'identity', 'min_size 1k: 1023 bytes are not compressed');
$res = get('/gz/x?size=1024', 'Accept-Encoding' => 'gzip');
is(ce($res), 'gzip', 'min_size 1k: 1024 bytes are');
$res = get('/gz/x?size=500&chunked=1', 'Accept-Encoding' => 'gzip');
is(ce($res), 'gzip', 'an unknown length is compressed');
is(gunzip_str($res->{body}), pattern(500), 'and decompresses whole');
$res = get('/off/x?size=2000', 'Accept-Encoding' => 'gzip');
is(ce($res), 'identity', 'compress: false');
$res = get('/plain/x?size=2000', 'Accept-Encoding' => 'gzip');
ok(ce($res) eq 'identity' && !exists $res->{headers}{vary},
   'a route without compress: untouched');

# ---- never ----------------------------------------------------------------

$res = parse_response(http("HEAD /gz/x?size=2000 HTTP/1.1\r\nHost: t\r\n"
                           . "Accept-Encoding: gzip\r\n"
                           . "Connection: close\r\n\r\n", port => $port),
                      head => 1);
ok($res->{status} == 200 && ce($res) eq 'identity'
   && ($res->{headers}{'content-length'} // '') eq '2000',
   'HEAD: the identity head, with its length');
is($res->{headers}{vary}, 'Accept-Encoding', 'HEAD: with Vary');
for my $st (204, 304) {
    $res = get("/gz/x?status=$st", 'Accept-Encoding' => 'gzip');
    ok($res->{status} == $st && ce($res) eq 'identity',
       "$st: not compressed");
}
$res = get('/gz/x?size=2000&status=206&header.Content-Range=bytes%200-1999/9000',
           'Accept-Encoding' => 'gzip');
ok($res->{status} == 206 && ce($res) eq 'identity'
   && $res->{body} eq pattern(2000), '206: not compressed');
$res = get('/gz/x?size=2000&header.Content-Encoding=br',
           'Accept-Encoding' => 'gzip, br');
ok(ce($res) eq 'br' && $res->{body} eq pattern(2000)
   && !exists $res->{headers}{vary},
   'Content-Encoding: br passes as it came');
$res = get('/gz/x?size=2000&header.Cache-Control=public,%20no-transform',
           'Accept-Encoding' => 'gzip');
ok(ce($res) eq 'identity' && $res->{body} eq pattern(2000),
   'Cache-Control: no-transform is obeyed');

# ---- producers other than the proxy, and keep-alive -----------------------

$res = get('/said', 'Accept-Encoding' => 'gzip');
ok(ce($res) eq 'gzip' && gunzip_str($res->{body}) eq $long,
   'a respond action is compressed too');

# Two requests on one connection: the first response must end exactly
# where the chunked framing says for the second to be read at all.
my @two = parse_responses(http(
    "GET /gz/a?size=70000 HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n"
    . "GET /gz/b?size=3000&chunked=1 HTTP/1.1\r\nHost: t\r\n"
    . "Accept-Encoding: gzip\r\nConnection: close\r\n\r\n", port => $port));
is(scalar @two, 2, 'keep-alive: two responses on one connection');
is(md5_hex(gunzip_str($two[0]{body}) // ''), md5_hex(pattern(70000)),
   'keep-alive: the first decompresses to the original');
is(md5_hex(gunzip_str($two[1]{body}) // ''), md5_hex(pattern(3000)),
   'keep-alive: and the second');
is($two[0]{headers}{'x-conn-seq'}, $two[1]{headers}{'x-conn-seq'},
   'keep-alive: the upstream connection was reused as well');

$res = parse_response(http("GET /gz/x?size=3000 HTTP/1.0\r\nHost: t\r\n"
                           . "Accept-Encoding: gzip\r\n\r\n", port => $port));
ok(ce($res) eq 'gzip' && !exists $res->{headers}{'content-length'}
   && gunzip_str($res->{body}) eq pattern(3000),
   'HTTP/1.0: compressed, the close ends the body');

# An upstream that closes after its head: whatever the client got, it is
# not a complete body, and the worker goes on.
my $cut = http_get('/gz/x?size=5000&close_after_headers=1', port => $port,
                   headers => ['Accept-Encoding' => 'gzip']) // '';
unlike($cut, qr{^HTTP/1.1 200 .*\r\n0\r\n\r\n\z}s,
       'upstream gone after its head: no complete 200');

# ---- HTTP/2 ----------------------------------------------------------------

sub h2 ($path, $out, @args) {
    return curl('--http2-prior-knowledge', '-D', "$dir/h2.txt", '-o', $out,
                @args, "$url$path");
}

sub h2_head () {
    my %h;
    open my $fh, '<', "$dir/h2.txt" or return {};
    while (<$fh>) {
        s/\r?\n\z//;
        $h{':status'} = $1 if m{^HTTP/2 (\d+)};
        $h{lc $1} = $2 if /^([^:\s]+):\s*(.*)$/;
    }
    return \%h;
}

sub file_md5 ($path, $gz = 0) {
    my $cmd = $gz ? "gzip -dc '$path'" : "cat '$path'";
    open my $fh, '-|', "$cmd 2>/dev/null" or return '';
    binmode $fh;
    my $md5 = Digest::MD5->new->addfile($fh)->hexdigest;
    close $fh;
    return $? == 0 ? $md5 : "failed: $?";
}

my ($rc) = h2('/gz/x?size=200000', "$dir/h2.gz",
              '-H', 'Accept-Encoding: gzip');
my $h = h2_head();
ok($rc == 0 && $h->{':status'} == 200
   && ($h->{'content-encoding'} // '') eq 'gzip'
   && !exists $h->{'content-length'}, 'HTTP/2: compressed, no length');
is(file_md5("$dir/h2.gz", 1), md5_hex(pattern(200000)),
   'HTTP/2: decompresses to the original');
($rc) = h2('/gz/x?size=100000&chunked=1', "$dir/h2c.gz",
           '-H', 'Accept-Encoding: gzip');
is(file_md5("$dir/h2c.gz", 1), md5_hex(pattern(100000)),
   'HTTP/2: an unknown length too');
($rc) = h2('/gz/x?size=2000', "$dir/h2i.bin");
$h = h2_head();
ok(!exists $h->{'content-encoding'} && ($h->{'content-length'} // '') eq '2000'
   && ($h->{vary} // '') eq 'Accept-Encoding',
   'HTTP/2: no Accept-Encoding, identity with Vary');

# ---- 10 MiB, memory bounded -----------------------------------------------

my ($worker) = $t->worker_pids;
ok($worker, 'found the worker');
my $sanitized = $t->sanitized;

# README: the gzip state and buffers are about 400 KiB a request; 4 MiB
# leaves room for the allocator while a body held whole would add 10 MiB.
my $bound = 4096;

sub reset_peak () {
    if (open my $cr, '>', "/proc/$worker/clear_refs") {
        print {$cr} "5\n";
        close $cr;
    }
    return proc_kib($worker, 'VmRSS');
}

my $big = 10 * 1024 * 1024;
my $before = reset_peak();
($rc) = curl('-H', 'Accept-Encoding: gzip', '-o', "$dir/big.gz",
             "$url/gz/big?size=$big");
my $peak = proc_kib($worker, 'VmHWM');
is($rc, 0, '10 MiB: downloaded');
my ($trc, $tout) = run_cmd(30, 'gzip', '-t', "$dir/big.gz");
is($trc, 0, '10 MiB: the output passes gzip -t') or diag $tout;
my $md5 = Digest::MD5->new;
my $piece = pattern(65536);
$md5->add($piece) for 1 .. $big / 65536;
is(file_md5("$dir/big.gz", 1), $md5->hexdigest,
   '10 MiB: decompresses to the exact pattern');
ok(-s "$dir/big.gz" < $big / 50, '10 MiB: and was compressed ('
   . (-s "$dir/big.gz") . ' bytes)');
SKIP: {
    skip 'memory is not measured under sanitizers', 1 if $sanitized;
    cmp_ok($peak - $before, '<', $bound,
           "10 MiB: worker peak $peak KiB, $before KiB before");
}

# The slow client: 10 MiB of random bytes, which deflate cannot shrink,
# read 64 KiB at first; then nothing moves until it reads again. The
# bytes must wait in the upstream's socket, not in the worker.

# tx_queue and rx_queue of the sockets whose local or remote port is
# given, from /proc/net/tcp: { "LPORT:RPORT" => [tx, rx] }.
sub tcp_queues () {
    my %q;
    open my $fh, '<', '/proc/net/tcp' or return \%q;
    <$fh>;
    while (<$fh>) {
        my @f = split ' ';
        my ($lp) = $f[1] =~ /:([0-9A-F]+)$/;
        my ($rp) = $f[2] =~ /:([0-9A-F]+)$/;
        my ($tx, $rx) = split /:/, $f[4];
        $q{hex($lp) . ':' . hex($rp)} = [hex $tx, hex $rx];
    }
    return \%q;
}

$before = reset_peak();
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                              Proto => 'tcp', Timeout => 5) or die "$!";
print {$s} "GET /gz/random HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n"
           . "Connection: close\r\n\r\n";
$s->flush;
my $got = '';
while (length $got < 65536) {
    sysread($s, $got, 65536 - length $got, length $got) or last;
}
my $mine = $s->sockport;
my $b1port = $b1->port;

# Stalled: the worker's send queue to us holds bytes, its receive queue
# from the backend too, and neither changes between two looks.
my $last = '';
my $stalled = wait_until(sub {
    my $q = tcp_queues();
    my ($to_client) = map { $q->{$_} } grep { $_ eq "$port:$mine" } keys %$q;
    my @up = map { $q->{$_} } grep { /:\Q$b1port\E$/ } keys %$q;
    my $up_rx = 0;
    $up_rx += $_->[1] for @up;
    return 0 unless $to_client && $to_client->[0] > 0 && $up_rx > 0;
    my $now = "$to_client->[0]/$up_rx";
    my $same = $now eq $last;
    $last = $now;
    return $same;
}, 20, 0.2);
ok($stalled, "slow client: the worker waits (queues $last)");
my $stall_peak = proc_kib($worker, 'VmHWM');
$s->blocking(1);
while (1) {
    my $n = sysread($s, $got, 1 << 20, length $got);
    last unless $n;
}
close $s;
$peak = proc_kib($worker, 'VmHWM');
my $slow = parse_response($got);
is(ce($slow), 'gzip', 'slow client: compressed');
my $want = do {
    open my $in, '<:raw', $rand or die;
    Digest::MD5->new->addfile($in)->hexdigest;
};
is(md5_hex(gunzip_str($slow->{body}) // ''), $want,
   'slow client: all 10 MiB arrive intact');
SKIP: {
    skip 'memory is not measured under sanitizers', 2 if $sanitized;
    cmp_ok($stall_peak - $before, '<', $bound,
           "slow client: peak while stalled $stall_peak KiB,"
           . " $before KiB before");
    cmp_ok($peak - $before, '<', $bound,
           "slow client: peak at the end $peak KiB, $before KiB before");
}

# A client that leaves mid-body: the request ends (the sanitizer run
# checks that nothing leaks), and the same worker serves the next one.
$s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                           Proto => 'tcp', Timeout => 5) or die "$!";
print {$s} "GET /gz/random HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n"
           . "Connection: close\r\n\r\n";
$s->flush;
$got = '';
while (length $got < 65536) {
    sysread($s, $got, 65536 - length $got, length $got) or last;
}
close $s;
ok(wait_until(sub {
    my $r = get('/gz/x?size=2000', 'Accept-Encoding' => 'gzip');
    return ce($r) eq 'gzip' && gunzip_str($r->{body}) eq pattern(2000);
}), 'after a client left mid-body, the next request is compressed');
is(($t->worker_pids)[0], $worker, 'by the same worker');
