# B8: idle and absolute timeouts, enforced by the server. Two virtual hosts
# of t/conf/extra.conf.in: sdemo_idle (SessionDemoIdleTimeout 2) and
# sdemo_maxage (SessionDemoMaxAge 3, idle timeout long). The one test of
# the suite that sleeps (about 4 s).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(time sleep);
use SDemo::Test;

my $idle = client(vhost => 'sdemo_idle');
my $age  = client(vhost => 'sdemo_maxage');
my $st0 = status_json();

my $t0 = time;
# A guarded area stricter than the login page (/strict: idle 2 s, while
# the main host allows 1800 s): its own limit applies to its requests.
my $strict = client();
$strict->login_ok('strictuser', 'password');
is($strict->get('/strict/')->code, 200, '/strict/ right after login: 200');
$idle->login_ok('idler', 'password');
$age->login_ok('ager', 'password');
my $idle_sid = $idle->sid;
my $age_sid = $age->sid;

my $d = $idle->dashboard_json;
ok($d, 'idle host: logged in');
ok($d && $d->{expires} <= $d->{last_access} + 2, 'idle host: expires = last access + 2');
$d = $age->dashboard_json;
ok($d, 'max-age host: logged in');
ok($d && $d->{expires} <= $d->{created} + 3, 'max-age host: expires = created + 3');

# The cookie carries no expiry: the server decides.
{
    my $r = client(vhost => 'sdemo_idle')->login('idler2', 'password');
    my $ck = parse_set_cookie($r);
    ok($ck && !exists $ck->{attrs}{expires} && !exists $ck->{attrs}{'max-age'},
       'the cookie has no Expires or Max-Age');
}

sleep(1.5 - (time - $t0)) if time - $t0 < 1.5;
$d = $age->dashboard_json;
ok($d, 'max-age host after 1.5 s of activity: still logged in');

sleep(4.2 - (time - $t0)) if time - $t0 < 4.2;

my $res = $strict->get('/strict/');
is($res->code, 303, '/strict/ (SessionDemoIdleTimeout 2 there) after 4 s idle: 303');
is($strict->get('/strict/')->code, 303, '... and stays closed: the refused request did not count as a use');
is($strict->get('/dashboard')->code, 303, '... the session has ended');

$res = $idle->get('/dashboard');
is($res->code, 303, 'idle host after 4 s unused (timeout 2 s): 303');
like(location($res) // '', qr{^/login}, '... to the login page');
$res = $age->get('/dashboard');
is($res->code, 303, 'max-age host after 4 s (max age 3 s, used 2.7 s ago): 303');

# The ended sessions are gone for good, whichever host is asked.
for my $sid ($idle_sid, $age_sid) {
    is(client(jar => 0)->get('/dashboard', Cookie => "sid=$sid")->code, 303,
       'an ended ID is dead on the main host too');
}

my $st1 = status_json();
cmp_ok($st1->{expirations}, '>=', $st0->{expirations} + 2, 'expirations counted');

# Logging in again works.
$idle->login_ok('idler', 'password');
is($idle->get('/dashboard')->code, 200, 'a new login after expiry works');

done_testing;
