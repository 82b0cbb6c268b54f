# HTTP/2 to clients (h2c with prior knowledge): curl --http2-prior-knowledge
# through the router and the proxy to an HTTP/1.1 backend: the request as
# the backend sees it (Host from :authority, cookie crumbs joined, the
# request id), bodies both ways (50 MiB down, 20 MiB up, the worker's
# memory bounded meanwhile), HEAD, 404/405 JSON errors, rewrites, response
# header edits, one access log line per stream, h2load with 10 streams on
# each of 100 connections, and HTTP/1.1 still served on the same port.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Digest::MD5;
use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Test::Portico;
use Time::HiRes qw(sleep time);

my $t = Test::Portico->new()->has_daemon('h2load')->has_daemon('nghttp')
                          ->plan(49);
my $b1 = $t->backend(id => 'b1');

$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%", http2: true } ]
limits: { max_body_size: 100m }
access_log: { path: access.log, format: json, buffer: 0 }
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - name: hello
    match: { path: "=/hello" }
    respond: { status: 200, body: "hello ${remote_addr} ${method} ${path}\n" }
  - name: api
    match: { path: /api/ }
    rewrite: { strip_prefix: /api }
    request_headers: { set: { X-Route: "${route}" } }
    response_headers: { set: { X-Frame-Options: DENY }, remove: [X-Conn-Seq] }
    upstream: app
  - name: post-only
    match: { path: "=/post-only", methods: [POST] }
    respond: { status: 200, body: "posted\n" }
EOF

my $port = $t->port('GW');
my $dir = $t->testdir;
my $url = "http://127.0.0.1:$port";
my $py = '/usr/bin/python3';

sub h2 (@args) {
    return curl('--http2-prior-knowledge', '-D', "$dir/h.txt", @args);
}

sub head_lines () {
    open my $fh, '<', "$dir/h.txt" or return ('', {});
    my ($status, %h) = ('');
    while (<$fh>) {
        s/\r?\n\z//;
        if (m{^HTTP/(\S+) (\d+)}) { $status = "$1 $2"; %h = (); next }
        $h{lc $1} = $2 if /^([^:]+):\s*(.*)$/;
    }
    return ($status, \%h);
}

# ---- a request through the proxy ------------------------------------------

my ($rc, $out) = h2("$url/api/echo?q=1", '-H', 'X-Request-ID: h2-test-1');
my ($st, $h) = head_lines();
is($st, '2 200', 'GET over h2c answered 200 by HTTP/2');
my $echo = eval { decode_json($out) } // {};
is($echo->{uri}, '/echo?q=1', 'the rewrite reached the backend');
is($echo->{headers}{host}, "127.0.0.1:$port", ':authority became Host');
is($echo->{headers}{'x-request-id'}, 'h2-test-1',
   'the request id went upstream');
is($h->{'x-request-id'}, 'h2-test-1', 'and came back to the client');
is($echo->{headers}{'x-route'}, 'api', 'request header edit applied');
is($echo->{headers}{'x-forwarded-proto'}, 'http', 'X-Forwarded-Proto');
is($h->{'x-frame-options'}, 'DENY', 'response header set');
ok(!exists $h->{'x-conn-seq'}, 'response header removed');
ok(!exists $h->{connection} && !exists $h->{'transfer-encoding'},
   'no connection-specific field in the HTTP/2 response');

# Cookie crumbs (RFC 9113 8.2.3) and a field that must not pass: the raw
# client sends them as separate fields.
my $raw = decode_json(run_py('request', 'GET', '/api/c', 'cookie=a=1',
                             'x-one=1', 'cookie=b=2', 'cookie=c=3'));
my $ce = eval { decode_json($raw->{1}{data}) } // {};
is($ce->{headers}{cookie}, 'a=1; b=2; c=3', 'cookie crumbs joined with "; "');
is($ce->{headers}{'x-one'}, '1', 'other fields pass');

# ---- HEAD, errors, the local action ----------------------------------------

my $hd = decode_json(run_py('request', 'HEAD', '/api/head?size=1000'));
is($hd->{1}{status}, 200, 'HEAD answered');
is($hd->{1}{headers}{'content-length'}, '1000', 'HEAD keeps the length');
is_deeply($hd->{1}{frames}, ['HEADERS'],
          'and ends the stream with its HEADERS, no DATA');

($rc, $out) = h2("$url/nowhere");
($st, $h) = head_lines();
is($st, '2 404', '404 for no route');
like($out, qr/^\{"error":"not found","status":404,"request_id":"\w+"\}$/,
     '404 body is the JSON error');

($rc, $out) = h2("$url/post-only");
($st, $h) = head_lines();
is($st, '2 405', '405 for a method no route takes');
is($h->{allow}, 'POST', 'with Allow');

($rc, $out) = h2("$url/hello");
is($out, "hello 127.0.0.1 GET /hello\n", 'respond action with variables');

# ---- bodies both ways, memory bounded -----------------------------------

my ($worker) = $t->worker_pids;
ok($worker, 'found the worker');

# (exit code, resident KiB before, peak during): the peak is VmHWM after a
# clear_refs reset, so no spike between samples is missed.
sub with_rss_peak ($cmd) {
    my $before = proc_kib($worker, 'VmRSS');
    if (open my $cr, '>', "/proc/$worker/clear_refs") {
        print {$cr} "5\n";
        close $cr;
    }
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        exec('/bin/sh', '-c', $cmd) or POSIX::_exit(127);
    }
    my ($status, $deadline) = (-1, time + 90);
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            $status = $? >> 8;
            last;
        }
        sleep 0.05;
    }
    if ($status < 0) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    return ($status, $before, proc_kib($worker, 'VmHWM'));
}

# README: a 50 MiB body either way keeps the worker's peak within 4 MiB
# of what it held before (a body held whole would add 50); sanitizer
# builds use other memory and are not measured.
my $sanitized = $t->sanitized;
my $size = 50 * 1024 * 1024;
my $pattern = '0123456789abcdef' x 4096;
my $md5 = Digest::MD5->new;
for (my $off = 0; $off < $size; $off += length $pattern) {
    $md5->add(substr($pattern, 0, $size - $off < length $pattern
                                   ? $size - $off : length $pattern));
}
my $want_down = $md5->hexdigest;

my ($status, $before, $peak) = with_rss_peak(
    "curl -sS --http2-prior-knowledge --max-time 60 -o $dir/down.bin"
    . " '$url/api/big?size=$size'");
is($status, 0, '50 MiB download over h2 completed');
is(-s "$dir/down.bin", $size, 'every byte arrived');
my $got = do {
    open my $in, '<', "$dir/down.bin" or die;
    binmode $in;
    Digest::MD5->new->addfile($in)->hexdigest;
};
is($got, $want_down, 'download intact');
SKIP: {
    skip 'memory is not measured under sanitizers', 1 if $sanitized;
    cmp_ok($peak - $before, '<', 4096,
           "download: worker peak $peak KiB, $before KiB before");
}

my $up = "$dir/up.bin";
open my $fh, '>', $up or die;
binmode $fh;
my $chunk = join '', map { chr(($_ * 7) & 0xff) } 0 .. 65535;
print $fh $chunk for 1 .. 320;       # 20 MiB
close $fh;
my $want_up = do {
    open my $in, '<', $up or die;
    binmode $in;
    Digest::MD5->new->addfile($in)->hexdigest;
};

($status, $before, $peak) = with_rss_peak(
    "curl -sS --http2-prior-knowledge --max-time 60 -o $dir/up.json"
    . " --data-binary \@$up -H 'Content-Type: application/octet-stream'"
    . " '$url/api/upload'");
is($status, 0, '20 MiB upload over h2 completed');
my $ue = eval { decode_json(Test::Portico::_read_file("$dir/up.json")) }
         // {};
is($ue->{body_length}, 20 * 1024 * 1024, 'the backend got all of it');
is($ue->{body_md5}, $want_up, 'upload intact');
SKIP: {
    skip 'memory is not measured under sanitizers', 1 if $sanitized;
    cmp_ok($peak - $before, '<', 4096,
           "upload: worker peak $peak KiB, $before KiB before");
}

# 100 uploads of 2 MiB at once on one connection (200 MiB in all): what
# the worker holds grows with the streams (each has one 64 KiB window
# block, and its proxying two more), not with the bodies.
my $two = "$dir/two.bin";
open $fh, '>', $two or die;
binmode $fh;
print $fh $chunk for 1 .. 32;       # 2 MiB
close $fh;
($status, $before, $peak) = with_rss_peak(
    "h2load -n 100 -c 1 -m 100 -d $two '$url/api/many' > $dir/many.txt");
my $many = Test::Portico::_read_file("$dir/many.txt");
like($many, qr/status codes: 100 2xx, 0 3xx, 0 4xx, 0 5xx/,
     '100 concurrent 2 MiB uploads on one connection, all 200');
SKIP: {
    skip 'memory is not measured under sanitizers', 1 if $sanitized;
    # 100 streams x (64 KiB + 2 x 64 KiB) = 19 MiB at most, plus sockets
    cmp_ok($peak - $before, '<', 24 * 1024,
           "100 uploads: worker peak $peak KiB, $before KiB before");
}

# A body without a length goes upstream chunked.
my $rawup = decode_json(run_py('request', 'POST', '/api/nolen'));
is($rawup->{1}{status}, 200, 'POST with END_STREAM on HEADERS answered');

# ---- access log: one line per stream ----------------------------------

# Three requests on one connection (nghttp sends them at once), each with
# its own id. (curl 7.88 cannot reuse an h2c connection for a second URL.)
($rc, $out) = run_cmd(20, 'nghttp', '-n', '-s', "$url/api/log-a",
                      "$url/log-b", "$url/api/log-c");
is($rc, 0, 'three requests on one h2 connection (nghttp)');

my @three;
wait_until(sub {
    @three = sort { $a->{path} cmp $b->{path} }
             grep { ($_->{path} // '') =~ m{^/log-[abc]$} }
             map { eval { decode_json($_) } // () }
             split /\n/, Test::Portico::_read_file("$dir/access.log");
    @three >= 3;
}, 5);
is_deeply([map { $_->{path} } @three], [qw(/log-a /log-b /log-c)],
          'paths logged (after the rewrite)');
is_deeply([map { $_->{status} } @three], [200, 404, 200],
          'statuses logged per stream');
is_deeply([map { $_->{method} } @three], [qw(GET GET GET)],
          'methods logged');
ok(!(grep { !$_->{bytes_sent} || $_->{bytes_sent} < 20 } @three),
   'bytes_sent counted per stream');
my %ids = map { $_->{request_id} => 1 } @three;
is(scalar keys %ids, 3, 'each stream has its own request id');

# Every request id of the whole file appears once.
my %count;
$count{$_->{request_id} // 'none'}++
    for map { eval { decode_json($_) } // () }
        split /\n/, Test::Portico::_read_file("$dir/access.log");
is((grep { $_ > 1 } values %count), 0, 'LOG ran once per stream');

# ---- h2load: 10 streams on each of 100 connections -------------------------

my ($hrc, $hout) = run_cmd(60, 'h2load', '-n', '1000', '-c', '100',
                           '-m', '10', "$url/api/load");
like($hout, qr/requests: 1000 total, 1000 started, 1000 done, 1000 succeeded/,
     'h2load: 1000 requests over 100 connections, 10 streams each');
like($hout, qr/status codes: 1000 2xx, 0 3xx, 0 4xx, 0 5xx/,
     'every response 200');
($hrc, $hout) = run_cmd(60, 'h2load', '-n', '2000', '-c', '2', '-m', '100',
                        "$url/hello");
like($hout, qr/status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx/,
     'h2load: 100 streams on one connection, every response 200');

# ---- HTTP/1.1 on the same port -----------------------------------------

my $r = parse_response(http_get('/hello', port => $port));
is($r->{status}, 200, 'HTTP/1.1 still served on the http2 listener');
is($r->{body}, "hello 127.0.0.1 GET /hello\n", 'with the same route');
$r = parse_response(http_get('/api/h1', port => $port));
is($r->{status}, 200, 'and proxied');

# A request that starts like the preface but is not one is HTTP/1.
$r = parse_response(http("PRI /x HTTP/1.1\r\nHost: a\r\nConnection: close"
                         . "\r\n\r\n", port => $port));
is($r->{status}, 404, 'a near-preface is read as HTTP/1.1');

# A listener without http2: the preface is just a bad HTTP/1 request.
my $raw_out = http("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", port => $port,
                   timeout => 2);
like($raw_out // '', qr/^\x00\x00.\x04/s,
     'the http2 listener answers the preface with SETTINGS');

# ---- the worker is still there -------------------------------------------

is(kill(0, $worker), 1, 'the worker lived through it all');
my @workers = $t->worker_pids;
is_deeply(\@workers, [$worker], 'the same single worker');


sub run_py (@args) {
    my ($code, $text) = run_cmd(30, $py, 't/lib/h2raw.py', $port, @args);
    $text =~ s/.*\n(?=\{)//s;       # keep the JSON line
    return $text || '{}';
}
