# B6: logging out.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SDemo::Test;

{
    my $res = client()->get('/logout');
    is($res->code, 303, 'GET /logout anonymous: 303');
    like(location($res) // '', qr{^/login}, 'GET /logout anonymous: to the login page');
}

my $c = client();
is($c->login('leaver', 'password')->code, 303, 'login');
my $sid = $c->sid;

# GET never logs out.
my $res = $c->get('/logout');
is($res->code, 200, 'GET /logout with a session: 200');
my ($form) = grep { $_->action->path eq '/logout' } forms($res);
ok($form && uc $form->method eq 'POST', 'GET /logout: a POST form to /logout');
my $csrf = $form ? $form->value('csrf') : undef;
ok($csrf, 'with the csrf token');
is($c->get('/dashboard')->code, 200, 'still logged in after GET /logout');

# Wrong or missing token: 403, still logged in.
for my $t (['x' x 43, 'a wrong token'], [undef, 'no token']) {
    my ($tok, $what) = @$t;
    my $r = $c->post_form('/logout', [ defined $tok ? (csrf => $tok) : () ]);
    is($r->code, 403, "POST /logout with $what: 403");
    ok(!defined $r->header('Set-Cookie'), "POST /logout with $what: the cookie stays");
    is($c->get('/dashboard')->code, 200, "after POST /logout with $what: still logged in");
}

# The real thing.
$res = $c->post_form('/logout', [ csrf => $csrf ]);
is($res->code, 303, 'POST /logout with the token: 303');
is(location($res), '/login?logged_out=1', 'to /login?logged_out=1');
my $ck = parse_set_cookie($res);
ok($ck, 'Set-Cookie sid');
SKIP: {
    skip 'no cookie', 6 unless $ck;
    is($ck->{value}, '', 'the cookie is emptied');
    is($ck->{attrs}{'max-age'}, '0', 'Max-Age=0');
    is($ck->{attrs}{path}, '/', 'Path=/');
    ok($ck->{attrs}{httponly}, 'HttpOnly');
    is($ck->{attrs}{samesite}, 'Lax', 'SameSite=Lax');
    ok(!exists $ck->{attrs}{domain} && !exists $ck->{attrs}{secure}, 'no Domain, no Secure');
}
ok(!$c->sid, 'the browser dropped the cookie');

$res = $c->get('/login?logged_out=1');
like($res->content, qr/You have been logged out\./, 'the login page says so');

# The old ID is dead on the server, not just in the browser.
my $old = client(jar => 0);
$res = $old->get('/dashboard', Cookie => "sid=$sid");
is($res->code, 303, 'the old ID: dashboard 303');
$res = $old->post_form('/logout', [ csrf => $csrf ], Cookie => "sid=$sid");
isnt($res->code, 200, 'the old ID and token cannot log out again (no 200)');
isnt($res->code, 500, '... and no 500');

# Logging in again gives a new session.
is($c->login('leaver', 'password')->code, 303, 'login again');
ok($c->sid && $c->sid ne $sid, 'a new ID');
my $d = $c->dashboard_json;
is($d && $d->{visits}, 1, 'a fresh session (visits 1)');
is($old->get('/dashboard', Cookie => "sid=$sid")->code, 303, 'the old ID stays dead');

# Logging out one session leaves the user's other sessions alone.
my $c2 = client();
$c2->login('leaver', 'password');
is($c->logout->code, 303, 'log out the first session');
is($c2->get('/dashboard')->code, 200, "the user's other session is still alive");

done_testing;
