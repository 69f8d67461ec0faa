# Issue 3: a restart that changes the store's size moves the live sessions
# into the new store; a bad snapshot file is logged and ignored, never a
# crash.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SDemo::Test;
use SDemo::Httpd;

my $h = SDemo::Httpd->new(name => 'resize', mpm => 'event',
    config => "SessionDemoCapacity 100\nSessionDemoMemory 1M\n"
            . "SessionDemoWhenFull evict\nSessionDemoGuestPassword password\n");
ok($h->start, 'httpd with capacity 100') or BAIL_OUT($h->why);

my @c = map { SDemo::Client->new(base => $h->base) } 1 .. 3;
for my $i (0 .. 2) {
    $c[$i]->login_ok("resize$i", 'password');
    is(($c[$i]->dashboard_json // {})->{visits}, 1, "resize$i: visits 1");
}

sub status { my $r = SDemo::Client->new(base => $h->base)->get('/session-status?json');
             $r->code == 200 ? SDemo::Test::decode_json_ok($r) : {} }
is(status()->{capacity}, 100, 'status: capacity 100');

# Bigger: every session moves.
$h->{config} =~ s/SessionDemoCapacity 100/SessionDemoCapacity 5000/;
$h->{config} =~ s/SessionDemoMemory 1M/SessionDemoMemory 4M/;
$h->write_config;
ok($h->graceful, 'graceful with capacity 5000') or diag($h->why);
is(status()->{capacity}, 5000, 'status: capacity 5000');
is(status()->{sessions}, 3, 'status: the 3 sessions are there');
for my $i (0 .. 2) {
    my $d = $c[$i]->dashboard_json;
    is($d && $d->{visits}, 2, "resize$i: alive after the resize, visits continue");
    is($d && $d->{user}, "resize$i", "resize$i: same user");
}

# Smaller than what is live: under evict the most recently used survive.
# (Times are whole seconds: wait so that resize1 is plainly the oldest.)
$c[1]->dashboard_json;
sleep 2;
$c[2]->dashboard_json;
$c[0]->dashboard_json;
$h->{config} =~ s/SessionDemoCapacity 5000/SessionDemoCapacity 2/;
$h->write_config;
ok($h->restart, 'restart with capacity 2') or diag($h->why);
is(status()->{sessions}, 2, 'status: 2 sessions kept');
is($c[1]->get('/dashboard')->code, 303, 'the least recently used one is gone');
is($c[0]->get('/dashboard')->code, 200, 'the most recent ones are kept (0)');
is($c[2]->get('/dashboard')->code, 200, 'the most recent ones are kept (2)');
expect_log(qr/SDEMO00203: the session store changed size; 2 of 3 sessions moved/,
           'moving into a smaller store warns', 'resize');
expect_log(qr/SDEMO00201: the session store is full and evicts/,
           'the smaller store is full while sessions move in', 'resize');
ok($h->stop, 'stopped');

# A snapshot file that is not one: logged, ignored, the server runs.
for my $bad (['garbage', "this is not a snapshot\n" x 10],
             ['truncated', "SDSNAP01\0\0\0\0\0\0\0\1short"],
             ['other version', 'SDSNAP99' . ("\0" x 64)]) {
    my ($what, $bytes) = @$bad;
    (my $name = "snap-$what") =~ s/ /-/g;
    my $s = SDemo::Httpd->new(name => $name, mpm => 'event',
        config => "SessionDemoSnapshot \"" . "@{[ t_logs() ]}/$name.snap" . "\"\n"
                . "SessionDemoGuestPassword password\n");
    my $file = t_logs() . "/$name.snap";
    open my $fh, '>', $file or die "write $file: $!";
    binmode $fh;
    print $fh $bytes;
    close $fh;
    ok($s->start, "a $what snapshot: httpd starts") or diag($s->why);
    my $cl = SDemo::Client->new(base => $s->base);
    $cl->login_ok('snapuser', 'password');
    is($cl->get('/dashboard')->code, 200, "a $what snapshot: the server works");
    my $log = do { local (@ARGV, $/) = ($s->error_log); <> } // '';
    like($log, qr/SDEMO00205: the snapshot \S+ is ignored: /,
         "a $what snapshot: one log line says it is ignored");
    expect_log(qr/SDEMO00205: the snapshot \S+ is ignored/, "bad snapshot ($what)", $name);
    ok($s->stop, "a $what snapshot: stopped");
}

done_testing;
