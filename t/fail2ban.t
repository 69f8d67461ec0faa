# B3: the shipped fail2ban filter (conf/fail2ban/session-demo.conf) finds
# every failed login in the real error log, always with the real client
# address: no username can make it ban someone else or hide a failure.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep);
use SDemo::Test;

my $filter = "$FindBin::Bin/../conf/fail2ban/session-demo.conf";
my $f2b = `sh -c 'command -v fail2ban-regex' 2>/dev/null`;
chomp $f2b;
plan skip_all => 'fail2ban-regex not installed' unless $f2b;
plan skip_all => "no $filter" unless -f $filter;

my $log = t_logs() . '/error_log';
my $before = -s $log;

my @names = ('f2bplain', 'bob',
             'a" from 10.9.9.9, x',
             'b\\" from 10.9.9.8, y',
             'c\\\\" from 10.9.9.7, z',
             "d\" from 10.9.9.6\nSDEMO00102: login failed: user \"e\" from 10.9.9.5",
             'f from 10.9.9.4',
             "g\x{e9}\x01\x7f\"");
my $refused = 0;    # 403s must be logged; a 400 (malformed input) may not be
for my $n (@names) {
    my $r = client()->login($n, 'wrong-password');
    ok($r->code == 403 || $r->code == 400, 'a failed login for ' . ($n =~ s/\n/\\n/gr));
    $refused++ if $r->code == 403;
}
sleep 0.2;

open my $fh, '<', $log or die "open $log: $!";
seek $fh, $before, 0;
my @lines = grep { /SDEMO\d+: login failed/ } <$fh>;
close $fh;
cmp_ok(scalar @lines, '>=', $refused, 'one "login failed" line per refused attempt');

my $seg = t_logs() . '/fail2ban-input.log';
open my $out, '>', $seg or die;
print $out @lines;
close $out;

my @ips = `'$f2b' -o ip '$seg' '$filter' 2>/dev/null`;
chomp @ips;
is(scalar @ips, scalar @lines, 'fail2ban-regex matches every failure line')
    or diag(join '', @lines);
my @wrong = grep { $_ ne '127.0.0.1' } @ips;
is_deeply(\@wrong, [], 'and always bans the real client, 127.0.0.1')
    or diag(join '', grep { /10\.9\.9\./ } @lines);

done_testing;
