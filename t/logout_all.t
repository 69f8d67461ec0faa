# ASVS 3.3.4 / 7.5.2: "Log out everywhere" on the dashboard ends every
# session of the user (other devices included), and no one else's.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Spec;
use Test::More;
use SDemo::Test;

my @mine = map { client() } 1 .. 3;
my $other = client();
is($_->login('everywhere', 'password')->code, 303, 'login as everywhere') for @mine;
is($other->login('bystander', 'password')->code, 303, 'login as bystander');
is($_->get('/dashboard')->code, 200, 'each session works') for @mine, $other;

my ($c, @devices) = @mine;
my $csrf = $c->session_csrf;
ok($csrf, 'the dashboard carries the session token');

# Needs the token like every POST.
my $res = $c->post_form('/dashboard', [ action => 'logout_all', csrf => 'x' x 43 ]);
is($res->code, 403, 'logout_all with a wrong token: 403');
is($_->get('/dashboard')->code, 200, 'nothing ended') for @mine;

$res = $c->post_form('/dashboard', [ action => 'logout_all', csrf => $c->session_csrf ]);
is($res->code, 303, 'logout_all: 303');
is(location($res), '/login?ended_all=3', 'to the login page, which is told how many ended');
like(client()->get('/login?ended_all=3')->content, qr/logged out everywhere: 3 sessions ended/,
     'the login page says how many sessions ended');
my $ck = parse_set_cookie($res);
ok($ck && $ck->{value} eq '' && ($ck->{attrs}{'max-age'} // '') eq '0',
   'the cookie is cleared');
for my $d (@devices) {
    $res = $d->get('/dashboard');
    is($res->code, 303, "another session of the same user has ended");
}
is($other->get('/dashboard')->code, 200, "another user's session is untouched");

# One log line says who did it and how many sessions ended (the line may
# take a moment to reach the file).
my $log = File::Spec->catfile(t_logs(), 'error_log');
my $found = 0;
for (1 .. 20) {
    open my $fh, '<', $log or last;
    $found = grep { /SDEMO00105: logout everywhere: user "everywhere" from 127\.0\.0\.1 ended 3 sessions/ } <$fh>;
    last if $found;
    select undef, undef, undef, 0.1;
}
ok($found, 'logged: logout everywhere, 3 sessions');
done_testing;
