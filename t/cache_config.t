# Configuration of routes[].cache: the forms that pass -t, and each
# mistake reported once, with its exact message, at its FILE:LINE:COL.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Test::More;
use Test::Portico;
use Test::Portico::ConfigCheck;

my $t = Test::Portico->new()->has_module(qw/router cache/)->plan(67);

my $cc = Test::Portico::ConfigCheck->new($t, <<"EOF");
workers: 1
error_log: error.log
pid_file: portico.pid
listen: [ { address: "127.0.0.1:${\ $t->port('GW')}" } ]
EOF

sub route ($cache) {
    return <<"EOF";
routes:
  - name: r
    match: { path: / }
    respond: { status: 200 }
    cache: $cache
EOF
}

# The whole message, to the end of its line.
sub msg ($text) {
    return qr/\Q$text\E$/m;
}

my $keys = '(ttl, key, vary, statuses, stale_while_revalidate, '
           . 'stale_if_error, max_object, lock_timeout)';

for my $good ('{}',
              '{ ttl: 10s, key: "${method}${host}${path}?${query}", '
              . 'vary: [Accept-Encoding, X-Tenant], statuses: [200, 404], '
              . 'stale_while_revalidate: 5s, stale_if_error: 1m, '
              . 'max_object: 512k, lock_timeout: 2s }',
              '{ max_object: 1g, statuses: [200, 599] }',
              '{ max_object: 1, ttl: 0s }',
              '{ vary: [], key: "${path}" }')
{
    my ($rc, $out) = $cc->check(route($good));
    is($rc, 0, "cache: $good passes -t") or diag $out;
    unlike($out, qr/\[(?:emerg|error|warn)\]/, "cache: $good: no message")
        or diag $out;
}

$cc->one_error('unknown key', route('{ ttl: 1m, colour: red }'),
               msg("unknown key \"colour\" in cache $keys"), ['colour']);
$cc->one_error('a misspelt key', route('{ max_objects: 1m }'),
               msg("unknown key \"max_objects\" in cache $keys"),
               ['max_objects']);
$cc->one_error('ttl not a duration', route('{ ttl: soon }'),
               msg('invalid duration, expected a number with ms, s, m, h '
                   . 'or d (e.g. 250ms, 10s, 1m30s): "soon"'), ['soon']);
$cc->one_error('ttl a sequence', route('{ ttl: [1s] }'),
               msg('expected a duration, got a sequence'), ['[1s]']);
$cc->one_error('lock_timeout not a duration',
               route('{ lock_timeout: 5 parsecs }'),
               msg('invalid duration, expected a number with ms, s, m, h '
                   . 'or d (e.g. 250ms, 10s, 1m30s): "5 parsecs"'),
               ['5 parsecs']);
$cc->one_error('max_object 0', route('{ max_object: 0 }'),
               msg('max_object: 1 byte to 1g'), ['0 }', 2]);
$cc->one_error('max_object over 1g', route('{ max_object: 1025m }'),
               msg('max_object: 1 byte to 1g'), ['1025m']);
$cc->one_error('max_object 2g', route('{ max_object: 2g }'),
               msg('max_object: 1 byte to 1g'), ['2g']);
$cc->one_error('statuses with 206', route('{ statuses: [200, 206] }'),
               msg('206 is not cached: ranges are served from whole 200 '
                   . 'responses'), ['206]']);
$cc->one_error('statuses with 99', route('{ statuses: [99] }'),
               msg('a status: a number from 200 to 599'), ['99]']);
$cc->one_error('statuses with 600', route('{ statuses: [200, 600] }'),
               msg('a status: a number from 200 to 599'), ['600]']);
$cc->one_error('statuses empty', route('{ statuses: [] }'),
               msg('statuses: an empty list would cache nothing'), ['[]']);
$cc->one_error('statuses not a list', route('{ statuses: 404 }'),
               msg('statuses: expected a sequence, got a scalar'), ['404 }']);
$cc->one_error('vary with a space in a name',
               route('{ vary: [Accept, "X Bad"] }'),
               msg('vary: "X Bad" is not a header name'), ['"X Bad"']);
$cc->one_error('vary with a colon in a name', route('{ vary: ["X-A:"] }'),
               msg('vary: "X-A:" is not a header name'), ['"X-A:"']);
$cc->one_error('vary not a list', route('{ vary: Accept }'),
               msg('vary: expected a sequence, got a scalar'), ['Accept }']);
$cc->one_error('key with an unknown variable',
               route('{ key: "${method}${nosuch}" }'),
               msg('unknown variable "${nosuch}" in template '
                   . '"${method}${nosuch}"'), ['"${method}']);
$cc->one_error('cache a sequence', route('[ttl]'),
               msg('cache: expected a map, got a sequence'), ['[ttl]']);
$cc->one_error('cache a scalar', route('30s'),
               msg('cache: expected a map, got a scalar'), ['30s']);
