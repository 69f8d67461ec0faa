# SessionDemoLoginURL, SessionDemoDashboardURL, SessionDemoLogoutURL: the
# links and redirects follow the pages when they live elsewhere (virtual
# host sdemo_urls of t/conf/extra.conf.in: /auth/signin, /auth/home,
# /auth/signout).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SDemo::Test;

my $c = client(vhost => 'sdemo_urls');

my $res = $c->get('/auth/home');
is($res->code, 303, 'anonymous dashboard: 303');
like(location($res) // '', qr{^/auth/signin\?(?:.*&)?return=%2Fauth%2Fhome(?:&|$)}i,
     'to /auth/signin?return=%2Fauth%2Fhome');

$res = $c->get('/private/');
like(location($res) // '', qr{^/auth/signin\?(?:.*&)?return=%2Fprivate%2F}i,
     'a guarded page sends to /auth/signin too');

$res = $c->get('/auth/signin');
is($res->code, 200, 'the login page at /auth/signin');
my ($f) = grep { $_->find_input('username') } forms($res);
is($f && $f->action->path, '/auth/signin', 'the form posts to /auth/signin');
my $csrf = form_value($res, 'csrf');
$res = $c->post_form('/auth/signin', [ username => 'alice', password => 'wonderland', csrf => $csrf ]);
is($res->code, 303, 'login: 303');
is(location($res), '/auth/home', 'to the dashboard at /auth/home');

$res = $c->get('/auth/home');
is($res->code, 200, 'the dashboard at /auth/home');
my %act = map { $_->action->path => 1 } forms($res);
ok($act{'/auth/home'}, 'the note forms post to /auth/home');
ok($act{'/auth/signout'}, 'the logout form posts to /auth/signout');

$csrf = form_value($res, 'csrf');
$res = $c->post_form('/auth/home', [ csrf => $csrf, action => 'add_note', note => 'n' ]);
is(location($res), '/auth/home', 'a note: back to /auth/home');
$res = $c->post_form('/auth/signout', [ csrf => $csrf ]);
is($res->code, 303, 'logout: 303');
is(location($res), '/auth/signin?logged_out=1', 'to /auth/signin?logged_out=1');

done_testing;
