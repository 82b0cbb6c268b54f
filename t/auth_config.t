# Configuration errors of the auth module (`consumers`, `jwt_issuers`,
# `auth_cache`, a route's `auth:`), each at its FILE:LINE:COL.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Test::More;
use Test::Portico;
use Test::Portico::ConfigCheck;

my $t = Test::Portico->new()->has_module(qw/router auth/)->plan(46);

my $HEAD = <<"EOF";
workers: 1
error_log: error.log
pid_file: portico.pid
listen: [ { address: "127.0.0.1:${\ $t->port('GW')}" } ]
EOF

my $cc = Test::Portico::ConfigCheck->new($t, $HEAD);
my $bcrypt = crypt('pw', '$2b$05$abcdefghijklmnopqrstuu');

sub route ($auth) {
    return <<"EOF";
routes:
  - name: r
    match: { path: / }
    respond: { status: 200 }
    auth: $auth
EOF
}

{
    my ($rc, $out) = $cc->check(<<"EOF" . route('{ methods: [api_key, basic] }'));
consumers:
  - { name: alice, api_keys: [k_live_alice_1234], password: '$bcrypt' }
auth_cache: { ttl: 30s, size: 1000 }
EOF
    is($rc, 0, 'a good auth config passes -t') or diag $out;
}

$cc->one_error('plain-text password', <<'EOF' . route('{ methods: [basic] }'),
consumers:
  - { name: alice, password: "hunter2" }
EOF
               qr/password must be a crypt\(3\) hash/, ['"hunter2"']);

$cc->one_error('legacy DES crypt', <<'EOF' . route('{ methods: [basic] }'),
consumers:
  - { name: alice, password: "abJnggxhB/yWI" }
EOF
               qr/password must be a crypt\(3\) hash/, ['"abJnggxhB']);

$cc->one_error('short API key', <<'EOF' . route('{ methods: [api_key] }'),
consumers:
  - { name: alice, api_keys: [short] }
EOF
               qr/fewer than 8 characters/, ['short]']);

$cc->one_error('bad sha256 key', <<'EOF' . route('{ methods: [api_key] }'),
consumers:
  - { name: alice, api_keys: ["sha256:abcd"] }
EOF
               qr/64 hex digits/, ['"sha256:abcd"']);

$cc->one_error('shared API key', <<'EOF' . route('{ methods: [api_key] }'),
consumers:
  - { name: alice, api_keys: [k_live_same_key] }
  - { name: bob, api_keys: [k_live_same_key] }
EOF
               qr/also consumer "alice"'s/, ['k_live_same_key', 2]);

$cc->one_error('consumer twice', <<'EOF' . route('{ methods: [api_key] }'),
consumers:
  - { name: alice, api_keys: [k_live_alice_1] }
  - { name: alice, api_keys: [k_live_alice_2] }
EOF
               qr/consumer "alice" is defined twice/, ['alice, api_keys', 2]);

$cc->one_error('unknown consumer key', <<'EOF' . route('{ methods: [api_key] }'),
consumers:
  - { name: alice, api_keyz: [k_live_alice_1] }
EOF
               qr/unknown key "api_keyz" in a consumer/, ['api_keyz']);

$cc->one_error('bad fingerprint', <<'EOF' . route('{ methods: [mtls] }'),
consumers:
  - { name: alice, cert_fingerprint: "AB:CD" }
EOF
               qr/cert_fingerprint is the SHA-256/, ['"AB:CD"']);

$cc->one_error('unknown method', route('{ methods: [api_key, oauth] }'),
               qr/unknown method "oauth"/, ['oauth']);

$cc->one_error('method twice', route('{ methods: [basic, basic] }'),
               qr/method "basic" is listed twice/, ['basic', 2]);

$cc->one_error('auth without methods', route('{ allow_groups: [staff] }'),
               qr/auth needs methods/, ['name: r']);

$cc->one_error('unknown auth key', route('{ methods: [basic], colour: 1 }'),
               qr/unknown key "colour" in auth/, ['colour']);

$cc->one_error('jwt without issuers', route('{ methods: [jwt] }'),
               qr/the jwt method needs jwt_issuer \(none is defined\)/,
               ['[jwt]']);

$cc->one_error('forward method without forward', route('{ methods: [forward] }'),
               qr/method forward needs auth: forward/, ['[forward]']);

$cc->one_error('bad auth_cache', <<'EOF' . route('{ methods: [basic] }'),
auth_cache: { size: 3 }
EOF
               qr/auth_cache: size/, ['3 }']);
