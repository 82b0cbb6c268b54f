# Router configuration: every mistake in a route's match, rewrite, header
# edits and actions is reported by `portico -t` as FILE:LINE:COL at the
# place of the mistake (a regex that does not compile with PCRE2's message
# and offset; ${N} beyond the path regex's groups at that template), a
# reload onto such a config keeps the old routes, and a config of a few
# thousand routes loads, passes -t, and routes every request to the
# right one.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->has_module(qw/router/)->plan(148);
my $dir = $t->testdir;

# The binary under test with @args: (exit code, output).
sub portico (@args) { return run_cmd(60, $t->binary, @args) }

my $HEAD = <<'EOF';
workers: 1
error_log: error.log
pid_file: portico.pid
upstreams:
  app: { targets: [ "127.0.0.1:1" ] }
routes:
EOF


# "LINE:COL" (1-based) of the $nth occurrence of $needle in $text.
sub pos_of ($text, $needle, $nth = 1) {
    my $at = -1;
    for (1 .. $nth) {
        $at = index($text, $needle, $at + 1);
        die "pos_of: '$needle' #$nth not in the config" if $at < 0;
    }
    my $before = substr($text, 0, $at);
    return (1 + ($before =~ tr/\n//)) . ':' . ($at - rindex($before, "\n"));
}


my $n = 0;

# Writes the routes in $body after the common head to a file of its own
# and runs -t on it: (exit code, output, file, text).
sub check ($body) {
    my $file = "$dir/case" . ++$n . '.yaml';
    my $text = $HEAD . $body;
    write_file($file, $text);
    my ($rc, $out) = portico('-t', '-p', $dir, '-c', $file);
    return ($rc, $out, $file, $text);
}


# One mistake: -t exits 1 and reports exactly one error, at $at (the n-th
# occurrence of a needle, [needle, n]) with a message matching $msg.
sub one_error ($name, $body, $msg, $at) {
    my ($rc, $out, $file, $text) = check($body);
    my $pos = pos_of($text, @$at);
    is($rc, 1, "$name: -t exits 1");
    like($out, qr/\Q$file\E:\Q$pos\E: .*$msg/, "$name: at $pos")
        or diag $out;
    my @errors = $out =~ /^.*\Q$file\E:\d+:\d+: .*$/mg;
    is(scalar @errors, 1, "$name: one error") or diag $out;
}


# ---- fields Portico writes itself cannot be edited -------------------------

# Framing and the request id are the core's: an edit would be ignored or
# would break the message, so it is refused where it is written.
one_error('response_headers set Content-Length', <<'EOF',
  - name: f
    match: { path: /f }
    response_headers: { set: { Content-Length: "2" } }
    respond: { body: x }
EOF
          qr/response_headers: "Content-Length" is managed by portico/,
          ['Content-Length']);
one_error('request_headers remove Transfer-Encoding', <<'EOF',
  - name: f
    match: { path: /f }
    request_headers: { remove: [Transfer-Encoding] }
    respond: { body: x }
EOF
          qr/request_headers: "Transfer-Encoding" is managed by portico/,
          ['Transfer-Encoding']);
one_error('response_headers remove X-Request-ID', <<'EOF',
  - name: f
    match: { path: /f }
    response_headers: { remove: [X-Request-ID] }
    respond: { body: x }
EOF
          qr/"X-Request-ID" is managed by portico/, ['X-Request-ID']);

# Methods are case-sensitive; "get" would silently never match GET.
one_error('methods: [get]', <<'EOF',
  - name: f
    match: { path: /f, methods: [get] }
    respond: { body: x }
EOF
          qr/methods: "get" is not GET \(methods are case-sensitive\)/,
          ['get]']);


# ---- a valid config with every router feature passes ------------------------

{
    my ($rc, $out, $file) = check(<<'EOF');
  - name: all
    match:
      host: "*.example.com"
      path: '~^/(a)(b)(c)(d)(e)(f)(g)(h)(i)$'
      methods: [GET, POST, PURGE]
      headers: { X-Env: "~^(prod|stage)$", X-V: "2" }
      query: { beta: "1", id: '~^\d+$' }
    rewrite: { strip_prefix: /a, path: "/${9}/${1}${path}" }
    request_headers:
      set: { X-C: "${9}" }
      add: { X-D: "${1}" }
      remove: [Cookie]
    response_headers: { set: { X-E: "${2}" }, remove: [Server] }
    upstream: app
  - name: respond
    match: { path: '~^/r/(\d+)$', methods: DELETE }
    respond: { status: 599, headers: { X-R: "${1}" }, body: "${1}" }
  - name: redirect
    match: { path: '~^/d/(\d+)$', host: Exact.Example.com }
    redirect: { to: "/n/${1}", status: 308 }
  - name: bare
    respond: {}
EOF
    is($rc, 0, 'every router feature: -t exits 0') or diag $out;
    like($out, qr/configuration \Q$file\E test is successful/,
         'every router feature: test is successful');
}


# ---- regexes that do not compile: PCRE2's message and offset ----------------

one_error('path regex', <<'EOF',
  - name: r
    match: { path: "~^/(unclosed" }
    respond: { body: x }
EOF
    qr/match: path: missing closing parenthesis at offset 11/,
    ['"~^/(unclosed"']);

one_error('header regex', <<'EOF',
  - name: r
    match: { path: /h, headers: { X-A: "~[a-" } }
    respond: { body: x }
EOF
    qr/match: headers: missing terminating \] for character class at offset 3/,
    ['"~[a-"']);

one_error('query regex', <<'EOF',
  - name: r
    match: { path: /q, query: { a: "~x{2,1}" } }
    respond: { body: x }
EOF
    qr/match: query: numbers out of order in \{\} quantifier at offset 5/,
    ['"~x{2,1}"']);


# ---- ${N} beyond the groups of the path regex, at that template -------------

one_error('${3} in rewrite path, 2 groups', <<'EOF',
  - name: r
    match: { path: '~^/(\d+)/(\d+)$' }
    rewrite: { path: "/x/${3}" }
    upstream: app
EOF
    qr/\$\{3\} refers to capture 3, but the route's path regex has fewer/,
    ['"/x/${3}"']);

one_error('${1} in rewrite path, prefix path', <<'EOF',
  - name: r
    match: { path: /p/ }
    rewrite: { path: "/x/${1}" }
    upstream: app
EOF
    qr/\$\{1\} refers to capture 1, but the route's path is not a regex/,
    ['"/x/${1}"']);

one_error('${1} in rewrite path, no match at all', <<'EOF',
  - name: r
    rewrite: { path: "/x/${1}" }
    upstream: app
EOF
    qr/\$\{1\} .*is not a regex/, ['"/x/${1}"']);

one_error('${3} in respond body, 2 groups', <<'EOF',
  - name: r
    match: { path: '~^/(a)(b)$' }
    respond: { body: "a ${3}" }
EOF
    qr/\$\{3\} refers to capture 3, but the route's path regex has fewer/,
    ['"a ${3}"']);

one_error('${1} in respond body, exact path', <<'EOF',
  - name: r
    match: { path: "=/e" }
    respond: { body: "a ${1}" }
EOF
    qr/\$\{1\} .*is not a regex/, ['"a ${1}"']);

one_error('${3} in respond headers', <<'EOF',
  - name: r
    match: { path: '~^/(a)(b)$' }
    respond: { headers: { X-A: "h ${3}" } }
EOF
    qr/\$\{3\} refers to capture 3/, ['"h ${3}"']);

one_error('${3} in redirect to', <<'EOF',
  - name: r
    match: { path: '~^/(a)(b)$' }
    redirect: { to: "/t/${3}" }
EOF
    qr/\$\{3\} refers to capture 3/, ['"/t/${3}"']);

one_error('${3} in request_headers set', <<'EOF',
  - name: r
    match: { path: '~^/(a)(b)$' }
    request_headers: { set: { X-A: "s ${3}" } }
    upstream: app
EOF
    qr/\$\{3\} refers to capture 3/, ['"s ${3}"']);

one_error('${3} in request_headers add', <<'EOF',
  - name: r
    match: { path: '~^/(a)(b)$' }
    request_headers: { add: { X-A: "a ${3}" } }
    upstream: app
EOF
    qr/\$\{3\} refers to capture 3/, ['"a ${3}"']);

one_error('${3} in response_headers set', <<'EOF',
  - name: r
    match: { path: '~^/(a)(b)$' }
    response_headers: { set: { X-A: "s ${3}" } }
    upstream: app
EOF
    qr/\$\{3\} refers to capture 3/, ['"s ${3}"']);

one_error('${2} in response_headers add, prefix path', <<'EOF',
  - name: r
    match: { path: /p }
    response_headers: { add: { X-A: "a ${2}" } }
    upstream: app
EOF
    qr/\$\{2\} .*is not a regex/, ['"a ${2}"']);

# Groups in a header condition's regex are not the path's.
one_error('${1} with a header regex group only', <<'EOF',
  - name: r
    match: { path: /p, headers: { X-A: "~^(x)$" } }
    respond: { body: "${1}" }
EOF
    qr/\$\{1\} .*is not a regex/, ['"${1}"']);


# ---- route-level mistakes ---------------------------------------------------

one_error('duplicate route name', <<'EOF',
  - name: twin
    match: { path: /a }
    respond: { body: a }
  - name: twin
    match: { path: /b }
    respond: { body: b }
EOF
    qr/duplicate route name "twin" \(first at \d+:\d+\)/, ['name: twin', 2]);

one_error('unknown upstream', <<'EOF',
  - name: r
    match: { path: /a }
    upstream: nosuch
EOF
    qr/unknown upstream "nosuch"/, ['nosuch']);

one_error('respond and redirect', <<'EOF',
  - name: r
    match: { path: /a }
    respond: { body: a }
    redirect: { to: /b }
EOF
    qr/route has two actions: "redirect" and "respond"/, ['{ to: /b }']);

one_error('upstream and redirect', <<'EOF',
  - name: r
    match: { path: /a }
    upstream: app
    redirect: { to: /b }
EOF
    qr/two actions/, ['{ to: /b }']);

one_error('no action', <<'EOF',
  - name: lazy
    match: { path: /a }
    rewrite: { strip_prefix: /a }
EOF
    qr/route "lazy" has no action/, ['name: lazy']);


# ---- match ------------------------------------------------------------------

one_error('path without "/"', <<'EOF',
  - name: r
    match: { path: users }
    respond: { body: x }
EOF
    qr/match: path must start with "\/"/, ['users']);

one_error('exact path without "/"', <<'EOF',
  - name: r
    match: { path: "=users" }
    respond: { body: x }
EOF
    qr/match: path must start with "\/"/, ['"=users"']);

one_error('wildcard not leading', <<'EOF',
  - name: r
    match: { host: "api.*.com", path: / }
    respond: { body: x }
EOF
    qr/match: host: "api\.\*\.com" is not an exact host/, ['"api.*.com"']);

one_error('wildcard without a dot', <<'EOF',
  - name: r
    match: { host: "*example.com" }
    respond: { body: x }
EOF
    qr/match: host/, ['"*example.com"']);

one_error('empty methods', <<'EOF',
  - name: r
    match: { path: /, methods: [] }
    respond: { body: x }
EOF
    qr/match: methods: expected a list of method names/, ['[]']);

one_error('bad method name', <<'EOF',
  - name: r
    match: { path: /, methods: [GET, "PO ST"] }
    respond: { body: x }
EOF
    qr/match: methods: not a method name/, ['"PO ST"']);

one_error('unknown match key', <<'EOF',
  - name: r
    match: { path: /, hosts: [a.test] }
    respond: { body: x }
EOF
    qr/unknown key "hosts" in match/, ['hosts']);

one_error('headers not a map', <<'EOF',
  - name: r
    match: { path: /, headers: [X-A] }
    respond: { body: x }
EOF
    qr/match: headers/, ['[X-A]']);


# ---- rewrite and header edits -----------------------------------------------

one_error('strip_prefix without "/"', <<'EOF',
  - name: r
    match: { path: /a }
    rewrite: { strip_prefix: nope }
    upstream: app
EOF
    qr/rewrite: strip_prefix must start with "\/"/, ['nope']);

one_error('rewrite path not a path', <<'EOF',
  - name: r
    match: { path: /a }
    rewrite: { path: "v2/x" }
    upstream: app
EOF
    qr/rewrite: path must start with "\/"/, ['"v2/x"']);

one_error('unknown rewrite key', <<'EOF',
  - name: r
    match: { path: /a }
    rewrite: { prefix: /b }
    upstream: app
EOF
    qr/unknown key "prefix" in rewrite/, ['prefix']);

one_error('unknown variable in a rewrite', <<'EOF',
  - name: r
    match: { path: /a }
    rewrite: { path: "/${nosuch}" }
    upstream: app
EOF
    qr/unknown variable "\$\{nosuch\}"/, ['"/${nosuch}"']);

one_error('bad header name to set', <<'EOF',
  - name: r
    match: { path: /a }
    request_headers: { set: { "X Bad": v } }
    upstream: app
EOF
    qr/request_headers: invalid header name "X Bad"/, ['"X Bad"']);

one_error('unknown edit key', <<'EOF',
  - name: r
    match: { path: /a }
    response_headers: { replace: { X-A: v } }
    upstream: app
EOF
    qr/unknown key "replace" in response_headers/, ['replace']);

one_error('remove not a list', <<'EOF',
  - name: r
    match: { path: /a }
    response_headers: { remove: Server }
    upstream: app
EOF
    qr/response_headers/, ['Server']);


# ---- redirect and respond ---------------------------------------------------

one_error('redirect status 303', <<'EOF',
  - name: r
    match: { path: /a }
    redirect: { to: /b, status: 303 }
EOF
    qr/redirect: status must be 301, 302, 307 or 308/, ['303 }']);

one_error('redirect without to', <<'EOF',
  - name: r
    match: { path: /a }
    redirect: { status: 302 }
EOF
    qr/redirect: "to" is required/, ['{ status: 302 }']);

one_error('unknown variable in redirect to', <<'EOF',
  - name: r
    match: { path: /a }
    redirect: { to: "https://${hots}/" }
EOF
    qr/unknown variable "\$\{hots\}"/, ['"https://${hots}/"']);

one_error('respond status 199', <<'EOF',
  - name: r
    match: { path: /a }
    respond: { status: 199 }
EOF
    qr/respond: status must be a number from 200 to 599/, ['199 }']);

one_error('unknown respond key', <<'EOF',
  - name: r
    match: { path: /a }
    respond: { code: 200 }
EOF
    qr/unknown key "code" in respond/, ['code']);


# ---- several mistakes: all reported -----------------------------------------

# Mistakes found while reading the routes, in file order.
{
    my ($rc, $out, $file, $text) = check(<<'EOF');
  - name: one
    match: { path: "~(" }
    respond: { body: x }
  - name: two
    match: { path: /two, methods: [] }
    respond: { body: x }
  - name: three
    match: { path: /three }
    redirect: { to: /x, status: 200 }
EOF
    is($rc, 1, 'several router mistakes: exit 1');
    my @want = map { "$file:" . pos_of($text, $_) } ('"~("', '[]', '200');
    my @got = $out =~ /(\Q$file\E:\d+:\d+):/g;
    is_deeply(\@got, \@want, 'several router mistakes: each, in order')
        or diag $out;
}

# Mistakes found once every route was read.
{
    my ($rc, $out, $file, $text) = check(<<'EOF');
  - name: one
    match: { path: '~^/(a)$' }
    rewrite: { path: "/${2}" }
    upstream: app
  - name: two
    match: { path: /two }
    upstream: gone
  - name: one
    match: { path: /one }
    respond: { body: x }
EOF
    is($rc, 1, 'several validation mistakes: exit 1');
    like($out, qr/\Q$file\E:${\ pos_of($text, '"\/${2}"')}: .*capture 2/,
         'several validation mistakes: the capture');
    like($out, qr/\Q$file\E:${\ pos_of($text, 'gone')}: .*unknown upstream/,
         'several validation mistakes: the upstream');
    like($out, qr/\Q$file\E:${\ pos_of($text, 'name: one', 2)}: .*duplicate/,
         'several validation mistakes: the duplicate name') or diag $out;
}


# ---- a host with a port ------------------------------------------------------

# Host matching ignores the port, so a port written in a route's host is
# either refused where it is written or ignored; never a route that
# loads and can never match.
{
    my $routes = <<'EOF';
  - name: with-port
    match: { host: "api.example.com:8080", path: /wp }
    respond: { body: "${route}" }
EOF
    my ($rc, $out, $file, $text) = check($routes);
    if ($rc != 0) {
        like($out, qr/\Q$file\E:${\ pos_of($text, '"api.example.com:8080"')}: /,
             'a host with a port: refused at its place') or diag $out;
    } else {
        $t->write_config(qq(listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]\n)
                         . "routes:\n$routes")->run;
        my $r = parse_response(http("GET /wp HTTP/1.1\r\n"
                                    . "Host: api.example.com:8080\r\n"
                                    . "Connection: close\r\n\r\n",
                                    port => $t->port('GW')));
        is("$r->{status} $r->{body}", '200 with-port',
           'a host with a port: accepted, so it matches that host');
        $t->stop;
    }
}


# ---- a reload onto a broken router config keeps the old routes --------------

$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
routes:
  - name: v1
    match: { path: '~^/v/(\d+)$' }
    respond: { body: "v1 ${1}" }
EOF
my $port = $t->port('GW');
is(parse_response(http_get('/v/1', port => $port))->{body}, 'v1 1',
   'reload: generation 1 serves');

$t->write_config(<<'EOF');
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
routes:
  - name: v2
    match: { path: '~^/v/(\d+$' }
    respond: { body: "v2 ${1}" }
EOF
my $bad_pos = pos_of(do { local (@ARGV, $/) = $t->config_path; <> },
                     q{'~^/v/(\d+$'});
$t->reload;
ok($t->wait_log(qr/reload failed, keeping generation 1/, 10),
   'reload onto a bad regex fails');
like($t->error_log,
     qr/\Q${\ $t->config_path}\E:$bad_pos: match: path: missing closing/,
     'reload: the regex error at FILE:LINE:COL');
is(parse_response(http_get('/v/2', port => $port))->{body}, 'v1 2',
   'reload failed: the old routes keep answering');
$t->stop;


# ---- a few thousand routes --------------------------------------------------

# Every kind of route, many times: exact paths, prefixes (some nested),
# exact hosts, wildcard hosts, regexes, and more routes on one path than
# the router keeps candidates for on its stack.
my $N = 800;
my (@routes, @cases);

# A route whose respond body is its name (and $body_extra).
sub add_route ($name, $match, $body_extra = '') {
    push @routes, "  - { name: $name, match: { $match },\n"
                  . "      respond: { body: \"\${route}$body_extra\" } }";
}

# A request (path, Host, extra header lines) and the route name it must
# reach, or 404.
sub want ($path, $host, $want, $extra = '') {
    push @cases, [$path, $host, $want, $extra];
}

for my $i (0 .. $N - 1) {
    add_route("e$i", qq(path: "=/e/$i"));
    add_route("p$i", qq(path: "/p/$i/"));
    add_route("h$i", qq(host: "h$i.test"));
    add_route("w$i", qq(host: "*.w$i.test", path: /w/));
    want("/e/$i", 'localhost', "e$i");
    want("/p/$i/x", 'localhost', "p$i");
    want('/any', "h$i.test", "h$i");
    want('/w/x', "a.b.w$i.test", "w$i");
    if ($i % 8 == 0) {
        add_route("pd$i", qq(path: "/p/$i/deep/"));
        want("/p/$i/deep/x", 'localhost', "pd$i");
        want("/p/$i/deepx", 'localhost', "p$i");
    }
}
for my $i (0 .. 199) {
    add_route("r$i", qq(path: '~^/r/$i/(\\d+)\$'), ' ${1}');
    want("/r/$i/77", 'localhost', "r$i 77");
}
for my $i (0 .. 49) {
    add_route("m$i", qq(path: /many/, headers: { X-N: "$i" }));
    want('/many/', 'localhost', "m$i", "X-N: $i\r\n");
}
want("/e/$N", 'localhost', 404);
want('/p/1', 'localhost', 404);
want('/w/x', 'w1.test', 404);
want('/r/1/x', 'localhost', 404);
want('/many/', 'localhost', 404, "X-N: 50\r\n");

$t->write_config(<<EOF . join("\n", @routes) . "\n");
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
routes:
EOF

# -t on it finishes (well inside run_cmd's limit) and succeeds.
my ($rc, $out) = portico('-t', '-p', $dir, '-c', $t->config_path);
is($rc, 0, scalar(@routes) . ' routes: -t exits 0') or diag $out;

$t->run;
$port = $t->port('GW');

# Pipelined on keep-alive connections, a few hundred at a time.
my (%bad, $answered);
my @todo = @cases;
while (my @batch = splice @todo, 0, 300) {
    my $raw = '';
    for my $i (0 .. $#batch) {
        my ($path, $host, undef, $extra) = @{$batch[$i]};
        $raw .= "GET $path HTTP/1.1\r\nHost: $host\r\n$extra"
                . ($i == $#batch ? "Connection: close\r\n" : '') . "\r\n";
    }
    my @rs = eval { parse_responses(http($raw, port => $port,
                                         timeout => 20)) };
    for my $i (0 .. $#batch) {
        my ($path, $host, $want, $extra) = @{$batch[$i]};
        my $r = $rs[$i];
        my $got = !$r ? 'no answer'
                : $r->{status} == 200 ? $r->{body} : $r->{status};
        $answered++ if $r;
        $bad{"$host$path $extra"} = "$got, not $want" if $got ne $want;
    }
}
is($answered, scalar @cases, 'every request answered');
is(scalar keys %bad, 0, 'every one of ' . scalar(@cases)
   . ' requests reached its route')
    or diag join "\n", grep { defined }
                   (map { "$_: $bad{$_}" } sort keys %bad)[0 .. 19];
