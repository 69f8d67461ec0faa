# "Your sessions" (ASVS 4.0.3 3.3.4, 5.0 7.5.2): the dashboard lists the
# user's live sessions with their device and times, marks this one, and can
# end any other; SessionDemoMaxSessionsPerUser caps how many one user has
# (ASVS 5.0 7.1.2), ending that user's least recently used session and
# never another user's.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep);
use SDemo::Test;
use SDemo::Httpd;

my $firefox = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
my $iphone = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 '
           . '(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1';

my $a = client(agent => $firefox);
my $b = client(agent => $iphone);
$a->login_ok('lister', 'password');
$b->login_ok('lister', 'password');
my $other = client();
$other->login_ok('someoneelse', 'password');

my $res = $a->get('/dashboard');
is($res->code, 200, 'dashboard: 200');
my $html = $res->content;
like($html, qr/<h2 id="sessions">Your sessions<\/h2>/, 'a "Your sessions" section');
like($html, qr/Firefox on Linux <strong>\(this device\)<\/strong>/, 'this session: Firefox on Linux, marked "this device"');
like($html, qr/Safari on iPhone/, 'the other session: Safari on iPhone');
unlike($html, qr/someoneelse/, "no one else's session is listed");
my @handles = $html =~ /name="session" value="([0-9a-f]{32})"/g;
is(scalar @handles, 1, 'one "end this session" button (not for this session)');
like($html, qr/Log out everywhere/, 'beside "log out everywhere"');
like($html, qr/<code>sid<\/code>/, 'the page names the cookie');
like($html, qr/idle timeout, unless you come back before/, 'and says when and why the session expires');
my $sid = $a->sid;
unlike($html, qr/\Q$sid\E/, 'the session ID itself appears nowhere in the page');

# Ending another session needs the token like every POST.
$res = $a->post_form('/dashboard', [ action => 'end_session', session => $handles[0], csrf => 'x' x 43 ]);
is($res->code, 403, 'end_session with a wrong token: 403');
is($b->get('/dashboard')->code, 200, 'nothing ended');

# Someone else cannot end it, even knowing the handle.
$res = $other->post_form('/dashboard', [ action => 'end_session', session => $handles[0],
                                         csrf => $other->session_csrf ]);
is($res->code, 404, "another user posting the handle: 404");
is($b->get('/dashboard')->code, 200, '... and the session lives on');

$res = $a->post_form('/dashboard', [ action => 'end_session', session => $handles[0],
                                     csrf => $a->session_csrf ]);
is($res->code, 303, 'end_session: 303 back to the dashboard');
is($b->get('/dashboard')->code, 303, 'the iPhone session has ended');
is($a->get('/dashboard')->code, 200, 'this one goes on');
unlike($a->get('/dashboard')->content, qr/Safari on iPhone/, 'and the list no longer shows it');

# A form posted after its session ended elsewhere says the note was lost.
my $c1 = client();
my $c2 = client();
$c1->login_ok('twice', 'password');
$c2->login_ok('twice', 'password');
my $stale = $c2->session_csrf;
$c1->post_form('/dashboard', [ action => 'logout_all', csrf => $c1->session_csrf ]);
$res = $c2->post_form('/dashboard', [ action => 'add_note', note => 'lost', csrf => $stale ]);
is($res->code, 303, 'a note posted to a session that had ended: 303');
like(location($res) // '', qr{^/login\?ended=1}, '... to the login page');
like($c2->get(location($res))->content, qr/Your session had ended, so what you sent was not saved/,
     '... which says the note was not saved');

# The per-user cap, on a small store: one account logging in over and over
# must not push anyone else out.
my $h = SDemo::Httpd->new(name => 'per_user', mpm => 'event',
                          config => "SessionDemoCapacity 20\nSessionDemoMaxSessionsPerUser 3\n");
ok($h->start, 'httpd with capacity 20, at most 3 sessions per user') or BAIL_OUT($h->why);
my $victim = SDemo::Client->new(base => $h->base);
$victim->login_ok('victim', 'password');
my @mine = map { SDemo::Client->new(base => $h->base) } 1 .. 25;
# The store orders sessions by last use to within 2 s: the last three
# logins come 2.1 s apart, so they are the three most recent beyond doubt.
$_->login_ok('pusher', 'password') for @mine[0 .. 21];
for (@mine[22 .. 24]) { sleep 2.1; $_->login_ok('pusher', 'password') }
is($victim->get('/dashboard')->code, 200, "25 logins of one account did not evict another user's session");
my @alive = grep { $_->get('/dashboard')->code == 200 } @mine;
is(scalar @alive, 3, 'the account keeps its 3 most recent sessions');
ok($mine[-1]->get('/dashboard')->code == 200 && $mine[-3]->get('/dashboard')->code == 200,
   'the newest logins are the ones kept');
like($h->tail_error_log(300), qr/SDEMO00034: user "pusher" has more than 3 sessions/,
     'logged: sessions ended by the per-user cap');
ok($h->stop, 'stopped');

done_testing;
