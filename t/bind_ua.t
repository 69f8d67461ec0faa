# SessionDemoBindUserAgent On (virtual host sdemo_bindua): a session
# presented with another User-Agent is ended and logged.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SDemo::Test;

my $warn = q{\[session_demo:warn\] .*another User-Agent than at login};
expect_log($warn, 'a session presented with another User-Agent');

# The suite may run twice against one log (shm, then Redis): count only
# what this run writes.
my $start = -s t_logs() . '/error_log' || 0;

my $c = client(vhost => 'sdemo_bindua', agent => 'Browser/A');
is($c->login('uauser', 'password')->code, 303, 'login with User-Agent A');
is($c->get('/dashboard')->code, 200, 'dashboard with User-Agent A: 200');
my $sid = $c->sid;

my $thief = SDemo::Client->new(base => base_url('sdemo_bindua'), jar => 0, agent => 'Browser/B');
is($thief->get('/dashboard', Cookie => "sid=$sid")->code, 303,
   'the same cookie with User-Agent B: 303');
is($c->get('/dashboard')->code, 303, 'the session is ended: User-Agent A gets 303 too');
{
    open my $fh, '<', t_logs() . '/error_log' or die;
    seek $fh, $start, 0;
    my @l = grep { /$warn/ && /"uauser"/ } <$fh>;
    is(scalar @l, 1, 'one warning in the log names the user');
    unlike($l[0] // '', qr/\Q$sid\E/, 'without the session ID');
}

# Without the directive the User-Agent does not matter.
my $m = client(agent => 'Browser/A');
$m->login_ok('uauser2', 'password');
my $msid = $m->sid;
my $other = client(jar => 0, agent => 'Browser/B');
is($other->get('/dashboard', Cookie => "sid=$msid")->code, 200,
   'main host (Off): another User-Agent works');

done_testing;
