# ${...} templates in a respond action: every variable family, and
# remote_addr through trusted proxies.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(14);

$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
trusted_proxies: [ 127.0.0.0/8, 10.0.0.0/8 ]
routes:
  - name: vars
    match: { path: /vars }
    respond:
      status: 201
      headers: { X-Route: "${route}", X-Echo: "m=${method} p=${path}" }
      body: "host=${host} q=${query} a=${query.a} b=${query.b} h=${header.X-Thing} c=${cookie.sid} none=[${header.X-Missing}] uri=${request_uri} id=${request_id} ra=${remote_addr} scheme=${scheme}\n"
  - name: literal
    match: { path: "=/literal" }
    respond: { body: "plain text, no variables: $ {x} $x" }
EOF

my $port = $t->port('GW');

my $res = parse_response(http(
    "GET /vars/x%2Fy/../z?a=1&b=two&c HTTP/1.1\r\nHost: Api.Example.COM:80\r\n"
    . "X-Thing: thing-value\r\nCookie: theme=dark; sid=s3cr3t\r\n"
    . "X-Request-ID: rid-42\r\nConnection: close\r\n\r\n", port => $port));

is($res->{status}, 201, 'respond status from config');
is($res->{headers}{'x-route'}, 'vars', '${route} in a header');
is($res->{headers}{'x-echo'}, 'm=GET p=/vars/z', '${method} and ${path} '
   . '(normalized) in a header');
my $b = $res->{body};
like($b, qr/\bhost=api\.example\.com /, '${host}: lower case, no port');
like($b, qr/ q=a=1&b=two&c /, '${query}: the whole query');
like($b, qr/ a=1 b=two /, '${query.NAME}');
like($b, qr/ h=thing-value /, '${header.NAME}, case-insensitive name');
like($b, qr/ c=s3cr3t /, '${cookie.NAME}');
like($b, qr/ none=\[\] /, 'a missing variable is empty');
like($b, qr{ uri=/vars/x%2Fy/../z\?a=1&b=two&c }, '${request_uri} as sent');
like($b, qr/ id=rid-42 /, '${request_id}');
like($b, qr/ scheme=http$/m, '${scheme}');

# remote_addr: the peer is trusted, so the rightmost untrusted hop of
# X-Forwarded-For is the client; trusted hops are skipped.
$res = parse_response(http(
    "GET /vars HTTP/1.1\r\nHost: t\r\n"
    . "X-Forwarded-For: 198.51.100.9, 203.0.113.5, 10.1.2.3\r\n"
    . "Connection: close\r\n\r\n", port => $port));
like($res->{body}, qr/ ra=203\.0\.113\.5 /,
     'remote_addr: rightmost untrusted X-Forwarded-For hop');

$res = parse_response(http_get('/literal', port => $port));
is($res->{body}, 'plain text, no variables: $ {x} $x',
   'text without ${...} is left alone');
