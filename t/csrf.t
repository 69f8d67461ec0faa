# B7: state-changing POSTs need the token and a same-origin request.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Apache::Test ();
use SDemo::Test;

my $vars = Apache::Test::vars();
my $own = "http://$vars->{servername}:$vars->{port}";

# ---- login -----------------------------------------------------------------
my @login = (username => 'alice', password => 'wonderland');
for my $t ([ undef, [], 'no csrf field' ],
           [ '', [], 'an empty csrf' ],
           [ 'forged-token-forged-token-forged-token-1234', [], 'a made-up csrf' ],
           [ 'FORM', [ 'Sec-Fetch-Site' => 'cross-site' ], 'Sec-Fetch-Site: cross-site' ],
           [ 'FORM', [ Origin => 'http://evil.example' ], 'a foreign Origin' ],
           [ 'FORM', [ Origin => 'null' ], 'Origin: null' ],
           [ 'FORM', [ Origin => "https://$vars->{servername}:$vars->{port}" ],
             'an Origin with another scheme' ],
           [ 'FORM', [ Origin => "http://$vars->{servername}:1" ], 'an Origin with another port' ]) {
    my ($tok, $h, $what) = @$t;
    my $c = client();
    my ($form_tok) = $c->login_csrf;
    $tok = $form_tok if defined $tok && $tok eq 'FORM';
    my $res = $c->post_form('/login', [ @login, defined $tok ? (csrf => $tok) : () ], @$h);
    is($res->code, 403, "login with $what: 403");
    ok(!defined $res->header('Set-Cookie'), "login with $what: no cookie");
}

for my $t ([ [ 'Sec-Fetch-Site' => 'same-origin' ], 'Sec-Fetch-Site: same-origin' ],
           [ [ Origin => $own ], "Origin $own" ],
           [ [], 'no Origin, no Sec-Fetch-Site' ]) {
    my ($h, $what) = @$t;
    my $c = client();
    my ($tok) = $c->login_csrf;
    my $res = $c->post_form('/login', [ @login, csrf => $tok ], @$h);
    is($res->code, 303, "login with the form's token and $what: 303");
}

# ---- dashboard and logout --------------------------------------------------------
my $c = client();
$c->login_ok('csrfuser', 'password');
my $tok = $c->session_csrf;
ok($tok, 'session token');

for my $t ([ [ 'Sec-Fetch-Site' => 'cross-site' ], 'Sec-Fetch-Site: cross-site' ],
           [ [ Origin => 'http://evil.example' ], 'a foreign Origin' ]) {
    my ($h, $what) = @$t;
    my $res = $c->add_note("from $what", $tok, @$h);
    is($res->code, 403, "add_note with $what: 403");
    $res = $c->post_form('/logout', [ csrf => $tok ], @$h);
    is($res->code, 403, "logout with $what: 403");
}
my $d = $c->dashboard_json;
is_deeply($d && $d->{notes}, [], 'no note was added');
ok($d, 'still logged in');

# Another session's token is no good.
my $o = client();
$o->login_ok('othercsrf', 'password');
my $otok = $o->session_csrf;
ok($otok && $otok ne $tok, 'each session has its own token');
is($c->add_note('with the other token', $otok)->code, 403, "another session's token: 403");
is($c->post_form('/logout', [ csrf => $otok ])->code, 403, "logout with another session's token: 403");
is($c->get('/dashboard')->code, 200, 'still logged in');

# The login form's token is not a session token.
my ($ltok) = $c->login_csrf;
is($c->add_note('with the login token', $ltok)->code, 403, "the login form's token: 403 on the dashboard");

# A new login comes with a new token; the old one is dead.
$c->login_ok('csrfuser', 'password');
my $tok2 = $c->session_csrf;
ok($tok2 && $tok2 ne $tok, 'a new session: a new token');
is($c->add_note('old token', $tok)->code, 403, "the previous session's token: 403");
is($c->add_note('new token', $tok2, Origin => $own, 'Sec-Fetch-Site' => 'same-origin')->code,
   303, 'the right token, same origin: 303');

# ---- login CSRF: the token is bound to the form cookie ------------------------
# A login token lifted by one client is useless to another, even one that
# sends no Origin and no Sec-Fetch-Site (the headers alone are no defence).
{
    my $a = client();
    my ($tok, $form) = $a->login_csrf;
    my $fc = parse_set_cookie($form, 'sid_form');
    ok($fc, 'the login page sets a form cookie');
    ok($fc && $fc->{attrs}{httponly}, '... HttpOnly');
    ok($fc && ($fc->{attrs}{'max-age'} // 0) > 0, '... short-lived (Max-Age)');
    my $r = client(jar => 0)->post_form('/login', [ @login, csrf => $tok ]);
    is($r->code, 403, 'a token posted by another client without cookies: 403');
    ok(no_set_cookie($r), '... and no session');
    my $b = client();
    $b->login_csrf;
    $r = $b->post_form('/login', [ @login, csrf => $tok ]);
    is($r->code, 403, 'a token posted with another form cookie: 403');
    $r = $a->post_form('/login', [ @login, csrf => $tok ]);
    is($r->code, 303, 'the client that fetched the form (a cookie jar, no Origin) logs in');
}

done_testing;
