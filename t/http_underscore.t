#!/usr/bin/perl

# limits.underscore_headers (README, HTTP behaviour): request fields whose
# name holds '_' (Transfer_Encoding, X_Forwarded_For, Content_Length...)
# are dropped by default before routing and forwarding, with an info line
# naming them and the request id; `allow` keeps them, `reject` answers
# 400.  Many backends read '_' as '-', so a dropped field must not reach
# one in any form, and must not steer the router either.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP ();
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->has_module(qw/router/)->plan(23);
my $app = $t->backend(id => 'app');
my $steered = $t->backend(id => 'steered');

my $json = JSON::PP->new;

my @UNDERSCORED = (['Transfer_Encoding', 'chunked'],
                   ['X_Forwarded_For', '6.6.6.6'],
                   ['Content_Length', '5'],
                   ['X_Route', 'b']);

sub config ($gw, $setting) {
    my $limits = defined $setting
                 ? "limits: { underscore_headers: $setting }\n" : '';
    return $limits . <<"EOF";
listen: [ { address: "127.0.0.1:%%PORT_$gw%%" } ]
upstreams:
  app: { targets: [ "127.0.0.1:%%PORT_APP%%" ] }
  steered: { targets: [ "127.0.0.1:%%PORT_STEERED%%" ] }
routes:
  - name: steered
    match: { path: /, headers: { X_Route: b } }
    upstream: steered
  - name: app
    match: { path: / }
    upstream: app
EOF
}

# GET through the gateway with the underscored fields and an id of ours;
# returns (response, what the backend saw).
sub send_underscored ($gw, $id) {
    my $raw = "GET /u HTTP/1.1\r\nHost: localhost\r\nX-Normal: kept\r\n"
              . join('', map { "$_->[0]: $_->[1]\r\n" } @UNDERSCORED)
              . "X-Request-ID: $id\r\nConnection: close\r\n\r\n";
    my $out = http($raw, port => $t->port($gw), timeout => 10);
    my $res = eval { parse_response($out) };
    my $seen = $res && eval { $json->decode($res->{body}) };
    return ($res, $seen // {});
}

sub backend_ids ($b) { map { $_->{headers}{'x-request-id'} } $b->requests }


# drop, the default (no limits key at all).
$t->write_config(config('GW_DROP', undef))->run();

my ($res, $seen) = send_underscored('GW_DROP', 'us-drop-1');
is($res && $res->{status}, 200, 'drop: the request is served');
is($seen->{id}, 'app', 'drop: X_Route did not steer the router');
my @under = grep { /_/ } sort keys %{$seen->{headers} // {}};
is("@under", '', 'drop: the backend got no field with "_" in its name');
is($seen->{headers}{'x-normal'}, 'kept', 'drop: other fields still pass');
is($seen->{headers}{'x-forwarded-for'}, '127.0.0.1',
   'drop: X_Forwarded_For did not join X-Forwarded-For');
is($seen->{body_length}, 0, 'drop: Content_Length framed no body');

my $line = $t->wait_log(qr/request_id: us-drop-1/, 10);
like($line // '', qr/\[info\]/, 'drop: logged at info');
like($line // '', qr/dropped header fields with "_" in the name: (?x)
                    Transfer_Encoding,\ X_Forwarded_For,\ Content_Length,
                    \ X_Route,\ client:\ /,
     'drop: the line names every dropped field, in order');

# A request without such fields logs nothing.
($res) = send_underscored_none('GW_DROP', 'us-drop-2');
is($res && $res->{status}, 200, 'drop: a request without "_" is served');
$t->stop;
unlike($t->error_log, qr/"_" in the name.*request_id: us-drop-2/,
       'drop: nothing logged for a request without "_" fields');


# allow: kept as they came, and seen by the router.
$t->write_config(config('GW_ALLOW', 'allow'))->run();

($res, $seen) = send_underscored('GW_ALLOW', 'us-allow-1');
is($res && $res->{status}, 200, 'allow: the request is served');
is($seen->{id}, 'steered', 'allow: X_Route steers the router');
is_deeply({ map { $_ => $seen->{headers}{lc $_} }
            map { $_->[0] } @UNDERSCORED },
          { map { @$_ } @UNDERSCORED },
          'allow: the backend got every field with "_", as sent');
is($seen->{headers}{'x-forwarded-for'}, '127.0.0.1',
   'allow: X_Forwarded_For is still not X-Forwarded-For to us');
is($seen->{body_length}, 0, 'allow: Content_Length framed no body');
$t->stop;
unlike($t->error_log, qr/"_" in the name.*request_id: us-allow-1/,
       'allow: nothing logged');


# reject: 400 and a closed connection; the backend sees nothing.
$t->write_config(config('GW_REJECT', 'reject'))->run();

my $before = () = $app->requests;
my $before_steered = () = $steered->requests;
($res) = send_underscored('GW_REJECT', 'us-reject-1');
is($res && $res->{status}, 400, 'reject: 400');
my $err = $res && eval { $json->decode($res->{body}) };
is($err && $err->{request_id}, 'us-reject-1',
   'reject: a JSON error with the request id');
is(scalar(() = $app->requests) + scalar(() = $steered->requests),
   $before + $before_steered, 'reject: no backend saw the request');

$line = $t->wait_log(qr/request_id: us-reject-1/, 10);
like($line // '',
     qr/\[info\].*refused header fields with "_" in the name: Transfer_Enc/,
     'reject: logged at info with the fields and the id');

($res) = send_underscored_none('GW_REJECT', 'us-reject-2');
is($res && $res->{status}, 200, 'reject: a request without "_" is served');
$t->stop;


# A value that is none of the three is a config error.
write_file($t->config_path,
           "error_log: error.log\npid_file: portico.pid\n"
           . "limits: { underscore_headers: maybe }\nlisten: "
           . "[ { address: \"127.0.0.1:${\ $t->port('GW_BAD')}\" } ]\n");
my ($code, $out) = run_cmd(10, $t->binary, '-t', '-c', $t->config_path);
is($code, 1, 'an unknown setting: -t fails');
like($out, qr/:\d+:\d+: underscore_headers: "maybe" is not one of: (?x)
               drop,\ allow,\ reject/,
     'an unknown setting: FILE:LINE:COL and the choices');


sub send_underscored_none ($gw, $id) {
    my $out = http_get('/n', port => $t->port($gw), timeout => 10,
                       headers => [ 'X-Request-ID' => $id ]);
    return (eval { parse_response($out) });
}
