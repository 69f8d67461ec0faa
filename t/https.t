# SessionDemoCookieName/Secure: over HTTPS (no Domain, Path /) the
# cookie is __Host- + name and Secure; the Origin check knows the scheme.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SDemo::Test;
use SDemo::Httpd;

my $h = SDemo::Httpd->new(name => 'https', mpm => 'event', tls => 1);
ok($h->start, 'httpd with TLS started') or BAIL_OUT($h->why);
like($h->base, qr{^https://}, 'an https base URL');

my $c = SDemo::Client->new(base => $h->base);
my $res = $c->get('/login');
is($res->code, 200, 'GET /login over HTTPS: 200');

$res = $c->login('admin', 'secret');
is($res->code, 303, 'login over HTTPS: 303');
ok(!parse_set_cookie($res, 'sid'), 'no plain "sid" cookie');
my $ck = parse_set_cookie($res, '__Host-sid');
ok($ck, 'Set-Cookie __Host-sid');
SKIP: {
    skip 'no __Host-sid cookie', 6 unless $ck;
    like($ck->{value}, qr/^[A-Za-z0-9_-]{43}$/, 'a 43-character ID');
    ok($ck->{attrs}{secure}, 'Secure (Auto over TLS)');
    is($ck->{attrs}{path}, '/', 'Path=/');
    ok(!exists $ck->{attrs}{domain}, 'no Domain');
    ok($ck->{attrs}{httponly}, 'HttpOnly');
    is($ck->{attrs}{samesite}, 'Lax', 'SameSite=Lax');
}
my $id = $ck ? $ck->{value} : '';

is($c->get('/dashboard')->code, 200, 'the browser sends __Host-sid back: dashboard 200');
my $raw = SDemo::Client->new(base => $h->base, jar => 0);
is($raw->get('/dashboard', Cookie => "sid=$id")->code, 303, 'the ID as plain "sid": 303');
is($raw->get('/dashboard', Cookie => "__Host-sid=$id")->code, 200, 'as __Host-sid: 200');

# The server's own origin is https://127.0.0.1:PORT.
my $port = $h->port;
my $tok = $c->session_csrf;
is($c->add_note('x', $tok, Origin => "http://127.0.0.1:$port")->code, 403,
   'Origin with the http scheme: 403');
is($c->add_note('y', $tok, Origin => "https://127.0.0.1:$port")->code, 303,
   'Origin https://127.0.0.1:PORT: 303');

$res = $c->logout;
is($res->code, 303, 'logout: 303');
my $gone = parse_set_cookie($res, '__Host-sid');
ok($gone && $gone->{value} eq '' && ($gone->{attrs}{'max-age'} // '') eq '0' && $gone->{attrs}{secure},
   'logout clears __Host-sid (Max-Age=0, Secure)');
page_headers_ok($res, 'logout over HTTPS');

ok($h->stop, 'stopped');
done_testing;
