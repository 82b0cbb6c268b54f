# Configuration errors of `ratelimit:` and of the global redis keys, each
# at its FILE:LINE:COL.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Test::More;
use Test::Portico;
use Test::Portico::ConfigCheck;

my $t = Test::Portico->new()->has_module(qw/router ratelimit/)->plan(32);

my $cc = Test::Portico::ConfigCheck->new($t, <<"EOF");
workers: 1
error_log: error.log
pid_file: portico.pid
listen: [ { address: "127.0.0.1:${\ $t->port('GW')}" } ]
EOF

sub route ($limits) {
    return <<"EOF";
routes:
  - name: r
    match: { path: / }
    respond: { status: 200 }
    ratelimit: $limits
EOF
}

{
    my ($rc, $out) = $cc->check(route(
        '[ { key: "${remote_addr}", rate: 10/s, burst: 5, mode: reject, '
        . 'scope: local, empty_key: bucket }, '
        . '{ key: "${header.X-Key}", rate: 600/m, algorithm: sliding_window } ]'));
    is($rc, 0, 'a good ratelimit config passes -t') or diag $out;
}

$cc->one_error('delay with a sliding window',
               route('[ { key: k, rate: 1/s, mode: delay, '
                     . 'algorithm: sliding_window } ]'),
               qr/mode: delay needs the token bucket/, ['{ key']);
$cc->one_error('unknown mode', route('[ { key: k, rate: 1/s, mode: drop } ]'),
               qr/mode: "drop" is not reject or delay/, ['drop']);
{
    my ($rc, $out) = $cc->check("redis: 127.0.0.1:6379\n"
        . "redis_failure: closed\nredis_timeout: 50ms\n"
        . route('[ { key: k, rate: 1/s, scope: cluster } ]'));
    is($rc, 0, 'a cluster limit with redis: passes -t') or diag $out;
}
$cc->one_error('cluster scope without redis:',
               route('[ { key: k, rate: 1/s, scope: cluster } ]'),
               qr/scope: cluster needs the global redis: HOST:PORT/,
               ['{ key']);
$cc->one_error('redis: by name',
               "redis: redis.internal:6379\n"
               . route('[ { key: k, rate: 1/s, scope: cluster } ]'),
               qr/redis: "redis.internal:6379": an IP address is needed/,
               ['{ key']);
$cc->one_error('bad redis_failure',
               "redis_failure: maybe\n" . route('[ { key: k, rate: 1/s } ]'),
               qr/redis_failure: "maybe" is not one of: open, closed/,
               ['maybe']);
$cc->one_error('unknown scope',
               route('[ { key: k, rate: 1/s, scope: galaxy } ]'),
               qr/scope: "galaxy" is not local or cluster/, ['galaxy']);
$cc->one_error('unknown key', route('[ { key: k, rate: 1/s, colour: 1 } ]'),
               qr/unknown key "colour" in a rate limit/, ['colour']);
$cc->one_error('bad rate', route('[ { key: k, rate: fast } ]'),
               qr/rate: /, ['fast']);
$cc->one_error('no rate', route('[ { key: k } ]'),
               qr/a rate limit needs a key and a rate/, ['{ key']);
$cc->one_error('burst with a sliding window',
               route('[ { key: k, rate: 1/s, burst: 2, '
                     . 'algorithm: sliding_window } ]'),
               qr/burst is for token_bucket/, ['{ key']);
