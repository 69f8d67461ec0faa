# The last test: no unexpected [warn], [error], [crit], [alert], [emerg],
# crash or sanitizer line in any error log the suite produced (the Apache::Test
# server's t/logs/error_log and the extra servers' t/logs/*/error_log).
#
# Allowed are only the lines listed below, which the suite's configuration
# causes on purpose, and the lines tests registered with
# SDemo::Test::expect_log in t/logs/expected-log-lines.
#
# scripts/run-tests.sh runs this once more after stopping httpd (with
# SDEMO_AFTER_STOP=1) to see shutdown problems too. It needs no server.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use File::Find ();
use FindBin;

my $t_logs = "$FindBin::Bin/logs";

my @bad = (
    qr/\[(?:[\w.-]+:)?(?:warn|error|crit|alert|emerg)\]/,
    qr/Segmentation fault/,
    qr/AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|ThreadSanitizer/,
    qr/runtime error:/,
    qr/exit signal/,
    qr/\bdouble free\b|\bstack smashing\b|malloc\(\): |free\(\): /,
);

# t/conf/users has two entries that must not log in: the module warns about
# each at start (B4).
my @allowed = (
    [ qr/\[session_demo:warn\] .*user "md5user" in \S+ cannot log in/, 'MD5 entry in t/conf/users' ],
    [ qr/\[session_demo:warn\] .*user "lowcost" in \S+ cannot log in/, 'bcrypt cost 5 in t/conf/users' ],
);

if (open my $fh, '<', "$t_logs/expected-log-lines") {
    while (<$fh>) {
        chomp;
        my ($scope, $re, $why) = split /\t/, $_, 3;
        next unless defined $re && length $re;
        push @allowed, [ qr/$re/, $why || '', $scope ];
    }
    close $fh;
}

sub allowed {
    my ($line, $log) = @_;
    for my $a (@allowed) {
        next unless $line =~ $a->[0];
        my $scope = $a->[2];
        return 1 if !defined $scope || $scope eq '*'
                    || index($log, "/$scope/") >= 0;
    }
    return 0;
}

my @logs;
File::Find::find({ no_chdir => 1, wanted => sub {
    push @logs, $_ if -f $_ && m{/error_log[^/]*$};
} }, $t_logs) if -d $t_logs;
@logs = sort @logs;

ok(-s "$t_logs/error_log", 'the main server wrote t/logs/error_log');

if ($ENV{SDEMO_AFTER_STOP}) {
    my $main = do { local (@ARGV, $/) = "$t_logs/error_log"; <> } // '';
    like($main, qr/caught SIGTERM, shutting down/,
         'the main server shut down (the log covers the whole run)');
}

for my $log (@logs) {
    open my $fh, '<', $log or do { fail("open $log: $!"); next };
    my @unexpected;
    my $n = 0;
    while (my $line = <$fh>) {
        $n++;
        next unless grep { $line =~ $_ } @bad;
        next if allowed($line, $log);
        push @unexpected, "$n: $line";
    }
    close $fh;
    (my $rel = $log) =~ s{^\Q$FindBin::Bin\E/}{t/};
    ok(!@unexpected, "no unexpected error, warning or crash in $rel")
        or diag(join '', @unexpected[0 .. ($#unexpected > 30 ? 30 : $#unexpected)]);
}

# B1: a session ID travels only in the cookie. No ID a client got in this
# run may show in any file the servers wrote (logs, snapshots), nor the full
# SHA-256 of one (logs may show a short prefix of the hash at most).
my @ids;
if (open my $fh, '<', "$t_logs/issued-ids") {
    chomp(@ids = <$fh>);
    close $fh;
}
my %seen;
@ids = grep { length && !$seen{$_}++ } @ids;
SKIP: {
    skip 'no session IDs were issued', 1 unless @ids;
    require Digest::SHA;
    require MIME::Base64;
    my %needle;
    for my $id (@ids) {
        $needle{$id} = "ID $id";
        my $raw = $id;
        $raw =~ tr{-_}{+/};
        $raw .= '=' x ((4 - length($raw) % 4) % 4);
        for my $h (Digest::SHA::sha256_hex($id),
                   Digest::SHA::sha256_hex(MIME::Base64::decode_base64($raw))) {
            $needle{substr $h, 0, 32} = "SHA-256 of $id";
        }
    }
    my @files;
    File::Find::find({ no_chdir => 1, wanted => sub {
        return unless -f $_;
        return if m{/(?:issued-ids|expected-log-lines|[^/]*\.conf)$};
        # A Redis store's own data: it keys sessions by that hash, by
        # design (as the shared memory does); only logs must not show it.
        return if m{/redis-[^/]+/(?:appendonlydir/|[^/]*\.rdb$)};
        push @files, $_;
    } }, $t_logs);
    my @found;
    for my $f (sort @files) {
        open my $fh, '<:raw', $f or next;
        my $data = do { local $/; <$fh> };
        close $fh;
        next unless defined $data;
        my $ldata = lc $data;
        for my $n (keys %needle) {
            my $hay = $n =~ /^[0-9a-f]{32}$/ ? $ldata : $data;
            push @found, "$f: $needle{$n}" if index($hay, $n) >= 0;
        }
    }
    ok(!@found, scalar(@ids) . ' issued session IDs: none in any log or file under t/logs')
        or diag(join "\n", @found[0 .. ($#found > 20 ? 20 : $#found)]);
}

done_testing;
