# TLS termination end to end with curl: a request over TLS is proxied
# to a cleartext backend with X-Forwarded-Proto: https (whatever the
# client claims); ${scheme} and ${tls.*} reach templates (a respond body,
# response headers); client certificates: required (none, or one of
# another CA: the handshake fails, logged at info and counted) and
# optional (none or an unverified one gets in with empty identity
# variables; a verified one fills ${tls.client_subject} and
# ${tls.client_fingerprint}).

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(36);
my $dir = $t->testdir;

tls_ca($dir);
tls_ca($dir, 'clients', 'Portico Client CA');
tls_ca($dir, 'strangers', 'Portico Stranger CA');
tls_cert($dir, 'srv', names => ['localhost', 'api.example.com']);
tls_cert($dir, 'alice', ca => 'clients', client => 1, cn => 'alice');
tls_cert($dir, 'mallory', ca => 'strangers', client => 1, cn => 'mallory');

my $b1 = $t->backend(id => 'b1');

my $body = 'scheme=${scheme} sni=${tls.sni} protocol=${tls.protocol} '
         . 'cipher=${tls.cipher} subject=${tls.client_subject} '
         . 'fp=${tls.client_fingerprint}\n';

$t->write_config(<<"EOF")->run();
listen:
  - address: "127.0.0.1:%%PORT_TLS%%"
    tls:
      certificates: [ { cert: $dir/srv.pem, key: $dir/srv.key } ]
  - address: "127.0.0.1:%%PORT_REQ%%"
    tls:
      certificates: [ { cert: $dir/srv.pem, key: $dir/srv.key } ]
      client_ca: $dir/clients.pem
      client_verify: required
  - address: "127.0.0.1:%%PORT_OPT%%"
    tls:
      certificates: [ { cert: $dir/srv.pem, key: $dir/srv.key } ]
      client_ca: $dir/clients.pem
      client_verify: optional
  - address: "127.0.0.1:%%PORT_PLAIN%%"
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
upstreams:
  b1: { targets: [ "127.0.0.1:%%PORT_B1%%" ] }
routes:
  - name: proxied
    match: { path: /api/ }
    upstream: b1
  - name: info
    match: { path: /info }
    respond: { status: 200, body: "$body" }
    response_headers:
      set: { X-TLS-Protocol: "\${tls.protocol}", X-Scheme: "\${scheme}" }
EOF

sub get ($port, $path, @extra) {
    # Failures are expected here: their reasons are not for the output.
    open my $saved, '>&', \*STDERR or die "dup: $!";
    open STDERR, '>', '/dev/null' or die "/dev/null: $!";
    my ($rc, $out) = curl('-i', '--cacert', "$dir/ca.pem",
                          '--resolve', "localhost:$port:127.0.0.1",
                          '--resolve', "api.example.com:$port:127.0.0.1",
                          @extra, "https://localhost:$port$path");
    open STDERR, '>&', $saved or die "dup: $!";
    return ($rc, $rc == 0 ? parse_response($out) : undef);
}

# Proxying.
my ($rc, $r) = get($t->port('TLS'), '/api/x', '-H',
                   'X-Forwarded-Proto: http');
is($rc, 0, 'curl over TLS');
is($r && $r->{status}, 200, 'proxied: 200');
my ($seen) = $b1->requests;
is($seen->{headers}{'x-forwarded-proto'}, 'https',
   'the backend sees X-Forwarded-Proto: https (not the client\'s value)');

my $raw = http_get('/api/y', port => $t->port('PLAIN'));
($seen) = reverse $b1->requests;
is($seen->{headers}{'x-forwarded-proto'}, 'http',
   '... and http from the cleartext listener');

# Variables.
my $fp_alice = fingerprint("$dir/alice.pem");
my $curl_cn = sub ($rc, $r) { $r ? $r->{body} : "curl exit $rc" };

($rc, $r) = get($t->port('TLS'), '/info', '--tlsv1.3');
is($r && $r->{status}, 200, '/info over TLS 1.3');
like($curl_cn->($rc, $r),
     qr/^scheme=https sni=localhost protocol=TLSv1\.3 cipher=TLS_AES_\d+_GCM_SHA\d+ subject= fp=$/,
     '${scheme} ${tls.sni} ${tls.protocol} ${tls.cipher}; no client '
     . 'certificate: empty identity');
is($r && $r->{headers}{'x-tls-protocol'}, 'TLSv1.3',
   '${tls.protocol} in a response header');
is($r && $r->{headers}{'x-scheme'}, 'https', '${scheme} in a response header');

($rc, $r) = get($t->port('TLS'), '/info', '--tlsv1.2', '--tls-max', '1.2');
like($curl_cn->($rc, $r),
     qr/^scheme=https sni=localhost protocol=TLSv1\.2 cipher=ECDHE-ECDSA-AES\d+-GCM-SHA\d+ /,
     'over TLS 1.2: its protocol and cipher');

($rc, $r) = curl('-sS', '--cacert', "$dir/ca.pem", '--resolve',
                 "api.example.com:" . $t->port('TLS') . ':127.0.0.1',
                 "https://api.example.com:" . $t->port('TLS') . '/info');
like($r // '', qr/ sni=api\.example\.com /, '${tls.sni}: the name sent');

$raw = http_get('/info', port => $t->port('PLAIN'));
like(parse_response($raw)->{body},
     qr/^scheme=http sni= protocol= cipher= subject= fp=$/,
     'cleartext: scheme http, every ${tls.*} empty');

# Client certificates, required.
($rc, $r) = get($t->port('REQ'), '/info', '--cert', "$dir/alice.pem",
                '--key', "$dir/alice.key");
is($r && $r->{status}, 200, 'required: a certificate of the client CA gets '
                            . 'in');
like($curl_cn->($rc, $r), qr/ subject=CN=alice,O=Portico Test fp=$fp_alice$/,
     '... with its subject (RFC 2253) and SHA-256 fingerprint');

for my $case (['no certificate', []],
              ['a certificate of another CA',
               ['--cert', "$dir/mallory.pem", '--key', "$dir/mallory.key"]])
{
    my ($what, $args) = @$case;
    for my $v (['1.3', ['--tlsv1.3']], ['1.2', ['--tls-max', '1.2']]) {
        ($rc, $r) = get($t->port('REQ'), '/info', @{$v->[1]}, @$args);
        isnt($rc, 0, "required, $what, TLS $v->[0]: the handshake fails");
        ok(!$r, '... and no response');
    }
}

# With TLS 1.3 the client is done before the server has checked its
# certificate: the server's line may come after curl returned.
my @failed;
wait_until(sub {
    @failed = grep { /TLS handshake failed/ } split /\n/, $t->error_log;
    return @failed >= 4;
});
is(scalar(grep { /\[info\] \d+: TLS handshake failed: peer did not return a certificate, client: 127\.0\.0\.1$/ } @failed),
   2, 'no certificate: logged at info, twice');
is(scalar(grep { /\[info\] \d+: TLS handshake failed: certificate verify failed: unable to get local issuer certificate, client: 127\.0\.0\.1$/ } @failed),
   2, 'a stranger\'s certificate: logged at info with the reason, twice');
is(scalar(grep { !/\[info\]/ } @failed), 0, 'never louder than info');

my $st = $t->status;
is($st && $st->{tls}{failed}, 4, '/status counts the four failures');

# Client certificates, optional.
($rc, $r) = get($t->port('OPT'), '/info');
is($r && $r->{status}, 200, 'optional: no certificate gets in');
like($curl_cn->($rc, $r), qr/ subject= fp=$/, '... unidentified');

($rc, $r) = get($t->port('OPT'), '/info', '--cert', "$dir/alice.pem",
                '--key', "$dir/alice.key");
like($curl_cn->($rc, $r), qr/ subject=CN=alice,O=Portico Test fp=$fp_alice$/,
     'optional: a verified certificate is identified');

($rc, $r) = get($t->port('OPT'), '/info', '--cert', "$dir/mallory.pem",
                '--key', "$dir/mallory.key");
is($r && $r->{status}, 200, 'optional: a certificate that does not verify '
                            . 'gets in');
like($curl_cn->($rc, $r), qr/ subject= fp=$/, '... without an identity');
ok($t->wait_log(qr/\[info\] \d+: client certificate not verified \(client_verify: optional\): unable to get local issuer certificate, client: 127\.0\.0\.1, TLSv1\.3 TLS_/),
   '... logged at info');

# Resumed sessions keep the identity (it is in the session).
my $sess = "$dir/alice.sess";
my $req = "GET /info HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
my ($src, $out) = s_client($t->port('REQ'), input => $req,
                           args => ['-cert', "$dir/alice.pem", '-key',
                                    "$dir/alice.key", '-sess_out', $sess]);
like($out, qr/subject=CN=alice,O=Portico Test fp=$fp_alice/,
     's_client with a client certificate: identified');
($src, $out) = s_client($t->port('REQ'), input => $req,
                        args => ['-sess_in', $sess]);
like($out, qr/^Reused, TLSv1\.3/m, 'its session resumes');
like($out, qr/subject=CN=alice,O=Portico Test fp=$fp_alice/,
     '... with the identity of the certificate it was made with');

# A session made on a listener without client certificates does not
# open one that requires them.
my $sess2 = "$dir/anon.sess";
s_client($t->port('TLS'), input => $req, args => ['-sess_out', $sess2]);
($src, $out) = s_client($t->port('REQ'), input => $req,
                        args => ['-sess_in', $sess2]);
unlike($out, qr/^Reused/m, 'a session of another listener is not resumed');
unlike($out, qr/HTTP\/1\.1 200/, '... and without a certificate, no answer');


sub fingerprint ($pem) {
    my ($rc, $o) = run_cmd(10, 'openssl', 'x509', '-in', $pem, '-noout',
                           '-fingerprint', '-sha256');
    my ($hex) = $o =~ /Fingerprint=([0-9A-F:]+)/;
    $hex //= 'none';
    $hex =~ s/://g;
    return lc $hex;
}
