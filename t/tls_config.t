# The `tls` key of a listener and limits.handshake_timeout: every
# mistake stops `portico -t` with FILE:LINE:COL at the value at fault;
# a complete valid block passes; a certificate that no name can select
# warns.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(40);
my $dir = $t->testdir;

tls_ca($dir);
tls_ca($dir, 'clients', 'Portico Client CA');
tls_cert($dir, 'srv', names => ['localhost']);
tls_cert($dir, 'nameless', names => []);
tls_cert($dir, 'partial', names => ['f*.example.com', 'ok.example.com']);

my $port = $t->port('GW');
my $CERT = "{ cert: $dir/srv.pem, key: $dir/srv.key }";

sub conf ($tls, $limits = '') {
    return <<"EOF";
workers: 1
error_log: error.log
pid_file: portico.pid
$limits
listen:
  - address: "127.0.0.1:$port"
    tls:
$tls
routes:
  - { name: r, match: { path: / }, respond: { status: 200, body: "ok" } }
EOF
}

# "LINE:COL" of the first occurrence of $needle in $text.
sub pos_of ($text, $needle) {
    my $at = index($text, $needle);
    die "pos_of: '$needle' not in the config" if $at < 0;
    my $before = substr($text, 0, $at);
    return (1 + ($before =~ tr/\n//)) . ':' . ($at - rindex($before, "\n"));
}

sub check ($text) {
    my $file = "$dir/test.yaml";
    write_file($file, $text);
    return run_cmd(20, $t->binary, '-t', '-p', $dir, '-c', $file);
}

my @cases = (
    [ 'no certificates',
      "      protocols: [ TLSv1.2 ]", "protocols",
      'tls: certificates is required', 'parent' ],
    [ 'an empty list of certificates',
      "      certificates: []", "[]",
      'tls: certificates must list at least one' ],
    [ 'a certificate without its key',
      "      certificates: [ { cert: $dir/srv.pem } ]", "{ cert",
      'tls: a certificate needs both cert and key' ],
    [ 'an unknown key in a certificate',
      "      certificates: [ { cert: $dir/srv.pem, key: $dir/srv.key, "
      . "chain: x } ]", "chain",
      'unknown key "chain" in a certificate (cert, key)' ],
    [ 'an unknown key in tls',
      "      certificates: [ $CERT ]\n      ciphers: HIGH", "ciphers",
      'unknown key "ciphers" in tls (certificates, protocols, client_ca, '
      . 'client_verify)' ],
    [ 'TLS 1.1',
      "      certificates: [ $CERT ]\n      protocols: [ TLSv1.2, TLSv1.1 ]",
      "TLSv1.1",
      'tls: protocols: "TLSv1.1" is not supported (only TLSv1.2 and '
      . 'TLSv1.3 are)' ],
    [ 'an unknown protocol',
      "      certificates: [ $CERT ]\n      protocols: [ TLSv2 ]", "TLSv2",
      'tls: protocols: unknown protocol "TLSv2" (TLSv1.2, TLSv1.3)' ],
    [ 'client_verify without client_ca',
      "      certificates: [ $CERT ]\n      client_verify: required",
      "required",
      'tls: client_verify needs client_ca, the CAs client certificates '
      . 'are checked against' ],
    [ 'client_verify neither required nor optional',
      "      certificates: [ $CERT ]\n      client_ca: $dir/clients.pem\n"
      . "      client_verify: maybe", "maybe",
      'tls: client_verify must be required or optional' ],
    [ 'a client_ca that is not there',
      "      certificates: [ $CERT ]\n      client_ca: $dir/none.pem",
      "$dir/none.pem",
      "cannot load client CA certificates from \"$dir/none.pem\"" ],
    [ 'a client_ca that is no certificate',
      "      certificates: [ $CERT ]\n      client_ca: $dir/nameless.key",
      "$dir/nameless.key",
      "cannot load client CA certificates from \"$dir/nameless.key\"" ],
    [ 'a certificate file that is a key',
      "      certificates: [ { cert: $dir/srv.key, key: $dir/srv.key } ]",
      "$dir/srv.key",
      "no PEM certificate in \"$dir/srv.key\"" ],
);

for my $case (@cases) {
    my ($what, $tls, $needle, $msg) = @$case;
    my $text = conf($tls);
    my ($rc, $out) = check($text);
    is($rc, 1, "$what: -t fails");
    my ($pos) = $out =~ /\Q$dir\E\/test\.yaml:(\d+:\d+): \Q$msg\E/;
    ok(defined $pos, "$what: the message") or diag $out;
    is($pos, pos_of($text, $needle), "$what: at the value at fault");
}

# limits.handshake_timeout: 0 would close every TLS connection at once.
my ($rc, $out) = check(conf("      certificates: [ $CERT ]",
                            "limits: { handshake_timeout: 0 }"));
like($out, qr/limits: handshake_timeout must be above 0/,
     'handshake_timeout: 0 is refused');

# Everything at once is fine; a certificate no name selects warns, and so
# does a name no SNI can match.
($rc, $out) = check(conf(<<"EOF" =~ s/\n\z//r,
      certificates:
        - $CERT
        - { cert: $dir/nameless.pem, key: $dir/nameless.key }
        - { cert: $dir/partial.pem, key: $dir/partial.key }
      protocols: [ TLSv1.2, TLSv1.3 ]
      client_ca: $dir/clients.pem
      client_verify: optional
EOF
                         "limits: { handshake_timeout: 5s }"));
is($rc, 0, 'a full tls block passes -t') or diag $out;
like($out, qr/\[warn\].*test\.yaml:\d+:\d+: certificate "\Q$dir\E\/nameless\.pem" has no DNS name in its subjectAltName: no server name selects it/,
     'a certificate without DNS names (not the first): a warning');
like($out, qr/\[warn\].*certificate "\Q$dir\E\/partial\.pem": subjectAltName "f\*\.example\.com" can match no server name; ignored/,
     'a partial wildcard: a warning');
