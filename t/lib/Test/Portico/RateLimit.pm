package Test::Portico::RateLimit;

# Test::Portico::RateLimit: load for the rate-limit tests.
#
#   my ($ok, $bad) = drive($secs, $path, @ports);
#
# One client process per entry of @ports sends GET $path to 127.0.0.1 on
# that port, a new connection each time, for $secs seconds; returns the
# number of 200s, and of answers that were neither 200 nor 429.

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
            my ($ok, $bad) = (0, 0);
            my $end = time + $secs;
            while (time < $end) {
                my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                              PeerPort => $port,
                                              Timeout => 5) or next;
                print $s "GET $path HTTP/1.1\r\nHost: t\r\n"
                         . "Connection: close\r\n\r\n";
                my $line = <$s> // '';
                if ($line =~ /^HTTP\/1\.1 200/) { $ok++ }
                elsif ($line !~ /^HTTP\/1\.1 429/) { $bad++ }
                close $s;
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


1;
