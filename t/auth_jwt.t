# JWT bearer tokens (modules/auth): every algorithm, the claim checks,
# every rejection the README lists, authorization by claims and groups,
# ${claim.NAME}, the cache honouring exp, and key rotation by editing the
# JWKS file and sending HUP. Tokens are minted with the openssl CLI
# (t/lib/Test/Portico/JWT.pm).

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use Test::More;
use Test::Portico;
use Test::Portico::JWT qw(key jwks jwt jwt_hmac jwt_raw b64url);

my $t = Test::Portico->new()->has_module(qw/router auth/)->plan(67);
my $b1 = $t->backend(id => 'b1');
my $dir = $t->testdir;

my %k = (
    rsa1 => key($dir, 'rsa1', 'RSA'),
    ec1  => key($dir, 'ec1', 'EC256'),
    ec2  => key($dir, 'ec2', 'EC384'),
    ed1  => key($dir, 'ed1', 'Ed25519'),
    rsa2 => key($dir, 'rsa2', 'RSA'),
    rsa3 => key($dir, 'rsa3', 'RSA'),
);
write_file("$dir/corp.jwks", jwks(@k{qw(rsa1 ec1 ec2 ed1)}));
my $secret = 'this-is-a-long-enough-hmac-secret-0123456789';

$t->write_config(<<"EOF")->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
consumers:
  - { name: svc-batch, groups: [staff] }
jwt_issuers:
  - name: corp
    issuer: https://idp.test/
    audiences: [api]
    keys: $dir/corp.jwks
    leeway: 30s
    groups_claim: groups
  - name: hmac
    secret: "$secret"
    algorithms: [HS256, HS512]
  - name: pem
    keys: $k{rsa2}{pub}
    algorithms: [RS256]
    max_token_size: 1k
  - name: confused
    keys: $k{rsa2}{pub}
    algorithms: [RS256, HS256]
routes:
  - name: jwt
    match: { path: /jwt }
    upstream: app
    auth: { methods: [jwt], jwt_issuer: corp }
    request_headers: { set: { X-Scope: "\${claim.scope}", X-Who: "\${consumer}" } }
  - { name: hmac, match: { path: /hmac }, upstream: app,
      auth: { methods: [jwt], jwt_issuer: hmac } }
  - { name: pem, match: { path: /pem }, upstream: app,
      auth: { methods: [jwt], jwt_issuer: pem } }
  - { name: confused, match: { path: /confused }, upstream: app,
      auth: { methods: [jwt], jwt_issuer: confused } }
  - name: scoped
    match: { path: /scoped }
    upstream: app
    auth: { methods: [jwt], jwt_issuer: corp,
            require_claims: { scope: "users:read" } }
  - name: staff
    match: { path: /staff }
    upstream: app
    auth: { methods: [jwt], jwt_issuer: corp, allow_groups: [staff] }
EOF

sub get ($path, $token, @more) {
    my $head = defined $token ? "Authorization: Bearer $token\r\n" : '';
    $head .= join '', map { "$_\r\n" } @more;
    my $res = parse_response(http("GET $path HTTP/1.1\r\nHost: t\r\n$head"
                                  . "Connection: close\r\n\r\n"));
    my $echo = ($res->{headers}{'content-type'} // '') =~ /json/
               ? eval { decode_json($res->{body}) } // {} : {};
    return ($res, $echo);
}

my $now = time;
my %good = (iss => 'https://idp.test/', aud => 'api', sub => 'alice',
            iat => $now, exp => $now + 600, scope => 'users:read users:write');

# Every asymmetric algorithm, each key chosen by kid.
for my $case ([rsa1 => 'RS256'], [rsa1 => 'RS384'], [rsa1 => 'RS512'],
              [rsa1 => 'PS256'], [rsa1 => 'PS512'], [ec1 => 'ES256'],
              [ec2 => 'ES384'], [ed1 => 'EdDSA'])
{
    my ($key, $alg) = @$case;
    my ($res, $e) = get('/jwt', jwt($k{$key}, $alg, \%good));
    is($res->{status}, 200, "$alg with $key: 200");
}

my ($res, $e) = get('/jwt', jwt($k{ec1}, 'ES256', \%good),
                    'X-Consumer: mallory');
is($e->{headers}{'x-consumer'}, 'alice', 'X-Consumer is the sub claim');
ok(!exists $e->{headers}{authorization},
   'the token is not forwarded upstream');
is($e->{headers}{'x-scope'}, 'users:read users:write',
   '${claim.scope} in a request header');
is($e->{headers}{'x-who'}, 'alice', '${consumer} in a request header');

# A 401 whose challenge gives the reason $why (pt_jwt_strerror's words).
sub rejected ($name, $path, $token, $why) {
    my ($res) = get($path, $token);
    is($res->{status}, 401, "$name: 401");
    is($res->{headers}{'www-authenticate'} // '',
       qq{Bearer realm="portico", error="invalid_token", }
       . qq{error_description="$why"},
       "$name: error=\"invalid_token\", \"$why\"");
}

# Time claims, with leeway 30 s.
rejected('expired', '/jwt', jwt($k{ec1}, 'ES256',
                                 { %good, exp => $now - 100 }),
         'token expired');
($res) = get('/jwt', jwt($k{ec1}, 'ES256', { %good, exp => $now - 10 }));
is($res->{status}, 200, 'expired 10 s ago, within the leeway: 200');
rejected('not yet valid (nbf)', '/jwt',
         jwt($k{ec1}, 'ES256', { %good, nbf => $now + 100 }),
         'token not yet valid');
rejected('issued in the future (iat)', '/jwt',
         jwt($k{ec1}, 'ES256', { %good, iat => $now + 100 }),
         'token not yet valid');

# Issuer and audience.
rejected('wrong iss', '/jwt',
         jwt($k{ec1}, 'ES256', { %good, iss => 'https://evil.test/' }),
         'wrong issuer');
rejected('wrong aud', '/jwt', jwt($k{ec1}, 'ES256', { %good, aud => 'web' }),
         'wrong audience');
($res) = get('/jwt', jwt($k{ec1}, 'ES256', { %good, aud => ['web', 'api'] }));
is($res->{status}, 200, 'aud as an array holding ours: 200');

# Signatures and algorithms.
my $tok = jwt($k{ec1}, 'ES256', \%good);
my $other = jwt($k{ec1}, 'ES256', { %good, sub => 'mallory' });
my ($h, $p) = split /\./, $other;
rejected('bad signature (payload swapped)', '/jwt',
         "$h.$p." . (split /\./, $tok)[2],
         'bad signature');
rejected('signed by a key of another kid', '/jwt',
         jwt({ %{$k{ec1}}, pem => $k{rsa2}{pem}, type => 'RSA' }, 'RS256',
             \%good, { kid => 'rsa1' }),
         'bad signature');
rejected('alg none', '/jwt',
         jwt_raw('{"alg":"none","typ":"JWT"}', encode_json(\%good), ''),
         'algorithm not allowed');
rejected('alg NONE, kid set', '/jwt',
         jwt_raw('{"alg":"NONE","kid":"rsa1"}', encode_json(\%good), 'x'),
         'algorithm not allowed');
rejected('unknown kid', '/jwt',
         jwt({ %{$k{rsa3}}, kid => 'nobody' }, 'RS256', \%good),
         'unknown key id');
rejected('algorithm not listed for the issuer', '/pem',
         jwt($k{rsa2}, 'PS256', { sub => 'alice' }),
         'algorithm not allowed');
($res) = get('/pem', jwt($k{rsa2}, 'RS256', { sub => 'alice' }));
is($res->{status}, 200, 'a PEM key: RS256 passes');

# Algorithm confusion: HS256 keyed with the RSA public key's PEM text, on
# an issuer that lists HS256 and has only that RSA key.
my $pem_text = do { local (@ARGV, $/) = ($k{rsa2}{pub}); <> };
rejected('HMAC keyed with the RSA public key', '/confused',
         jwt_hmac($dir, $pem_text, 'HS256', { sub => 'alice' }),
         'no key for the algorithm');

# Malformed tokens.
rejected('malformed base64url', '/jwt', 'eyJhbGciOi!.e30.abc',
         'malformed token');
rejected('padding in base64url', '/jwt',
         b64url('{"alg":"ES256","kid":"ec1"}') . '==.e30.abc',
         'malformed token');
rejected('malformed JSON', '/jwt', b64url('{"alg":') . '.e30.abc',
         'malformed token');
rejected('duplicate keys in the header', '/jwt',
         jwt_raw('{"alg":"ES256","kid":"ec1","alg":"none"}',
                 encode_json(\%good), 'x' x 64),
         'malformed token');
rejected('a token over max_token_size', '/pem',
         jwt($k{rsa2}, 'RS256', { sub => 'alice', pad => 'x' x 1200 }),
         'token too large');

# HMAC.
($res, $e) = get('/hmac', jwt_hmac($dir, $secret, 'HS512',
                                   { sub => 'svc-batch' }));
is($res->{status}, 200, 'HS512 with the shared secret: 200');
is($e->{headers}{'x-consumer-groups'}, 'staff',
   'a JWT consumer named in consumers: gets its groups');
rejected('HS256 with another secret', '/hmac',
         jwt_hmac($dir, "$secret!", 'HS256', { sub => 'alice' }),
         'bad signature');

# Authorization: 403 for a valid identity without permission.
($res) = get('/scoped', jwt($k{ec1}, 'ES256', \%good));
is($res->{status}, 200, 'require_claims: scope holds users:read');
($res) = get('/scoped', jwt($k{ec1}, 'ES256', { %good, scope => 'users:write' }));
is($res->{status}, 403, 'require_claims: scope without users:read: 403');
like($res->{headers}{'www-authenticate'} // '',
     qr/^Bearer realm="portico", error="insufficient_scope"/,
     '403 with error="insufficient_scope"');
($res) = get('/staff', jwt($k{ec1}, 'ES256', { %good, groups => ['staff'] }));
is($res->{status}, 200, 'allow_groups: groups claim holds staff');
($res) = get('/staff', jwt($k{ec1}, 'ES256', { %good, groups => 'ops dev' }));
is($res->{status}, 403, 'allow_groups: groups claim without staff: 403');

($res) = get('/jwt', undef);
is($res->{status}, 401, 'no token: 401');
is($res->{headers}{'www-authenticate'}, 'Bearer realm="portico"',
   'no token: a challenge without an error code (RFC 6750 3.1)');

# The cache keeps a token only until it expires (hmac has no leeway).
my $short = jwt_hmac($dir, $secret, 'HS256',
                     { sub => 'alice', exp => time + 2 });
($res) = get('/hmac', $short);
is($res->{status}, 200, 'a token about to expire: 200, and cached');
my $after = wait_until(sub {
    my ($r) = get('/hmac', $short);
    return $r->{status} == 401 ? $r : undef;
}, 10);
ok($after, 'the same token gets 401 once expired, cache or not');

# Rotation: the JWKS file now holds rsa3 only; HUP.
my $old = jwt($k{rsa1}, 'RS256', \%good);
my $new = jwt($k{rsa3}, 'RS256', \%good);
($res) = get('/jwt', $old);
is($res->{status}, 200, 'before rotation: rsa1 passes');
($res) = get('/jwt', $new);
is($res->{status}, 401, 'before rotation: rsa3 is unknown');
write_file("$dir/corp.jwks", jwks($k{rsa3}));
$t->reload;
ok($t->wait_log(qr/reload generation \d+ ok/, 15), 'reloaded')
    or diag $t->error_log;
my $rotated = wait_until(sub {
    my ($r) = get('/jwt', $new);
    return $r->{status} == 200 ? 1 : undef;
}, 10);
ok($rotated, 'after HUP: rsa3 passes');
($res) = get('/jwt', $old);
is($res->{status}, 401, 'after HUP: rsa1 (cached by the old workers) is gone');
