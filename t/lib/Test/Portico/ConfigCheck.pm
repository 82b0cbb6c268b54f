package Test::Portico::ConfigCheck;

# Test::Portico::ConfigCheck: `portico -t` on configs with one mistake
# each, for the tests of config errors.
#
#   my $cc = Test::Portico::ConfigCheck->new($t, $head);
#   my ($rc, $out, $file, $text) = $cc->check($body);
#   $cc->one_error($name, $body, qr/message/, [needle, nth], ...);
#
# The expected position is not written by hand: it is where the marked
# text (the needle, its n-th occurrence) sits in the file, so the cases
# stay readable. one_error adds three tests.

use strict;
use warnings;
use v5.36;

use Exporter 'import';
use Test::More;
use Test::Portico qw(run_cmd write_file);

our @EXPORT_OK = qw(pos_of);


sub new ($class, $t, $head) {
    return bless { t => $t, head => $head, n => 0 }, $class;
}


# "LINE:COL" (1-based) of the $nth occurrence of $needle in $text.
sub pos_of ($text, $needle, $nth = 1) {
    my $at = -1;
    for (1 .. $nth) {
        $at = index($text, $needle, $at + 1);
        die "pos_of: '$needle' #$nth not in the config" if $at < 0;
    }
    my $before = substr($text, 0, $at);
    my $line = 1 + ($before =~ tr/\n//);
    my $col = $at - rindex($before, "\n");
    return "$line:$col";
}


# Writes $body (after the common head) to its own file, runs -t on it and
# returns (exit code, output, file, full text).
sub check ($self, $body) {
    my $dir = $self->{t}->testdir;
    my $file = "$dir/case" . ++$self->{n} . '.yaml';
    my $text = $self->{head} . $body;
    write_file($file, $text);
    my ($rc, $out) = run_cmd(10, $self->{t}->binary, '-t', '-p', $dir,
                             '-c', $file);
    return ($rc, $out, $file, $text);
}


# One mistake: exit 1, the error at one of @at (each [needle, nth]), with
# a message matching $msg, and no other error reported.
sub one_error ($self, $name, $body, $msg, @at) {
    my ($rc, $out, $file, $text) = $self->check($body);
    my @pos = map { pos_of($text, @$_) } @at;
    my $pos_re = join '|', map { quotemeta } @pos;
    is($rc, 1, "$name: -t exits 1");
    like($out, qr/\Q$file\E:(?:$pos_re): .*$msg/, "$name: $file:$pos[0]")
        or diag $out;
    my @errors = $out =~ /^.*\Q$file\E:\d+:\d+: .*$/mg;
    is(scalar @errors, 1, "$name: exactly one error reported")
        or diag $out;
}

1;
