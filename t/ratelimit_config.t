# Configuration errors of `ratelimit:`, each at its FILE:LINE:COL; what is
# not built yet (scope: cluster) is refused, not ignored.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Test::More;
use Test::Portico;
use Test::Portico::ConfigCheck;

my $t = Test::Portico->new()->has_module(qw/router ratelimit/)->plan(22);

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
$cc->one_error('cluster scope',
               route('[ { key: k, rate: 1/s, scope: cluster } ]'),
               qr/scope: "cluster": only local is built so far/, ['cluster']);
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
