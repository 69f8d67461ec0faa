# B11: a full store follows SessionDemoWhenFull, counts it, and warns at
# most once a minute.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SDemo::Test;
use SDemo::Httpd;

my $full_warn = q{\[session_demo:warn\] .*the session store is full};

# ---- refuse ------------------------------------------------------------------
{
    expect_log($full_warn, 'full store (refuse)', 'full_refuse');
    my $h = SDemo::Httpd->new(name => 'full_refuse', mpm => 'event',
        config => "SessionDemoCapacity 3\nSessionDemoWhenFull refuse\n");
    ok($h->start, 'httpd with SessionDemoCapacity 3, refuse') or BAIL_OUT($h->why);
    my @c = map { SDemo::Client->new(base => $h->base) } 1 .. 4;
    is($c[$_ - 1]->login("user$_", 'password')->code, 303, "login $_ of 3: 303") for 1 .. 3;
    my $res = $c[3]->login('user4', 'password');
    is($res->code, 503, 'the 4th login: 503');
    ok(!defined $res->header('Set-Cookie'), 'the 4th login: no cookie');
    like($res->content, qr/\S/, 'with a message');
    is($c[$_]->get('/dashboard')->code, 200, 'session ' . ($_ + 1) . ' still works') for 0 .. 2;
    $c[3]->login('user4', 'password') for 1 .. 4;
    my $st = status_json(SDemo::Client->new(base => $h->base, jar => 0));
    is($st->{sessions}, 3, 'status: 3 sessions');
    is($st->{capacity}, 3, 'status: capacity 3');

    my $warns = () = $h->tail_error_log(1000) =~ /$full_warn/g;
    is($warns, 1, '5 refused logins: one warning in the log');

    is($c[0]->logout->code, 303, 'one logout');
    is($c[3]->login('user4', 'password')->code, 303, 'now the 4th login works (space reused)');
    is($c[3]->get('/dashboard')->code, 200, 'and its session works');
    ok($h->stop, 'stopped');
}

# ---- evict -------------------------------------------------------------------
{
    expect_log($full_warn, 'full store (evict)', 'full_evict');
    my $h = SDemo::Httpd->new(name => 'full_evict', mpm => 'event',
        config => "SessionDemoCapacity 3\nSessionDemoWhenFull evict\n");
    ok($h->start, 'httpd with SessionDemoCapacity 3, evict') or BAIL_OUT($h->why);
    my @c = map { SDemo::Client->new(base => $h->base) } 1 .. 4;
    for my $i (0 .. 2) {
        is($c[$i]->login('user' . ($i + 1), 'password')->code, 303, 'login ' . ($i + 1));
        sleep 1 if $i < 2;    # distinct last-access times
    }
    sleep 1;
    # user1 is used again: user2 is now the least recently used.
    is($c[0]->get('/dashboard')->code, 200, 'user1 used again');
    my $st0 = status_json(SDemo::Client->new(base => $h->base, jar => 0));
    is($c[3]->login('user4', 'password')->code, 303, 'the 4th login: 303 (evict)');
    is($c[1]->get('/dashboard')->code, 303, 'the least recently used session (user2) is gone');
    is($c[0]->get('/dashboard')->code, 200, 'user1 (used recently) still works');
    is($c[2]->get('/dashboard')->code, 200, 'user3 still works');
    is($c[3]->get('/dashboard')->code, 200, 'user4 works');
    my $st = status_json(SDemo::Client->new(base => $h->base, jar => 0));
    is($st->{evictions}, $st0->{evictions} + 1, 'status: one eviction');
    is($st->{sessions}, 3, 'status: 3 sessions');
    my $log = do { local (@ARGV, $/) = ($h->error_log); <> } // '';
    like($log, qr/SDEMO00206: session [0-9a-f]{8} of user "user2" evicted: the store is full/,
         'one log line names the evicted session (hash prefix) and its user');
    ok($h->stop, 'stopped');
}

done_testing;
