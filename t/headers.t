# B9: every page of the module carries the security headers, has no script
# and no external asset.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SDemo::Test;

sub body_ok {
    my ($res, $what) = @_;
    my $b = $res->content;
    unlike($b, qr/<(?:link|img|iframe|object|embed)\b[^>]*(?:href|src)\s*=\s*["']?(?:https?:)?\/\//i,
           "$what: no external asset");
    unlike($b, qr/\son\w+\s*=/i, "$what: no inline event handler");
}

my $cl = client();
my @pages = (
    [ 'GET /login',                 sub { $cl->get('/login') } ],
    [ 'GET /login?logged_out=1',    sub { $cl->get('/login?logged_out=1') } ],
    [ 'POST /login refused (403)',  sub { client()->login('admin', 'nope') } ],
    [ 'POST /login no token (403)', sub { client()->post_form('/login', [ username => 'a', password => 'b' ]) } ],
    [ 'PUT /login (405)',           sub { $cl->request(PUT => '/login', content => '') } ],
    [ 'GET /dashboard anonymous (303)', sub { client()->get('/dashboard') } ],
    [ 'POST /login ok (303)',       sub { $cl->login('admin', 'secret') } ],
    [ 'GET /dashboard',             sub { $cl->get('/dashboard') } ],
    [ 'GET /dashboard JSON',        sub { $cl->get('/dashboard', Accept => 'application/json') } ],
    [ 'POST /dashboard add_note (303)', sub { $cl->add_note('hi') } ],
    [ 'POST /dashboard empty note (400)', sub { $cl->add_note('') } ],
    [ 'GET /logout',                sub { $cl->get('/logout') } ],
    [ 'GET /session-status',        sub { $cl->get('/session-status') } ],
    [ 'GET /session-status?json',   sub { $cl->get('/session-status?json') } ],
    [ 'POST /logout (303)',         sub { $cl->logout } ],
    [ 'GET /logout anonymous (303)', sub { client()->get('/logout') } ],
);

for my $p (@pages) {
    my ($what, $do) = @$p;
    my $res = $do->();
    ok($res->code < 500, "$what: answered " . $res->code);
    page_headers_ok($res, $what);
    body_ok($res, $what) if ($res->header('Content-Type') // '') =~ /html/;
}

# Pages with a cookie are never cached, even by shared caches.
my $res = client()->login('alice', 'wonderland');
unlike($res->header('Cache-Control') // '', qr/public/, 'login response: not public');

done_testing;
