# What a route does to the request and its answer: `rewrite` (strip_prefix
# first, then the `path` template, with regex captures and variables; the
# query string is kept), request_headers and response_headers (remove,
# then set, which replaces every field of the name, then add, which
# appends; values are templates), the redirect action (301 by default,
# 302/307/308, templated Location, empty body) and the respond action
# (status, templated headers and body, text/plain by default).  The mock
# backend shows what the upstream received; a raw upstream sends a field
# twice.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->has_module(qw/router/)->plan(76);
my $b1 = $t->backend(id => 'b1');
my $json = JSON::PP->new;

# A port bound but not listening: connecting to it is refused (502).
my $dead = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                 Proto => 'tcp') or die "bind: $@";

# A raw upstream whose answer has two X-Twice fields, which the mock
# backend cannot send.
my ($raw_port, $raw_pid) = raw_upstream(
    "HTTP/1.1 200 OK\r\nServer: raw-upstream\r\nX-Twice: 1\r\n"
    . "X-Twice: 2\r\nX-Keep: k\r\nContent-Length: 2\r\n"
    . "Connection: close\r\n\r\nok");
END {
    local $?;
    if ($raw_pid) {
        kill 'KILL', $raw_pid;
        waitpid $raw_pid, 0;
    }
}

my $config = <<'EOF';
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
upstreams:
  app: { targets: [ "127.0.0.1:%%PORT_B1%%" ] }
  raw: { targets: [ "127.0.0.1:RAW_PORT" ] }
  dead: { targets: [ "127.0.0.1:DEAD_PORT" ] }
routes:
  # ---- rewrite
  - name: strip
    match: { path: /users }
    rewrite: { strip_prefix: /users }
    upstream: app
  - name: template
    match: { path: '~^/v1/items/(\d+)/(\w+)$' }
    rewrite: { path: "/v2/${2}/${1}" }
    upstream: app
  - name: strip-then-path
    match: { path: /s2/ }
    rewrite: { strip_prefix: /s2, path: "/api${path}" }
    upstream: app
  - name: vars
    match: { path: /vars/ }
    rewrite: { path: "/by/${method}/${query.id}/${header.X-Ver}" }
    upstream: app
  - name: from-header
    match: { path: /fh/ }
    rewrite: { path: "${header.X-Target}" }
    upstream: app
  - name: rewrite-respond
    match: { path: /rr/ }
    rewrite: { strip_prefix: /rr }
    respond: { body: "path=${path}" }

  # ---- request headers
  - name: reqh
    match: { path: /reqh/ }
    request_headers:
      remove: [X-Drop, cookie]
      set: { X-Set: "set-${method}", X-Replace: "new" }
      add: { X-Add: "added", X-Replace: "extra" }
    upstream: app
  - name: reqh-template
    match: { path: '~^/rt/(\w+)$' }
    request_headers:
      set: { X-Route: "${route}", X-Cap: "cap-${1}", X-Copy: "${header.X-In}",
             Host: rewritten.test }
    upstream: app

  # ---- response headers
  - name: resh
    match: { path: /resh/ }
    response_headers:
      remove: [Server, x-backend-id]
      set: { X-Frame-Options: DENY, X-Conn-Seq: "replaced" }
      add: { X-Added: "a-${route}", X-Req-Seq: "second" }
    upstream: app
  - name: resh-raw-set
    match: { path: /raw-set/ }
    response_headers: { set: { X-Twice: "only" } }
    upstream: raw
  - name: resh-raw-remove-add
    match: { path: /raw-rm/ }
    response_headers: { remove: [X-Twice], add: { X-Twice: "mine" } }
    upstream: raw
  - name: resh-raw-add
    match: { path: /raw-add/ }
    response_headers: { add: { X-Twice: "3" } }
    upstream: raw
  - name: resh-respond
    match: { path: '~^/rsp/(\w+)$' }
    response_headers:
      remove: [Server]
      set: { Content-Type: application/json, X-Cap: "c-${1}" }
    respond: { body: "{}" }
  - name: resh-dead
    match: { path: /dead/ }
    response_headers: { set: { X-Edited: "yes-${route}" }, remove: [Server] }
    upstream: dead
  - name: resh-app
    match: { path: /up/ }
    response_headers: { set: { X-Edited: "yes-${route}" } }
    upstream: app
  - name: plain-respond
    match: { path: "=/plain" }
    respond: { body: "plain" }

  # ---- redirect
  - name: rd-default
    match: { path: "=/old" }
    redirect: { to: "https://new.example.com${request_uri}" }
  - name: rd-302
    match: { path: "=/r302" }
    redirect: { to: /target/302, status: 302 }
  - name: rd-307
    match: { path: "=/r307" }
    redirect: { to: /target/307, status: 307 }
  - name: rd-308
    match: { path: "=/r308" }
    redirect: { to: /target/308, status: 308 }
  - name: rd-capture
    match: { path: '~^/go/(\w+)/(\w+)$' }
    redirect: { to: "https://${host}/dest/${2}/${1}?from=${route}",
                status: 302 }

  # ---- respond
  - name: resp-full
    match: { path: "=/resp" }
    respond:
      status: 201
      headers: { X-A: "a-${method}", Content-Type: application/json,
                 X-In: "${header.X-In}" }
      body: '{"p":"${path}","x":"${query.x}"}'
  - name: resp-empty
    match: { path: "=/resp-empty" }
    respond: {}
  - name: resp-body
    match: { path: "=/resp-body" }
    respond: { body: "hello\n" }
  - name: resp-404
    match: { path: "=/resp-404" }
    respond: { status: 404, body: "custom not found" }
  - name: resp-type-lower
    match: { path: "=/resp-lower" }
    respond: { headers: { content-type: text/html }, body: "<p>" }
  - name: resp-capture
    match: { path: '~^/echo/(\w+)-(\w+)$' }
    respond: { body: "${2}:${1}" }
EOF
$config =~ s/RAW_PORT/$raw_port/;
$config =~ s/DEAD_PORT/${\ $dead->sockport}/;
$t->write_config($config)->run();

my $port = $t->port('GW');

# One request on its own connection; @h are header lines (name, value,
# ...).  Returns the parsed response.
sub req ($method, $target, @h) {
    my %seen = map { lc($h[$_]) => 1 } grep { !($_ % 2) } 0 .. $#h;
    unshift @h, Host => 'gw.test' unless $seen{host};
    my $raw = "$method $target HTTP/1.1\r\n";
    while (my ($n, $v) = splice @h, 0, 2) {
        $raw .= "$n: $v\r\n";
    }
    return parse_response(http("${raw}Connection: close\r\n\r\n",
                               port => $port),
                          head => $method eq 'HEAD');
}

# What the backend says it received (its JSON echo), for a 200.
sub upstream_got ($method, $target, @h) {
    my $r = req($method, $target, @h);
    return eval { $json->decode($r->{body}) }
           // { status => $r->{status}, body => $r->{body} };
}

# Every value of a response field, in order.
sub fields ($r, $name) {
    return join ' | ', map { $_->[1] }
                       grep { lc $_->[0] eq lc $name } @{$r->{header_list}};
}


# ---- rewrite: strip_prefix, then the path template -------------------------

is(upstream_got(GET => '/users/7?x=1&y=%20')->{uri}, '/7?x=1&y=%20',
   'strip_prefix: "/users/7" -> "/7", query kept as sent');
is(upstream_got(GET => '/users')->{uri}, '/',
   'strip_prefix: "/users" -> "/"');
is(upstream_got(GET => '/users?a=b')->{uri}, '/?a=b',
   'strip_prefix: "/users?a=b" -> "/?a=b"');
is(upstream_got(GET => '/users/a/b/')->{uri}, '/a/b/',
   'strip_prefix keeps the rest of the path');

is(upstream_got(GET => '/v1/items/42/detail?x=1&y=2')->{uri},
   '/v2/detail/42?x=1&y=2', 'path template with captures; query kept');
is(upstream_got(GET => '/s2/rest/of?q')->{uri}, '/api/rest/of?q',
   'strip_prefix runs before the path template (${path} is stripped)');
is(upstream_got(GET => '/vars/x?id=9', 'X-Ver' => 'v3')->{uri},
   '/by/GET/9/v3?id=9', 'path template with variables');
is(upstream_got(GET => '/fh/x?k=v', 'X-Target' => '/elsewhere')->{uri},
   '/elsewhere?k=v', 'path template from a header');

# A rewrite that does not make a path is a 500, and nothing is forwarded.
my $before = $b1->requests;
my ($r, @rs);
$r = req(GET => '/fh/x');
is($r->{status}, 500, 'rewrite to "" (not a path): 500');
is(scalar $b1->requests, $before, '... and the upstream is not contacted');
ok($t->wait_log(qr/rewrite of route "from-header" made "", not a path/, 5),
   '... and the error log says why');

# A rewritten path must still be a valid request target upstream: a
# space from a header may not split the request line.
$before = $b1->requests;
$r = req(GET => '/vars/x?id=1', 'X-Ver' => 'a b HTTP/1.0');
my @new = ($b1->requests)[$before .. $b1->requests - 1];
ok(!(grep { defined $_->{error} || ($_->{uri} // '') =~ / / } @new),
   'a space in a rewritten path never reaches the upstream request line')
    or diag explain \@new;

is(req(GET => '/rr/abc')->{body}, 'path=/abc',
   'the respond action sees the rewritten path');


# ---- request headers: remove, set, add --------------------------------------

my $got = upstream_got(GET => '/reqh/', 'X-Drop' => 'a', 'X-DROP' => 'b',
                       Cookie => 'c=1', 'X-Replace' => 'old1',
                       'X-Replace' => 'old2', 'X-Add' => 'client',
                       'X-Keep' => 'kept');
my $h = $got->{headers} // {};
ok(!exists $h->{'x-drop'}, 'remove: every field of the name, any case');
ok(!exists $h->{cookie}, 'remove: a name written in lower case');
is($h->{'x-set'}, 'set-GET', 'set: a templated value');
is($h->{'x-replace'}, 'new, extra', 'set replaces both client fields, '
   . 'then add appends');
is($h->{'x-add'}, 'client, added', 'add keeps the client field');
is($h->{'x-keep'}, 'kept', 'other fields untouched');
is($h->{'x-forwarded-for'}, '127.0.0.1', 'proxy fields still added');

$got = upstream_got(POST => '/reqh/', 'Content-Length' => 0);
is($got->{headers}{'x-set'}, 'set-POST', 'set: template per request');

$got = upstream_got(GET => '/rt/abc', 'X-In' => 'copied', 'X-Route' => 'x');
$h = $got->{headers} // {};
is($h->{'x-route'}, 'reqh-template', 'set: ${route}');
is($h->{'x-cap'}, 'cap-abc', 'set: regex capture ${1}');
is($h->{'x-copy'}, 'copied', 'set: ${header.NAME} of the client');
is($h->{host}, 'rewritten.test', 'set Host: the upstream gets it');
is($got->{uri}, '/rt/abc', 'no rewrite: the path as sent');


# ---- response headers: remove, set, add -------------------------------------

$r = req(GET => '/resh/');
is($r->{status}, 200, 'response edits: 200 from the backend');
is(fields($r, 'Server'), '', 'remove: [Server] drops the upstream\'s '
   . 'Server and Portico adds none');
is(fields($r, 'X-Backend-Id'), '', 'remove: a name written in lower case');
is(fields($r, 'X-Frame-Options'), 'DENY', 'set: a new field');
is(fields($r, 'X-Conn-Seq'), 'replaced', 'set: replaces the upstream\'s');
like(fields($r, 'X-Req-Seq'), qr/^\d+ \| second\z/,
     'add: appends to the upstream\'s');
is(fields($r, 'X-Added'), 'a-resh', 'add: a templated value');
like($r->{body}, qr/"uri":"\/resh\/"/, 'the body is untouched');

$r = req(GET => '/raw-set/');
is(fields($r, 'X-Twice'), 'only', 'set replaces every field of the name');
is(fields($r, 'X-Keep'), 'k', 'other upstream fields kept');
is(fields($r, 'Server'), 'raw-upstream', 'the upstream\'s Server is kept');
$r = req(GET => '/raw-rm/');
is(fields($r, 'X-Twice'), 'mine', 'remove drops both fields, then add');
$r = req(GET => '/raw-add/');
is(fields($r, 'X-Twice'), '1 | 2 | 3', 'add appends a third field');

# Edits apply to the route's respond action, after its own fields.
$r = req(GET => '/rsp/zz');
is(fields($r, 'Content-Type'), 'application/json',
   'set replaces the respond default Content-Type');
is(fields($r, 'Server'), '', 'remove: [Server] on a respond route');
is(fields($r, 'X-Cap'), 'c-zz', 'response edit with a capture');
is(fields(req(GET => '/plain'), 'Server'), 'portico',
   'without edits Portico sends its Server field');

# ... and to the route's error answers.
$r = req(GET => '/dead/x');
is($r->{status}, 502, 'dead upstream: 502');
is(fields($r, 'X-Edited'), 'yes-resh-dead', 'response edits on a 502');
is(fields($r, 'Server'), '', 'remove on a 502');
like($r->{body}, qr/"status":502/, '502 keeps its JSON body');
$r = req(GET => '/up/x?status=404');
is($r->{status}, 404, 'upstream 404 passed through');
is(fields($r, 'X-Edited'), 'yes-resh-app', 'response edits on a 404');
$r = req(GET => '/up/x?status=503');
is(fields($r, 'X-Edited'), 'yes-resh-app', 'response edits on a 503');


# ---- redirect ---------------------------------------------------------------

$r = req(GET => '/old?a=1&b=2');
is($r->{status}, 301, 'redirect: 301 by default');
is($r->{headers}{location}, 'https://new.example.com/old?a=1&b=2',
   'redirect: templated Location');
is($r->{body}, '', 'redirect: empty body');
is($r->{headers}{'content-length'}, '0', 'redirect: Content-Length: 0');

for my $s (302, 307, 308) {
    $r = req(GET => "/r$s");
    ok($r->{status} == $s && $r->{headers}{location} eq "/target/$s",
       "redirect: status $s") or diag explain $r;
}

$r = req(POST => '/r307', 'Content-Length' => 0);
is($r->{status}, 307, 'redirect answers any method');
$r = req(HEAD => '/old');
ok($r->{status} == 301 && $r->{headers}{location} =~ m{/old$},
   'redirect: HEAD');
$r = req(GET => '/go/one/two', Host => 'Gw.Test:8080');
is($r->{status}, 302, 'redirect with captures: status');
is($r->{headers}{location}, 'https://gw.test/dest/two/one?from=rd-capture',
   'redirect with captures and variables');


# ---- respond ----------------------------------------------------------------

$r = req(GET => '/resp?x=42', 'X-In' => 'in');
is($r->{status}, 201, 'respond: status');
is($r->{body}, '{"p":"/resp","x":"42"}', 'respond: templated body');
is(fields($r, 'X-A'), 'a-GET', 'respond: templated header');
is(fields($r, 'X-In'), 'in', 'respond: header from ${header.NAME}');
is(fields($r, 'Content-Type'), 'application/json',
   'respond: its Content-Type replaces the default');
is($r->{headers}{'content-length'}, length $r->{body},
   'respond: Content-Length');

$r = req(GET => '/resp-empty');
ok($r->{status} == 200 && $r->{body} eq ''
   && $r->{headers}{'content-length'} eq '0', 'respond: {} is an empty 200');
is(fields($r, 'Content-Type'), 'text/plain; charset=utf-8',
   'respond: default Content-Type');
$r = req(GET => '/resp-body');
ok($r->{body} eq "hello\n"
   && fields($r, 'Content-Type') eq 'text/plain; charset=utf-8',
   'respond: body with the default type');
$r = req(HEAD => '/resp-body');
ok($r->{status} == 200 && $r->{headers}{'content-length'} eq '6',
   'respond: HEAD gets the length');
$r = req(GET => '/resp-404');
ok($r->{status} == 404 && $r->{body} eq 'custom not found',
   'respond: a 404 with its own body, not the JSON error');
is(fields($r, 'Content-Type'), 'text/plain; charset=utf-8',
   'respond: a 404 keeps the default type');
$r = req(GET => '/resp-lower');
is(fields($r, 'Content-Type'), 'text/html',
   'respond: content-type in lower case replaces the default too');
is(req(GET => '/echo/ab-cd')->{body}, 'cd:ab', 'respond: captures');

# Pipelined requests to several actions on one connection.
@rs = parse_responses(http(
    "GET /resp-body HTTP/1.1\r\nHost: a\r\n\r\n"
    . "GET /old HTTP/1.1\r\nHost: a\r\n\r\n"
    . "GET /users/1 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    port => $port));
is(join(' ', map { $_->{status} } @rs), '200 301 200',
   'respond, redirect and proxy on one keep-alive connection');


# A forked upstream that answers every request with $answer and closes.
sub raw_upstream ($answer) {
    my $ls = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                   Listen => 16, Proto => 'tcp',
                                   ReuseAddr => 1) or die "listen: $@";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        eval {
            # Nothing of the test's (TAP pipe, port reservations) stays
            # open in here.
            open STDOUT, '>', '/dev/null';
            open STDERR, '>', '/dev/null';
            Test::Portico::Backend::close_fds_except(0, fileno $ls);
            $SIG{ALRM} = sub { POSIX::_exit(0) };
            alarm 120;
            while (my $c = $ls->accept) {
                my $in = '';
                my $sel = IO::Select->new($c);
                while ($in !~ /\r\n\r\n/ && $sel->can_read(5)) {
                    sysread($c, $in, 4096, length $in) or last;
                }
                syswrite $c, $answer;
                close $c;
            }
        };
        POSIX::_exit(0);
    }
    my $p = $ls->sockport;
    close $ls;
    return ($p, $pid);
}
