# Certificates are re-read on every reload: replacing the files and
# sending HUP serves the new certificate; a broken certificate or key
# makes the reload fail with its FILE:LINE:COL, and the old generation
# keeps serving the old certificate. An expired certificate loads with a
# warning. The same mistakes stop `portico -t`, each at its position.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use File::Copy qw(copy);
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(24);
my $dir = $t->testdir;

tls_ca($dir);
tls_cert($dir, 'v1', names => ['localhost'], cn => 'v1');
tls_cert($dir, 'v2', names => ['localhost'], cn => 'v2');
tls_cert($dir, 'v3', names => ['localhost'], cn => 'v3');
tls_cert($dir, 'old', names => ['localhost'], cn => 'old', days => 0);

# The files the config names; replaced by rename, as a deploy would.
sub install ($from) {
    for my $ext (qw(pem key)) {
        copy("$dir/$from.$ext", "$dir/live.$ext.tmp") or die "copy: $!";
        rename "$dir/live.$ext.tmp", "$dir/live.$ext" or die "rename: $!";
    }
}

sub put ($file, $text) {
    write_file("$dir/$file.tmp", $text);
    rename "$dir/$file.tmp", "$dir/$file" or die "rename: $!";
}

install('v1');

my $config = <<"EOF";
listen:
  - address: "127.0.0.1:%%PORT_TLS%%"
    tls:
      certificates:
        - cert: $dir/live.pem
          key: $dir/live.key
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
routes:
  - { name: r, match: { path: / }, respond: { status: 200, body: "ok\\n" } }
EOF

$t->write_config($config)->run();
my $port = $t->port('TLS');
my $text = do { open my $fh, '<', $t->config_path or die; local $/; <$fh> };

# "LINE:COL" of the first occurrence of $needle in the config.
sub pos_of ($needle) {
    my $at = index($text, $needle);
    die "pos_of: '$needle' not in the config" if $at < 0;
    my $before = substr($text, 0, $at);
    return (1 + ($before =~ tr/\n//)) . ':' . ($at - rindex($before, "\n"));
}

my $cert_at = $t->config_path . ':' . pos_of("$dir/live.pem");
my $key_at = $t->config_path . ':' . pos_of("$dir/live.key");

sub served () {
    my ($rc, $out) = s_client($port, args => ['-servername', 'localhost']);
    my ($cn) = $out =~ /^subject=.*CN = ([\w.-]+)/m;
    return $cn // '';
}

is(served(), 'v1', 'the first certificate is served');

# Rotation.
install('v2');
is(served(), 'v1', 'replacing the files alone changes nothing');
$t->reload;
ok($t->wait_generation(2), 'HUP: reloaded');
ok(wait_until(sub { served() eq 'v2' }), 'the new certificate is served');

my $gen = 2;

# Each broken case: the reload fails at its position, v2 goes on.
my @cases = (
    [ 'a certificate file that is not PEM',
      sub { put('live.pem', "not a certificate\n") },
      qr/\Q$cert_at\E: no PEM certificate in "\Q$dir\E\/live\.pem": no start line/ ],
    [ 'a missing certificate file',
      sub { unlink "$dir/live.pem" },
      qr/\Q$cert_at\E: cannot read certificate "\Q$dir\E\/live\.pem": No such file or directory/ ],
    [ 'a certificate that does not match its key',
      sub { copy("$dir/v3.pem", "$dir/live.pem"); copy("$dir/v2.key", "$dir/live.key") },
      qr/\Q$cert_at\E: certificate "\Q$dir\E\/live\.pem" does not match the private key "\Q$dir\E\/live\.key"/ ],
    [ 'a key file that is not PEM',
      sub { copy("$dir/v2.pem", "$dir/live.pem"); put('live.key', "junk\n") },
      qr/\Q$key_at\E: no PEM private key in "\Q$dir\E\/live\.key"/ ],
    [ 'a key encrypted with a passphrase',
      sub {
          my ($rc, $o) = run_cmd(20, 'openssl', 'pkey', '-in', "$dir/v2.key",
                                 '-aes256', '-passout', 'pass:secret',
                                 '-out', "$dir/live.key");
          die $o if $rc;
      },
      qr/\Q$key_at\E: private key "\Q$dir\E\/live\.key" is encrypted: keys must be stored without a passphrase/ ],
);

my $failed = 0;
for my $case (@cases) {
    my ($what, $break, $want) = @$case;
    install('v2');
    $break->();
    $t->reload;
    $failed++;
    ok(wait_until(sub { (() = $t->error_log
                           =~ /reload failed, keeping generation $gen/g)
                        == $failed }),
       "$what: the reload fails");
    like($t->error_log, $want, '... at its FILE:LINE:COL');
    is(served(), 'v2', '... and the old certificate is still served');
}

# An expired certificate loads, with a warning at its position.
install('old');
$t->reload;
$gen++;
ok($t->wait_generation($gen), 'an expired certificate: the reload succeeds');
like($t->error_log,
     qr/\[warn\] \d+: \Q$cert_at\E: certificate "\Q$dir\E\/live\.pem" expired on \w+ +\d+ [\d:]+ \d+ GMT/,
     '... with a warning');
ok(wait_until(sub { served() eq 'old' }), '... and it is served');

# portico -t: the same check, without a running gateway.
install('v2');
put('live.pem', "garbage\n");
my ($rc, $out) = run_cmd(20, $t->binary, '-t', '-p', $dir, '-c',
                         $t->config_path);
is($rc, 1, 'portico -t with a broken certificate: exit 1');
like($out, qr/\Q$cert_at\E: no PEM certificate in/, '... at its position');
