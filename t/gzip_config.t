# Configuration of routes[].compress: the forms that pass -t, and each
# mistake reported once at its FILE:LINE:COL.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Test::More;
use Test::Portico;
use Test::Portico::ConfigCheck;

my $t = Test::Portico->new()->has_module(qw/router gzip/)->plan(40);

my $cc = Test::Portico::ConfigCheck->new($t, <<"EOF");
workers: 1
error_log: error.log
pid_file: portico.pid
listen: [ { address: "127.0.0.1:${\ $t->port('GW')}" } ]
EOF

sub route ($compress) {
    return <<"EOF";
routes:
  - name: r
    match: { path: / }
    respond: { status: 200 }
    compress: $compress
EOF
}

for my $good ('true', 'false', '{}',
              '{ types: [application/json, "text/*"], min_size: 1k, level: 5 }',
              '{ types: ["*/*", image/svg+xml, Text/HTML], min_size: 0 }',
              '{ level: 1 }', '{ level: 9, min_size: 100 }')
{
    my ($rc, $out) = $cc->check(route($good));
    is($rc, 0, "compress: $good passes -t") or diag $out;
}

$cc->one_error('level 0', route('{ level: 0 }'),
               qr/compress: level: a number from 1 to 9/, ['0 }', 2]);
$cc->one_error('level 10', route('{ level: 10 }'),
               qr/compress: level: a number from 1 to 9/, ['10 }']);
$cc->one_error('a type without a subtype', route('{ types: [text] }'),
               qr/compress: "text" is not a media type/, ['text]']);
$cc->one_error('a type with a parameter',
               route('{ types: ["text/html; charset=utf-8"] }'),
               qr/compress: "text\/html; charset=utf-8" is not a media type/,
               ['"text/html']);
$cc->one_error('a wildcard major type', route('{ types: ["*/json"] }'),
               qr/is not a media type/, ['"*/json"']);
$cc->one_error('unknown key', route('{ level: 5, minsize: 1k }'),
               qr/unknown key "minsize" in compress \(types, min_size, level\)/,
               ['minsize']);
$cc->one_error('a bad size', route('{ min_size: lots }'),
               qr/"lots"/, ['lots']);
$cc->one_error('types not a list', route('{ types: text/html }'),
               qr/compress: types/, ['text/html']);
$cc->one_error('an empty types list', route('{ types: [] }'),
               qr/compress: types is an empty list/, ['[]']);
$cc->one_error('not a flag', route('maybe'), qr/"maybe"/, ['maybe']);
$cc->one_error('a sequence', route('[gzip]'),
               qr/compress/, ['[gzip]']);
