# B12: the status page and mod_status.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use LWP::UserAgent ();
use Apache::Test ();
use SDemo::Test;

my @NUM = qw(capacity sessions memory_used memory_total logins_ok logins_failed
             logins_throttled hits misses expirations evictions);

my $s = client(jar => 0);

my $res = $s->get('/session-status');
is($res->code, 200, 'GET /session-status: 200');
like($res->header('Content-Type') // '', qr{^text/html}, 'HTML');
like($res->content, qr/\bshm\b/, 'names the store');
like($res->content, qr/capacity/i, 'shows the capacity');

for my $how (['/session-status?json', []], ['/session-status', [ Accept => 'application/json' ]]) {
    my ($url, $h) = @$how;
    my $r = $s->get($url, @$h);
    is($r->code, 200, "$url @$h: 200");
    like($r->header('Content-Type') // '', qr{^application/json}, "$url @$h: application/json");
    my $j = decode_json_ok($r);
    ok(ref $j eq 'HASH', "$url @$h: a JSON object") or diag($r->content);
}

my $j0 = status_json($s);
ok($j0, 'status JSON');
$j0 ||= {};
is_deeply([ json_int_fields($j0, @NUM) ], [], 'every figure is a JSON integer');
is($j0->{store}, 'shm', 'store: shm');
is($j0->{capacity}, 1000, 'capacity: SessionDemoCapacity 1000');
ok(($j0->{memory_total} // 0) > 0, 'memory_total > 0');
ok(($j0->{memory_used} // 1e18) <= ($j0->{memory_total} // 0), 'memory_used <= memory_total');
ok(($j0->{sessions} // 1e18) <= ($j0->{capacity} // 0), 'sessions <= capacity');

# Counters move.
my $c = client();
$c->login_ok('statususer', 'password');
my $j1 = status_json($s);
is($j1->{logins_ok}, $j0->{logins_ok} + 1, 'a login: logins_ok + 1');
is($j1->{sessions}, $j0->{sessions} + 1, 'a login: sessions + 1');
is($j1->{logins_failed}, $j0->{logins_failed}, 'a login: logins_failed unchanged');
ok($j1->{memory_used} > $j0->{memory_used} || $j1->{memory_used} > 0,
   'memory_used reflects the new session');

client()->login('statususer', 'wrong-password');
my $j2 = status_json($s);
is($j2->{logins_failed}, $j1->{logins_failed} + 1, 'a failed login: logins_failed + 1');
is($j2->{logins_ok}, $j1->{logins_ok}, 'a failed login: logins_ok unchanged');
is($j2->{sessions}, $j1->{sessions}, 'a failed login: no session');

$c->get('/dashboard');
my $j3 = status_json($s);
cmp_ok($j3->{hits}, '>', $j2->{hits}, 'a dashboard view: hits go up');

client(jar => 0)->get('/dashboard', Cookie => 'sid=' . random_id());
my $j4 = status_json($s);
cmp_ok($j4->{misses}, '>', $j3->{misses}, 'an unknown ID: misses go up');
is($j4->{sessions}, $j3->{sessions}, 'an unknown ID creates no session');

client(jar => 0)->get('/login');
client(jar => 0)->get('/dashboard');
is(status_json($s)->{sessions}, $j4->{sessions}, 'anonymous visitors take no store space');

$c->logout;
my $j5 = status_json($s);
is($j5->{sessions}, $j4->{sessions} - 1, 'a logout: sessions - 1');
cmp_ok($j5->{memory_used}, '<', $j4->{memory_used}, 'a logout gives memory back');

# Local clients only: the same server seen from 127.0.0.2 is not local.
{
    my $port = Apache::Test::vars()->{port};
    expect_log(q{\[authz_core:error\] .*\[client 127\.0\.0\.2:\d+\] AH01630: client denied by server configuration: \S+/session-status},
               'the status page from 127.0.0.2');
    my $ua = LWP::UserAgent->new(local_address => '127.0.0.2', max_redirect => 0, timeout => 10);
    my $r = $ua->get("http://127.0.0.2:$port/session-status?json");
  SKIP: {
        skip 'cannot connect from 127.0.0.2', 2
            if ($r->header('Client-Warning') // '') =~ /Internal/;
        is($r->code, 403, 'from 127.0.0.2 (not in Require ip): 403');
        unlike($r->content, qr/logins_ok/, 'and no figures');
    }
}

# mod_status shows the same figures.
{
    my $r = $s->get('/server-status?auto');
    is($r->code, 200, '/server-status?auto: 200');
    my @lines = grep { /^SessionDemo/ } split /\n/, $r->content;
    ok(@lines, 'has SessionDemo lines') or diag($r->content);
    my $j = status_json($s);
    my %st;
    for (@lines) {
        $st{lc $1} = $2 if /^SessionDemo_?(\w+):\s*(\S+)/;
    }
    for my $k (qw(sessions capacity)) {
        my ($key) = grep { s/_//gr eq $k } keys %st;
        ok(defined $key, "server-status has $k") or next;
        is($st{$key}, $j->{$k}, "server-status $k = status page $k");
    }
    my $h = $s->get('/server-status');
    like($h->content, qr/SessionDemo|session.demo/i, 'the HTML server-status mentions the sessions');
}

done_testing;
