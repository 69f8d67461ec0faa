# B14: guarding other content with AuthType session-demo; SessionDemoEnv.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SDemo::Test;

my $anon = client();
my $res = $anon->get('/private/');
is($res->code, 303, 'anonymous /private/: 303');
like(location($res) // '', qr{^/login\?(?:.*&)?return=%2Fprivate%2F(?:&|$)}i,
     'to /login?return=%2Fprivate%2F');
ok(!defined $res->header('Set-Cookie'), 'no cookie for anonymous');
is($anon->get('/admin-only/')->code, 303, 'anonymous /admin-only/: 303');
is($anon->get('/env/')->code, 303, 'anonymous /env/: 303');

# The login page carries the return target through.
my $c = client();
my ($csrf, $form) = $c->login_csrf('return=%2Fprivate%2F');
is(form_value($form, 'return'), '/private/', 'the form keeps return=/private/');
$res = $c->post_form('/login', [ username => 'alice', password => 'wonderland',
                                 csrf => $csrf, return => '/private/' ]);
is($res->code, 303, 'login: 303');
is(location($res), '/private/', 'back to /private/');

$res = $c->get('/private/', 'X-Session-Demo-User' => 'mallory');
is($res->code, 200, '/private/ logged in: 200');
like($res->content, qr/REMOTE_USER=\[alice\]/, 'REMOTE_USER is the session user');
like($res->content, qr/AUTH_TYPE=\[session-demo\]/, 'AUTH_TYPE session-demo');
like($res->content, qr/SESSION_DEMO_USER=\[\(none\)\]/, 'SessionDemoEnv Off: no SESSION_DEMO_USER');
like($res->content, qr/HTTP_X_SESSION_DEMO_USER=\[\(none\)\]/,
     "the client's X-Session-Demo-User is removed");

expect_log(q{\[authz_core:error\] .*AH01631: user (?:alice|visitor|admin): authorization failure for "/(?:admin|bob)-only/"},
           'users refused by Require on /admin-only/ and /bob-only/');
$res = $c->get('/admin-only/');
is($res->code, 403, 'alice (staff) on /admin-only/: 403 without AuthzSendForbiddenOnFailure');
ok(!defined $res->header('WWW-Authenticate'), '... and no WWW-Authenticate (there are no credentials to send)');
like($res->content, qr/You are logged in as alice/, "... with the module's own page");
is($res->header('X-Frame-Options'), 'DENY', "... and the module's security headers");
$res = $c->get('/bob-only/');
is($res->code, 403, 'alice on a Require user bob area: 403, never 401');

# Our identity headers under other spellings: '_' for '-', any case. Many
# application servers map them to the same variable as ours.
$res = $c->get('/env/', 'X_Session_Demo_User' => 'admin', 'X-Session_Demo-User' => 'admin',
               'x_session_demo_role' => 'admins');
is($res->code, 200, '/env/ with look-alike headers: 200');
for my $n (1 .. 3) {
    my $v = $res->header("X-Echo-$n") // '';
    unlike($v, qr/admin/, "look-alike header $n does not reach the request ($v)");
}
like($res->content, qr/HTTP_X_SESSION_DEMO_USER=\[alice\]/, 'the real header still says alice');

$res = $c->get('/env/', 'X-Session-Demo-User' => 'mallory', 'X-Session-Demo-Role' => 'admins');
is($res->code, 200, '/env/ (SessionDemoEnv On): 200');
like($res->content, qr/SESSION_DEMO_USER=\[alice\]/, 'SESSION_DEMO_USER=alice');
like($res->content, qr/SESSION_DEMO_ROLE=\[staff\]/, 'SESSION_DEMO_ROLE=staff');
like($res->content, qr/HTTP_X_SESSION_DEMO_USER=\[alice\]/, 'X-Session-Demo-User: alice (not the client\'s)');
like($res->content, qr/HTTP_X_SESSION_DEMO_ROLE=\[staff\]/, 'X-Session-Demo-Role: staff (not the client\'s)');
unlike($res->content, qr/mallory/, 'nothing of the forged headers');

# Unguarded content never sees forged headers either.
$res = client()->get('/public/', 'X-Session-Demo-User' => 'mallory', 'X-Session-Demo-Role' => 'admins');
is($res->code, 200, '/public/: 200');
unlike($res->content, qr/mallory|admins/, "unguarded: the client's X-Session-Demo-* headers are removed");

my $adm = client();
$adm->login_ok('admin', 'secret');
$res = $adm->get('/admin-only/');
is($res->code, 200, 'admin on /admin-only/: 200');
like($res->content, qr/admins-only-content/, 'the content');
like($adm->get('/private/')->content, qr/REMOTE_USER=\[admin\]/, 'admin on /private/');

# Guest users are valid users.
my $g = client();
$g->login_ok('visitor', 'password');
like($g->get('/private/')->content, qr/REMOTE_USER=\[visitor\]/, 'a guest user on /private/');
is($g->get('/admin-only/')->code, 403, 'a guest user on /admin-only/: 403');

# After logout the area is closed again.
$c->logout;
is($c->get('/private/')->code, 303, 'after logout: /private/ 303');

done_testing;
