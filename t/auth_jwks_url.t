# JWT keys from an https JWKS URL (modules/auth/pt_auth_jwks.c): the
# helper process fetches the document once for the whole gateway over
# verified TLS, through an internal upstream, and the workers take it
# from the "auth_jwks" zone; it is refreshed every keys_refresh, fetched
# again (at most once every keys_retry) when a token names a kid the keys
# lack, and the last good keys stay while the provider is down, across a
# HUP too. The provider is a TLS mock backend whose documents are files
# this test rewrites.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Socket::INET;
use Test::More;
use Test::Portico;
use Test::Portico::ConfigCheck;
use Test::Portico::JWT qw(key jwks jwt);
use Time::HiRes qw(time sleep);

my $t = Test::Portico->new()->has_module(qw/router auth status/)->plan(56);
my $dir = $t->testdir;

tls_ca($dir);
tls_ca($dir, 'other', 'Portico Other CA');
tls_cert($dir, 'idp', names => ['localhost', '127.0.0.1']);

my %k = map { $_ => key($dir, $_, 'EC256') } qw(k1 k2 kl1 kl2);

# What the provider serves: rewritten whole (rename), so a fetch never
# reads half a document.
sub serve ($name, @keys) {
    write_file("$dir/$name.tmp", jwks(@keys));
    rename "$dir/$name.tmp", "$dir/$name" or die "rename $name: $!";
}

serve('corp.jwks', $k{k1});
serve('lazy.jwks', $k{kl1});

my $idp = $t->backend(id => 'idp',
                      tls => { cert => "$dir/idp.pem", key => "$dir/idp.key" },
                      file_paths => { '/jwks.json' => "$dir/corp.jwks",
                                      '/lazy/jwks.json' => "$dir/lazy.jwks",
                                      '/gone.json' => "$dir/missing.jwks" });
my $port = $idp->port;

my $config = <<"EOF";
workers: 2
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
jwt_issuers:
  - name: corp
    keys: https://127.0.0.1:$port/jwks.json
    keys_ca: $dir/ca.pem
    keys_refresh: 1s
    keys_retry: 1s
  - name: lazy
    keys: https://localhost:$port/lazy/jwks.json?realm=x
    keys_ca: $dir/ca.pem
    keys_refresh: 1h
    keys_retry: 5s
  - name: wrongca
    keys: https://127.0.0.1:$port/jwks.json?wrong-ca
    keys_ca: $dir/other.pem
  - name: gone
    keys: https://127.0.0.1:$port/gone.json
    keys_ca: $dir/ca.pem
routes:
  - name: corp
    match: { path: /corp }
    respond: { status: 200, body: "corp \${consumer}" }
    auth: { methods: [jwt], jwt_issuer: corp }
  - name: lazy
    match: { path: /lazy }
    respond: { status: 200, body: "lazy \${consumer}" }
    auth: { methods: [jwt], jwt_issuer: lazy }
  - name: wrongca
    match: { path: /wrongca }
    respond: { status: 200 }
    auth: { methods: [jwt], jwt_issuer: wrongca }
  - name: gone
    match: { path: /gone }
    respond: { status: 200 }
    auth: { methods: [jwt], jwt_issuer: gone }
EOF
$t->write_config($config)->run();

my $seq = 0;

# A token no cache has seen (its own jti); %header may name another kid.
sub token ($k, %header) {
    return jwt($k, 'ES256', { sub => 'alice', exp => int(time) + 600,
                              jti => 'j' . ++$seq }, \%header);
}

sub get ($path, $token) {
    return parse_response(http_get($path,
                                   headers => { Authorization =>
                                                "Bearer $token" }));
}

sub challenge ($r) { $r->{headers}{'www-authenticate'} // '' }

# Fetches of a document, as the provider logged them.
sub fetches ($uri) {
    return scalar grep { ($_->{uri} // '') eq $uri } $idp->requests;
}


# --- The first fetch, and both workers using it.

ok($t->wait_log(qr/\[info\] .*jwks for issuer "corp": 1 key\(s\) from https:\/\/127\.0\.0\.1:$port\/jwks\.json$/m),
   'the helper fetched corp\'s keys and said so at info');

my ($req) = grep { $_->{uri} eq '/jwks.json' } $idp->requests;
is($req->{headers}{host}, "127.0.0.1:$port",
   'the fetch is GET /jwks.json with the URL\'s Host');
ok($req->{tls} && $req->{tls}{version} && !defined $req->{tls}{sni},
   'over TLS, without SNI for an IP address');

# A connection in each worker: the second one while the first worker is
# stopped.
my $tok1 = token($k{k1});
my ($sa, $wa) = $t->connect_worker($t->port('GW'));
my ($sb, $wb) = $wa ? $t->connect_worker($t->port('GW'), avoid => $wa) : ();
ok($wa && $wb && $wa != $wb, 'a connection in each worker');
my @st;
for my $s (grep { defined } $sa, $sb) {
    print {$s} "GET /corp HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
               . "$tok1\r\nConnection: close\r\n\r\n";
    my $raw = do { local $/; <$s> } // '';
    close $s;
    push @st, (eval { parse_response($raw) } // { status => 0 })->{status};
}
is("@st", '200 200', 'a token signed with the provider\'s key passes on both');


# --- One fetcher for the gateway: about one fetch a second with
# keys_refresh: 1s, not one per worker.

my $c0 = fetches('/jwks.json');
sleep 5;
my $n = fetches('/jwks.json') - $c0;
ok($n >= 2 && $n <= 7, "keys_refresh 1s: $n fetches in 5 s (2 workers)");


# --- Rotation at the provider, without a reload.

serve('corp.jwks', $k{k1}, $k{k2});
my $tok2 = token($k{k2});
my $r = get('/corp', $tok2);
ok($r->{status} == 200 || $r->{status} == 401,
   "a token of the new key right away: $r->{status}");
ok(wait_until(sub { get('/corp', $tok2)->{status} == 200 }),
   'the new key verifies within seconds');

serve('corp.jwks', $k{k2});
ok(wait_until(sub {
       challenge(get('/corp', token($k{k1}))) =~ /unknown key id/
   }), 'a key removed at the provider stops verifying fresh tokens');
is(get('/corp', token($k{k2}))->{status}, 200, 'the key left still does');
is(get('/corp', $tok1)->{status}, 200,
   'a token verified before the rotation stays cached until its exp');


# --- An unknown kid: fetched again, at most once every keys_retry.

ok($t->wait_log(qr/jwks for issuer "lazy": 1 key\(s\)/),
   'lazy (a host name, keys_refresh 1h): fetched at start');
my ($lreq) = grep { $_->{uri} =~ m{^/lazy/} } $idp->requests;
is("$lreq->{uri} $lreq->{headers}{host} " . ($lreq->{tls}{sni} // ''),
   "/lazy/jwks.json?realm=x localhost:$port localhost",
   'path and query, Host, and SNI for a name');
is(get('/lazy', token($k{kl1}))->{status}, 200, 'lazy\'s key verifies');

serve('lazy.jwks', $k{kl1}, $k{kl2});
my $tokl2 = token($k{kl2});
$r = get('/lazy', $tokl2);
is($r->{status}, 401, 'a kid the keys lack: 401 at first');
like(challenge($r), qr/unknown key id/, '... unknown key id');
ok(wait_until(sub { get('/lazy', $tokl2)->{status} == 200 }, 15),
   'and a fetch it asked for brings the key (no refresh before 1h)');

# Spread over 3 s, so that the helper (which looks every 200 ms) sees
# many requests for a fetch, not one.
my @burst = map { token($k{kl1}, kid => "nokey-$_") } 1 .. 20;
my $l0 = fetches('/lazy/jwks.json?realm=x');
my $t0 = time;
my %codes;
for my $i (0 .. $#burst) {
    sleep $t0 + $i * 0.15 - time if $t0 + $i * 0.15 > time;
    $codes{get('/lazy', $burst[$i])->{status}}++;
}
my $burst_secs = time - $t0;
is_deeply(\%codes, { 401 => 20 }, '20 tokens with unknown kids: 401');
ok(wait_until(sub { fetches('/lazy/jwks.json?realm=x') > $l0 }, 10),
   'they asked for a fetch');
sleep 5.5;                     # keys_retry and a little: any second one
$n = fetches('/lazy/jwks.json?realm=x') - $l0;
ok($n >= 1 && $n <= 2 && $burst_secs < 5,
   "$n fetches for 20 unknown kids in ${\ sprintf '%.1f', $burst_secs} s "
   . '(keys_retry 5s)');


# --- Providers that give no keys: a certificate from another CA, a 404.

ok($t->wait_log(qr/\[error\] .*jwks fetch for issuer "wrongca" failed: .*certificate verify failed/),
   'a certificate that does not verify: the failure logged at error');
$r = get('/wrongca', token($k{k2}));
is($r->{status}, 401, 'no keys: 401');
like(challenge($r), qr/error_description="no keys from the issuer yet"/,
     '... "no keys from the issuer yet"');
ok($t->wait_log(qr/\[error\] .*jwks fetch for issuer "gone" failed: status 404/),
   'a 404 from the provider: logged at error');
is(get('/gone', token($k{k2}))->{status}, 401, '... and 401');
ok(!grep({ $_->{uri} =~ /wrong-ca/ } $idp->requests),
   'nothing was asked of a provider that did not verify');

my $st = $t->status;
is_deeply([map { $_->{address} } @{$st->{upstreams}{'jwks:corp'}{targets}
                                   // []}],
          ["127.0.0.1:$port"], '/status lists the internal upstream');


# --- The provider down: the last good keys stay.

$idp->stop;
ok($t->wait_log(qr/\[error\] .*jwks fetch for issuer "corp" failed: .*(?:refused|closed)/),
   'the provider down: the failure is logged at error');
my %down;
$down{get('/corp', token($k{k2}))->{status}}++ for 1 .. 6;
is_deeply(\%down, { 200 => 6 }, 'the old keys keep verifying fresh tokens');
is(get('/corp', token($k{k1}))->{status}, 401,
   'and the removed one stays removed');


# --- A HUP while the provider is down: the new workers start with the
# keys the zone kept.

my %old = map { $_ => 1 } $t->worker_pids;       # workers and helper
$t->reload;
ok($t->wait_generation(2)
   && wait_until(sub { !grep { $old{$_} } $t->worker_pids }),
   'reloaded (generation 2), the old processes gone');
ok(wait_until(sub {
       grep { /\] (\d+): jwks fetch for issuer "corp" failed/ && !$old{$1} }
            split /\n/, $t->error_log
   }), 'the new helper cannot fetch either');
my %hup;
$hup{get('/corp', token($k{k2}))->{status}}++ for 1 .. 6;
is_deeply(\%hup, { 200 => 6 },
          'the new workers verify with the last good keys');
unlike($t->error_log, qr/resized from/, 'the zone was kept, not remade');

$t->stop;


# --- Config errors, each at its place.

my $HEAD = <<"EOF";
workers: 1
error_log: error.log
pid_file: portico.pid
listen: [ { address: "127.0.0.1:${\ $t->port('GW')}" } ]
EOF
my $cc = Test::Portico::ConfigCheck->new($t, $HEAD);

{
    my ($rc, $out) = $cc->check(<<"EOF");
jwt_issuers:
  - name: corp
    keys: "https://idp.example.com:8443/realms/x/protocol/openid-connect/certs?a=1&b=%2F"
    keys_ca: $dir/ca.pem
    keys_refresh: 10m
    keys_retry: 30s
EOF
    is($rc, 0, 'a JWKS URL with a port, a query and keys_* passes -t')
        or diag $out;
}

$cc->one_error('http URL', <<'EOF',
jwt_issuers:
  - { name: corp, keys: "http://idp.example.com/certs" }
EOF
               qr/http:\/\/ URL are refused: keys must come over TLS/,
               ['"http://']);

$cc->one_error('a port out of range', <<'EOF',
jwt_issuers:
  - name: corp
    keys: https://idp.example.com:99999/certs
EOF
               qr/the URL's host: /, ['https://idp']);

$cc->one_error('a fragment', <<'EOF',
jwt_issuers:
  - name: corp
    keys: "https://idp.example.com/certs#x"
EOF
               qr/a fragment/, ['"https://idp']);

$cc->one_error('user information', <<'EOF',
jwt_issuers:
  - name: corp
    keys: "https://me@idp.example.com/certs"
EOF
               qr/user information/, ['"https://me']);

$cc->one_error('keys_refresh without a URL', <<'EOF',
jwt_issuers:
  - name: corp
    secret: "0123456789abcdef0123456789abcdef"
    keys_refresh: 1m
EOF
               qr/keys_refresh needs keys to be an https URL/,
               ['keys_refresh']);

$cc->one_error('HMAC with a URL', <<'EOF',
jwt_issuers:
  - name: corp
    keys: https://idp.example.com/certs
    algorithms: [RS256, HS256]
EOF
               qr/HS256 needs a secret; keys published at a URL are public/,
               ['[RS256']);

$cc->one_error('a user upstream named like an internal one', <<'EOF',
upstreams:
  "jwks:corp": { targets: [ "127.0.0.1:1" ] }
EOF
               qr/a name may not hold ':'/, ['"jwks:corp"']);
