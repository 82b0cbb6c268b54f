# The command line: -t, -V, -s reload|quit|stop (and a bad -s), and
# relative paths resolved against the prefix (-p, or by default the
# parent of the config file's folder).

use strict;
use warnings;
use v5.36;
use lib 't/lib';

use IO::Select;
use POSIX qw(WNOHANG);
use Test::More;
use Test::Portico;
use Time::HiRes qw(time sleep);

my $t = Test::Portico->new()->plan(33);

# The binary under test with @args: (exit code, stdout and stderr).
sub portico (@args) { return run_cmd(10, $t->binary, @args) }
my $dir = $t->testdir;


# The wait status of $pid (our child) once it exits, or undef after $secs.
sub wait_exit ($pid, $secs) {
    my $deadline = time + $secs;
    while (time < $deadline) {
        return $? if waitpid($pid, WNOHANG) == $pid;
        sleep 0.02;
    }
    return undef;
}


my $CONFIG = <<'EOF';
listen: [ { address: "127.0.0.1:%%PORT_GW%%" } ]
admin: { address: "127.0.0.1:%%PORT_ADMIN%%" }
access_log: { path: logs/a.log, format: json }
routes:
  - name: hello
    match: { path: / }
    respond: { status: 200, body: "BODY" }
EOF

sub config ($body) {
    (my $yaml = $CONFIG) =~ s/BODY/$body/;
    $t->write_config($yaml);
}

mkdir "$dir/logs" or die "$dir/logs: $!";
config('one');
my $conf = $t->config_path;


# -t on a good config.
my ($rc, $out) = portico('-t', '-p', $dir, '-c', $conf);
is($rc, 0, '-t good config: exit 0');
like($out, qr/configuration \Q$conf\E test is successful/,
     '-t good config: "configuration FILE test is successful"') or diag $out;

# -t on a bad one: the position of the mistake, exit 1.
write_file("$dir/bad.yaml", "listen: [ { address: \"127.0.0.1:1\" } ]\n"
                            . "routes: []\nlimits:\n  idle_timeout: soon\n");
($rc, $out) = portico('-t', '-p', $dir, '-c', "$dir/bad.yaml");
is($rc, 1, '-t bad config: exit 1');
like($out, qr/\Q$dir\E\/bad\.yaml:4:17: .*"soon"/,
     '-t bad config: FILE:LINE:COL of the mistake') or diag $out;
unlike($out, qr/test is successful/, '-t bad config: not "successful"');

# -V: version, configure arguments and the compiled-in modules.
($rc, $out) = portico('-V');
is($rc, 0, '-V: exit 0');
like($out, qr/^portico version \d+\.\d+\.\d+/m, '-V: version line');
like($out, qr/^configure arguments:/m, '-V: configure arguments line');
my ($mods) = $out =~ /^modules:(.*)$/m;
my %have = map { $_ => 1 } split ' ', $mods // '';
# Every built-in module: a lost one (lb, say) would otherwise only show as
# test files that skip themselves.  The list is written out here, and
# whatever configure builds in by default must be on it too.
my @builtin = qw(core http upstream router lb status log auth ratelimit cache gzip metrics);
is_deeply([grep { !$have{$_} } @builtin], [],
          "-V: modules line lists @builtin") or diag $out;
my @configured = configure_builtins();
ok(@configured && !grep({ my $m = $_; !grep { $_ eq $m } @builtin }
                        @configured),
   "configure's built-in modules (@configured) are all listed above");

# A bad option or a stray argument: usage, exit 1.
($rc, $out) = portico('-Z');
is($rc, 1, 'unknown option: exit 1');
($rc, $out) = portico('-t', 'stray');
is($rc, 1, 'stray argument: exit 1');

# -s with nothing running: cannot read the pid file, exit 1.
($rc, $out) = portico('-s', 'reload', '-p', $dir, '-c', $conf);
is($rc, 1, '-s reload with no master running: exit 1');
like($out, qr/pid/, '... saying it found no pid') or diag $out;


# Relative paths resolve against -p: the harness passes -p TESTDIR, and the
# config lives there too, so the default prefix (its parent's parent)
# would put the log elsewhere.
$t->run();
my $master = $t->pid;
like(http_get('/x'), qr/^HTTP\/1.1 200 .*one\z/s, 'gateway up, generation 1');
my $deadline = time + 4;
sleep 0.1 until -s "$dir/logs/a.log" || time > $deadline;
like(do { local (@ARGV, $/) = "$dir/logs/a.log"; <> } // '', qr/"path":"\/x"/,
     'access_log path logs/a.log resolved under the prefix');
ok(-s "$dir/portico.pid", 'pid_file resolved under the prefix');

# -s reload: a new generation with the changed config.
config('two');
($rc, $out) = portico('-s', 'reload', '-p', $dir, '-c', $conf);
is($rc, 0, '-s reload: exit 0') or diag $out;
ok($t->wait_generation(2), '-s reload: generation 2');
like(http_get('/x'), qr/two\z/, '-s reload: the new config answers');

# -s reopen: the master reopens its logs.
($rc, $out) = portico('-s', 'reopen', '-p', $dir, '-c', $conf);
is($rc, 0, '-s reopen: exit 0') or diag $out;
ok($t->wait_log(qr/reopening logs/, 5), '-s reopen: the master reopened');

# An unknown -s value: exit 1, and nothing is signalled.
($rc, $out) = portico('-s', 'restart', '-p', $dir, '-c', $conf);
is($rc, 1, '-s restart (unknown): exit 1');
like($out, qr/unknown signal "restart"/, '-s restart: says why') or diag $out;
ok(kill(0, $master) && defined wait_exit_none($master),
   '-s restart: the master is still running');

# -s quit: the master exits by itself, with status 0, pid file removed.
($rc, $out) = portico('-s', 'quit', '-p', $dir, '-c', $conf);
is($rc, 0, '-s quit: exit 0') or diag $out;
my $status = wait_exit($master, 10);
is($status, 0, '-s quit: the master exited with status 0');
ok(!-e "$dir/portico.pid", '-s quit: pid file removed');
$t->stop;

# -s stop: fast shutdown.
$t->run();
$master = $t->pid;
($rc, $out) = portico('-s', 'stop', '-p', $dir, '-c', $conf);
is($rc, 0, '-s stop: exit 0') or diag $out;
$status = wait_exit($master, 5);
is($status, 0, '-s stop: the master exited with status 0');
ok($t->wait_log(qr/fast shutdown/, 1), '-s stop: it was a fast shutdown');
$t->stop;


# The default prefix is the parent of the config file's folder, as with
# nginx: D/conf/main.yaml includes "inc/*.yaml" from D/inc/.  With -p
# D/conf the same config looks in D/conf/inc/ and fails.
my $d = "$dir/tree";
mkdir $_ or die "$_: $!" for $d, "$d/conf", "$d/inc";
write_file("$d/inc/r.yaml", "routes:\n  - { name: inc, match: { path: / },"
                            . " respond: { status: 200 } }\n");
write_file("$d/conf/main.yaml", "error_log: logs/error.log\n"
           . "pid_file: logs/p.pid\n"
           . "listen: [ { address: \"127.0.0.1:1\" } ]\n"
           . "include: [ inc/r.yaml ]\n");
($rc, $out) = portico('-t', '-c', "$d/conf/main.yaml");
is($rc, 0, 'default prefix: the parent of the config folder') or diag $out;
($rc, $out) = portico('-t', '-p', "$d/conf", '-c', "$d/conf/main.yaml");
is($rc, 1, '-p changes where relative paths resolve') or diag $out;


# True while $pid (our child) has not exited; undef once it has.
sub wait_exit_none ($pid) {
    return waitpid($pid, WNOHANG) == 0 ? 1 : undef;
}


# The module names configure compiles in without --add-module: its
# core_modules, and the pt_module_name of each of its builtin_dirs.
sub configure_builtins () {
    open my $fh, '<', 'configure' or return ();
    my $text = do { local $/; <$fh> };
    my ($core) = $text =~ /^core_modules="([^"]*)"/m;
    my ($dirs) = $text =~ /^builtin_dirs="([^"]*)"/m;
    return () unless defined $core && defined $dirs;
    my @names = split ' ', $core;
    for my $d (split ' ', $dirs) {
        open my $mk, '<', "$d/module.mk" or return ();
        my ($name) = join('', <$mk>) =~ /^pt_module_name\s*=\s*(\S+)/m;
        return () unless defined $name;
        push @names, $name;
    }
    return @names;
}
