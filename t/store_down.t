# The store cannot answer: every page that needs a session answers 503
# with Retry-After and a page that says so, the cookie is left alone (an
# outage is never a logout), one log line says when the outage began and
# one when it ended, and afterwards the same session carries on.
#
# The store here is SessionDemoStore fault:FILE: shared memory that answers
# "unavailable" to every operation while FILE exists.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SDemo::Test;
use SDemo::Httpd;

my $flag = t_logs() . '/store-down.flag';
unlink $flag;
my $h = SDemo::Httpd->new(name => 'store_down', mpm => 'event',
                          config => "SessionDemoStore \"fault:$flag\"\n");
ok($h->start, 'httpd with the fault-injecting store') or BAIL_OUT($h->why);
expect_log(qr/SDEMO00060: the session store \(fault\) cannot be reached/,
           'the outage is switched on on purpose', 'store_down');

my $c = SDemo::Client->new(base => $h->base);
$c->login_ok('alice', 'wonderland');
my $sid = $c->sid;
my $d = $c->dashboard_json;
is($d && $d->{visits}, 1, 'before the outage: logged in, one visit');

# A second client with a login form fetched before the outage.
my $late = SDemo::Client->new(base => $h->base);
my ($csrf) = $late->login_csrf;

open my $fh, '>', $flag or die "create $flag: $!";
close $fh;

sub down_ok {
    my ($res, $what) = @_;
    is($res->code, 503, "$what: 503");
    my $ra = $res->header('Retry-After') // '';
    like($ra, qr/^\d+$/, "$what: Retry-After $ra");
    ok(!defined $res->header('Set-Cookie') ||
       !grep({ /\bsid=/ } $res->header('Set-Cookie')),
       "$what: the session cookie is left alone");
}

my $res = $c->get('/dashboard');
down_ok($res, 'dashboard');
like($res->content, qr/cannot be reached right now\. You have not been logged out/,
     'dashboard: the page says what happened and that nobody was logged out');
down_ok($c->get('/dashboard', Accept => 'application/json'), 'dashboard (JSON)');
$res = $c->get('/private/');
down_ok($res, 'guarded page');
like($res->content, qr/You have not been logged out/, 'guarded page: the page says so too');
my $lo = $c->get('/logout');
down_ok($lo, 'logout page (GET)');
down_ok($c->post_form('/dashboard', [ csrf => 'x' x 43, action => 'add_note', note => 'n' ]),
        'dashboard POST');
down_ok($c->post_form('/logout', [ csrf => 'x' x 43 ]), 'logout POST');
down_ok($late->post_form('/login', [ username => 'admin', password => 'secret', csrf => $csrf ]),
        'login POST');
is($c->sid, $sid, 'the client still holds the same session cookie');
is(client(jar => 0)->get('/')->code // 0, 200, 'the main test server is not affected');
is(SDemo::Client->new(base => $h->base, jar => 0)->get('/index.html')->code, 200,
   'static pages of this server keep working');

unlink $flag;
$d = $c->dashboard_json;
ok($d, 'after the outage: the same session works again');
is($d && $d->{user}, 'alice', '... as alice');
is($d && $d->{visits}, 2, '... with its visits intact (the refused requests counted none)');

# Each process says when the store answers it again, at its first store
# operation after the outage: new connections (each may reach another
# process) until one of the processes that logged the outage has said so.
my ($log, @down, @up);
for (1 .. 40) {
    SDemo::Client->new(base => $h->base, jar => 0)
        ->get('/dashboard', Cookie => 'sid=' . $c->sid, Connection => 'close');
    $log = $h->tail_error_log(400);
    @up = $log =~ /SDEMO00061:/g;
    last if @up;
}
@down = $log =~ /SDEMO00060:/g;
cmp_ok(scalar @down, '>=', 1, 'the outage is logged');
cmp_ok(scalar @down, '<=', 4, 'once per process, not once per request (' . scalar(@down) . ' lines for 8 requests)');
cmp_ok(scalar @up, '>=', 1, 'and its end');

ok($h->stop, 'stopped');
done_testing;
