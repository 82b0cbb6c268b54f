#!/usr/bin/perl

# harness_selftest.t: the test harness itself, without objs/portico.
#
# Part 1 drives the mock backend through the raw HTTP helpers.  Part 2
# starts a small fake gateway (a Perl script written below) to check run(),
# stop(), reload(), status() and the automatic log check; the plan and exit
# accounting of the +1 test is checked in child perl processes, because a
# test file cannot watch its own END block.

use strict;
use warnings;
use v5.36;

use lib 't/lib';

# The child scripts below fail on purpose: their diag output is not a
# failure of the run (scripts/prove-all collects real ones).
BEGIN { delete $ENV{PT_TEST_FAILURES} }

use Cwd qw(abs_path);
use Digest::MD5 qw(md5_hex);
use IO::Select;
use IO::Socket::INET;
use IO::Socket::SSL;
use JSON::PP ();
use Test::More;
use Test::Portico;
use Time::HiRes qw(time sleep);

plan tests => 135;

my $t = Test::Portico->new();
my $json = JSON::PP->new;
my $pattern = '0123456789abcdef';


# ---- ports -------------------------------------------------------------------

my ($p1, $p2) = ($t->port('B1'), $t->port('B2'));
isnt($p1, $p2, 'named ports differ');
is($t->port('b1'), $p1, 'a name keeps its port (case-insensitively)');
my $free = free_port();
ok($free != $p1 && $free != $p2, 'free_port avoids reserved ports');
ok(IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $free,
                         Listen => 1, ReuseAddr => 1),
   'free_port is bindable');
ok(!IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $p1,
                          Listen => 1),
   'a reserved port cannot be taken by others');


# ---- backends: echo and scripted answers -------------------------------------

my $b1 = $t->backend(id => 'b1', port => $p1);
my $b2 = $t->backend(id => 'b2');                  # port from the name B2
is($b2->port, $p2, 'backend port defaults to port(ID)');
my $sent1 = 0;                                     # requests made to b1

my $t0 = time;
my $r = parse_response(http_get('/echo/x?a=1', port => $p1,
                                headers => { 'X-Test' => 'yes' }));
$sent1++;
is($r->{status}, 200, 'echo: 200');
# A forked backend once kept its accepted sockets open (a PerlIO fd count
# gone wrong), so that clients waited for their timeout instead of a close.
ok(time - $t0 < 2, 'Connection: close ends the exchange at once');
is($r->{headers}{'x-backend-id'}, 'b1', 'echo: X-Backend-Id');
my $j = $json->decode($r->{body});
is($j->{id}, 'b1', 'echo: id');
is($j->{method}, 'GET', 'echo: method');
is($j->{uri}, '/echo/x?a=1', 'echo: uri');
is($j->{headers}{'x-test'}, 'yes', 'echo: request headers');
is($j->{body_length}, 0, 'echo: body_length');
is($j->{body_md5}, md5_hex(''), 'echo: body_md5');
is($r->{headers}{'content-type'}, 'application/json', 'echo: JSON type');

$r = parse_response(http_get('/', port => $p2));
is($r->{headers}{'x-backend-id'}, 'b2', 'second backend answers as b2');

$r = parse_response(http_get('/?status=503', port => $p1));
$sent1++;
is($r->{status}, 503, 'status=503');
is($r->{reason}, 'Service Unavailable', 'status=503: reason');

$r = parse_response(http_get('/?size=100000', port => $p1));
$sent1++;
is($r->{headers}{'content-length'}, 100000, 'size: Content-Length');
ok($r->{body} eq substr($pattern x 6250, 0, 100000), 'size: body pattern');

$r = parse_response(http_get('/?size=200000&chunked=1', port => $p1));
$sent1++;
is($r->{headers}{'transfer-encoding'}, 'chunked', 'chunked: header');
ok(!exists $r->{headers}{'content-length'}, 'chunked: no Content-Length');
is(length $r->{body}, 200000, 'chunked: decoded length');
ok($r->{body} eq $pattern x 12500, 'chunked: decoded body');
ok(@{$r->{chunk_sizes}} > 1 && !grep({ $_ > 65536 } @{$r->{chunk_sizes}}),
   'chunked: several chunks of <= 64 KiB');

$r = parse_response(http_get('/?chunked=1', port => $p1));
$sent1++;
is($json->decode($r->{body})->{req_seq}, 1, 'chunked echo decodes');

$t0 = time;
$r = parse_response(http_get('/?delay=300', port => $p1));
$sent1++;
ok(time - $t0 >= 0.3 && $r->{status} == 200, 'delay=300 waits 300 ms');

$t0 = time;
$r = parse_response(http_get('/?head_delay=300&size=10', port => $p1));
$sent1++;
ok(time - $t0 >= 0.3 && $r->{body} eq '0123456789', 'head_delay=300');

$r = parse_response(http_get('/?header.X-Foo=a%20b&header.Content-Type=x/y',
                             port => $p1));
$sent1++;
is($r->{headers}{'x-foo'}, 'a b', 'header.NAME adds a header');
is($r->{headers}{'content-type'}, 'x/y', 'header.NAME replaces ours');

$r = parse_response(http_get('/?status=204', port => $p1));
$sent1++;
ok($r->{status} == 204 && $r->{body} eq ''
   && !exists $r->{headers}{'content-length'}, '204 has no body');

$r = parse_response(http("HEAD /?size=50 HTTP/1.1\r\nHost: a\r\n"
                         . "Connection: close\r\n\r\n", port => $p1),
                    head => 1);
$sent1++;
ok($r->{headers}{'content-length'} == 50 && $r->{body} eq '',
   'HEAD: length but no body');


# ---- connections: keep-alive, pipelining, closing ---------------------------

# Reads exactly one response from a kept-alive connection.
sub read_one ($s) {
    my ($buf, $deadline) = ('', time + 5);
    my $sel = IO::Select->new($s);
    while (time < $deadline) {
        my $resp = eval { parse_response($buf) };
        return $resp if $resp;
        last unless $sel->can_read(0.5)
                    && sysread($s, $buf, 65536, length $buf);
    }
    return undef;
}

my $s = http("GET /ka/1 HTTP/1.1\r\nHost: a\r\n\r\n", port => $p1,
             start => 1);
my $first = read_one($s);
print {$s} "GET /ka/2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
my $second = parse_response(http_end($s));
$sent1 += 2;
is($first->{headers}{'x-conn-seq'}, $second->{headers}{'x-conn-seq'},
   'keep-alive: same X-Conn-Seq');
is($first->{headers}{'x-req-seq'} . $second->{headers}{'x-req-seq'}, '12',
   'keep-alive: X-Req-Seq 1 then 2');

my @rs = parse_responses(http(
    "HEAD /p/1?size=7 HTTP/1.1\r\nHost: a\r\n\r\n"
    . "GET /p/2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    port => $p1), methods => [qw(HEAD GET)]);
$sent1 += 2;
is(scalar @rs, 2, 'pipelined: two responses');
is(join(',', map { $_->{headers}{'x-req-seq'} } @rs), '1,2',
   'pipelined: X-Req-Seq 1, 2');
is($rs[0]{headers}{'x-conn-seq'}, $rs[1]{headers}{'x-conn-seq'},
   'pipelined: one connection');
is($json->decode($rs[1]{body})->{uri}, '/p/2', 'pipelined: second body');
cmp_ok($rs[0]{headers}{'x-conn-seq'}, '>', $first->{headers}{'x-conn-seq'},
       'a new connection gets the next X-Conn-Seq');

$t0 = time;
my $raw = http("GET /?close=1 HTTP/1.1\r\nHost: a\r\n\r\n", port => $p1);
$sent1++;
$r = parse_response($raw);
ok($r->{headers}{connection} eq 'close' && time - $t0 < 2,
   'close=1: Connection: close, and the backend closes');

$raw = http_get('/?close_after_headers=1', port => $p1);
$sent1++;
like($raw, qr{^HTTP/1.1 200 }, 'close_after_headers: head sent');
ok(!eval { parse_response($raw) } && $@ =~ /truncated body/,
   'close_after_headers: no body');

$t0 = time;
is(http_get('/?no_response=1', port => $p1), '', 'no_response: nothing');
ok(time - $t0 < 2, 'no_response: closed at once');
$sent1++;

$t0 = time;
is(http_get('/?hang=1', port => $p1, timeout => 1), '', 'hang: nothing');
ok(time - $t0 >= 0.9 && time - $t0 < 3, 'hang: http() gave up on time');
$sent1++;

$s = http("POST /expect HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
          . "Expect: 100-continue\r\nConnection: close\r\n\r\n",
          port => $p1, start => 1);
my $cont = read_one($s);
is($cont && $cont->{status}, 100, 'Expect: 100 Continue before the body');
print {$s} 'hello';
@rs = parse_responses(http_end($s));
$sent1++;
is($json->decode($rs[-1]{body})->{body_md5}, md5_hex('hello'),
   'Expect: body read after 100');

$raw = http("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
            . "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", port => $p1);
$sent1++;
is(parse_response($raw)->{status}, 400,
   'backend rejects Content-Length with Transfer-Encoding');


# ---- bodies ------------------------------------------------------------------

my $big = join '', map { pack 'N', ($_ * 2654435761) % 4294967296 }
                   0 .. 5 * 1024 * 1024 / 4 - 1;
$raw = http("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: "
            . length($big) . "\r\nConnection: close\r\n\r\n$big",
            port => $p1, timeout => 20);
$sent1++;
$j = $json->decode(parse_response($raw)->{body});
is($j->{body_length}, 5 * 1024 * 1024, '5 MiB POST: length');
is($j->{body_md5}, md5_hex($big), '5 MiB POST: md5');

my ($off, $last) = (0, 0);
$raw = http("POST /upc HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
            . "Connection: close\r\n\r\n", port => $p1, timeout => 20,
            body_cb => sub {
                return undef if $last;
                my $piece = substr($big, $off, 100000);
                $off += length $piece;
                return sprintf("%x\r\n%s\r\n", length $piece, $piece)
                    if length $piece;
                $last = 1;
                return "0\r\nX-Trailer: t\r\n\r\n";
            });
$sent1++;
$j = $json->decode(parse_response($raw)->{body});
is($j->{body_md5}, md5_hex($big), 'chunked POST via body_cb: md5');

my @reqs = $b1->requests;
is(scalar @reqs, $sent1, 'requests(): every request logged');
is(scalar $b1->requests, $sent1, 'requests(): count in scalar context');
is($reqs[-1]{method}, 'POST', 'request log: method');
is($reqs[-1]{body_md5}, md5_hex($big), 'request log: body_md5');
is($reqs[-1]{trailers}{'x-trailer'}, 't', 'request log: trailers');
is($reqs[0]{headers}{'x-test'}, 'yes', 'request log: headers');
ok($reqs[0]{conn_seq} == 1 && $reqs[0]{req_seq} == 1 && $reqs[0]{time} > 0,
   'request log: sequence numbers and time');
ok((grep { ($_->{error} // '') =~ /Transfer-Encoding/ } @reqs),
   'request log: malformed requests logged with the error');
ok($reqs[-1]{complete}, 'request log: complete flag');


# ---- http_many ---------------------------------------------------------------

my %c = http_many(20, '/m?delay=20', port => $p2, concurrency => 5);
is_deeply(\%c, { 200 => 20 }, 'http_many: 20 x 200');
%c = http_many(6, '/?status=429', port => $p2);
is_deeply(\%c, { 429 => 6 }, 'http_many: statuses counted');
is(scalar $b2->requests, 27, 'http_many: each request reached b2');
%c = http_many(3, '/', port => free_port());
is_deeply(\%c, { 0 => 3 }, 'http_many: refused connections count as 0');


# ---- parse_response ----------------------------------------------------------

$r = parse_response("HTTP/1.1 200 OK\r\nA: 1\r\na: 2\r\nContent-Length: 2"
                    . "\r\n\r\nhiEXTRA");
is($r->{headers}{a}, '1, 2', 'repeated headers joined');
is($r->{body}, 'hi', 'Content-Length bounds the body');
is($r->{raw_headers}, "HTTP/1.1 200 OK\r\nA: 1\r\na: 2\r\n"
                      . "Content-Length: 2\r\n\r\n", 'raw_headers');
$r = parse_response("HTTP/1.0 200 OK\r\n\r\nuntil close");
is($r->{body}, 'until close', 'no length: body until close');
$r = parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    . "2;x=y\r\nab\r\n1\r\nc\r\n0\r\nT: v\r\n\r\n");
ok($r->{body} eq 'abc' && $r->{trailers}{t} eq 'v',
   'chunked with extensions and trailers');
for my $bad (["garbage\r\n\r\n", 'bad status line'],
             ["HTTP/1.1 200 OK\nA: 1\n\n", 'no end of the response head'],
             ["HTTP/1.1 200 OK\r\nA : 1\r\n\r\n", 'bad header line'],
             ["HTTP/1.1 200 OK\r\n folded\r\n\r\n", 'bad header line'],
             ["HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nab",
              'bad Content-Length'],
             ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
              'bad chunk size'],
             ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
              'truncated chunk'])
{
    ok(!eval { parse_response($bad->[0]) } && $@ =~ /\Q$bad->[1]\E/,
       "parse_response dies: $bad->[1]");
}
ok(!eval { parse_response(undef) } && $@ =~ /no response/,
   'parse_response dies on undef');


# ---- write_config ------------------------------------------------------------

$t->write_config(<<'EOF');
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
workers: 3
root: %%TESTDIR%%/x
EOF
my $conf = do { local (@ARGV, $/) = $t->config_path; <> };
my $gw = $t->port('GW');
like($conf, qr/^pid_file: portico\.pid$/m, 'config: pid_file default');
like($conf, qr/^error_log: error\.log$/m, 'config: error_log default');
like($conf, qr/^log_level: info$/m, 'config: log_level default');
like($conf, qr/^daemon: false$/m, 'config: daemon default');
ok($conf =~ /^workers: 3$/m && $conf !~ /^workers: 1$/m,
   'config: a key the test sets is not defaulted');
like($conf, qr/"127\.0\.0\.1:$gw"/, 'config: %%PORT_GW%%');
like($conf, qr/^root: \Q${\ $t->testdir}\E\/x$/m, 'config: %%TESTDIR%%');
$t->write_config("# c\n---\nworkers: 2\n");
$conf = do { local (@ARGV, $/) = $t->config_path; <> };
like($conf, qr/\A# c\n---\npid_file:/, 'config: defaults after ---');
ok(!eval { $t->write_config("a: %%PROT_GW%%\n") } && $@ =~ /PROT_GW/,
   'config: unknown placeholder dies');


# ---- stop --------------------------------------------------------------------

my $pid2 = $b2->pid;
$b2->stop;
ok(!kill(0, $pid2), 'backend stop: process gone');
ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $p2,
                          Proto => 'tcp'),
   'backend stop: port refuses');
is(scalar $b2->requests, 27, 'backend stop: log still readable');


# ---- TLS: tls_files and a TLS backend --------------------------------------

my $tdir = $t->testdir . '/tls';
mkdir $tdir or die "$tdir: $!";
my $tls = tls_files($tdir, other_ca => 1);
ok(!grep({ !-s $tls->{$_} } qw(ca ca_key cert key other_ca other_ca_key)),
   'tls_files: CA, certificate, keys and the other CA exist');
sub file_md5 ($path) {
    open my $fh, '<:raw', $path or return '';
    return Digest::MD5->new->addfile($fh)->hexdigest;
}
my %sum = map { $_ => file_md5($tls->{$_}) } qw(ca cert key other_ca);
my %again = tls_files($tdir, other_ca => 1);
ok($again{ca} eq $tls->{ca}
   && !grep({ file_md5($tls->{$_}) ne $sum{$_} } keys %sum),
   'tls_files: idempotent per directory (a hash in list context)');
my ($vrc, $vout) = run_cmd(10, 'openssl', 'verify', '-CAfile', $tls->{ca},
                           $tls->{cert});
is($vrc, 0, 'tls_files: the certificate verifies against the CA');
($vrc, $vout) = run_cmd(10, 'openssl', 'verify', '-CAfile', $tls->{other_ca},
                        $tls->{cert});
isnt($vrc, 0, 'tls_files: ... and not against the other CA');
(undef, $vout) = run_cmd(10, 'openssl', 'x509', '-noout', '-ext',
                         'subjectAltName', '-in', $tls->{cert});
like($vout, qr/DNS:localhost, IP Address:127\.0\.0\.1/,
     'tls_files: default names localhost and 127.0.0.1');
tls_files($tdir, names => ['api.test', '::1']);
(undef, $vout) = run_cmd(10, 'openssl', 'x509', '-noout', '-ext',
                         'subjectAltName', '-in', $tls->{cert});
ok($vout =~ /DNS:api\.test, IP Address:0:0:0:0:0:0:0:1/
   && file_md5($tls->{ca}) eq $sum{ca},
   'tls_files: other names remake the certificate, not the CA');
tls_files($tdir);

my $bt = $t->backend(id => 'bt', tls => { cert => $tls->{cert},
                                          key => $tls->{key} });
ok(!eval { $t->backend(id => 'bx', tls => { cert => $tls->{cert} }) }
   && $@ =~ /tls => \{ cert/, 'backend: tls needs cert and key');

# One TLS connection: sends $raw, returns what came back until the close,
# or undef if the handshake failed.
sub tls_http ($raw, %o) {
    my $s = IO::Socket::SSL->new(
        PeerAddr => '127.0.0.1', PeerPort => $bt->port, Timeout => 5,
        SSL_ca_file => $o{ca} // $tls->{ca},
        SSL_hostname => $o{name} // 'localhost',
        SSL_verifycn_name => $o{name} // 'localhost',
        SSL_verifycn_scheme => 'http') or return undef;
    print {$s} $raw;
    my ($in, $deadline) = ('', time + 10);
    while (time < $deadline) {
        last unless ($s->pending || IO::Select->new($s)->can_read(1))
                    && sysread($s, $in, 65536, length $in);
    }
    close $s;
    return $in;
}

$raw = tls_http("GET /t/1 HTTP/1.1\r\nHost: a\r\n\r\n"
                . "GET /t/2?status=201 HTTP/1.1\r\nHost: a\r\n"
                . "Connection: close\r\n\r\n");
@rs = eval { parse_responses($raw // '') };
is(join(',', map { $_->{status} } @rs), '200,201',
   'TLS backend: answers with the CA and name, scripting works');
ok(@rs == 2 && $rs[0]{headers}{'x-conn-seq'} eq $rs[1]{headers}{'x-conn-seq'}
   && $rs[0]{headers}{'x-req-seq'} . $rs[1]{headers}{'x-req-seq'} eq '12',
   'TLS backend: keep-alive gives the same X-Conn-Seq twice');
$j = eval { $json->decode($rs[0]{body}) } // {};
is(join(' ', map { $_ // '-' } @{$j->{tls} // {}}{qw(version sni)}),
   'TLSv1_3 localhost', 'TLS backend: echo shows version and SNI');
ok(defined tls_http("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                    name => '127.0.0.1'),
   'TLS backend: the certificate is good for 127.0.0.1 too');

my $body = substr($big, 0, 1024 * 1024 + 7);
$raw = tls_http("POST /tp?size=300000 HTTP/1.1\r\nHost: a\r\n"
                . "Content-Length: " . length($body) . "\r\n"
                . "Connection: close\r\n\r\n$body");
$r = eval { parse_response($raw) };
ok($r && length $r->{body} == 300000
   && $r->{body} eq substr($pattern x 18750, 0, 300000),
   'TLS backend: big response body');
my @treqs = $bt->requests;
ok(@treqs == 4 && $treqs[-1]{body_md5} eq md5_hex($body)
   && $treqs[-1]{tls}{version} eq 'TLSv1_3',
   'TLS backend: big request body, logged with its TLS facts');

ok(!defined tls_http("GET / HTTP/1.1\r\n\r\n", ca => $tls->{other_ca}),
   'TLS backend: a client trusting another CA refuses it');
ok(!defined tls_http("GET / HTTP/1.1\r\n\r\n", name => 'example.com'),
   'TLS backend: ... and so does one expecting another name');
unlike(http_get('/', port => $bt->port, timeout => 2) // '', qr{^HTTP/},
       'TLS backend: no cleartext HTTP');
is(scalar $bt->requests, 4, 'TLS backend: failed handshakes log nothing');

# Resumption needs the server context shared by the connection children
# (openssl s_client: IO::Socket::SSL does not resume TLS 1.3 sessions).
write_file("$tdir/get.txt",
           "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
my $sc = "openssl s_client -connect 127.0.0.1:" . $bt->port
         . " -CAfile '$tls->{ca}' -servername localhost -ign_eof"
         . " < '$tdir/get.txt'";
my (undef, $out1) = run_cmd(10, 'sh', '-c', "$sc -sess_out '$tdir/sess'");
my (undef, $out2) = run_cmd(10, 'sh', '-c', "$sc -sess_in '$tdir/sess'");
ok($out1 =~ /^New, /m && $out1 =~ /"resumed":false/
   && $out2 =~ /^Reused, /m && $out2 =~ /"resumed":true/,
   'TLS backend: a session resumes on the next connection');

$bt->stop;


# ---- a fake gateway: run, status, reload, stop -------------------------------

my $fake = $t->testdir . '/fake-portico';
open my $fh, '>', $fake or die "$fake: $!";
print {$fh} "#!$^X\n", fake_gateway();
close $fh;
chmod 0755, $fake;

my $g = Test::Portico->new(binary => $fake);
is($g->has_module(qw(router log)), $g, 'has_module: present modules');
$g->write_config(<<'EOF');
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
EOF
is($g->run, $g, 'run() returns the harness');
ok(-s $g->testdir . '/portico.pid', 'run: pid file written');
like(http_get('/', port => $g->port('GW')), qr/^HTTP\/1.1 200 /,
     'run: gateway port answers');
my @workers = $g->worker_pids;
is(scalar @workers, 1, 'worker_pids: one worker');
my $st = $g->status;
is($st->{generation}, 1, 'status: generation 1');
is($st->{workers}[0]{pid}, $workers[0], 'status: worker pid');
ok(!defined $g->wait_generation(2, 0.3), 'wait_generation: times out');
$g->write_config(<<'EOF');
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
# second
EOF
$g->reload;
is(eval { $g->wait_generation(2)->{generation} }, 2, 'reload: generation 2');
ok($g->wait_log(qr/reload generation 2 ok/, 2), 'wait_log: reload line');
ok(!defined $g->wait_log(qr/never logged/, 0.2), 'wait_log: times out');
like($g->stderr_log, qr/fake gateway started/, 'stderr_log');
my $gpid = $g->pid;
$g->stop;
ok(!kill(0, $gpid) && !kill(0, $workers[0]), 'stop: master and worker gone');
ok(!defined $g->pid, 'stop: pid cleared');
ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                          PeerPort => $g->port('GW'), Proto => 'tcp'),
   'stop: gateway port refuses');
$g->stop;
pass('stop is idempotent');

my $bad = Test::Portico->new(binary => $fake);
$bad->write_config("fake_fail: 1\n");
ok(!eval { $bad->run; 1 } && $@ =~ /did not start.*exit status.*cannot start/s,
   'run dies with the reason and the stderr tail');
ok(!defined $bad->try_run, 'try_run returns undef');


# ---- the automatic +1 test, in child perl processes --------------------------

my $lib = abs_path('t/lib');

# Runs a test script; returns (exit status, stdout and stderr together).
sub run_script ($body) {
    my $file = $t->testdir . '/script.pl';
    open my $sfh, '>', $file or die "$file: $!";
    print {$sfh} "use strict; use warnings; use lib '$lib';\n"
        . "use Test::More; use Test::Portico;\n"
        . "my \$t = Test::Portico->new(binary => '$fake');\n$body";
    close $sfh;
    my $out = `'$^X' '$file' 2>&1`;
    return ($? >> 8, $out);
}

my $run = <<'EOF';
$t->write_config("listen: [ { address: \"127.0.0.1:%%PORT_GW%%\" } ]\n%s");
$t->run;
EOF
my $clean = sprintf $run, '';
my $alert = sprintf $run, 'fake_alert: 1\n';

my ($rc, $out) = run_script("\$t->plan(1);\n$clean ok(1, 'body');\n");
ok($rc == 0 && $out =~ /^1\.\.2$/m
   && $out =~ /^ok 2 - no alerts in error\.log$/m,
   'clean run: N + 1 tests, the last from END') or diag $out;

($rc, $out) = run_script("\$t->plan(1);\n$alert ok(1, 'body');\n");
ok($rc != 0 && $out =~ /^not ok 2 - no alerts in error\.log$/m
   && $out =~ /\[alert\] fake alert/, 'alert: test fails with the line')
    or diag $out;

($rc, $out) = run_script("\$t->plan(1);\n\$t->allow_alerts(qr/fake alert/);"
                         . "\n$alert ok(1, 'body');\n");
ok($rc == 0 && $out =~ /^ok 2 - no alerts/m, 'allow_alerts exempts lines')
    or diag $out;

($rc, $out) = run_script("\$t->plan(1);\n ok(1, 'body');\n");
ok($rc == 0 && $out =~ /^ok 2 - gateway not started$/m,
   'never run: "gateway not started" keeps the count') or diag $out;

($rc, $out) = run_script("\$t->plan(2);\n$clean ok(1);\n\$t->stop;\n"
                         . "ok(1, 'after stop');\n");
ok($rc == 0 && $out =~ /^1\.\.3$/m
   && $out =~ /^ok 2 - no alerts in error\.log\nok 3 - after stop$/m,
   'explicit stop(): the check runs there, once') or diag $out;

($rc, $out) = run_script("\$t->plan(3);\n$clean diag 'PID=' . \$t->pid"
                         . " . ' W=' . join ',', \$t->worker_pids;\n"
                         . "ok(1);\ndie qq{boom\\n};\n");
my ($dpid, $dw) = $out =~ /PID=(\d+) W=(\d+)/;
ok($rc != 0 && $out =~ /boom/ && $dpid && !kill(0, $dpid) && !kill(0, $dw),
   'a dying test still stops the gateway and fails') or diag $out;

($rc, $out) = run_script("\$t->has_module('nosuch');\n\$t->plan(1);\n"
                         . "$clean ok(1);\n");
ok($rc == 0 && $out =~ /^1\.\.0 # SKIP no module\(s\) nosuch/m,
   'has_module: skip_all on a missing module') or diag $out;

($rc, $out) = run_script("\$t->write_config(\"fake_fail: 1\\n\");\n"
                         . "\$t->try_run and die;\n\$t->plan(1);\nok(1);\n");
ok($rc == 0 && $out =~ /^ok 2 - gateway not started$/m,
   'failed try_run: its log is not held against the test') or diag $out;


# The fake gateway: enough of Portico's process contract for the harness.
sub fake_gateway () {
    return <<'EOF';
use strict;
use warnings;
use IO::Select;
use IO::Socket::INET;

if (@ARGV && $ARGV[0] eq '-V') {
    print STDERR "portico version: fake\nmodules: core http router log\n";
    exit 0;
}
my %arg = @ARGV;
my ($prefix, $conf) = @arg{'-p', '-c'};
sub slurp { open my $f, '<', $_[0] or die "$_[0]: $!"; local $/; <$f> }
my $yaml = slurp($conf);
my %path = map { my ($v) = $yaml =~ /^$_:\s*(\S+)/m;
                 ($_ => $v =~ m{^/} ? $v : "$prefix/$v") }
           qw(pid_file error_log);
open my $log, '>>', $path{error_log} or die $!;
$log->autoflush(1);
print STDERR "fake gateway started\n";
die "fake: cannot start\n" if $yaml =~ /fake_fail/;
print {$log} "[alert] fake alert\n" if $yaml =~ /fake_alert/;

my @ls = map { IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                     LocalPort => $_, Listen => 16,
                                     ReuseAddr => 1) or die "$_: $@" }
         $yaml =~ /127\.0\.0\.1:(\d+)/g;
my ($admin) = $yaml =~ /admin:.*?127\.0\.0\.1:(\d+)/;
my $worker = fork // die;
if (!$worker) { sleep 1 while 1; }
open my $pf, '>', $path{pid_file} or die $!;
print {$pf} "$$\n";
close $pf;

my ($gen, $hup, $quit) = (1, 0, 0);
$SIG{HUP} = sub { $hup = 1 };
$SIG{QUIT} = $SIG{TERM} = sub { $quit = 1 };
my $sel = IO::Select->new(@ls);
until ($quit) {
    if ($hup) {
        $hup = 0;
        $gen++;
        print {$log} "[notice] reload generation $gen ok\n";
    }
    for my $l ($sel->can_read(0.1)) {
        my $c = $l->accept or next;
        my $req = '';
        while ($req !~ /\r\n\r\n/ && IO::Select->new($c)->can_read(1)) {
            sysread($c, $req, 4096, length $req) or last;
        }
        my $body = $l->sockport == ($admin // 0)
            ? qq({"generation": $gen, "workers": [{"pid": $worker, )
              . qq("generation": $gen}]})
            : 'fake';
        print {$c} "HTTP/1.1 200 OK\r\nContent-Length: " . length($body)
                   . "\r\nConnection: close\r\n\r\n$body";
        close $c;
    }
}
kill 'TERM', $worker;
waitpid $worker, 0;
unlink $path{pid_file};
exit 0;
EOF
}
