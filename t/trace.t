# W3C traceparent: continued as a child span (same trace id and flags, a
# new parent-id) when valid, with tracestate passed on; started (new
# trace, flags 01) when absent or invalid, tracestate then dropped; the
# access log's trace_id is the trace the upstream saw.

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use JSON::PP;
use Test::More;
use Test::Portico;

my $t = Test::Portico->new()->plan(18);
my $b1 = $t->backend(id => 'b1');
my $dir = $t->testdir;

$t->write_config(<<'EOF')->run();
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
access_log: { path: access.log, format: json }
upstreams:
  app: { targets: [ { address: "127.0.0.1:%%PORT_B1%%" } ] }
routes:
  - { name: all, match: { path: / }, upstream: app }
EOF

my $n = 0;

# What the upstream got as traceparent and tracestate, and the request id.
sub through (@fields) {
    my $id = 'tr-' . ++$n;
    my $head = join '', map { "$_\r\n" } @fields;
    my $res = parse_response(http("GET /t HTTP/1.1\r\nHost: t\r\n$head"
                                  . "X-Request-ID: $id\r\n"
                                  . "Connection: close\r\n\r\n"));
    my $e = eval { decode_json($res->{body}) } // {};
    return ($e->{headers}{traceparent}, $e->{headers}{tracestate}, $id);
}

my $VALID = qr/^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})\z/;
my %seen;

# Valid: a child.
my $in = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
my ($tp, $ts, $id) = through("traceparent: $in", 'tracestate: vendor=abc,x=1');
my ($trace, $span, $flags) = ($tp // '') =~ $VALID;
is($trace, '4bf92f3577b34da6a3ce929d0e0e4736', 'valid: same trace id upstream');
ok($span && $span ne '00f067aa0ba902b7' && $span ne '0' x 16,
   "valid: a new span id as the parent ($span)");
is($flags, '01', 'valid: flags kept');
is($ts, 'vendor=abc,x=1', 'valid: tracestate passed on untouched');
$seen{$id} = $trace;

($tp) = through('traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-'
                . '00f067aa0ba902b7-00');
like($tp // '', qr/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-00\z/,
     'valid, not sampled: flags 00 kept');

# A later version is read as 00 (forward compatibility) and sent as 00.
($tp) = through('traceparent: 01-4bf92f3577b34da6a3ce929d0e0e4736-'
                . '00f067aa0ba902b7-01-future');
like($tp // '', qr/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01\z/,
     'version 01 with a trailing field: continued as 00');

# Absent: a new one.
($tp, $ts, $id) = through();
($trace, $span, $flags) = ($tp // '') =~ $VALID;
ok($trace && $trace ne '0' x 32 && $span, 'absent: a valid new traceparent')
    or diag $tp;
is($flags, '01', 'absent: flags 01 (sampled)');
$seen{$id} = $trace;
my ($tp2) = through();
isnt($tp2, $tp, 'absent: a different trace every time');

# Invalid: replaced, tracestate dropped.
my %bad = (
    'all-zero trace id' =>
        '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    'all-zero parent id' =>
        '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    'upper-case hex' =>
        '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
    'short trace id' =>
        '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01',
    'long parent id' =>
        '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b70-01',
    'version 00 with more' =>
        '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x',
    'version ff' =>
        'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
);
for my $what (sort keys %bad) {
    ($tp, $ts, $id) = through("traceparent: $bad{$what}", 'tracestate: a=1');
    ($trace) = ($tp // '') =~ $VALID;
    ok($trace && $trace ne '4bf92f3577b34da6a3ce929d0e0e4736' && !defined $ts,
       "invalid ($what): a new trace, tracestate dropped") or diag $tp;
    $seen{$id} = $trace;
}

# Two traceparent fields: invalid as well.
($tp) = through("traceparent: $in", "traceparent: $in");
($trace) = ($tp // '') =~ $VALID;
ok($trace && $trace ne '4bf92f3577b34da6a3ce929d0e0e4736',
   'two traceparent fields: a new trace');

# The access log has the trace the upstream saw.
my $last = 'tr-' . $n;
my @lines;
wait_until(sub {
    open my $fh, '<', "$dir/access.log" or return;
    @lines = <$fh>;
    return grep { /"request_id":"\Q$last\E"/ } @lines;
}, 10);
my %logged = map { my $j = eval { decode_json($_) } // {};
                   (($j->{request_id} // '') => $j->{trace_id}) } @lines;
is_deeply({ map { $_ => $logged{$_} } keys %seen }, \%seen,
          'access log: trace_id is the trace id sent upstream');
