# A segment from an older build is never misread. A graceful restart after
# the module was upgraded loads the new .so while the store's shared memory
# lives on; when the new build lays the store out differently, it must not
# read the old segment as its own. Here the "new build" is the same source
# compiled as layout 99 (build/upgrade/layout99.so): after the restart the
# store starts empty, one log line says why, old cookies are anonymous, and
# new logins work.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Apache::Test ();
use File::Copy ();
use Test::More;
use SDemo::Test;
use SDemo::Httpd;

my $top = Apache::Test::vars()->{top_dir};
my $variant = "$top/build/upgrade/layout99.so";
plan skip_all => "$variant not built (make test builds it)" unless -f $variant;

my $dir = t_logs() . '/upgrade-so';
mkdir $dir;
my $so = "$dir/mod_session_demo.so";
File::Copy::copy("$top/.libs/mod_session_demo.so", "$so.new") or die "copy: $!";
rename "$so.new", $so or die "rename: $!";
chmod 0755, $dir, $so;

my $h = SDemo::Httpd->new(name => 'upgrade', mpm => 'event', module => $so);
ok($h->start, 'httpd with this build') or BAIL_OUT($h->why);
expect_log(qr/SDEMO00207: the session store kept from before the restart has layout 2 and this build reads layout 99/,
           'the module is upgraded on purpose', 'upgrade');

my $c = SDemo::Client->new(base => $h->base);
$c->login_ok('alice', 'wonderland');
is($c->get('/dashboard')->code, 200, 'logged in before the upgrade');
ok($h->graceful, 'graceful restart with the same build') or diag($h->why);
is($c->get('/dashboard')->code, 200, '... keeps the session (same layout)');

# Install the new build the way package managers do: a new file renamed
# over the old one (the running processes keep their mapping).
File::Copy::copy($variant, "$so.new") or die "copy: $!";
rename "$so.new", $so or die "rename: $!";
ok($h->graceful, 'graceful restart onto a build with another store layout') or diag($h->why);

my $res = $c->get('/dashboard');
is($res->code, 303, 'the old session is not read by the new layout: anonymous');
like($h->tail_error_log(200), qr/SDEMO00207: .*layout 2 and this build reads layout 99.*starting with an empty store/,
     'one log line says the store started empty, and why');
my $n = SDemo::Client->new(base => $h->base);
is($n->login('admin', 'secret')->code, 303, 'a new login works with the new build');
my $d = $n->dashboard_json;
is($d && $d->{user}, 'admin', '... and its session is read back');
ok($h->stop, 'stopped');
done_testing;
