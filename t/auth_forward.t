# Forward auth (a route's auth: { forward: ... }): the gateway asks an
# auth service, one of the upstreams, before the request goes on. A 2xx
# lets it through with copy_headers copied onto it, a 401 or 403 is the
# client's answer as the service gave it, anything else is a 503. The
# question is an upstream call (core/upstream/pt_upstream_call.c): it
# keeps its connection alive, is balanced, speaks TLS, has a timeout, and
# dies with a client that leaves; HTTP/1.1 and HTTP/2 clients alike.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use Test::More;
use Test::Portico;
use Time::HiRes qw(time);

my $t = Test::Portico->new()->has_module(qw/router auth/)->plan(69);

my $dir = $t->testdir;
my $app = $t->backend(id => 'app');
my $auth = $t->backend(id => 'auth');
my $ka = $t->backend(id => 'ka');
my %lb = map { $_ => $t->backend(id => $_) } qw(a1 a2);
my %tls = tls_files($dir, other_ca => 1);
my $tauth = $t->backend(id => 'tauth',
                        tls => { cert => $tls{cert}, key => $tls{key} });

# An auth service that reads the question and never answers: it notes
# when the question came and when the gateway closed the connection.
sub note_line ($line) {
    open my $fh, '>>', "$dir/hang.log" or return;
    syswrite $fh, "$line\n";
    close $fh;
}
my $hang = $t->backend(id => 'hang', handler => sub ($sock, $seq) {
    my $buf = '';
    while (index($buf, "\r\n\r\n") < 0) {
        sysread($sock, $buf, 4096, length $buf) or return;
    }
    my ($id) = $buf =~ /^X-Request-ID: (\S+)\r$/mi;
    note_line("got $id " . time);
    1 while sysread($sock, my $x, 4096);
    note_line("eof $id " . time);
});

sub hang_log () {
    open my $fh, '<', "$dir/hang.log" or return {};
    my %at;
    while (<$fh>) {
        $at{"$1 $2"} = $3 if /^(\w+) (\S+) ([\d.]+)$/;
    }
    return \%at;
}

$t->write_config(<<"EOF")->run();
workers: 1
listen: [ { address: "127.0.0.1:%%PORT_GW%%", http2: true } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
upstreams:
  app: { targets: [ "127.0.0.1:%%PORT_APP%%" ] }
  authsvc: { targets: [ "127.0.0.1:%%PORT_AUTH%%" ] }
  authka: { targets: [ "127.0.0.1:%%PORT_KA%%" ] }
  authlb: { targets: [ "127.0.0.1:%%PORT_A1%%", "127.0.0.1:%%PORT_A2%%" ] }
  authdown: { targets: [ "127.0.0.1:%%PORT_DEAD%%" ] }
  authhang: { targets: [ "127.0.0.1:%%PORT_HANG%%" ] }
  authretry:
    targets: [ "127.0.0.1:%%PORT_DEAD%%", "127.0.0.1:%%PORT_AUTH%%" ]
    retries: 1
  authtls:
    targets: [ "127.0.0.1:%%PORT_TAUTH%%" ]
    keepalive: 0
    tls: { ca: $tls{ca}, server_name: localhost }
  authbadca:
    targets: [ "127.0.0.1:%%PORT_TAUTH%%" ]
    tls: { ca: $tls{other_ca}, server_name: localhost }
routes:
  - name: allow
    match: { path: /allow/ }
    upstream: app
    rewrite: { strip_prefix: /allow }
    auth:
      forward:
        upstream: authsvc
        path: "/check?header.X-User=alice"
        copy_headers: [X-User]
  - name: nouser
    match: { path: /nouser }
    upstream: app
    auth:
      forward:
        upstream: authsvc
        path: /check
        headers: [Authorization, X-Api-Key]
        copy_headers: [X-User]
  - name: deny401
    match: { path: /deny401 }
    upstream: app
    auth:
      forward:
        upstream: authsvc
        path: "/check?status=401&chunked=1&header.WWW-Authenticate=Bearer%20realm%3D%22api%22"
  - name: deny403
    match: { path: /deny403 }
    upstream: app
    auth: { forward: { upstream: authsvc, path: "/check?status=403" } }
  - name: other
    match: { path: /other }
    upstream: app
    auth: { forward: { upstream: authsvc, path: "/check?status=302" } }
  - name: big
    match: { path: /big }
    upstream: app
    auth: { forward: { upstream: authsvc, path: "/check?size=100000" } }
  - name: slow
    match: { path: /slow }
    upstream: app
    auth:
      forward: { upstream: authsvc, path: "/check?delay=4000", timeout: 500ms }
  - name: down
    match: { path: /down }
    upstream: app
    auth: { forward: { upstream: authdown } }
  - name: retry
    match: { path: /retry }
    upstream: app
    auth: { forward: { upstream: authretry, path: /check } }
  - name: ka
    match: { path: /ka }
    upstream: app
    auth: { forward: { upstream: authka, path: /check } }
  - name: lb
    match: { path: /lb }
    upstream: app
    auth: { forward: { upstream: authlb, path: /check } }
  - name: tls
    match: { path: /tls }
    upstream: app
    auth:
      forward:
        upstream: authtls
        path: "/check?header.X-User=tls-user"
        copy_headers: [X-User]
  - name: badca
    match: { path: /badca }
    upstream: app
    auth: { forward: { upstream: authbadca, path: /check } }
  - name: hang
    match: { path: /hang }
    upstream: app
    auth: { forward: { upstream: authhang, path: /check, timeout: 2s } }
EOF

my $worker = ($t->worker_pids)[0];

# The response (status 0 when none came).
sub get ($path, %h) {
    my $raw = http_get($path, headers => \%h, timeout => 10);
    return eval { parse_response($raw) } // { status => 0, headers => {},
                                              body => '' };
}

# What a backend saw of the request with this X-Request-ID.
sub seen ($b, $id) {
    return grep { ($_->{headers}{'x-request-id'} // '') eq $id } $b->requests;
}


# ---- allowed: copy_headers reach the upstream, the client's are gone ----

my $r = get('/allow/x?q=1', 'X-Request-ID' => 'allow-1',
            Authorization => 'Bearer t0k', Cookie => 's=1',
            'X-Other' => 'nope', 'X-User' => 'mallory',
            'X-Forwarded-For' => '10.1.1.1');
is($r->{status}, 200, 'allowed: 200 from the upstream');
my $echo = eval { decode_json($r->{body}) } // {};
is($echo->{uri}, '/x?q=1', 'allowed: the upstream got the rewritten path');
is($echo->{headers}{'x-user'}, 'alice',
   'allowed: X-User is what the auth service said, not what the client sent');
is($echo->{headers}{authorization}, 'Bearer t0k',
   'allowed: the request itself is proxied as it was');

my ($q) = seen($auth, 'allow-1');
ok($q, 'the auth service was asked') or diag(explain [$auth->requests]);
$q //= { headers => {} };
is("$q->{method} $q->{uri}", 'GET /check?header.X-User=alice',
   'the question is GET path');
my $qh = $q->{headers};
is($qh->{'x-forwarded-method'}, 'GET', 'X-Forwarded-Method');
is($qh->{'x-forwarded-uri'}, '/allow/x?q=1',
   'X-Forwarded-Uri: the path and query as received, before the rewrite');
is($qh->{'x-forwarded-host'}, 'localhost', 'X-Forwarded-Host');
is($qh->{'x-forwarded-proto'}, 'http', 'X-Forwarded-Proto');
is($qh->{'x-forwarded-for'}, '10.1.1.1, 127.0.0.1',
   'X-Forwarded-For as the proxy writes it');
is($qh->{authorization}, 'Bearer t0k', 'Authorization passed on');
is($qh->{cookie}, 's=1', 'Cookie passed on');
is($qh->{host}, "127.0.0.1:" . $t->port('AUTH'),
   "Host is the auth service's address");
is(join(' ', sort keys %$qh),
   join(' ', sort qw(host authorization cookie x-forwarded-method
                     x-forwarded-uri x-forwarded-host x-forwarded-proto
                     x-forwarded-for x-request-id)),
   'the auth service got those fields and no others (no X-Other, X-User, '
   . 'User-Agent)');

my $post = http("POST /allow/p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                . "X-Request-ID: post-1\r\nConnection: close\r\n\r\nhello",
                timeout => 10);
my ($pq) = seen($app, 'post-1');
ok($post =~ m{^HTTP/1.1 200 } && $pq && $pq->{body_length} == 5,
   'a body waits for the check and then reaches the upstream whole')
    or diag($post);

$r = get('/nouser', 'X-Request-ID' => 'nouser-1', 'X-User' => 'mallory',
         'X-Api-Key' => 'k1', Authorization => 'Basic x', Cookie => 's=2');
is($r->{status}, 200, 'allowed without X-User: 200');
$echo = eval { decode_json($r->{body}) } // {};
ok(!exists $echo->{headers}{'x-user'},
   "a copy_headers field the service did not send is removed")
    or diag($r->{body});
($q) = seen($auth, 'nouser-1');
$qh = $q ? $q->{headers} : {};
is($qh->{'x-api-key'}, 'k1', 'headers: [..., X-Api-Key] passes it on');
ok(exists $qh->{authorization} && !exists $qh->{cookie},
   'and only the fields listed (Cookie is not)') or diag(explain $qh);


# ---- the same over HTTP/2 (h2c): a stream waits for its check ----------

my $gw = "http://127.0.0.1:" . $t->port('GW');
my (undef, $h2) = curl('--http2-prior-knowledge', '-i', "$gw/allow/h2",
                       '-H', 'X-User: mallory', '-H', 'X-Request-ID: h2-1');
ok($h2 =~ m{^HTTP/2 200 } && $h2 =~ /"x-user":"alice"/,
   'HTTP/2: allowed, X-User replaced') or diag($h2);
(undef, $h2) = curl('--http2-prior-knowledge', '-i', "$gw/deny401");
ok($h2 =~ m{^HTTP/2 401 }
   && $h2 =~ /^www-authenticate: Bearer realm="api"\r$/m,
   'HTTP/2: the 401 passed back with its WWW-Authenticate') or diag($h2);


# ---- denied: the service's answer goes to the client as it is ----------

my $apps = () = $app->requests;

$r = get('/deny401', 'X-Request-ID' => 'deny-401');
is($r->{status}, 401, '401 from the auth service is passed back');
is($r->{headers}{'www-authenticate'}, 'Bearer realm="api"',
   'with its WWW-Authenticate');
is($r->{headers}{'content-type'}, 'application/json',
   'and its Content-Type');
my $body = eval { decode_json($r->{body}) } // {};
is($body->{uri}, '/check?status=401&chunked=1&header.WWW-Authenticate='
                 . 'Bearer%20realm%3D%22api%22',
   "and its (chunked) body, whole") or diag($r->{body});
is($r->{headers}{'x-request-id'}, 'deny-401', 'with our X-Request-ID');

$r = get('/deny403', 'X-Request-ID' => 'deny-403');
is($r->{status}, 403, '403 from the auth service is passed back');
$body = eval { decode_json($r->{body}) } // {};
is($body->{uri}, '/check?status=403', 'with its body');
is(scalar(() = $app->requests), $apps,
   'a denied request never reaches the upstream');


# ---- the service failing: 503, logged with the request id ---------------

$r = get('/other', 'X-Request-ID' => 'other-1');
is($r->{status}, 503, 'another status from the service (302): 503');
ok($t->wait_log(qr/\[error\].*answered 302.*request_id: other-1/, 5),
   'logged at error with the request id');

$r = get('/big', 'X-Request-ID' => 'big-1');
is($r->{status}, 503, 'an answer over 64 KiB: 503');
ok($t->wait_log(qr/\[error\].*too large.*request_id: big-1/, 5),
   'logged at error with the request id');

my $t0 = time;
$r = get('/slow', 'X-Request-ID' => 'slow-1');
my $took = time - $t0;
is($r->{status}, 503, 'a slow auth service: 503');
ok($took >= 0.4 && $took < 3.5,
   sprintf('after the 500ms timeout, not the 4s the service takes '
           . '(%.2fs)', $took));
ok($t->wait_log(qr/\[error\].*timed out.*request_id: slow-1/, 5),
   'logged at error with the request id');

$r = get('/down', 'X-Request-ID' => 'down-1');
is($r->{status}, 503, 'auth service down: 503');
ok($t->wait_log(qr/\[error\].*connect\(\) failed.*request_id: down-1/, 5),
   'logged at error with the request id');
is(scalar(() = $app->requests), $apps,
   'no failed check reached the upstream');

# Round robin tries the dead target first; the call goes on to the other.
$r = get('/retry', 'X-Request-ID' => 'retry-1');
is($r->{status}, 200, 'a refused connect is retried on another target');
my ($dead, $live) = map { "127.0.0.1:" . $t->port($_) } qw(DEAD AUTH);
my $retried = qr/retrying on \Q$live\E after \Q$dead\E \(retry 1 of 1\)/;
ok($t->wait_log(qr/\[info\].*$retried.*request_id: retry-1/, 5),
   'logged as a retry with the request id');


# ---- keep-alive: one connection to the auth service ---------------------

my $ok = 0;
for my $i (1 .. 20) {
    my $rr = get('/ka', 'X-Request-ID' => "ka-$i");
    $ok++ if $rr->{status} == 200;
}
is($ok, 20, '20 requests through the auth check');
my @kq = $ka->requests;
is(scalar @kq, 20, 'the auth service was asked 20 times');
my %conns = map { $_->{conn_seq} => 1 } @kq;
is(scalar keys %conns, 1, 'all over one kept-alive connection')
    or diag(join ' ', map { $_->{conn_seq} } @kq);


# ---- balancing: both targets of the auth upstream are asked -------------

$ok = 0;
for my $i (1 .. 4) {
    $ok++ if get('/lb', 'X-Request-ID' => "lb-$i")->{status} == 200;
}
is($ok, 4, '4 requests through a balanced auth upstream');
is(scalar(() = $lb{a1}->requests), 2, 'round robin: a1 asked twice');
is(scalar(() = $lb{a2}->requests), 2, 'round robin: a2 asked twice');


# ---- TLS to the auth service: verified, sessions resumed ----------------

my @users;
for my $i (1 .. 2) {
    my $rr = get('/tls', 'X-Request-ID' => "tls-$i");
    push @users, $rr->{status} . ' '
                 . (eval { decode_json($rr->{body})->{headers}{'x-user'} }
                    // '-');
}
is("@users", '200 tls-user 200 tls-user',
   'an auth service over TLS: allowed, its X-User copied');
my @tq = $tauth->requests;
is(join(' ', map { $_->{tls}{sni} // '-' } @tq), 'localhost localhost',
   'asked over TLS with SNI, on two connections (keepalive: 0)');
ok(@tq == 2 && !$tq[0]{tls}{resumed} && $tq[1]{tls}{resumed},
   'the second connection resumed the first one\'s session')
    or diag(explain [map { $_->{tls} } @tq]);

$r = get('/badca', 'X-Request-ID' => 'badca-1');
is($r->{status}, 503, 'an auth service whose certificate does not verify: '
   . '503');
ok($t->wait_log(qr/\[error\].*certificate verify failed.*request_id: badca-1/,
                5), 'logged at error with the request id');
is(scalar(() = $tauth->requests), 2, 'and it was never asked');


# ---- a client that leaves while its check is out -------------------------

# The call's timeout is 2 s: the auth connection must close when the
# client leaves, well before that, and the request's timer must be gone
# (it would fire into freed memory: ASan, or a dead worker).
my $start = time;
my $gone = http("GET /hang HTTP/1.1\r\nHost: t\r\nX-Request-ID: gone-1\r\n"
                . "\r\n", start => 1);
ok(wait_until(sub { hang_log()->{'got gone-1'} }, 5),
   'the hanging auth service got the question');
close $gone;
ok(wait_until(sub { hang_log()->{'eof gone-1'} }, 5),
   'the gateway closed the auth connection when the client left');
my $eof = hang_log()->{'eof gone-1'} // 1e18;
ok($eof < $start + 2,
   sprintf('at once, not at the call timeout (%.2fs after the request)',
           $eof - $start));

# A second one waits for its own 2 s timeout, which ends after the first
# one's would have: a timer left behind by the first has fired by then.
$r = get('/hang', 'X-Request-ID' => 'gone-2');
is($r->{status}, 503, 'a check that gets no answer: 503 at its timeout');
ok(hang_log()->{'eof gone-2'}
   || wait_until(sub { hang_log()->{'eof gone-2'} }, 5),
   'and its connection was closed too');

my $st = $t->status // {};
is($st->{upstreams}{authhang}{inflight}, 0,
   'nothing is left in flight on the auth upstream');
is($st->{upstreams}{authhang}{targets}[0]{inflight}, 0,
   'nor on its target');
is(($t->worker_pids)[0], $worker, 'the same worker still runs');
$r = get('/allow/y', 'X-Request-ID' => 'after-1');
is($r->{status}, 200, 'and serves');
is($st->{upstreams}{authka}{inflight}, 0,
   'the kept-alive auth upstream has nothing in flight either');


# ---- configuration errors, with their position --------------------------

my $BAD_HEAD = "error_log: error.log\npid_file: bad.pid\n"
               . "listen: [ { address: \"127.0.0.1:1\" } ]\n"
               . "upstreams: { a: { targets: [ \"127.0.0.1:1\" ] } }\n"
               . "routes:\n  - name: r\n    respond: { body: \"x\" }\n";

# `portico -t` on a route with this auth: line fails, naming the
# FILE:LINE:COL where the needle is.
sub config_error ($auth, $needle, $re) {
    my $yaml = "$BAD_HEAD    $auth\n";
    my $at = index($yaml, $needle, length $BAD_HEAD);
    my $before = substr($yaml, 0, $at);
    my $line = 1 + ($before =~ tr/\n//);
    my $col = $at - rindex($before, "\n");
    write_file("$dir/bad.yaml", $yaml);
    my ($code, $out) = run_cmd(10, $t->binary, '-t', '-p', $dir, '-c',
                               "$dir/bad.yaml");
    my $ok = $code == 1 && $out =~ /bad\.yaml:$line:$col: $re/;
    diag($out) unless $ok;
    return $ok;
}

ok(config_error('auth: { forward: { upstream: a, pathh: /x } }', 'pathh',
                qr/unknown key "pathh" in forward/),
   'an unknown key in forward: an error at its position');
ok(config_error('auth: { forward: { upstream: nosuch } }', 'nosuch',
                qr/forward: unknown upstream "nosuch"/),
   'an unknown upstream: an error at its position');
ok(config_error('auth: { forward: { path: /x } }', '{ path',
                qr/forward: upstream is required/),
   'no upstream: an error at the forward map');
ok(config_error('auth: { forward: { upstream: a, copy_headers: [Host] } }',
                'Host', qr/forward: copy_headers: "Host" is managed by/),
   'a field the gateway writes itself: an error at it');
ok(config_error('auth: { forward: { upstream: a }, basic: {} }', 'basic',
                qr/unknown key "basic" in auth/),
   'an unknown key in auth: an error at it');
