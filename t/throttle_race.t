# The throttle cannot be raced: each attempt is counted before its password
# is checked (and taken back only on success), so 30 wrong passwords for
# one user sent at the same moment, with a limit of 5, get at most 5
# answers of 403 and the rest 429. Before, every attempt passed the check
# while bcrypt ran for the others, and all 30 were tried.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use POSIX ();
use SDemo::Test;
use SDemo::Httpd;

my $h = SDemo::Httpd->new(name => 'throttle_race', mpm => 'event',
    config => "<Location />\n    SessionDemoLoginThrottle 5 60\n</Location>\n");
ok($h->start, 'httpd with SessionDemoLoginThrottle 5 60') or BAIL_OUT($h->why);

# Each child fetches its form first, then all post at once (a pipe is the
# starting gun), and reports the status it got.
my $N = 30;
pipe(my $go_r, my $go_w) or die "pipe: $!";
pipe(my $res_r, my $res_w) or die "pipe: $!";
my @kids;
for my $k (1 .. $N) {
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        close $go_w;
        close $res_r;
        my $c = SDemo::Client->new(base => $h->base);
        my ($csrf) = $c->login_csrf;
        sysread $go_r, my $buf, 1;    # wait for the gun (EOF)
        my $r = $c->post_form('/login', [ username => 'alice', password => "wrong$k",
                                          csrf => $csrf // '' ]);
        print {$res_w} $r->code, "\n";
        close $res_w;
        POSIX::_exit(0);
    }
    push @kids, $pid;
}
close $go_r;
close $res_w;
sleep 2;            # every child has its form
close $go_w;        # go
my @codes = map { chomp; $_ } <$res_r>;
waitpid $_, 0 for @kids;

my $tried = grep { $_ == 403 } @codes;
my $throttled = grep { $_ == 429 } @codes;
is(scalar @codes, $N, "$N answers");
cmp_ok($tried, '<=', 5, "at most 5 of $N concurrent wrong passwords were tried ($tried got 403)");
is($tried + $throttled, $N, "the rest got 429 ($throttled)");
is(SDemo::Client->new(base => $h->base)->login('alice', 'wonderland')->code, 429,
   'the right password afterwards: still 429');

ok($h->stop, 'stopped');
done_testing;
