# B4: the user file is re-read when it changes; a deleted user, or one
# whose password changed, loses their sessions at their next request. The
# same for the group file: a user whose role changed is logged out.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use File::Copy ();
use SDemo::Test;
use SDemo::Httpd;

my $h = SDemo::Httpd->new(name => 'userfile', mpm => 'event');
my $users = $h->dir . '/users';
File::Copy::copy(t_dir() . '/conf/users', $users) or die "copy: $!";
sub htpasswd {
    system("htpasswd -b -B -C 10 '$users' '$_[0]' '$_[1]' 2>/dev/null") == 0
        or die "htpasswd @_ failed";
}
htpasswd('carol', 'carolpw');
htpasswd('dave', 'davepw');
chmod 0644, $users;
my $groups = $h->dir . '/groups';
sub write_groups {
    open my $fh, '>', $groups or die "write $groups: $!";
    print $fh @_;
    close $fh;
    chmod 0644, $groups;
}
write_groups("staff: alice frank\n");
$h->{config} = "SessionDemoUserFile \"$users\"\nSessionDemoGroupFile \"$groups\"\n"
    . "SessionDemoGuestPassword password\n";
ok($h->start, 'httpd with its own user file') or BAIL_OUT($h->why);

my %c = map { $_ => SDemo::Client->new(base => $h->base) } qw(carol dave alice);
is($c{carol}->login('carol', 'carolpw')->code, 303, 'carol logs in');
is($c{dave}->login('dave', 'davepw')->code, 303, 'dave logs in');
is($c{alice}->login('alice', 'wonderland')->code, 303, 'alice logs in');
is(SDemo::Client->new(base => $h->base)->login('erin', 'erinpw')->code, 403,
   'erin (not yet a user) cannot');
my $frank = SDemo::Client->new(base => $h->base);
my $gina = SDemo::Client->new(base => $h->base);
is($frank->login('frank', 'password')->code, 303, 'frank (guest, role staff) logs in');
is($gina->login('gina', 'password')->code, 303, 'gina (guest, role user) logs in');
is(($frank->dashboard_json // {})->{role}, 'staff', "frank's role is staff");

htpasswd('carol', 'newcarolpw');
system("htpasswd -D '$users' dave 2>/dev/null") == 0 or die 'htpasswd -D failed';
htpasswd('erin', 'erinpw');
chmod 0644, $users;
write_groups("staff: alice\nadmins: frank\n");
my $t = time + 2;
utime $t, $t, $users, $groups;    # visibly newer, whatever the mtime granularity
sleep 2;

is($c{carol}->get('/dashboard')->code, 303, 'carol, whose password changed: logged out');
is($c{dave}->get('/dashboard')->code, 303, 'dave, deleted from the file: logged out');
is($c{alice}->get('/dashboard')->code, 200, 'alice, unchanged: still logged in');
is(SDemo::Client->new(base => $h->base)->login('carol', 'carolpw')->code, 403,
   'carol: the old password fails');
is(SDemo::Client->new(base => $h->base)->login('carol', 'newcarolpw')->code, 303,
   'carol: the new password works');
is(SDemo::Client->new(base => $h->base)->login('dave', 'davepw')->code, 403,
   'dave cannot log in any more');
is(SDemo::Client->new(base => $h->base)->login('erin', 'erinpw')->code, 303,
   'erin, added: can log in');
is($frank->get('/dashboard')->code, 303, 'frank, whose role changed: logged out');
is($gina->get('/dashboard')->code, 200, 'gina, role unchanged: still logged in');
is($frank->login('frank', 'password')->code, 303, 'frank logs in again');
is(($frank->dashboard_json // {})->{role}, 'admins', '... with the new role');

ok($h->stop, 'stopped');
done_testing;
