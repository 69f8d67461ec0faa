# Many servers: two httpd servers share sessions through one real Redis
# (SessionDemoStore redis:HOST:PORT). A login on one is valid on the other;
# notes, logouts, "log out everywhere", the per-user cap and the login
# throttle span both; concurrent views spread over both count exactly;
# Redis paused, killed or refusing AUTH gives 503 with Retry-After and never
# a logout; configtest refuses what does not apply.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use SDemo::Test;
use SDemo::Httpd;
use SDemo::Redis;

plan skip_all => 'redis-server is not installed (make test installs it)'
    unless SDemo::Redis::available();

# appendfsync always: a Redis killed with -9 and started again still has
# every session (what a production Redis with AOF does).
my $r = SDemo::Redis->new(name => 'shared', args => ['appendonly yes', 'appendfsync always']);
ok($r->start, 'redis-server on ' . ($r->port // '?')) or BAIL_OUT($r->why);

my $secret = t_logs() . '/redis-shared.secret';
unlink $secret;
my $conf = "SessionDemoStore redis:127.0.0.1:" . $r->port . "\n"
         . "SessionDemoSecretFile \"$secret\"\n"
         . "SessionDemoMaxSessionsPerUser 3\n"
         . "SessionDemoRedisTimeout 300\n"
         . "<Location />\n    SessionDemoLoginThrottle 4 60\n</Location>\n";
my $A = SDemo::Httpd->new(name => 'redis_a', mpm => 'event', config => $conf);
my $B = SDemo::Httpd->new(name => 'redis_b', mpm => 'prefork', config => $conf);
ok($A->start, 'httpd A (event)') or BAIL_OUT($A->why);
ok($B->start, 'httpd B (prefork)') or BAIL_OUT($B->why);
for my $s ([$A, 'redis_a'], [$B, 'redis_b']) {
    expect_log(qr/SDEMO00301: Redis at 127\.0\.0\.1:\d+ unreachable/, 'Redis is paused and killed on purpose', $s->[1]);
    expect_log(qr/SDEMO00057: made a new SessionDemoSecretFile/, 'the first start makes the secret', $s->[1]);
}

my $a = SDemo::Client->new(base => $A->base);
$a->login_ok('alice', 'wonderland');
my $sid = $a->sid;
ok($sid, 'logged in on A');
my $b = SDemo::Client->new(base => $B->base, jar => 0);
my @ck = (Cookie => "sid=$sid");

my $d = decode_json_ok($b->get('/dashboard', Accept => 'application/json', @ck));
is($d && $d->{user}, 'alice', 'the session of A is valid on B');

# A login form from A, posted to B: the shared secret makes it valid there.
{
    my $x = SDemo::Client->new(base => $A->base);
    my ($csrf, $form) = $x->login_csrf;
    my $fc = parse_set_cookie($form, 'sid_form');
    my $res = SDemo::Client->new(base => $B->base, jar => 0)->post_form('/login',
        [ username => 'admin', password => 'secret', csrf => $csrf ],
        Cookie => "sid_form=$fc->{value}");
    is($res->code, 303, 'a login form fetched from A logs in on B');
}

# A note on A is seen at once on B.
is($a->add_note('written on A')->code, 303, 'a note added on A');
$d = decode_json_ok($b->get('/dashboard', Accept => 'application/json', @ck));
is_deeply($d && $d->{notes}, ['written on A'], 'B shows it');

# N concurrent views spread over both servers add exactly N visits.
my $v0 = $a->dashboard_json->{visits};
my $N = 10;
my $EACH = 10;
my @kids;
for my $k (1 .. $N) {
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        my $base = $k % 2 ? $A->base : $B->base;
        my $c = SDemo::Client->new(base => $base, jar => 0);
        my $bad = 0;
        for (1 .. $EACH) {
            $bad++ unless $c->get('/dashboard', Accept => 'application/json', @ck)->code == 200;
        }
        POSIX::_exit($bad ? 1 : 0);
    }
    push @kids, $pid;
}
my $failed = 0;
for (@kids) { waitpid $_, 0; $failed++ if $? }
is($failed, 0, "$N clients x $EACH views, half on A, half on B: all 200");
$d = $a->dashboard_json;
is($d->{visits}, $v0 + 1 + $N * $EACH, 'every one of the ' . ($N * $EACH) . ' views counted exactly once');

# Logout on B ends the session everywhere.
my $c2 = SDemo::Client->new(base => $A->base);
$c2->login_ok('bob2', 'password');
my $sid2 = $c2->sid;
my $bb = SDemo::Client->new(base => $B->base);
$bb->set_sid($sid2);
is($bb->logout->code, 303, 'logout on B');
is($c2->get('/dashboard')->code, 303, 'the session has ended on A too');

# Log out everywhere, across servers.
my @mine = (SDemo::Client->new(base => $A->base), SDemo::Client->new(base => $B->base),
            SDemo::Client->new(base => $B->base));
$_->login_ok('roamer', 'password') for @mine;
my $res = $mine[0]->post_form('/dashboard', [ action => 'logout_all', csrf => $mine[0]->session_csrf ]);
is(location($res), '/login?ended_all=3', 'log out everywhere on A ended 3 sessions');
is($_->get('/dashboard')->code, 303, 'each of them has ended') for @mine[1, 2];

# The per-user cap (3) spans both servers; the oldest goes.
my @cap = map { SDemo::Client->new(base => $_ % 2 ? $A->base : $B->base) } 1 .. 4;
for (@cap) { $_->login_ok('capped', 'password'); sleep 1.1 }
is($cap[0]->get('/dashboard')->code, 303, 'a 4th login (on either server) ends the least recently used');
is($_->get('/dashboard')->code, 200, 'the 3 most recent live on') for @cap[1 .. 3];

# Throttle counters live in Redis: 2 failures on A and 2 on B reach the
# limit of 4, so N servers do not multiply it.
SDemo::Client->new(base => $A->base)->login('tess', 'wrong') for 1 .. 2;
SDemo::Client->new(base => $B->base)->login('tess', 'wrong') for 1 .. 2;
is(SDemo::Client->new(base => $A->base)->login('tess', 'password')->code, 429,
   'after 2 failures on A and 2 on B: 429 on A');
is(SDemo::Client->new(base => $B->base)->login('tess', 'password')->code, 429, '... and on B');

# Status: the store's kind and address, no capacity that does not apply.
my $st = decode_json_ok(SDemo::Client->new(base => $A->base, jar => 0)
                            ->get('/session-status?json'));
is($st && $st->{store}, 'redis', 'status: store redis');
is($st && $st->{address}, $r->addr, 'status: the address');
ok($st && $st->{connected}, 'status: connected');
ok($st && !exists $st->{capacity} && !exists $st->{memory_total}, 'no capacity or memory figures (they do not apply)');
cmp_ok($st->{sessions} // 0, '>=', 3, "status: live sessions ($st->{sessions})");
my $prom = SDemo::Client->new(base => $A->base, jar => 0)->get('/session-status?prometheus');
like($prom->content, qr/^# TYPE session_demo_logins_ok_total counter$/m, 'Prometheus: counters typed as counters');
like($prom->content, qr/^session_demo_store_up\{store="redis"\} 1$/m, 'Prometheus: store up');

# Redis paused: 503 within the command timeout, cookie kept, same session
# afterwards.
$r->pause;
my $t0 = time;
$res = $b->get('/dashboard', @ck);
my $took = time - $t0;
is($res->code, 503, 'Redis paused (SIGSTOP): 503');
cmp_ok($took, '<', 2.5, sprintf('... within the command timeout (%.2f s)', $took));
like($res->header('Retry-After') // '', qr/^\d+$/, '... with Retry-After');
ok(no_set_cookie($res), '... and the cookie left alone');
like($res->content, qr/You have not been logged out/, '... and a page that says so');
is(SDemo::Client->new(base => $A->base, jar => 0)->get('/index.html')->code, 200,
   'static pages keep working');
$r->resume;
sleep 1;    # the breaker's back-off
$d = decode_json_ok($b->get('/dashboard', Accept => 'application/json', @ck));
is($d && $d->{user}, 'alice', 'after SIGCONT: the same session works');

# Redis killed and started again (AOF keeps the sessions).
$r->kill9;
$res = $a->get('/dashboard');
is($res->code, 503, 'Redis killed: 503');
ok(no_set_cookie($res), '... cookie left alone');
ok($r->start, 'Redis started again') or diag($r->why);
my $ok = 0;
for (1 .. 30) { $ok = $a->get('/dashboard')->code == 200 and last; sleep 0.3 }
ok($ok, 'the same session works again on A');
is($b->get('/dashboard', @ck)->code, 200, '... and on B');

my $log = $A->tail_error_log(2000);
my @down = $log =~ /SDEMO00301:/g;
my @up = $log =~ /SDEMO00302:/g;
cmp_ok(scalar @down, '>=', 1, 'the outage is logged, naming Redis and its address');
cmp_ok(scalar @down, '<=', 2 * 4, 'once per process and outage, not per request (' . scalar(@down) . ')');
cmp_ok(scalar @up, '>=', 1, 'and its end');

# Sessions outlive a stop and start of httpd: they are in Redis.
ok($A->stop, 'httpd A stopped');
ok($A->start, 'httpd A started again');
is(SDemo::Client->new(base => $A->base, jar => 0)->get('/dashboard', Cookie => 'sid=' . $a->sid)->code,
   200, 'the session survived the stop and start');

# AUTH with a wrong password: a clear error, and 503 rather than a logout.
{
    my $rp = SDemo::Redis->new(name => 'auth', password => 'right-password');
    ok($rp->start, 'a Redis with requirepass') or diag($rp->why);
    my $pw = t_logs() . '/redis-auth.password';
    open my $fh, '>', $pw or die; print $fh "wrong-password\n"; close $fh;
    my $C = SDemo::Httpd->new(name => 'redis_auth', mpm => 'event',
        config => "SessionDemoStore redis:127.0.0.1:" . $rp->port . "\n"
                . "SessionDemoRedisPasswordFile \"$pw\"\n");
    expect_log(qr/SDEMO00301: Redis at 127\.0\.0\.1:\d+ unreachable: AUTH refused/,
               'a wrong Redis password on purpose', 'redis_auth');
    expect_log(qr/SDEMO00063: SessionDemoStore redis/, 'no secret file here', 'redis_auth');
    ok($C->start, 'httpd with a wrong Redis password starts') or diag($C->why);
    my $res = SDemo::Client->new(base => $C->base)->login('admin', 'secret');
    is($res->code, 503, 'login: 503');
    like($C->tail_error_log(200), qr/AUTH refused/, 'the log says AUTH was refused');
    unlike($C->tail_error_log(200), qr/wrong-password/, '... without the password');
    $C->stop;
    $rp->stop;
}

# configtest: a snapshot does not apply to Redis.
{
    my $h = SDemo::Httpd->new(name => 'redis_conf', mpm => 'event',
        config => "SessionDemoStore redis:127.0.0.1:6379\nSessionDemoSnapshot /tmp/x.snap\n");
    my ($rc, $out) = $h->configtest;
    isnt($rc, 0, 'configtest refuses SessionDemoSnapshot with Redis');
    like($out, qr/SessionDemoSnapshot does not apply/, '... and says why');
    $h->{config} = "SessionDemoStore rediss:127.0.0.1:6380\n";
    ($rc, $out) = $h->configtest;
    isnt($rc, 0, 'configtest refuses rediss: (no TLS in this build)');
    like($out, qr/TLS to Redis.*tunnel/, '... and says what to do instead');
    $h->{config} = "SessionDemoStore redis:nohost:99999\n";
    ($rc, $out) = $h->configtest;
    isnt($rc, 0, 'configtest refuses a bad Redis address');
    like($out, qr/SessionDemoStore/, '... naming the directive');
}

$A->stop;
$B->stop;
$r->stop;
done_testing;
