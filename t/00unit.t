#!/usr/bin/perl

# 00unit.t: runs every C unit test (objs/unit/test_*) as one subtest and
# re-emits its TAP, so that `prove t/` reports them with the rest.
#
# The binaries are built by `make test` before prove runs; they live in
# unit/ next to the gateway binary ($PT_TEST_BINARY, default objs/portico).
# A unit test fails here if any of its checks fails, if it runs a different
# number of checks than it planned, or if it exits non-zero or on a signal.
# PT_UNIT_TIMEOUT (seconds, default 300) bounds each one: sanitizer and
# valgrind builds are slow, an endless loop must still end.

use strict;
use warnings;
use v5.36;

use File::Basename qw(basename dirname);
use File::Spec;
use IO::Select;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(time sleep);

my $bin = File::Spec->rel2abs($ENV{PT_TEST_BINARY} // 'objs/portico');
my $dir = dirname($bin) . '/unit';
my $timeout = $ENV{PT_UNIT_TIMEOUT} // 300;

my @tests = sort grep { -f && -x } glob "$dir/test_*";

# A test source without its binary means the build skipped it: that must
# not pass silently.
my @unbuilt = grep { !-x "$dir/" . basename($_, '.c') } glob 't/unit/test_*.c';

if (!@tests) {
    plan tests => 1;
    fail("no unit test binaries in $dir (make test builds them)");
    exit;
}

plan tests => @tests + @unbuilt;
fail("$_ has no binary in $dir") for @unbuilt;

for my $path (@tests) {
    subtest basename($path) => sub { run_unit($path) };
}


# Runs one binary and turns its TAP into Test::More calls.
sub run_unit ($path) {
    my ($status, @lines) = run_capture($path);
    my ($planned, $seen, $skip, @other) = (undef, 0, undef);

    for my $line (@lines) {
        if ($line =~ /^1\.\.(\d+)(?:\s*#\s*(?:skip\w*)\s*(.*))?/i) {
            fail("second plan line '$line'") if defined $planned;
            ($planned, $skip) = ($1, $2);
        } elsif ($line =~ /^(not )?ok\b\s*(\d*)\s*(?:-\s*)?(.*)$/) {
            my ($not, $num, $desc) = ($1, $2, $3);
            $seen++;
            # Test::More warns about names that are only a number.
            $desc = "'$desc'" if $desc =~ /^[\d\s]+\z/;
            ok(!$not, $desc);
            diag("test number $num out of sequence, expected $seen")
                if length $num && $num != $seen;
        } elsif ($line =~ /^#\s?(.*)$/) {
            diag($1);
        } elsif ($line =~ /^Bail out!\s*(.*)$/) {
            fail("bailed out: $1");
        } elsif ($line =~ /\S/) {
            push @other, $line;      # stderr and stray output
        }
    }

    if (defined $planned && $planned == 0 && $status == 0) {
        plan skip_all => $skip // 'no tests';
    }

    my $ok = ok(defined $planned && $planned == $seen,
                'ran as planned (1..' . ($planned // 'no plan') . ')');
    diag("it ran $seen") unless $ok;
    $ok = ok($status == 0, 'exited with status 0') && $ok;
    diag(describe_status($status)) if $status != 0;
    diag("other output:\n" . join "\n", @other) if @other && !$ok;
    done_testing();
}


# Runs $path with stdout and stderr in one pipe; returns (wait status,
# output lines).  Kills it after $timeout seconds.
sub run_capture ($path) {
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', '/dev/null';
        exec { $path } $path or POSIX::_exit(127);
    }

    my ($out, $deadline, $timed_out) = ('', time + $timeout, 0);
    my $sel = IO::Select->new($fh);
    while (1) {
        my $left = $deadline - time;
        if ($left <= 0) {
            $timed_out = 1;
            kill 'KILL', $pid;
            last;
        }
        next unless $sel->can_read($left);
        last unless sysread($fh, $out, 65536, length $out);
    }
    close $fh;                  # waits for it and sets $?
    my $status = $?;
    push my @extra, "# killed after ${timeout}s (PT_UNIT_TIMEOUT)"
        if $timed_out;
    return ($status, split(/\n/, $out), @extra);
}


sub describe_status ($status) {
    return "exited with status " . ($status >> 8) unless $status & 127;
    return "killed by signal " . ($status & 127)
           . ($status & 128 ? ' (core dumped)' : '');
}
