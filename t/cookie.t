# SessionDemoCookieName, SessionDemoCookieSameSite, SessionDemoCookieSecure
# (virtual hosts sdemo_cookie and sdemo_none of t/conf/extra.conf.in).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SDemo::Test;

# sdemo_cookie: name mysid, SameSite Strict, Secure On (over plain HTTP here).
{
    my $c = client(vhost => 'sdemo_cookie');
    my $res = $c->login('cookieuser', 'password');
    is($res->code, 303, 'login: 303');
    ok(!parse_set_cookie($res, 'sid'), 'no "sid" cookie');
    my $ck = parse_set_cookie($res, 'mysid');
    ok($ck, 'SessionDemoCookieName mysid: Set-Cookie mysid');
    my $id = $ck ? $ck->{value} : '';
    like($id, qr/^[A-Za-z0-9_-]{43}$/, 'a 43-character ID');
    is($ck && $ck->{attrs}{samesite}, 'Strict', 'SameSite=Strict');
    ok($ck && $ck->{attrs}{secure}, 'SessionDemoCookieSecure On: Secure');
    ok($ck && $ck->{attrs}{httponly}, 'HttpOnly');
    is($ck && $ck->{attrs}{path}, '/', 'Path=/');

    my $raw = SDemo::Client->new(base => base_url('sdemo_cookie'), jar => 0);
    my $r = $raw->get('/dashboard', Accept => 'application/json', Cookie => "mysid=$id");
    is($r->code, 200, 'the mysid cookie opens the session');
    $r = $raw->get('/dashboard', Cookie => "sid=$id");
    is($r->code, 303, 'the same ID under the name sid does not');

    my $csrf = form_value($raw->get('/logout', Cookie => "mysid=$id"), 'csrf');
    $r = $raw->post_form('/logout', [ csrf => $csrf // '' ], Cookie => "mysid=$id");
    is($r->code, 303, 'logout: 303');
    my $gone = parse_set_cookie($r, 'mysid');
    ok($gone && $gone->{value} eq '' && ($gone->{attrs}{'max-age'} // '') eq '0',
       'logout clears mysid with Max-Age=0');
    ok($gone && $gone->{attrs}{secure} && ($gone->{attrs}{samesite} // '') eq 'Strict',
       'with the same attributes (Secure, SameSite=Strict)');
}

# sdemo_none: SameSite None forces Secure.
{
    my $res = client(vhost => 'sdemo_none')->login('noneuser', 'password');
    my $ck = parse_set_cookie($res);
    ok($ck, 'login: Set-Cookie sid');
    is($ck && $ck->{attrs}{samesite}, 'None', 'SameSite=None');
    ok($ck && $ck->{attrs}{secure}, 'SameSite=None forces Secure');
}

done_testing;
