# B5, B11: many requests of one session at the same time count every visit
# exactly once; parallel writes lose nothing; parallel logins all work.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use POSIX ();
use SDemo::Test;

my $PROCS = 20;
my $EACH  = 10;

my $c = client();
is($c->login('concurrent', 'password')->code, 303, 'login');
my $sid = $c->sid;
my $d = $c->dashboard_json;
my $v0 = $d ? $d->{visits} : -1;
is($v0, 1, 'visits 1 before the storm');

# Every child reports the visit numbers it saw, one per line, through a pipe.
sub storm {
    my ($n, $each, $work) = @_;
    pipe(my $r, my $w) or die "pipe: $!";
    my @kids;
    for my $k (1 .. $n) {
        my $pid = fork;
        die "fork: $!" unless defined $pid;
        if (!$pid) {
            close $r;
            my @out = eval { $work->($k, $each) };
            push @out, "ERR $@" if $@;
            print {$w} "$_\n" for @out;
            close $w;
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    close $w;
    my @lines = <$r>;
    close $r;
    waitpid $_, 0 for @kids;
    chomp @lines;
    return @lines;
}

my @seen = storm($PROCS, $EACH, sub {
    my (undef, $each) = @_;
    my $cl = client(jar => 0);
    my @v;
    for (1 .. $each) {
        my $res = $cl->get('/dashboard', Accept => 'application/json', Cookie => "sid=$sid");
        my $j = $res->code == 200 ? SDemo::Test::decode_json_ok($res) : undef;
        push @v, $j ? $j->{visits} : 'BAD ' . $res->code;
    }
    return @v;
});

my $total = $PROCS * $EACH;
my @bad = grep { !/^\d+$/ } @seen;
is(scalar @seen, $total, "$total answers");
is_deeply(\@bad, [], 'every parallel request: 200 with JSON');
my %count;
$count{$_}++ for grep { /^\d+$/ } @seen;
my @dups = grep { $count{$_} > 1 } sort { $a <=> $b } keys %count;
is_deeply(\@dups, [], 'no visit number was handed out twice');
my @range = grep { $_ <= $v0 || $_ > $v0 + $total } keys %count;
is_deeply(\@range, [], "every visit number between " . ($v0 + 1) . " and " . ($v0 + $total));

$d = $c->dashboard_json;
is($d && $d->{visits}, $v0 + $total + 1, "visits afterwards: exactly $total more (+1)");

# The storm ran on several threads (and usually processes) of the server.
{
    my $log = SDemo::Test::t_logs() . '/pid_log';
    my (%workers, %procs);
    if (open my $fh, '<', $log) {
        while (<$fh>) {
            next unless m{^(\d+) (\d+) \S+ "GET /dashboard };
            $workers{"$1/$2"}++;
            $procs{$1}++;
        }
        close $fh;
    }
    cmp_ok(scalar keys %workers, '>=', 2, 'served by ' . (keys %workers)
           . ' threads in ' . (keys %procs) . ' processes');
}

# Parallel writes: every note arrives.
{
    my $csrf = $c->session_csrf;
    my @r = storm(10, 1, sub {
        my ($k) = @_;
        my $cl = client(jar => 0);
        my $res = $cl->post_form('/dashboard',
            [ csrf => $csrf, action => 'add_note', note => "note $k" ],
            Cookie => "sid=$sid");
        return $res->code;
    });
    is_deeply([ sort @r ], [ (303) x 10 ], '10 parallel add_note: 303 each');
    $d = $c->dashboard_json;
    is_deeply([ sort @{ $d->{notes} || [] } ], [ sort map { "note $_" } 1 .. 10 ],
              'all 10 notes are there');
}

# Parallel logins: all succeed with distinct IDs.
{
    my @r = storm(15, 1, sub {
        my ($k) = @_;
        my $cl = SDemo::Client->new;
        my $res = $cl->login("par$k", 'password');
        return $res->code . ' ' . ($cl->sid // 'none');
    });
    my @ok = grep { /^303 [A-Za-z0-9_-]{43}$/ } @r;
    is(scalar @ok, 15, '15 parallel logins: 303 with an ID each') or diag("@r");
    my %ids = map { (split ' ')[1] => 1 } @ok;
    is(scalar keys %ids, 15, '15 distinct IDs');
}

done_testing;
