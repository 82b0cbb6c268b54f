# Router matching, one dimension at a time: host (exact, leading
# wildcard, case and port ignored), path (prefix, "=" exact, "~" PCRE2
# regex with captures), methods (GET brings HEAD; 405 with Allow), request
# headers and query parameters (exact or "~" regex), and the 404 JSON
# answer when nothing matches.  Every route is a `respond` whose body
# names it, so each answer says which route won.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP ();
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->has_module(qw/router/)->plan(90);

# Long paths (prefix and exact routes of 256 bytes and more).
my $L256 = '/L' . ('a' x 254);
my $M300 = '/M' . ('b' x 298);

$t->write_config(<<'EOF' . <<"EOF2")->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
routes:
  # host: exact and wildcard routes on the same path (equal constraint
  # counts: the one written first wins where both match), and a route
  # without a host for every other name.
  - name: host-exact
    match: { host: api.example.com, path: /h/ }
    respond: { body: "route=${route}" }
  - name: host-wild
    match: { host: "*.example.com", path: /h/ }
    respond: { body: "route=${route}" }
  - name: host-upper
    match: { host: MiXeD.Example.ORG, path: /h/ }
    respond: { body: "route=${route}" }
  - name: host-dot
    match: { host: "dot.example.net.", path: /h/ }
    respond: { body: "route=${route}" }
  - name: host-any
    match: { path: /h/ }
    respond: { body: "route=${route}" }
  # A route with a host and no path catches every path of that host.
  - name: host-only
    match: { host: only.test }
    respond: { body: "route=${route} path=${path}" }

  # path: prefix, exact, regex.
  - name: prefix
    match: { path: /p/ }
    respond: { body: "route=${route}" }
  - name: prefix-bytes
    match: { path: /pre }
    respond: { body: "route=${route}" }
  - name: exact
    match: { path: "=/e" }
    respond: { body: "route=${route}" }
  - name: regex
    match: { path: '~^/r/(\d+)/([a-z]+)$' }
    respond: { body: "route=${route} 1=${1} 2=${2}" }
  - name: regex-unanchored
    match: { path: '~/tail$' }
    respond: { body: "route=${route}" }
  - name: regex-optional
    match: { path: '~^/opt/(x)?(y)$' }
    respond: { body: "route=${route} 1=[${1}] 2=[${2}]" }

  # methods
  - name: post-put
    match: { path: /m/, methods: [POST, PUT] }
    respond: { body: "route=${route} method=${method}" }
  - name: get-only
    match: { path: /g/, methods: [GET] }
    respond: { body: "route=${route} method=${method}" }
  - name: scalar-method
    match: { path: /sm/, methods: DELETE }
    respond: { body: "route=${route}" }
  - name: custom-method
    match: { path: /c/, methods: [PURGE] }
    respond: { body: "route=${route} method=${method}" }
  - name: two-get
    match: { path: /two/, methods: [GET] }
    respond: { body: "route=${route}" }
  - name: two-post
    match: { path: /two/, methods: [POST] }
    respond: { body: "route=${route}" }

  # headers
  - name: hdr-exact
    match: { path: /hx/, headers: { X-Api-Version: "2" } }
    respond: { body: "route=${route}" }
  - name: hdr-regex
    match: { path: /hr/, headers: { X-Env: "~^(prod|stage)$" } }
    respond: { body: "route=${route}" }
  - name: hdr-unanchored
    match: { path: /hu/, headers: { User-Agent: "~bot" } }
    respond: { body: "route=${route}" }
  - name: hdr-two
    match: { path: /h2/, headers: { X-A: "1", X-B: "2" } }
    respond: { body: "route=${route}" }

  # query
  - name: q-exact
    match: { path: /qx/, query: { beta: "1" } }
    respond: { body: "route=${route}" }
  - name: q-regex
    match: { path: /qr/, query: { id: '~^\d+$' } }
    respond: { body: "route=${route}" }
  - name: q-raw
    match: { path: /qe/, query: { q: "a%20b" } }
    respond: { body: "route=${route}" }
  - name: q-two
    match: { path: /q2/, query: { a: "1", b: "2" } }
    respond: { body: "route=${route}" }
EOF
  - name: long-prefix-256
    match: { path: "$L256" }
    respond: { body: "route=\${route}" }
  - name: long-exact-257
    match: { path: "=${L256}a" }
    respond: { body: "route=\${route}" }
  - name: long-prefix-300
    match: { path: "$M300" }
    respond: { body: "route=\${route}" }
EOF2

my $port = $t->port('GW');
my $json = JSON::PP->new;

# One request on its own connection; @h are extra header lines (name,
# value, ...), Host defaults to localhost.  Returns the parsed response.
sub req ($method, $target, @h) {
    my %seen = map { lc($h[$_]) => 1 } grep { !($_ % 2) } 0 .. $#h;
    unshift @h, Host => 'localhost' unless $seen{host};
    my $raw = "$method $target HTTP/1.1\r\n";
    while (my ($n, $v) = splice @h, 0, 2) {
        $raw .= "$n: $v\r\n";
    }
    $raw .= "Connection: close\r\n\r\n";
    return parse_response(http($raw, port => $port),
                          head => $method eq 'HEAD');
}

# The body of a 200, or "STATUS body" for anything else.
sub route_of ($method, $target, @h) {
    my $r = req($method, $target, @h);
    return $r->{status} == 200 ? $r->{body} : "$r->{status} $r->{body}";
}

# Asserts a 404 JSON "not found" answer.
sub is_404 ($r, $name) {
    my $e = eval { $json->decode($r->{body}) } // {};
    ok($r->{status} == 404 && ($e->{error} // '') eq 'not found'
       && ($e->{status} // 0) == 404
       && ($r->{headers}{'content-type'} // '') =~ m{^application/json},
       $name) or diag explain $r;
}


# ---- host ------------------------------------------------------------------

# Exact host, and the wildcard written after it on the same path: where
# both match, the one written first wins.
is(route_of(GET => '/h/1', Host => 'api.example.com'), 'route=host-exact',
   'exact host');
is(route_of(GET => '/h/1', Host => 'a.example.com'), 'route=host-wild',
   'wildcard host: one label');
is(route_of(GET => '/h/1', Host => 'a.b.example.com'), 'route=host-wild',
   'wildcard host: several labels');
is(route_of(GET => '/h/1', Host => 'example.com'), 'route=host-any',
   'wildcard "*.example.com" does not match "example.com"');
is(route_of(GET => '/h/1', Host => 'badexample.com'), 'route=host-any',
   'wildcard matches at a dot only ("badexample.com" is not in it)');
is(route_of(GET => '/h/1', Host => 'api.example.com.evil.test'),
   'route=host-any', 'a host that only starts with the name is not it');

# Case and port are ignored, on both sides; a trailing dot is the same host.
is(route_of(GET => '/h/1', Host => 'API.Example.COM:8080'),
   'route=host-exact', 'exact host: case and port ignored');
is(route_of(GET => '/h/1', Host => 'X.EXAMPLE.com:1'), 'route=host-wild',
   'wildcard host: case and port ignored');
is(route_of(GET => '/h/1', Host => 'mixed.example.org'), 'route=host-upper',
   'a host written in mixed case in the config matches lower case');
is(route_of(GET => '/h/1', Host => 'dot.example.net'), 'route=host-dot',
   'a trailing dot in the config names the same host');
is(route_of(GET => '/h/1', Host => 'api.example.com.'), 'route=host-exact',
   'a trailing dot in Host names the same host');

# The authority of an absolute-form request line is the host routed on.
is(route_of(GET => 'http://api.example.com/h/abs', Host => 'other.test'),
   'route=host-exact', 'absolute-form: its authority is the host');

# A route with a host and no path is a "/" prefix on that host only.
is(route_of(GET => '/any/thing', Host => 'only.test'),
   'route=host-only path=/any/thing', 'host without path: every path');
is_404(req(GET => '/any/thing', Host => 'other.test'),
       'host without path: other hosts do not get it');


# ---- path ------------------------------------------------------------------

is(route_of(GET => '/p/'), 'route=prefix', 'prefix: the prefix itself');
is(route_of(GET => '/p/a/b/c?x=1'), 'route=prefix', 'prefix: below it');
is_404(req(GET => '/p'), 'prefix "/p/" does not match "/p"');
is(route_of(GET => '/prefix'), 'route=prefix-bytes',
   'prefix compares bytes, not segments (as nginx)');
is(route_of(GET => '/p/%7e'), 'route=prefix',
   'the normalized path is matched');

is(route_of(GET => '/e'), 'route=exact', 'exact path');
is(route_of(GET => '/e?q=1'), 'route=exact', 'exact path: query ignored');
is_404(req(GET => '/e/'), 'exact path: "/e/" is another path');
is_404(req(GET => '/ex'), 'exact path: not a prefix');

is(route_of(GET => '/r/42/abc'), 'route=regex 1=42 2=abc',
   'regex with two captures');
is(route_of(GET => '/r/7/../42/xyz'), 'route=regex 1=42 2=xyz',
   'regex runs on the normalized path');
is_404(req(GET => '/r/42/ABC'), 'regex is case-sensitive');
is_404(req(GET => '/r/x/abc'), 'regex: no match is 404');
is(route_of(GET => '/r/1/a?x=/tail'), 'route=regex 1=1 2=a',
   'regex does not see the query');
is(route_of(GET => '/deep/in/the/tail'), 'route=regex-unanchored',
   'regex is not anchored unless written so');
is(route_of(GET => '/opt/y'), 'route=regex-optional 1=[] 2=[y]',
   'an unset optional group is an empty capture');
is(route_of(GET => '/opt/xy'), 'route=regex-optional 1=[x] 2=[y]',
   'optional group set');


# Paths of 256 bytes and more route like short ones.
is(route_of(GET => $L256), 'route=long-prefix-256', '256-byte prefix');
is(route_of(GET => "${L256}a"), 'route=long-exact-257',
   '257-byte exact path beats the 256-byte prefix');
is(route_of(GET => "${L256}aa"), 'route=long-prefix-256',
   '256-byte prefix of a 258-byte path');
is_404(req(GET => substr($L256, 0, 255)), '255 bytes of a 256-byte prefix');
is(route_of(GET => $M300 . ('/x' x 300)), 'route=long-prefix-300',
   '300-byte prefix of a 900-byte path');
is_404(req(GET => substr($M300, 0, 299) . 'c'),
       '300-byte prefix: the last byte differs');
is(route_of(GET => '/p/' . ('z' x 2000)), 'route=prefix',
   'a short prefix of a 2000-byte path');


# ---- methods ---------------------------------------------------------------

is(route_of(POST => '/m/1'), 'route=post-put method=POST', 'POST allowed');
is(route_of(PUT => '/m/1'), 'route=post-put method=PUT', 'PUT allowed');

# The path matched, the method did not: 405 JSON with Allow.
my $r = req(GET => '/m/1');
my $e = eval { $json->decode($r->{body}) } // {};
is($r->{status}, 405, 'GET on a POST/PUT route: 405');
is($r->{headers}{allow}, 'POST, PUT', '405: Allow lists the methods');
is($e->{error}, 'method not allowed', '405: JSON error body');
is($e->{status}, 405, '405: JSON status');

# GET allows HEAD too, and Allow says so.
is(route_of(GET => '/g/x'), 'route=get-only method=GET', 'GET allowed');
$r = req(HEAD => '/g/x');
is($r->{status}, 200, 'GET route answers HEAD');
is($r->{headers}{'content-length'}, length 'route=get-only method=HEAD',
   'HEAD: length of the body GET would get, no body');
$r = req(POST => '/g/x');
is($r->{status}, 405, 'POST on a GET route: 405');
is($r->{headers}{allow}, 'GET, HEAD', 'Allow lists HEAD with GET');

# `methods: DELETE` is read as a list of one.
is(route_of(DELETE => '/sm/1'), 'route=scalar-method',
   'methods as a scalar');
is(req(GET => '/sm/1')->{headers}{allow}, 'DELETE',
   'methods as a scalar: Allow');

# A method the gateway has no name for is matched by its name.
is(route_of(PURGE => '/c/1'), 'route=custom-method method=PURGE',
   'extension method matched by name');
is(req(PURGEX => '/c/1')->{status}, 405,
   'another extension method: 405');
$r = req(GET => '/c/1');
is($r->{status}, 405, 'GET on a PURGE route: 405');
is($r->{headers}{allow}, 'PURGE', 'Allow names the extension method');

# Two routes on one path split by method; Allow is their union.
is(route_of(GET => '/two/'), 'route=two-get', 'same path: GET route');
is(route_of(POST => '/two/'), 'route=two-post', 'same path: POST route');
$r = req(DELETE => '/two/');
is($r->{status}, 405, 'same path, neither method: 405');
is($r->{headers}{allow}, 'GET, HEAD, POST', 'Allow: the union, in order');


# ---- headers ---------------------------------------------------------------

is(route_of(GET => '/hx/', 'X-Api-Version' => '2'), 'route=hdr-exact',
   'header: exact value');
is(route_of(GET => '/hx/', 'x-api-VERSION' => '2'), 'route=hdr-exact',
   'header: the name is case-insensitive');
is_404(req(GET => '/hx/', 'X-Api-Version' => '20'),
       'header: exact means the whole value');
is_404(req(GET => '/hx/'), 'header: missing');
is(route_of(GET => '/hx/', 'X-Api-Version' => '1', 'X-Api-Version' => '2'),
   'route=hdr-exact', 'header: any of two fields may match');

is(route_of(GET => '/hr/', 'X-Env' => 'prod'), 'route=hdr-regex',
   'header regex: prod');
is(route_of(GET => '/hr/', 'X-Env' => 'stage'), 'route=hdr-regex',
   'header regex: stage');
is_404(req(GET => '/hr/', 'X-Env' => 'production'),
       'header regex: anchored as written');
is_404(req(GET => '/hr/', 'X-Env' => 'PROD'),
       'header regex: values are case-sensitive');
is(route_of(GET => '/hu/', 'User-Agent' => 'Mozilla/5.0 (googlebot/2.1)'),
   'route=hdr-unanchored', 'header regex: unanchored finds a substring');

is(route_of(GET => '/h2/', 'X-A' => '1', 'X-B' => '2'), 'route=hdr-two',
   'two header conditions: both met');
is_404(req(GET => '/h2/', 'X-A' => '1'), 'two header conditions: one met');


# ---- query -----------------------------------------------------------------

is(route_of(GET => '/qx/?beta=1'), 'route=q-exact', 'query: exact value');
is(route_of(GET => '/qx/?a=x&beta=1&c'), 'route=q-exact',
   'query: among other parameters');
is(route_of(GET => '/qx/?beta=2&beta=1'), 'route=q-exact',
   'query: any occurrence of a repeated name');
is_404(req(GET => '/qx/?beta=10'), 'query: exact means the whole value');
is_404(req(GET => '/qx/?xbeta=1'), 'query: the whole name');
is_404(req(GET => '/qx/?beta'), 'query: a name without a value');
is_404(req(GET => '/qx/'), 'query: missing');

is(route_of(GET => '/qr/?id=123'), 'route=q-regex', 'query regex');
is_404(req(GET => '/qr/?id=12a'), 'query regex: no match');

# Values compare as sent, not percent-decoded.
is(route_of(GET => '/qe/?q=a%20b'), 'route=q-raw',
   'query: the raw value as sent');
is_404(req(GET => '/qe/?q=a+b'), 'query: "+" is not "%20"');
is_404(req(GET => '/qx/?beta=%31'), 'query: "%31" is not "1"');

is(route_of(GET => '/q2/?b=2&a=1'), 'route=q-two',
   'two query conditions, any order');
is_404(req(GET => '/q2/?a=1'), 'two query conditions: one met');


# ---- no route --------------------------------------------------------------

$r = req(GET => '/nowhere', 'X-Request-ID' => 'rid-404');
is_404($r, 'no route: 404 JSON');
is($json->decode($r->{body})->{request_id}, 'rid-404',
   '404 JSON carries the request id');
ok(!defined $r->{headers}{allow}, '404 has no Allow');
is_404(req(POST => '/nowhere'), 'no route for POST either: 404, not 405');

# The connection stays usable after 404 and 405 (keep-alive).
my @rs = parse_responses(http(
    "GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n"
    . "GET /m/1 HTTP/1.1\r\nHost: a\r\n\r\n"
    . "GET /e HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    port => $port));
is(join(' ', map { $_->{status} } @rs), '404 405 200',
   '404 and 405 keep the connection open');
