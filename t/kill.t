# B11: an httpd process killed at any moment (kill -9), even inside the
# store, never hangs the server nor damages other sessions.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use POSIX ();
use Time::HiRes qw(time sleep);
use SDemo::Test;
use SDemo::Httpd;

my $h = SDemo::Httpd->new(name => 'kill', mpm => 'prefork', mpm_config => <<'MPM');
StartServers 6
MinSpareServers 4
MaxSpareServers 10
ServerLimit 16
MaxRequestWorkers 16
MaxConnectionsPerChild 0
MPM
ok($h->start, 'prefork httpd started') or BAIL_OUT($h->why);

my @c = map { SDemo::Client->new(base => $h->base, timeout => 10) } 1 .. 4;
$c[$_]->login_ok("k$_", 'password') for 0 .. 3;
my @sid = map { $_->sid } @c;
my $bystander = SDemo::Client->new(base => $h->base);
$bystander->login_ok('bystander', 'password');
$bystander->add_note('keep me');

# Load: every client hammers its session (views and notes) for 3 seconds.
my @load;
for my $i (0 .. 3) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $cl = SDemo::Client->new(base => $h->base, jar => 0, timeout => 10);
        my $csrf;
        my $end = time + 3;
        while (time < $end) {
            $cl->get('/dashboard', Accept => 'application/json', Cookie => "sid=$sid[$i]");
            $csrf //= SDemo::Test::form_value($cl->get('/logout', Cookie => "sid=$sid[$i]"), 'csrf');
            next unless $csrf;
            $cl->post_form('/dashboard', [ csrf => $csrf, action => 'add_note', note => 'x' ],
                           Cookie => "sid=$sid[$i]");
            $cl->post_form('/dashboard', [ csrf => $csrf, action => 'clear_notes' ],
                           Cookie => "sid=$sid[$i]");
        }
        POSIX::_exit(0);
    }
    push @load, $pid;
}

my $killed = 0;
my $end = time + 2.5;
while (time < $end) {
    sleep 0.1;
    my @kids = $h->children;
    next unless @kids;
    $killed++ if kill 'KILL', $kids[ rand @kids ];
}
waitpid $_, 0 for @load;
cmp_ok($killed, '>=', 10, "killed $killed busy children with SIGKILL");

# The server recovers and nothing is damaged.
my $t0 = time;
my $ok = 0;
while (time - $t0 < 10) {
    my $r = SDemo::Client->new(base => $h->base, jar => 0, timeout => 5)->get('/login');
    if ($r->code == 200) { $ok = 1; last }
    sleep 0.2;
}
ok($ok, 'the server answers after the killing');
for my $i (0 .. 3) {
    my $d = $c[$i]->dashboard_json;
    ok($d && $d->{user} eq "k$i", "session k$i: alive and intact");
}
my $d = $bystander->dashboard_json;
is_deeply($d && $d->{notes}, ['keep me'], 'a bystander session is unchanged');
my $n = SDemo::Client->new(base => $h->base);
is($n->login('afterkill', 'password')->code, 303, 'a new login works');
is($n->get('/dashboard')->code, 200, 'and its session too');
my $st = status_json(SDemo::Client->new(base => $h->base, jar => 0));
ok($st, 'the status page works');
is($st && $st->{sessions}, 6, 'status: 6 sessions');

ok($h->stop, 'stopped (no hang)');
done_testing;
