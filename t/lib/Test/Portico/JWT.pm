package Test::Portico::JWT;

# Test::Portico::JWT: keys, JWKS documents and JSON Web Tokens for the auth
# tests, made with the openssl command line (no Perl crypto module):
#
#   my $k = Test::Portico::JWT::key($dir, 'rsa1', 'RSA');   # or EC256,
#                                                           # EC384, Ed25519
#   my $jwks = jwks($k1, $k2);            # a JWKS document (JSON text)
#   my $tok = jwt($k, 'RS256', { sub => 'alice', exp => time + 60 });
#   my $tok = jwt_hmac($secret, 'HS256', \%claims, \%header);
#   my $tok = jwt_raw($header_json, $payload_json, $signature_bytes);
#
# A key is { name, type, kid, pem (private key file), pub (public key
# file) }; its kid is its name.

use strict;
use warnings;
use v5.36;

use Carp qw(croak);
use Exporter 'import';
use JSON::PP;
use MIME::Base64 qw(encode_base64url);
use Test::Portico qw(run_cmd write_file);

our @EXPORT_OK = qw(key jwks jwt jwt_hmac jwt_raw b64url);

my $JSON = JSON::PP->new->canonical;


sub b64url ($bytes) { return encode_base64url($bytes) }


sub _openssl (@args) {
    my ($rc, $out) = run_cmd(60, 'openssl', @args);
    croak "openssl @args: $out" if $rc != 0;
    return $out;
}


sub _slurp ($path) {
    open my $fh, '<:raw', $path or croak "$path: $!";
    local $/;
    return scalar <$fh>;
}


sub key ($dir, $name, $type) {
    my $pem = "$dir/$name.key";
    my $pub = "$dir/$name.pub";
    my @gen = $type eq 'RSA'     ? ('-algorithm', 'RSA',
                                    '-pkeyopt', 'rsa_keygen_bits:2048')
            : $type eq 'EC256'   ? ('-algorithm', 'EC',
                                    '-pkeyopt', 'ec_paramgen_curve:P-256')
            : $type eq 'EC384'   ? ('-algorithm', 'EC',
                                    '-pkeyopt', 'ec_paramgen_curve:P-384')
            : $type eq 'Ed25519' ? ('-algorithm', 'ED25519')
            : croak "key: unknown type $type";
    _openssl('genpkey', @gen, '-out', $pem);
    _openssl('pkey', '-in', $pem, '-pubout', '-out', $pub);
    return { name => $name, kid => $name, type => $type, pem => $pem,
             pub => $pub, dir => $dir };
}


# The public key as a JWK.
sub _jwk ($k) {
    my %jwk = (kid => $k->{kid});
    if ($k->{type} eq 'RSA') {
        my $text = _openssl('rsa', '-pubin', '-in', $k->{pub}, '-noout',
                            '-modulus');
        my ($hex) = $text =~ /Modulus=([0-9A-F]+)/ or croak "no modulus";
        %jwk = (%jwk, kty => 'RSA', n => b64url(pack 'H*', $hex),
                e => b64url("\x01\x00\x01"));
    } else {
        # The DER SubjectPublicKeyInfo ends with the raw public key: the
        # uncompressed point 04||X||Y, or Ed25519's 32 bytes.
        _openssl('pkey', '-pubin', '-in', $k->{pub}, '-outform', 'DER',
                 '-out', "$k->{pub}.der");
        my $der = _slurp("$k->{pub}.der");
        if ($k->{type} eq 'Ed25519') {
            %jwk = (%jwk, kty => 'OKP', crv => 'Ed25519',
                    x => b64url(substr $der, -32));
        } else {
            my $n = $k->{type} eq 'EC256' ? 32 : 48;
            my $pt = substr $der, -(2 * $n);
            %jwk = (%jwk, kty => 'EC',
                    crv => $k->{type} eq 'EC256' ? 'P-256' : 'P-384',
                    x => b64url(substr $pt, 0, $n),
                    y => b64url(substr $pt, $n));
        }
    }
    return \%jwk;
}


sub jwks (@keys) {
    return $JSON->encode({ keys => [map { _jwk($_) } @keys] });
}


# A DER ECDSA-Sig-Value (SEQUENCE of two INTEGERs) as JOSE's R||S.
sub _ecdsa_raw ($der, $n) {
    my $p = 2;                                  # SEQUENCE tag and length
    $p++ if ord(substr $der, 1, 1) & 0x80;      # long form (P-384)
    my @ints;
    for (1 .. 2) {
        my $len = ord(substr $der, $p + 1, 1);
        my $int = substr $der, $p + 2, $len;
        $int =~ s/^\x00+//;
        push @ints, ("\x00" x ($n - length $int)) . $int;
        $p += 2 + $len;
    }
    return join '', @ints;
}


sub jwt_raw ($header, $payload, $sig) {
    return b64url($header) . '.' . b64url($payload) . '.' . b64url($sig);
}


# Sign "header.payload" with key $k for algorithm $alg.
sub jwt ($k, $alg, $claims, $header = {}) {
    my $h = $JSON->encode({ alg => $alg, typ => 'JWT', kid => $k->{kid},
                            %$header });
    my $input = b64url($h) . '.' . b64url($JSON->encode($claims));
    my $in = "$k->{dir}/signing-input";
    my $out = "$k->{dir}/signature";
    write_file($in, $input);
    my ($bits) = $alg =~ /(\d+)$/;
    if ($alg =~ /^RS/) {
        _openssl('dgst', "-sha$bits", '-sign', $k->{pem}, '-out', $out, $in);
    } elsif ($alg =~ /^PS/) {
        _openssl('dgst', "-sha$bits", '-sign', $k->{pem},
                 '-sigopt', 'rsa_padding_mode:pss',
                 '-sigopt', 'rsa_pss_saltlen:digest', '-out', $out, $in);
    } elsif ($alg =~ /^ES/) {
        _openssl('dgst', "-sha$bits", '-sign', $k->{pem}, '-out', $out, $in);
        write_file($out, _ecdsa_raw(_slurp($out), $bits == 256 ? 32 : 48));
    } elsif ($alg eq 'EdDSA') {
        _openssl('pkeyutl', '-sign', '-rawin', '-inkey', $k->{pem},
                 '-in', $in, '-out', $out);
    } else {
        croak "jwt: $alg needs jwt_hmac";
    }
    return "$input." . b64url(_slurp($out));
}


# HS256/384/512 with the secret $secret (openssl dgst -hmac).
sub jwt_hmac ($dir, $secret, $alg, $claims, $header = {}) {
    my ($bits) = $alg =~ /(\d+)$/;
    my $h = $JSON->encode({ alg => $alg, typ => 'JWT', %$header });
    my $input = b64url($h) . '.' . b64url($JSON->encode($claims));
    write_file("$dir/hmac-input", $input);
    write_file("$dir/hmac-key", $secret);
    _openssl('dgst', "-sha$bits", '-mac', 'HMAC', '-macopt',
             'hexkey:' . unpack('H*', $secret), '-binary',
             '-out', "$dir/hmac-out", "$dir/hmac-input");
    return "$input." . b64url(_slurp("$dir/hmac-out"));
}

1;
