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
# Guest mode never takes over a name that the group file knows: frank is
# in group staff (a real user's name, say one deleted from the user file),
# so the guest password does not log him in, let alone with role staff.
is($frank->login('frank', 'password')->code, 403,
   'frank (in the group file, not in the user file): the guest password is refused');
is($gina->login('gina', 'password')->code, 303, 'gina (known to neither file) logs in as a guest');
is(($gina->dashboard_json // {})->{role}, 'guest', "gina's role is guest");

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
is($gina->get('/dashboard')->code, 200, 'gina, still a guest: still logged in');
is($frank->login('frank', 'password')->code, 403,
   'frank, now in group admins: still no guest login (no way through Require group admins)');

# A guest whose name appears in the group file later is logged out.
write_groups("staff: alice\nadmins: frank\nstaff: gina\n");
$t = time + 4;
utime $t, $t, $groups;
sleep 2;
is($gina->get('/dashboard')->code, 303, 'gina, now named in the group file: logged out');

# An unreadable user file refuses every login, guests included: nobody can
# tell whether a name is a real user's (the attack: admin/password as a
# "guest" with role admins while the user file could not be read).
expect_log(qr/SDEMO00010: cannot read user file/, 'the user file made unreadable on purpose', 'userfile');
expect_log(qr/SDEMO00013: login of user "\S+" refused: the user file/, 'logins while the user file is unreadable', 'userfile');
chmod 0000, $users;
$t = time + 6;
utime $t, $t, $users;
sleep 2;
is(SDemo::Client->new(base => $h->base)->login('erin', 'erinpw')->code, 403,
   'user file unreadable: a real user is refused');
is(SDemo::Client->new(base => $h->base)->login('frank', 'password')->code, 403,
   'user file unreadable: a name from the group file with the guest password is refused');
is(SDemo::Client->new(base => $h->base)->login('nobody1', 'password')->code, 403,
   'user file unreadable: even a plain guest is refused');
like($h->tail_error_log(200), qr/SDEMO00013: login of user "nobody1" refused: the user file/,
     'one log line says why: the user file cannot be read');
chmod 0644, $users;
$t = time + 8;
utime $t, $t, $users;

# A group name longer than a session can hold (128 bytes): the login is
# refused with a line that says why, rather than a session nobody can read.
expect_log(qr/SDEMO00014: login of user "erin" refused: their group name/, 'a group name over 128 bytes on purpose', 'userfile');
write_groups(('g' x 200) . ": erin\n");
$t = time + 10;
utime $t, $t, $groups;
sleep 2;
is(SDemo::Client->new(base => $h->base)->login('erin', 'erinpw')->code, 403,
   'a user whose group name is over 128 bytes: refused');
like($h->tail_error_log(100), qr/SDEMO00014: login of user "erin" refused: their group name .* is longer than 128 bytes/,
     '... with a log line that says why');

ok($h->stop, 'stopped');
done_testing;
