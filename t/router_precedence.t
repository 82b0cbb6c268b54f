# Which route wins when several match: an exact path beats the longest
# matching prefix, which beats the regex routes (tried in the order
# written); among routes on the same path the one with more constraints
# (host, methods, each header, each query parameter) wins, then the one
# written first.  When the best candidate fails on methods, headers or
# query, the next is tried (a shorter prefix, then the regex routes); 405
# only when some route matched all but the method.  A second config
# checks that a "/" catch-all (also a route without `match`) hides the
# regex routes, as the rule says.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->has_module(qw/router/)->plan(63);

$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
routes:
  # exact > longest prefix > shorter prefix > regex
  - name: re-a
    match: { path: "~^/a/" }
    respond: { body: "${route}" }
  - name: a
    match: { path: /a/ }
    respond: { body: "${route}" }
  - name: a-b-prefix
    match: { path: /a/b }
    respond: { body: "${route}" }
  - name: a-b-exact
    match: { path: "=/a/b" }
    respond: { body: "${route}" }

  # regex routes in the order written, whichever is more specific
  - name: z-general
    match: { path: "~^/z/" }
    respond: { body: "${route}" }
  - name: z-specific
    match: { path: "~^/z/y$" }
    respond: { body: "${route}" }
  - name: w-specific
    match: { path: "~^/w/y$" }
    respond: { body: "${route}" }
  - name: w-general
    match: { path: "~^/w/" }
    respond: { body: "${route}" }

  # same path: more constraints first, then the order written
  - name: c-plain
    match: { path: /c/ }
    respond: { body: "${route}" }
  - name: c-header
    match: { path: /c/, headers: { X-A: "1" } }
    respond: { body: "${route}" }
  - name: c-header-query
    match: { path: /c/, headers: { X-A: "1" }, query: { q: "1" } }
    respond: { body: "${route}" }
  - name: c-header-2
    match: { path: /c/, headers: { X-B: "1" } }
    respond: { body: "${route}" }
  - name: c-two-headers
    match: { path: /c/, headers: { X-C: "1", X-D: "1" } }
    respond: { body: "${route}" }
  - name: c-host-methods
    match: { path: /c/, host: c.test, methods: [GET] }
    respond: { body: "${route}" }

  # methods and host each count one
  - name: mc-plain
    match: { path: /mc/ }
    respond: { body: "${route}" }
  - name: mc-get
    match: { path: /mc/, methods: [GET] }
    respond: { body: "${route}" }
  - name: hc-plain
    match: { path: /hc/ }
    respond: { body: "${route}" }
  - name: hc-host
    match: { path: /hc/, host: h.test }
    respond: { body: "${route}" }

  # exact and wildcard hosts count the same: the order written decides
  - name: t1-wild
    match: { path: /t1/, host: "*.ex.test" }
    respond: { body: "${route}" }
  - name: t1-exact
    match: { path: /t1/, host: a.ex.test }
    respond: { body: "${route}" }
  - name: t2-exact
    match: { path: /t2/, host: a.ex.test }
    respond: { body: "${route}" }
  - name: t2-wild
    match: { path: /t2/, host: "*.ex.test" }
    respond: { body: "${route}" }

  # a longer prefix beats a shorter one whatever their constraints, and
  # an exact path beats both
  - name: l-short-constrained
    match: { path: /l/, methods: [GET], headers: { X-A: "1" },
             query: { q: "1" }, host: l.test }
    respond: { body: "${route}" }
  - name: l-long-plain
    match: { path: /l/long/ }
    respond: { body: "${route}" }
  - name: l-exact-plain
    match: { path: "=/l/exact" }
    respond: { body: "${route}" }

  # a candidate failing on headers/query/methods hands over to the next
  - name: f-short
    match: { path: /f/ }
    respond: { body: "${route}" }
  - name: f-deep
    match: { path: /f/deep/, headers: { X-Go: "yes" } }
    respond: { body: "${route}" }
  - name: g-deep
    match: { path: /g/deep/, query: { go: "yes" } }
    respond: { body: "${route}" }
  - name: g-regex
    match: { path: "~^/g/(.*)$" }
    respond: { body: "${route} ${1}" }
  - name: o-short
    match: { path: /o/ }
    respond: { body: "${route}" }
  - name: o-deep-post
    match: { path: /o/deep/, methods: [POST] }
    respond: { body: "${route}" }
  - name: x-exact-post
    match: { path: "=/x/e", methods: [POST] }
    respond: { body: "${route}" }
  - name: x-prefix
    match: { path: /x/ }
    respond: { body: "${route}" }

  # 405 only when a route matched all but the method
  - name: n-post-header
    match: { path: /n/, methods: [POST], headers: { X-K: v } }
    respond: { body: "${route}" }
  - name: u-put
    match: { path: /u/, methods: [PUT] }
    respond: { body: "${route}" }
  - name: u-x-delete
    match: { path: /u/x, methods: [DELETE] }
    respond: { body: "${route}" }
  - name: u-x-other-host
    match: { path: /u/x, methods: [PATCH], host: elsewhere.test }
    respond: { body: "${route}" }
  - name: re-patch
    match: { path: "~^/rp/", methods: [PATCH] }
    respond: { body: "${route}" }
  - name: pm-post
    match: { path: /pm/, methods: [POST] }
    respond: { body: "${route}" }
  - name: pm-regex
    match: { path: "~^/pm/r" }
    respond: { body: "${route}" }

  # length beats constraints across host groups too
  - name: hl-host
    match: { path: /hl/, host: hl.test }
    respond: { body: "${route}" }
  - name: hl-long
    match: { path: /hl/long/ }
    respond: { body: "${route}" }
  - name: hm-short
    match: { path: /hm/ }
    respond: { body: "${route}" }
  - name: hm-host-long
    match: { path: /hm/long/, host: "*.hm.test" }
    respond: { body: "${route}" }

  # regex routes with a host
  - name: rh
    match: { path: "~^/rh/", host: rh.test }
    respond: { body: "${route}" }
EOF

my $port = $t->port('GW');

# One request on its own connection: the body of a 200, or "STATUS" and
# the Allow field, if any, for anything else.
sub route_of ($method, $target, @h) {
    my %seen = map { lc($h[$_]) => 1 } grep { !($_ % 2) } 0 .. $#h;
    unshift @h, Host => 'localhost' unless $seen{host};
    my $raw = "$method $target HTTP/1.1\r\n";
    while (my ($n, $v) = splice @h, 0, 2) {
        $raw .= "$n: $v\r\n";
    }
    my $r = parse_response(http("${raw}Connection: close\r\n\r\n",
                                port => $port));
    return $r->{body} if $r->{status} == 200;
    return "$r->{status}"
           . (defined $r->{headers}{allow} ? " Allow: $r->{headers}{allow}"
                                           : '');
}


# ---- exact, prefix, regex --------------------------------------------------

is(route_of(GET => '/a/b'), 'a-b-exact', 'exact beats a prefix of the '
   . 'same text');
is(route_of(GET => '/a/b/c'), 'a-b-prefix', 'the longest prefix wins');
is(route_of(GET => '/a/bc'), 'a-b-prefix', 'longest prefix (bytes)');
is(route_of(GET => '/a/x'), 'a', 'a shorter prefix when the longer one '
   . 'does not match');
is(route_of(GET => '/a/'), 'a', 'prefix beats a regex written before it');

is(route_of(GET => '/z/y'), 'z-general', 'regex: the first written wins, '
   . 'though the second is more specific');
is(route_of(GET => '/w/y'), 'w-specific', 'regex: first written (specific)');
is(route_of(GET => '/w/q'), 'w-general', 'regex: the next one is tried');


# ---- same path: constraints, then order ------------------------------------

is(route_of(GET => '/c/'), 'c-plain', 'no condition met: the plain route');
is(route_of(GET => '/c/', 'X-A' => 1), 'c-header', 'one constraint beats '
   . 'none');
is(route_of(GET => '/c/?q=1', 'X-A' => 1), 'c-header-query',
   'two constraints beat one');
is(route_of(GET => '/c/?q=1'), 'c-plain', 'a query alone meets no route '
   . 'but the plain one');
is(route_of(GET => '/c/', 'X-A' => 1, 'X-B' => 1), 'c-header',
   'equal constraints: the one written first');
is(route_of(GET => '/c/', 'X-B' => 1, 'X-C' => 1, 'X-D' => 1),
   'c-two-headers', 'each header counts one');
is(route_of(GET => '/c/?q=1', Host => 'c.test', 'X-A' => 1),
   'c-header-query', 'equal (host + methods vs header + query): order');
is(route_of(GET => '/c/', Host => 'c.test', 'X-A' => 1), 'c-host-methods',
   'host + methods (two) beat one header');
is(route_of(POST => '/c/', Host => 'c.test', 'X-A' => 1), 'c-header',
   'the method fails: the next candidate');

is(route_of(GET => '/mc/'), 'mc-get', 'methods count one');
is(route_of(POST => '/mc/'), 'mc-plain', 'methods fail: the plain one, '
   . 'not 405');
is(route_of(GET => '/hc/', Host => 'h.test'), 'hc-host', 'host counts one');
is(route_of(GET => '/hc/', Host => 'x.test'), 'hc-plain', 'other host: '
   . 'plain');

is(route_of(GET => '/t1/', Host => 'a.ex.test'), 't1-wild',
   'wildcard written before exact host wins the tie');
is(route_of(GET => '/t2/', Host => 'a.ex.test'), 't2-exact',
   'exact host written before wildcard wins the tie');
is(route_of(GET => '/t1/', Host => 'b.ex.test'), 't1-wild',
   'only the wildcard matches');


# ---- length beats constraints ----------------------------------------------

is(route_of(GET => '/l/long/x?q=1', Host => 'l.test', 'X-A' => 1),
   'l-long-plain', 'a longer prefix beats a shorter one with more '
   . 'constraints');
is(route_of(GET => '/l/exact?q=1', Host => 'l.test', 'X-A' => 1),
   'l-exact-plain', 'an exact path beats a prefix with more constraints');
is(route_of(GET => '/l/other?q=1', Host => 'l.test', 'X-A' => 1),
   'l-short-constrained', 'the constrained prefix where nothing longer '
   . 'matches');
is(route_of(GET => '/l/other?q=1', Host => 'l.test'), '404',
   'the constrained prefix fails on a header: 404');
is(route_of(GET => '/hl/long/x', Host => 'hl.test'), 'hl-long',
   'a longer prefix without a host beats a host route');
is(route_of(GET => '/hl/x', Host => 'hl.test'), 'hl-host',
   'the host route where nothing longer matches');
is(route_of(GET => '/hm/long/x', Host => 'a.hm.test'), 'hm-host-long',
   'a longer wildcard-host prefix beats a shorter one without host');
is(route_of(GET => '/hm/long/x', Host => 'hm.test'), 'hm-short',
   'the wildcard host fails: the shorter prefix');


# ---- falling through to the next candidate ---------------------------------

is(route_of(GET => '/f/deep/1', 'X-Go' => 'yes'), 'f-deep',
   'the longer prefix when its header matches');
is(route_of(GET => '/f/deep/1'), 'f-short', 'its header fails: the '
   . 'shorter prefix');
is(route_of(GET => '/f/deep/1', 'X-Go' => 'no'), 'f-short',
   'wrong header value: the shorter prefix');
is(route_of(GET => '/g/deep/1?go=yes'), 'g-deep', 'prefix with its query');
is(route_of(GET => '/g/deep/1?go=no'), 'g-regex deep/1',
   'the prefix fails on its query and no shorter one: the regex routes');
is(route_of(GET => '/g/other'), 'g-regex other', 'regex where no prefix '
   . 'matches');
is(route_of(GET => '/o/deep/1'), 'o-short', 'the method fails: the '
   . 'shorter prefix, not 405');
is(route_of(POST => '/o/deep/1'), 'o-deep-post', 'the method matches');
is(route_of(GET => '/x/e'), 'x-prefix', 'an exact path failing on the '
   . 'method: the prefix');
is(route_of(POST => '/x/e'), 'x-exact-post', 'exact with its method');


# ---- 405 or 404 ------------------------------------------------------------

is(route_of(GET => '/n/', 'X-K' => 'v'), '405 Allow: POST',
   'all but the method matched: 405');
is(route_of(GET => '/n/'), '404', 'the header fails too: 404, not 405');
is(route_of(GET => '/n/', 'X-K' => 'w'), '404', 'wrong header value and '
   . 'method: 404');
is(route_of(POST => '/n/', 'X-K' => 'v'), 'n-post-header', 'all matched');
is(route_of(GET => '/u/x'), '405 Allow: PUT, DELETE',
   'Allow: the union of every route that matched all but the method');
is(route_of(GET => '/u/y'), '405 Allow: PUT', 'Allow: only routes whose '
   . 'path matched');
is(route_of(GET => '/u/x', Host => 'elsewhere.test'),
   '405 Allow: PUT, DELETE, PATCH', 'Allow: routes whose host matched');
is(route_of(GET => '/rp/1'), '405 Allow: PATCH', 'a regex route failing on '
   . 'the method: 405');
is(route_of(GET => '/rq/1'), '404', 'no regex matched: 404');
is(route_of(GET => '/pm/r'), 'pm-regex', 'a prefix failing on the method '
   . 'does not hide a regex route that matches all');
is(route_of(GET => '/pm/x'), '405 Allow: POST', 'no regex: 405');


# ---- regex routes with a host ----------------------------------------------

is(route_of(GET => '/rh/1', Host => 'RH.test:81'), 'rh', 'regex route: '
   . 'host matched');
is(route_of(GET => '/rh/1', Host => 'other.test'), '404', 'regex route: '
   . 'other host');


# ---- a catch-all hides the regex routes ------------------------------------

# Regex routes only run when no exact or prefix route matched, so a "/"
# catch-all (here a route without `match`) is always taken before them.
# Also: a `match` without `path` is the prefix "/", and its constraints
# rank it above the bare catch-all.
$t->stop;
$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
routes:
  - name: api-regex
    match: { path: '~^/api/(\d+)$' }
    respond: { body: "${route}" }
  - name: catch-all
    respond: { body: "${route} ${path}" }
  - name: deletes
    match: { methods: [DELETE] }
    respond: { body: "${route} ${path}" }
  - name: on-host
    match: { host: "*.host.test" }
    respond: { body: "${route} ${path}" }
  - name: api-exact
    match: { path: "=/api/0" }
    respond: { body: "${route}" }
  - name: root-exact
    match: { path: "=/" }
    respond: { body: "${route}" }
EOF
$port = $t->port('GW');

is(route_of(GET => '/api/1'), 'catch-all /api/1',
   'a route without match is "/", which hides the regex routes');
is(route_of(GET => '/anything/else'), 'catch-all /anything/else',
   'the catch-all takes every path');
is(route_of(GET => '/api/0'), 'api-exact', 'exact still beats it');
is(route_of(GET => '/'), 'root-exact', '"=/" beats the catch-all on "/"');
is(route_of(DELETE => '/api/1'), 'deletes /api/1',
   'match without path: "/" with its methods, ranked above the catch-all');
is(route_of(GET => '/x', Host => 'a.host.test'), 'on-host /x',
   'match with only a host: "/" on that host');
is(route_of(DELETE => '/x', Host => 'a.host.test'), 'deletes /x',
   'equal constraints: the order written');
is(route_of(GET => '/x', Host => 'host.test'), 'catch-all /x',
   'the wildcard does not take the bare domain');
