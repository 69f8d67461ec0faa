# A session bigger than the first lookup buffer (4 KB) is read whole: with
# SessionDemoMaxDataSize 16K, ten notes of 900 bytes make a ~9 KB record
# that the dashboard still shows in full, visits counting as usual.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SDemo::Test;
use SDemo::Httpd;

my $h = SDemo::Httpd->new(name => 'big_session', mpm => 'event',
    config => "SessionDemoMaxDataSize 16K\nSessionDemoGuestPassword password\n");
ok($h->start, 'httpd with SessionDemoMaxDataSize 16K') or BAIL_OUT($h->why);

my $c = SDemo::Client->new(base => $h->base);
$c->login_ok('bigone', 'password');
my $csrf = $c->session_csrf;
for my $i (1 .. 10) {
    is($c->add_note(sprintf('%02d', $i) . ('x' x 898), $csrf)->code, 303, "note $i added");
}
my $d = $c->dashboard_json;
ok($d, 'the dashboard answers with a ~9 KB session');
is(scalar @{ $d->{notes} || [] }, 10, 'all ten notes are there');
is(($d->{notes} || [])->[9], '10' . ('x' x 898), 'the last one whole');
is($d->{visits}, 1, 'visits 1');
is(($c->dashboard_json // {})->{visits}, 2, 'visits 2 on the next view');
ok($h->stop, 'stopped');
done_testing;
