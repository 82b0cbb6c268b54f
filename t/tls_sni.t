# TLS termination, with openssl s_client: SNI picks the certificate
# (exact name, one-label wildcard, the default for no SNI or an unknown
# name), RSA and ECDSA certificates for one name chosen by the client's
# signature algorithms, ALPN http/1.1 (and a fatal alert for a client
# that offers only protocols the listener lacks), TLS 1.0 and 1.1
# refused, `protocols: [TLSv1.3]` refusing 1.2; failed handshakes
# counted in /status and logged at info.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(27);
my $dir = $t->testdir;

tls_ca($dir);
tls_cert($dir, 'def', names => ['default.test'], cn => 'def');
tls_cert($dir, 'api-ec', names => ['api.example.com'], cn => 'api-ec');
tls_cert($dir, 'api-rsa', names => ['api.example.com'], cn => 'api-rsa',
         key => 'rsa');
tls_cert($dir, 'wild', names => ['*.example.com'], cn => 'wild');

$t->write_config(<<"EOF")->run();
listen:
  - address: "127.0.0.1:%%PORT_TLS%%"
    tls:
      certificates:
        - { cert: $dir/def.pem, key: $dir/def.key }
        - { cert: $dir/api-ec.pem, key: $dir/api-ec.key }
        - { cert: $dir/api-rsa.pem, key: $dir/api-rsa.key }
        - { cert: $dir/wild.pem, key: $dir/wild.key }
  - address: "127.0.0.1:%%PORT_TLS13%%"
    tls:
      certificates: [ { cert: $dir/def.pem, key: $dir/def.key } ]
      protocols: [ TLSv1.3 ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
routes:
  - { name: r, match: { path: / }, respond: { status: 200, body: "ok\\n" } }
EOF

my $port = $t->port('TLS');

# The subject CN the server presented, and the whole output.
sub hello (@args) {
    my ($rc, $out) = s_client($port, args => [@args]);
    my ($cn) = $out =~ /^subject=.*CN = ([\w.-]+)/m;
    return ($cn // '', $out);
}

my ($cn, $out) = hello('-servername', 'api.example.com',
                       '-CAfile', "$dir/ca.pem", '-verify_return_error',
                       '-verify_hostname', 'api.example.com');
is($cn, 'api-ec', 'SNI api.example.com: its own certificate');
like($out, qr/Verify return code: 0 \(ok\)/,
     'the chain and the name verify against the CA');

($cn) = hello('-servername', 'API.Example.COM.');
is($cn, 'api-ec', 'SNI is matched without case and without a final dot');

($cn) = hello('-servername', 'x.example.com');
is($cn, 'wild', 'x.example.com: the *.example.com certificate');

($cn) = hello('-servername', 'a.b.example.com');
is($cn, 'def', 'a wildcard covers one label only: a.b.example.com gets '
               . 'the default');

($cn) = hello('-servername', 'example.com');
is($cn, 'def', 'nor the domain itself: example.com gets the default');

($cn) = hello('-servername', 'unknown.test');
is($cn, 'def', 'an unknown name: the first certificate');

($cn) = hello('-noservername');
is($cn, 'def', 'no SNI: the first certificate');

# One name, two key types: the client's signature algorithms choose.
($cn, $out) = hello('-servername', 'api.example.com',
                    '-sigalgs', 'ECDSA+SHA256');
is($cn, 'api-ec', 'ECDSA signature algorithms: the ECDSA certificate');
like($out, qr/Peer signature type: ECDSA/, '... signed with ECDSA');

($cn, $out) = hello('-servername', 'api.example.com',
                    '-sigalgs', 'rsa_pss_rsae_sha256');
is($cn, 'api-rsa', 'RSA-PSS signature algorithms (TLS 1.3): the RSA one');
like($out, qr/Peer signature type: RSA-PSS/, '... signed with RSA-PSS');

($cn, $out) = hello('-servername', 'api.example.com', '-tls1_2',
                    '-sigalgs', 'RSA+SHA256');
is($cn, 'api-rsa', 'RSA PKCS#1 signature algorithms (TLS 1.2): the RSA '
                   . 'one');
like($out, qr/New, TLSv1\.2, Cipher is ECDHE-RSA-AES\d+-GCM-SHA\d+/,
     '... with an ECDHE-RSA AEAD suite of the intermediate list');

# ALPN.
(undef, $out) = hello('-alpn', 'http/1.1');
like($out, qr{^ALPN protocol: http/1\.1$}m, 'ALPN: http/1.1 selected');

(undef, $out) = hello('-alpn', 'h2,http/1.1');
like($out, qr{^ALPN protocol: http/1\.1$}m,
     'ALPN h2,http/1.1 on a listener without http2: http/1.1');

(undef, $out) = hello();
like($out, qr/^No ALPN negotiated$/m, 'no ALPN offered: none selected');

(undef, $out) = hello('-alpn', 'spdy/3');
like($out, qr/no application protocol/,
     'only unknown protocols offered: a no_application_protocol alert');

# Old protocols. Debian's client refuses them at its default security
# level, so it is lowered for the client to even try.
(undef, $out) = hello('-tls1', '-cipher', 'DEFAULT@SECLEVEL=0');
like($out, qr/alert protocol version/, 'TLS 1.0 is refused');

(undef, $out) = hello('-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0');
like($out, qr/alert protocol version/, 'TLS 1.1 is refused');

my ($rc13, $out13) = s_client($t->port('TLS13'), args => ['-tls1_2']);
like($out13, qr/alert protocol version/,
     'protocols: [TLSv1.3] refuses TLS 1.2');

($rc13, $out13) = s_client($t->port('TLS13'), args => ['-tls1_3']);
like($out13, qr/^New, TLSv1\.3, Cipher is TLS_/m, '... and takes TLS 1.3');

# A cleartext request on the listener, with the handshakes, in /status.
my $st = wait_until(sub {
    my $s = $t->status;
    $s && $s->{tls} && $s->{tls}{failed} >= 4 ? $s : undef;
});
ok($st, '/status has the TLS counters');
is($st->{tls}{failed}, 4,
   'four failed handshakes: spdy/3 only, TLS 1.0, TLS 1.1, 1.2 on 1.3');
is($st->{tls}{handshakes}, 14, 'fourteen completed');

my @lines = grep { /TLS handshake failed/ } split /\n/, $t->error_log;
is(scalar(grep { /^\S+ \S+ \[info\] \d+: TLS handshake failed: (?:unsupported protocol|no application protocol), client: 127\.0\.0\.1$/ } @lines),
   4, 'each failure logged once, at info, with its reason and the client');
is(scalar(grep { !/\[info\]/ } @lines), 0, 'never louder than info');
