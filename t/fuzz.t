#!/usr/bin/perl

# fuzz.t: replays every fuzz corpus and regression input through its
# target (t/fuzz/fuzz_NAME.c linked with t/fuzz/replay.c, built by `make
# test` as objs/fuzz/replay_NAME), so that a change that breaks one of
# them fails the suite without clang or libFuzzer.
#
# Per target: the binary exists, t/fuzz/corpus/NAME is not empty, and the
# replay of the corpus and of t/fuzz/regress/NAME runs every file, exits 0
# (a crash, an abort on a broken promise or a sanitizer report in an ASan
# build fails it, even one UBSan recovered from) and names no input slower
# than PT_FUZZ_SLOW_MS. The
# binaries live in fuzz/ next to the gateway binary ($PT_TEST_BINARY,
# default objs/portico). PT_UNIT_TIMEOUT (seconds, default 300) bounds
# each replay.

use strict;
use warnings;
use v5.36;

use File::Basename qw(basename dirname);
use File::Spec;
use IO::Select;
use POSIX ();
use Test::More;
use Time::HiRes qw(time);

my $bin = File::Spec->rel2abs($ENV{PT_TEST_BINARY} // 'objs/portico');
my $dir = dirname($bin) . '/fuzz';
my $timeout = $ENV{PT_UNIT_TIMEOUT} // 300;

my @names = sort map { basename($_, '.c') =~ s/^fuzz_//r }
                 glob 't/fuzz/fuzz_*.c';

if (!@names) {
    plan tests => 1;
    fail('no fuzz targets in t/fuzz');
    exit;
}

plan tests => scalar @names;

for my $name (@names) {
    subtest $name => sub { replay($name) };
}


sub replay ($name) {
    my $replay = "$dir/replay_$name";
    my @dirs = grep { -d } "t/fuzz/corpus/$name", "t/fuzz/regress/$name";
    my $files = () = grep { -f } map { glob "$_/*" } @dirs;
    my $corpus = () = grep { -f } glob "t/fuzz/corpus/$name/*";

    ok(-x $replay, "$replay is built") or return done_testing();
    ok($corpus > 0, "t/fuzz/corpus/$name has inputs ($corpus)");

    my $start = time;
    my ($status, $out) = run_capture($replay, @dirs);
    my $took = sprintf '%.1f', time - $start;

    my ($n) = $out =~ /^replayed (\d+) inputs/m;
    ok($status == 0, "replay exits 0 ($took s)")
        or diag(describe_status($status) . "\n$out");
    is($n, $files, "every input replayed");

    # A sanitizer build that recovers from UBSan reports still exits 0.
    ok($out !~ /runtime error:|Sanitizer/, 'no sanitizer report')
        or diag($out);
    note($out);
    done_testing();
}


# Runs a command with stdout and stderr in one pipe; returns (wait status,
# output). Kills it after $timeout seconds.
sub run_capture (@cmd) {
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', '/dev/null';
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
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
    close $fh;
    my $status = $?;
    $out .= "\nkilled after ${timeout}s (PT_UNIT_TIMEOUT)" if $timed_out;
    return ($status, $out);
}


sub describe_status ($status) {
    return "exited with status " . ($status >> 8) unless $status & 127;
    return "killed by signal " . ($status & 127)
           . ($status & 128 ? ' (core dumped)' : '');
}
