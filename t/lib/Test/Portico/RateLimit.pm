package Test::Portico::RateLimit;

# Test::Portico::RateLimit: load for the rate-limit tests.
#
#   my ($ok, $bad) = drive($secs, $path, @ports);
#
# One client process per entry of @ports sends GET $path to 127.0.0.1 on
# that port for $secs seconds, one request after another on a kept-alive
# connection (a new connection per request would leave tens of thousands
# of sockets in TIME_WAIT, and tests running beside this one short of
# ports); returns the number of 200s, and of answers that were neither
# 200 nor 429.

use strict;
use warnings;
use v5.36;

use Exporter 'import';
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time);

our @EXPORT = qw(drive);


sub drive ($secs, $path, @ports) {
    my @kids;
    for my $port (@ports) {
        pipe(my $r, my $w) or die "pipe: $!";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            close $r;
            my ($ok, $bad, $s) = (0, 0, undef);
            my $end = time + $secs;
            while (time < $end) {
                $s //= IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                             PeerPort => $port,
                                             Timeout => 5) or next;
                print $s "GET $path HTTP/1.1\r\nHost: t\r\n\r\n";
                my $status = _answer($s);
                if ($status == 200) { $ok++ }
                elsif ($status != 429) { $bad++ }
                if ($status <= 0) { close $s; undef $s }
            }
            print $w "$ok $bad\n";
            close $w;
            POSIX::_exit(0);
        }
        close $w;
        push @kids, [$pid, $r];
    }
    my ($ok, $bad) = (0, 0);
    for (@kids) {
        my ($pid, $r) = @$_;
        my ($o, $b) = split ' ', (<$r> // '0 0');
        $ok += $o; $bad += $b;
        waitpid $pid, 0;
    }
    return ($ok, $bad);
}


# Read one answer (Content-Length framed) from $s: its status, 0 when the
# connection ended first, -1 when the server will close it.
sub _answer ($s) {
    my ($line, $len, $close) = (scalar <$s>, 0, 0);
    return 0 unless defined $line;
    my ($status) = $line =~ /^HTTP\/1\.1 (\d{3})/;
    while (defined(my $h = <$s>)) {
        last if $h eq "\r\n";
        $len = $1 if $h =~ /^Content-Length:\s*(\d+)/i;
        $close = 1 if $h =~ /^Connection:\s*close/i;
    }
    read($s, my $body, $len) == $len or return 0 if $len;
    return -1 if $close;
    return $status // 0;
}

1;
