# auth: methods [mtls]: a verified client certificate names a consumer by
# its fingerprint or its subject; with [mtls, api_key] a client without a
# certificate may still use a key.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->has_module(qw/router auth/)->plan(11);
my $dir = $t->testdir;

tls_ca($dir);
tls_ca($dir, 'clients', 'Portico Client CA');
tls_cert($dir, 'srv', names => ['localhost']);
tls_cert($dir, 'alice', ca => 'clients', client => 1, cn => 'alice');
tls_cert($dir, 'bob', ca => 'clients', client => 1, cn => 'bob');
tls_cert($dir, 'eve', ca => 'clients', client => 1, cn => 'eve');

sub fingerprint ($pem) {
    my ($rc, $out) = run_cmd(10, 'openssl', 'x509', '-in', $pem, '-noout',
                             '-fingerprint', '-sha256');
    my ($fp) = $out =~ /=([0-9A-F:]+)/;
    return $fp;
}

my $fp_alice = fingerprint("$dir/alice.pem");
like($fp_alice, qr/^([0-9A-F]{2}:){31}[0-9A-F]{2}\z/,
     "alice's fingerprint as openssl prints it");

my $b1 = $t->backend(id => 'b1');

$t->write_config(<<"EOF")->run();
listen:
  - address: "127.0.0.1:%%PORT_TLS%%"
    tls:
      certificates: [ { cert: $dir/srv.pem, key: $dir/srv.key } ]
      client_ca: $dir/clients.pem
      client_verify: optional
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
consumers:
  - { name: alice-svc, cert_fingerprint: "$fp_alice", groups: [svc] }
  - { name: bob-svc, cert_subject: "CN=bob,O=Portico Test" }
  - { name: keyed, api_keys: [k_live_keyed_123] }
routes:
  - name: mtls
    match: { path: /mtls }
    upstream: app
    auth: { methods: [mtls] }
  - name: either
    match: { path: /either }
    upstream: app
    auth: { methods: [mtls, api_key] }
EOF

sub get ($path, @extra) {
    my $port = $t->port('TLS');
    my ($rc, $out) = curl('-i', '--cacert', "$dir/ca.pem",
                          '--resolve', "localhost:$port:127.0.0.1",
                          @extra, "https://localhost:$port$path");
    my $res = $rc == 0 ? parse_response($out) : { status => "curl $rc" };
    my $echo = ($res->{headers}{'content-type'} // '') =~ /json/
               ? eval { decode_json($res->{body}) } // {} : {};
    return ($res, $echo);
}

my @alice = ('--cert', "$dir/alice.pem", '--key', "$dir/alice.key");
my @bob = ('--cert', "$dir/bob.pem", '--key', "$dir/bob.key");
my @eve = ('--cert', "$dir/eve.pem", '--key', "$dir/eve.key");

my ($res, $e) = get('/mtls', @alice);
is($res->{status}, 200, 'a certificate known by fingerprint: 200');
is($e->{headers}{'x-consumer'}, 'alice-svc', '  consumer alice-svc');
is($e->{headers}{'x-consumer-groups'}, 'svc', '  with its groups');

($res, $e) = get('/mtls', @bob);
is($e->{headers}{'x-consumer'}, 'bob-svc',
   'a certificate known by subject (RFC 2253 form): bob-svc');

($res) = get('/mtls', @eve);
is($res->{status}, 401, 'a verified certificate of no consumer: 401');

($res) = get('/mtls');
is($res->{status}, 401, 'no certificate: 401');

($res, $e) = get('/either', '-H', 'X-API-Key: k_live_keyed_123');
is($res->{status}, 200, '[mtls, api_key]: no certificate, a key: 200');
is($e->{headers}{'x-consumer'}, 'keyed', '  consumer keyed');

($res, $e) = get('/either', @alice, '-H', 'X-API-Key: k_live_keyed_123');
is($e->{headers}{'x-consumer'}, 'alice-svc',
   '[mtls, api_key]: the certificate comes first');
ok(!exists $e->{headers}{'x-api-key'},
   '  and the key is still not forwarded');
