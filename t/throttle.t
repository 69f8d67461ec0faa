# B3: SessionDemoLoginThrottle, on a fresh server (its own counters).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SDemo::Test;
use SDemo::Httpd;

my $h = SDemo::Httpd->new(name => 'throttle', mpm => 'event',
    config => "<Location />\n    SessionDemoLoginThrottle 3 60\n</Location>\n");
ok($h->start, 'httpd with SessionDemoLoginThrottle 3 60') or BAIL_OUT($h->why);
my $cl = sub { SDemo::Client->new(base => $h->base) };

for my $u (qw(alice ghost)) {
    is($cl->()->login($u, 'wrong')->code, 403, "$u: failure $_ of 3: 403") for 1 .. 3;
    my $res = $cl->()->login($u, 'wrong');
    is($res->code, 429, "$u: the 4th attempt: 429");
    my $ra = $res->header('Retry-After') // '';
    ok($ra =~ /^\d+$/ && $ra > 0 && $ra <= 60, "$u: Retry-After $ra (1..60)");
    ok(!defined $res->header('Set-Cookie'), "$u: no cookie");
}
is($cl->()->login('alice', 'wonderland')->code, 429, 'alice with the right password while throttled: 429');

# The counters live in shared memory that outlives restarts, like sessions.
ok($h->graceful, 'graceful restart') or diag($h->why);
is($cl->()->login('alice', 'wonderland')->code, 429, 'after a graceful restart: alice still 429');
ok($h->restart, 'plain restart') or diag($h->why);
is($cl->()->login('ghost', 'x')->code, 429, 'after a plain restart: ghost still 429');
my $adm = $cl->();
is($adm->login('admin', 'secret')->code, 303, 'another user from the same address still logs in');
ok(defined $adm->sid('sid_device'), 'a successful login leaves a device cookie');

my $st = status_json(SDemo::Client->new(base => $h->base, jar => 0));
cmp_ok($st->{logins_throttled}, '>=', 3, "status: logins_throttled $st->{logins_throttled}");

# 10 x 3 failures from one address throttle the address.
my $fails = 6;
my $i = 0;
while ($fails < 30) {
    my $u = 'spray' . $i++;
    for (1 .. 2) { $cl->()->login($u, 'wrong'); $fails++ }
}
my $res = $cl->()->login('admin', 'secret');
is($res->code, 429, '30 failures from one address: even admin/secret gets 429 from it');
ok(($res->header('Retry-After') // '') =~ /^\d+$/, 'with Retry-After');
like($res->content, qr/Wait \d+ (?:seconds|minutes), then try again/, 'the 429 page says how long to wait');

# Lockout as a weapon: strangers' failures (for the name, from the address)
# do not lock out the browser that logged in as admin before: its device
# cookie gives it a counter of its own.
for (1 .. 3) { $cl->()->login('admin', 'wrong') }
is($cl->()->login('admin', 'secret')->code, 429, 'a stranger: admin is locked (name and address)');
is($adm->login('admin', 'secret')->code, 303,
   'the real admin, with the device cookie of an earlier login: 303 all the same');
# The device has its own counter, as strict as the name's.
is($adm->login('admin', 'wrong')->code, 403, "device: failure $_ of 3") for 1 .. 3;
is($adm->login('admin', 'secret')->code, 429, 'device: the 4th attempt: 429');
# A device cookie for admin does not help for another name.
is($adm->login('alice', 'wonderland')->code, 429, 'the device cookie of admin does nothing for alice');

like($h->tail_error_log(500), qr/login throttled: user "ghost" from 127\.0\.0\.1/,
     'throttled attempts are logged with user and address');

ok($h->stop, 'stopped');
done_testing;
