# Failed logins take the same time whoever the user is. A user file with
# users of bcrypt cost 10 and 13: before, a wrong password for the cost-10
# user answered in about 1/8 of the time an unknown name or the cost-13
# user took, which tells an attacker which names exist (and their cost).
# Now every failure waits out a check at the file's highest cost. (The
# bound is loose, 0.6, because a loaded machine makes bcrypt times vary;
# before the fix the ratio was about 0.12.)

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time);
use SDemo::Test;
use SDemo::Httpd;

my $users = t_logs() . '/timing.users';
unlink $users;
system("htpasswd -b -B -C 10 -c '$users' cheap cheappw >/dev/null 2>&1") == 0 or die 'htpasswd';
system("htpasswd -b -B -C 13 '$users' dear dearpw >/dev/null 2>&1") == 0 or die 'htpasswd';
chmod 0644, $users;

my $h = SDemo::Httpd->new(name => 'timing', mpm => 'event',
    config => "<Location />\n    SessionDemoUserFile \"$users\"\n"
            . "    SessionDemoGuestPassword password\n</Location>\n");
ok($h->start, 'httpd with users of cost 10 and 13') or BAIL_OUT($h->why);

sub median { my @s = sort { $a <=> $b } @_; $s[@s / 2] }
sub failure_time {
    my $user = shift;
    my @t;
    for (1 .. 3) {
        my $c = SDemo::Client->new(base => $h->base);
        my ($csrf) = $c->login_csrf;
        my $t0 = time;
        my $res = $c->post_form('/login', [ username => $user, password => 'wrong', csrf => $csrf ]);
        push @t, time - $t0;
        die "$user: " . $res->code unless $res->code == 403;
    }
    return median(@t);
}

my %t = map { $_ => failure_time($_) } qw(cheap dear nosuchuser);
diag(sprintf('failed login: cost-10 user %.3f s, cost-13 user %.3f s, unknown name %.3f s',
             @t{qw(cheap dear nosuchuser)}));
cmp_ok($t{cheap} / $t{dear}, '>', 0.6, 'a cost-10 user fails as slowly as a cost-13 user');
cmp_ok($t{nosuchuser} / $t{dear}, '>', 0.6, 'an unknown name fails as slowly as a cost-13 user');
cmp_ok($t{cheap} / $t{nosuchuser}, '>', 0.6, 'a cost-10 user and an unknown name: the same');

ok($h->stop, 'stopped');
done_testing;
