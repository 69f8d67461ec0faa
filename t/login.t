# B3, B4: the login page and logging in.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes ();
use Apache::Test ();
use SDemo::Test;

my $c = client();

# ---- the form ------------------------------------------------------------
{
    my $res = $c->get('/login');
    is($res->code, 200, 'GET /login: 200');
    like($res->header('Content-Type') // '', qr{^text/html}, 'GET /login: text/html');
    my ($f) = grep { $_->find_input('username') } forms($res);
    ok($f, 'GET /login: a form with a username field');
  SKIP: {
        skip 'no login form', 6 unless $f;
        is(uc $f->method, 'POST', 'the form posts');
        is($f->action->path, '/login', 'the form posts to /login');
        my $pw = $f->find_input('password');
        ok($pw && $pw->type eq 'password', 'a password field');
        my $csrf = $f->find_input('csrf');
        ok($csrf && $csrf->type eq 'hidden', 'a hidden csrf field');
        ok($csrf && length($csrf->value // '') >= 16, 'the csrf token is not empty');
        ok(!$f->find_input('return'), 'no return field without ?return=');
    }
    unlike($res->content, qr/You have been logged out/, 'no logged-out notice by default');
    ok(no_set_cookie($res), 'GET /login sets no session cookie');
}

{
    my $res = $c->get('/login?return=%2Fprivate%2F');
    is(form_value($res, 'return'), '/private/', 'GET /login?return=/private/: hidden return field');
    for my $bad ('//evil.example/', '/\\evil.example/', 'http://evil.example/',
                 'private') {
        my $r = $c->get('/login?return=' . url_escape($bad));
        is($r->code, 200, "GET /login?return=$bad: 200");
        my $v = form_value($r, 'return');
        ok(!defined $v || $v eq '' || $v eq '/dashboard',
           "GET /login?return=$bad: no foreign return target in the form")
            or diag("return field: $v");
    }
}

{
    my $res = $c->get('/login?logged_out=1');
    is($res->code, 200, 'GET /login?logged_out=1: 200');
    like($res->content, qr/You have been logged out\./, 'says "You have been logged out."');
    ok(form_value($res, 'csrf'), 'and shows the form again');
}

{
    my $res = $c->head('/login');
    is($res->code, 200, 'HEAD /login: 200');
    is($res->content, '', 'HEAD /login: no body');
}

for my $m (qw(PUT DELETE PATCH)) {
    my $res = $c->request($m => '/login', content => '');
    is($res->code, 405, "$m /login: 405");
    my $allow = $res->header('Allow') // '';
    ok($allow =~ /\bGET\b/ && $allow =~ /\bPOST\b/, "$m /login: Allow lists GET and POST ($allow)");
}

# ---- logging in ------------------------------------------------------------
my $ID_RE = qr/^[A-Za-z0-9_-]{43}$/;

sub cookie_ok {
    my ($res, $what) = @_;
    my $ck = parse_set_cookie($res);
    ok($ck, "$what: Set-Cookie sid") or return;
    like($ck->{value}, $ID_RE, "$what: the ID is 43 base64url characters");
    is($ck->{attrs}{path}, '/', "$what: Path=/");
    ok($ck->{attrs}{httponly}, "$what: HttpOnly");
    is($ck->{attrs}{samesite}, 'Lax', "$what: SameSite=Lax");
    ok(!exists $ck->{attrs}{$_}, "$what: no $_") for qw(secure domain expires max-age);
    return $ck->{value};
}

my $admin = client();
my $res = $admin->login('admin', 'secret');
is($res->code, 303, 'admin/secret: 303');
is(location($res), '/dashboard', 'admin/secret: Location /dashboard');
my $id1 = cookie_ok($res, 'admin/secret');

{
    my ($d, $r) = $admin->dashboard_json;
    is($r->code, 200, 'logged in: dashboard 200');
    is($d && $d->{user}, 'admin', 'dashboard user admin');
    is($d && $d->{role}, 'admins', 'role of admin: admins (first group listing them)');
}

# A new login ends the session the client had and issues a new ID.
$res = $admin->login('admin', 'secret');
is($res->code, 303, 'second login: 303');
my $id2 = cookie_ok($res, 'second login');
ok(defined $id1 && defined $id2 && $id1 ne $id2, 'a new ID at each login');
{
    my $old = client(jar => 0);
    my $r = $old->get('/dashboard', Cookie => "sid=$id1");
    is($r->code, 303, 'the ID from before the second login is dead: dashboard 303');
    my $new = client(jar => 0);
    $r = $new->get('/dashboard', Accept => 'application/json', Cookie => "sid=$id2");
    is($r->code, 200, 'the new ID works');
}

# Another client logging in as the same user gets its own session.
{
    my $other = client();
    $other->login('admin', 'secret');
    my $id3 = $other->sid;
    ok($id3 && $id3 ne $id2, 'another client: another ID');
    is($admin->get('/dashboard')->code, 200, 'and the first client stays logged in');
}

{
    my $alice = client();
    my $r = $alice->login('alice', 'wonderland');
    is($r->code, 303, 'alice/wonderland: 303');
    my $d = $alice->dashboard_json;
    is($d && $d->{role}, 'staff', 'role of alice: staff');
}

# Guest mode: any valid username with SessionDemoGuestPassword.
{
    my $g = client();
    my $r = $g->login('guest42', 'password');
    is($r->code, 303, 'guest42/password (guest mode): 303');
    my $d = $g->dashboard_json;
    is($d && $d->{user}, 'guest42', 'guest user name');
    is($d && $d->{role}, 'guest', 'guest role: guest (fixed, never from the group file)');
}

# ---- return targets ------------------------------------------------------------
for my $t (['/private/', '/private/'],
           ['/dashboard?x=1', '/dashboard?x=1'],
           ['//evil.example/x', '/dashboard'],
           ['/\\evil.example/x', '/dashboard'],
           ['http://evil.example/', '/dashboard'],
           ['javascript:alert(1)', '/dashboard']) {
    my ($ret, $want) = @$t;
    my $r = client()->login('alice', 'wonderland', return => $ret);
    is($r->code, 303, "login with return=$ret: 303");
    is(location($r), $want, "login with return=$ret: Location $want");
}

# ---- refused logins --------------------------------------------------------------
my $long = 'a' x 72;
for my $t (['bob', 'whatever', 'unknown user'],
           ['admin', 'wrong', 'wrong password'],
           ['admin', '', 'empty password'],
           ['', 'secret', 'empty username'],
           ['md5user', 'md5secret', 'an $apr1$ (MD5) entry'],
           ['lowcost', 'lowsecret', 'a bcrypt entry of cost 5'],
           ['longpw', $long . 'b', 'a 73-byte password (not truncated to 72)'],
           ['alice', 'password' . ('x' x 70), 'a password over 72 bytes'],
           ['bad user', 'password', 'a username with a space (guest mode)'],
           ['bad:user', 'password', 'a username with a colon (guest mode)']) {
    my ($u, $p, $what) = @$t;
    my $r = client()->login($u, $p);
    is($r->code, 403, "$what: 403");
    like($r->content, qr/Invalid username or password\./, "$what: the generic message");
    ok(form_value($r, 'csrf') && grep({ $_->find_input('username') } forms($r)),
       "$what: the form again");
    ok(!defined $r->header('Set-Cookie'), "$what: no Set-Cookie");
}

{
    my $r = client()->login('longpw', $long);
    is($r->code, 303, 'a password of exactly 72 bytes works');
}

# The same answer for an unknown user and a wrong password.
{
    my $norm = sub {
        my ($r, $user) = @_;
        my $b = $r->content;
        $b =~ s/\Q$user\E/USER/g;
        $b =~ s/(name="csrf"[^>]*value=")[^"]*/$1TOKEN/g;
        $b =~ s/(value=")[^"]*("[^>]*name="csrf")/$1TOKEN$2/g;
        return $b;
    };
    my $ra = client()->login("zorro", "nothing");
    my $rb = client()->login("alice", "nothing");
    is($norm->($ra, "zorro"), $norm->($rb, "alice"),
       'unknown user and wrong password: the same page');

    # ... in about the same time (a dummy bcrypt for unknown users)
    my $time = sub {
        my ($u) = @_;
        my @t;
        for (1 .. 3) {
            my $cl = client();
            my ($csrf) = $cl->login_csrf;
            my $t0 = Time::HiRes::time();
            $cl->post_form('/login', [ username => $u, password => 'nothing', csrf => $csrf ]);
            push @t, Time::HiRes::time() - $t0;
        }
        return (sort { $a <=> $b } @t)[1];
    };
    my $known = $time->('alice');
    my $unknown = $time->('nosuchuser');
    my $ratio = $known > 0 ? $unknown / $known : 1;
    ok($ratio > 0.3 && $ratio < 3,
       sprintf('about the same time: unknown user %.1f ms, wrong password %.1f ms',
               1000 * $unknown, 1000 * $known));
}

# ---- the POST itself ---------------------------------------------------------------
{
    my $cl = client();
    my ($csrf) = $cl->login_csrf;
    my $body = SDemo::Client::form_encode(
        username => 'alice', password => 'wonderland', csrf => $csrf);
    my $r = $cl->post_raw('/login', 'application/x-www-form-urlencoded; charset=UTF-8', $body);
    is($r->code, 303, 'Content-Type with charset=UTF-8 parameter: accepted');

    ($csrf) = $cl->login_csrf;
    $body = SDemo::Client::form_encode(username => 'alice', password => 'wonderland', csrf => $csrf);
    for my $type ('text/plain', 'multipart/form-data; boundary=x', 'application/json', undef) {
        my $r = $cl->post_raw('/login', $type, $body);
        is($r->code, 415, 'POST /login with Content-Type ' . ($type // '(none)') . ': 415');
    }

    ($csrf) = $cl->login_csrf;
    $r = $cl->post_raw('/login', 'application/x-www-form-urlencoded',
                       "username=alice&password=wonderland&csrf=$csrf&pad=" . ('x' x 9000));
    is($r->code, 413, 'POST /login with a body over 8 KiB: 413');

    ($csrf) = $cl->login_csrf;
    $r = $cl->post_raw('/login', 'application/x-www-form-urlencoded',
                       "username=ali%zzce&password=wonderland&csrf=$csrf");
    is($r->code, 400, 'POST /login with a malformed %-escape: 400');
    ok(!defined $r->header('Set-Cookie'), '... and no cookie');
}

done_testing;
