# The shipped conf/portico.yaml is valid and, with its ports swapped for
# free ones, answers something useful at once (what `make run` serves).

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(9);

my $bin = $t->binary;
my $out = `$bin -t -c conf/portico.yaml 2>&1`;
is($? >> 8, 0, 'portico -t accepts conf/portico.yaml');
like($out, qr/configuration \S+portico\.yaml test is successful/,
     'and says so');

open my $fh, '<', 'conf/portico.yaml' or die "conf/portico.yaml: $!";
my $yaml = do { local $/; <$fh> };
close $fh;

ok($yaml =~ s/0\.0\.0\.0:8080/127.0.0.1:%%PORT_GW%%/
   && $yaml =~ s/127\.0\.0\.1:9090/127.0.0.1:%%PORT_ADMIN%%/,
   'the default listens on 8080 with an admin listener on 9090');
$yaml =~ s/^error_log:.*$/error_log: logs\/error.log/m;
$yaml =~ s/^workers:.*$/workers: 1/m;

mkdir $t->testdir . '/logs';
$t->write_config($yaml)->run();

my $res = parse_response(http_get('/', port => $t->port('GW')));
is($res->{status}, 200, 'GET / answers 200');
my $j = eval { decode_json($res->{body}) } // {};
is($j->{service}, 'portico', 'with a JSON welcome');
is($j->{request_id}, $res->{headers}{'x-request-id'},
   'naming the request id');

$res = parse_response(http_get('/health', port => $t->port('GW')));
like($res->{body}, qr/^\{"status":"ok","master":true,"workers":\d+,/,
     '/health answers');

$res = parse_response(http_get('/status', port => $t->port('ADMIN')));
$j = eval { decode_json($res->{body}) } // {};
is(scalar @{$j->{workers} // []}, 1, 'admin /status lists the worker');

$t->stop;
ok(-s $t->testdir . '/logs/access.log', 'the access log was written');
