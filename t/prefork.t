# B11: one store for all processes. A second httpd with the prefork MPM and
# MaxConnectionsPerChild 1: every connection is a fresh process, so a
# session must be seen by processes that did not create it, and visits
# count exactly across processes.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use POSIX ();
use SDemo::Test;
use SDemo::Httpd;

my $h = SDemo::Httpd->new(name => 'prefork', mpm => 'prefork');
ok($h->start, 'prefork httpd started') or BAIL_OUT('cannot start httpd: ' . $h->why);
my @kids = $h->children;
cmp_ok(scalar @kids, '>=', 2, 'several child processes (' . scalar(@kids) . ')');

my $c = SDemo::Client->new(base => $h->base);
my $res = $c->login('admin', 'secret');
is($res->code, 303, 'login on the prefork server');
my $sid = $c->sid;
ok($sid, 'got an ID');

my @visits;
for (1 .. 15) {
    my $d = $c->dashboard_json;
    push @visits, $d ? $d->{visits} : -1;
}
is_deeply(\@visits, [ 1 .. 15 ], '15 GETs, each on a fresh process: visits 1..15');
my @pids = $h->served_by(qr{^GET /dashboard});
cmp_ok(scalar @pids, '>=', 10, 'they were served by ' . scalar(@pids) . ' different processes');
my ($login_pid) = $h->served_by(qr{^POST /login});
ok($login_pid && !grep({ $_ == $login_pid } @pids),
   'the process that made the session served none of the views');

# In parallel, across processes.
my $N = 5;
my $EACH = 8;
my @k;
for my $i (1 .. $N) {
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        my $cl = SDemo::Client->new(base => $h->base, jar => 0);
        my $bad = 0;
        for (1 .. $EACH) {
            my $r = $cl->get('/dashboard', Accept => 'application/json', Cookie => "sid=$sid");
            $bad++ unless $r->code == 200;
        }
        POSIX::_exit($bad);
    }
    push @k, $pid;
}
my $bad = 0;
for (@k) { waitpid $_, 0; $bad += $? >> 8 }
is($bad, 0, "$N x $EACH parallel GETs: all 200");
my $d = $c->dashboard_json;
is($d && $d->{visits}, 15 + $N * $EACH + 1, 'visits counted exactly across processes');

# Notes written by one process are read by another.
$res = $c->add_note('written in one process');
is($res->code, 303, 'add a note');
$d = $c->dashboard_json;
is_deeply($d && $d->{notes}, ['written in one process'], 'another process reads it');

# Status is store-wide.
my $st = SDemo::Test::status_json(SDemo::Client->new(base => $h->base, jar => 0));
is($st && $st->{sessions}, 1, 'status (yet another process): 1 session');
is($st && $st->{logins_ok}, 1, 'status: 1 login');

# A logout in one process ends the session in all.
$res = $c->logout;
is($res->code, 303, 'logout');
my $old = SDemo::Client->new(base => $h->base, jar => 0);
is($old->get('/dashboard', Cookie => "sid=$sid")->code, 303, 'the ID is dead in the next process');

ok($h->stop, 'stopped');
done_testing;
