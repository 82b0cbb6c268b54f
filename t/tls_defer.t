# TLS listening sockets are deferred (TCP_DEFER_ACCEPT for
# handshake_timeout): a client that connects and says nothing is not
# handed to a worker, while the same on a cleartext listener is; once the
# client speaks, its connection is accepted and served.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Socket::INET;
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(4);
my $dir = $t->testdir;

tls_ca($dir);
tls_cert($dir, 'srv', names => ['localhost']);

$t->write_config(<<"EOF2")->run();
workers: 1
limits: { handshake_timeout: 5s }
listen:
  - address: "127.0.0.1:%%PORT_TLS%%"
    tls:
      certificates: [ { cert: $dir/srv.pem, key: $dir/srv.key } ]
  - address: "127.0.0.1:%%PORT_PLAIN%%"
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
routes:
  - { name: hi, match: { path: / }, respond: { status: 200, body: "hi\\n" } }
EOF2

sub active () { ($t->status // {})->{connections}{active} // -1 }

my $base = active();

sub open_n ($port, $n) {
    return map {
        IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 5)
            // die "connect: $!"
    } 1 .. $n;
}

# Silent clients on the TLS port first, then on the cleartext one: once
# the worker holds the cleartext ones, it still holds none of the others.
my @tls = open_n($t->port('TLS'), 3);
my @plain = open_n($t->port('PLAIN'), 3);
ok(wait_until(sub { active() == $base + 3 }),
   'three silent cleartext clients are held by the worker');
is(active(), $base + 3, 'the three silent TLS clients are not');

# A TLS client that speaks is accepted at once.
syswrite($tls[0], "\x16\x03\x01\x00\x05");
ok(wait_until(sub { active() == $base + 4 }),
   'a TLS client that sent its first bytes is accepted');

my ($rc, $out) = s_client($t->port('TLS'),
                          input => "GET / HTTP/1.1\r\nHost: localhost\r\n"
                                   . "Connection: close\r\n\r\n");
like($out, qr/^hi\r?$/m, 'and TLS is served as before');
