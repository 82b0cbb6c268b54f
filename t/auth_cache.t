# The per-worker cache of Basic verdicts (auth_cache): a repeated good or
# bad password costs a lookup, not another bcrypt run. Measured in the
# worker's CPU time (utime + stime from /proc), which a busy machine does
# not inflate the way it inflates wall time: one bcrypt check at cost 13
# takes the worker hundreds of milliseconds of CPU, a lookup nothing.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use MIME::Base64;
use POSIX ();
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->has_module(qw/router auth/)->plan(8);

my $hash = crypt('slow password', '$2b$13$abcdefghijklmnopqrstuu');
like($hash, qr/^\$2b\$13\$/, 'a bcrypt hash of cost 13');

$t->write_config(<<"EOF")->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
consumers:
  - { name: alice, password: '$hash' }
auth_cache: { ttl: 1h }
routes:
  - name: basic
    match: { path: / }
    respond: { status: 200, body: "in" }
    auth: { methods: [basic] }
EOF

my ($worker) = $t->worker_pids;
my $hz = POSIX::sysconf(POSIX::_SC_CLK_TCK());

# The worker's CPU time so far, in seconds.
sub cpu () {
    open my $fh, '<', "/proc/$worker/stat" or die "stat: $!";
    my @f = split ' ', (scalar <$fh>) =~ s/^.*\) //r;
    return ($f[11] + $f[12]) / $hz;
}

sub status ($user, $pass) {
    my $auth = encode_base64("$user:$pass", '');
    my $res = parse_response(http("GET / HTTP/1.1\r\nHost: t\r\n"
                                  . "Authorization: Basic $auth\r\n"
                                  . "Connection: close\r\n\r\n"));
    return $res->{status};
}

my $c0 = cpu();
is(status('alice', 'slow password'), 200, 'the first check: 200');
my $one = cpu() - $c0;
ok($one >= 0.05, "one bcrypt check costs the worker CPU ($one s)");

$c0 = cpu();
my @got = map { status('alice', 'slow password') } 1 .. 20;
my $twenty = cpu() - $c0;
is_deeply([grep { $_ != 200 } @got], [], '20 more with the same password: 200');
ok($twenty < 5 * $one,
   "and they cost less than 5 checks together ($twenty s for 20, one "
   . "check $one s): the verdict was cached");

is(status('alice', 'wrong password'), 401, 'a wrong password: 401');
$c0 = cpu();
@got = map { status('alice', 'wrong password') } 1 .. 20;
my $bad = cpu() - $c0;
is_deeply([grep { $_ != 401 } @got], [], 'the same wrong one 20 times: 401');
ok($bad < 5 * $one,
   "without a bcrypt run each ($bad s for 20): bad verdicts are cached too");
