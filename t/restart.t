# B11: sessions survive a graceful restart, a restart, and (with
# SessionDemoSnapshot) a stop and start.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SDemo::Test;
use SDemo::Httpd;

my $h = SDemo::Httpd->new(name => 'restart', mpm => 'event');
my $snap = $h->dir . '/sessions.snapshot';
$h->{config} = "SessionDemoSnapshot \"$snap\"\n";
ok($h->start, 'httpd with SessionDemoSnapshot started') or BAIL_OUT($h->why);

my $c = SDemo::Client->new(base => $h->base);
$c->login_ok('alice', 'wonderland');
my $sid = $c->sid;
$c->add_note('before restarts');
my $d = $c->dashboard_json;
is($d && $d->{visits}, 1, 'visits 1');

sub view {
    my $cl = SDemo::Client->new(base => $h->base, jar => 0);
    my $r = $cl->get('/dashboard', Accept => 'application/json', Cookie => "sid=$sid");
    return $r->code == 200 ? SDemo::Test::decode_json_ok($r) : undef;
}

my $v = 1;
for my $how (qw(graceful restart)) {
    ok($h->$how, "apache2 -k $how") or diag($h->why);
    $d = view();
    ok($d, "after -k $how: the session is alive");
    is($d && $d->{visits}, ++$v, "after -k $how: visits continue ($v)");
    is_deeply($d && $d->{notes}, ['before restarts'], "after -k $how: notes kept");
    is($d && $d->{user}, 'alice', "after -k $how: same user");
}
my $st = status_json(SDemo::Client->new(base => $h->base, jar => 0));
is($st && $st->{sessions}, 1, 'status after restarts: 1 session');

# A new login after a restart works and is distinct.
my $c2 = SDemo::Client->new(base => $h->base);
$c2->login_ok('admin', 'secret');
ok($c2->sid ne $sid, 'a new login after restarts: another ID');

ok($h->stop, 'stop');
ok(-s $snap, 'the snapshot was written at stop');
ok($h->start, 'start again (new port, same snapshot)') or BAIL_OUT($h->why);
$d = view();
ok($d, 'after stop and start: the session is alive (snapshot)');
is($d && $d->{visits}, ++$v, 'visits continue');
is_deeply($d && $d->{notes}, ['before restarts'], 'notes kept');
$d = do {
    my $r = SDemo::Client->new(base => $h->base, jar => 0)
        ->get('/dashboard', Accept => 'application/json', Cookie => 'sid=' . $c2->sid);
    $r->code;
};
is($d, 200, "the other session too");
ok($h->stop, 'stopped');

# Without a snapshot, a stop ends every session (nothing written anywhere).
my $n = SDemo::Httpd->new(name => 'restart_nosnap', mpm => 'event');
ok($n->start, 'httpd without snapshot') or BAIL_OUT($n->why);
my $c3 = SDemo::Client->new(base => $n->base);
$c3->login_ok('admin', 'secret');
my $sid3 = $c3->sid;
ok($n->graceful, 'graceful');
is(SDemo::Client->new(base => $n->base, jar => 0)->get('/dashboard', Cookie => "sid=$sid3")->code,
   200, 'alive after graceful');
ok($n->stop && $n->start, 'stop and start');
is(SDemo::Client->new(base => $n->base, jar => 0)->get('/dashboard', Cookie => "sid=$sid3")->code,
   303, 'without a snapshot, gone after stop and start');
ok($n->stop, 'stopped');

done_testing;
