# B5: the dashboard, HTML and JSON; visits; notes; limits.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SDemo::Test;

# ---- anonymous -----------------------------------------------------------
sub anon_ok {
    my ($cookie, $what) = @_;
    my $c = client(jar => 0);
    my $res = $c->get('/dashboard', defined $cookie ? (Cookie => $cookie) : ());
    is($res->code, 303, "$what: 303");
    my $loc = location($res) // '';
    like($loc, qr{^/login\?(?:.*&)?return=%2Fdashboard(?:&|$)}i,
         "$what: to /login?return=%2Fdashboard ($loc)");
    ok(!defined $res->header('Set-Cookie') || $res->header('Set-Cookie') =~ /Max-Age=0/,
       "$what: no new session cookie");
}

anon_ok(undef, 'no cookie');
anon_ok('sid=' . random_id(), 'an unknown well-formed ID');
anon_ok('sid=garbage', 'a garbage ID');
anon_ok('sid=', 'an empty ID');
anon_ok('other=1', 'only other cookies');

my $c = client();
is($c->login('guestdash', 'password')->code, 303, 'login guestdash');
my $sid = $c->sid;
ok($sid, 'got a session cookie');

anon_ok("sid=$sid; sid=garbage", 'duplicate sid cookies (valid first)');
anon_ok("sid=garbage; sid=$sid", 'duplicate sid cookies (valid second)');
anon_ok("sid=$sid; sid=$sid", 'the valid sid twice');

# ---- HTML ----------------------------------------------------------------
my $res = $c->get('/dashboard');
is($res->code, 200, 'dashboard with a session: 200');
like($res->header('Content-Type') // '', qr{^text/html}, 'text/html');
my $html = $res->decoded_content;
like($html, qr/Welcome, guestdash!/, 'Welcome, NAME!');
like($html, qr/\buser\b/i, 'shows the user');
like($html, qr/\buser\b.*\bguestdash\b|\bguestdash\b.*\buser\b/si, 'user and role');
like($html, qr/created/i, 'shows created');
like($html, qr/last access/i, 'shows last access');
like($html, qr/expire/i, 'shows the expiry');
like($html, qr/visits/i, 'shows visits');
like($html, qr/notes/i, 'shows notes');
(my $text = $html) =~ s/<[^>]*>/ /g;
like($text, qr/visits\W*1\b/i,
     'the first view (the duplicate-cookie requests did not count) shows visits 1');

my %f;
for my $form (forms($res)) {
    my $act = $form->find_input('action');
    my $key = $form->action->path . ($act ? ':' . ($act->value // '') : '');
    $f{$key} = $form;
}
my $add = $f{'/dashboard:add_note'};
ok($add, 'a form with action=add_note posting to /dashboard');
SKIP: {
    skip 'no add_note form', 4 unless $add;
    is(uc $add->method, 'POST', 'add_note form: POST');
    my $note = $add->find_input('note');
    ok($note && $note->type eq 'textarea', 'add_note form: a textarea "note"');
    my $csrf = $add->find_input('csrf');
    ok($csrf && $csrf->type eq 'hidden' && length($csrf->value // '') >= 16,
       'add_note form: hidden csrf');
    is($add->find_input('action')->type, 'hidden', 'add_note form: action is hidden');
}
my $clear = $f{'/dashboard:clear_notes'};
ok($clear && uc $clear->method eq 'POST' && $clear->find_input('csrf'),
   'a POST form with action=clear_notes and csrf');
my $lo = $f{'/logout'};
ok($lo && uc $lo->method eq 'POST' && $lo->find_input('csrf')
       && $lo->find_input('csrf')->type eq 'hidden',
   'a logout form: POST /logout with hidden csrf');
my $csrf = $add ? $add->value('csrf') : undef;

# ---- JSON ----------------------------------------------------------------
my $t0 = time;
my ($d, $jr) = $c->dashboard_json;
is($jr->code, 200, 'JSON dashboard: 200');
like($jr->header('Content-Type') // '', qr{^application/json}, 'application/json');
ok(ref $d eq 'HASH', 'a JSON object') or diag($jr->content);
$d ||= {};
is($d->{user}, 'guestdash', 'user');
is($d->{role}, 'guest', 'role (a guest)');
is_deeply([ json_int_fields($d, qw(created last_access expires visits)) ], [],
          'created, last_access, expires, visits are integers');
is($d->{visits}, 2, 'visits 2 (HTML view, then this one)');
is(ref $d->{notes}, 'ARRAY', 'notes is an array');
is_deeply($d->{notes}, [], 'no notes yet');
ok(abs(($d->{created} // 0) - $t0) < 60, 'created is now (Unix seconds)');
ok(($d->{created} // 0) <= ($d->{last_access} // -1), 'created <= last_access');
ok(($d->{expires} // 0) > $t0, 'expires is in the future');
ok(($d->{expires} // 0) <= ($d->{last_access} // 0) + 1800,
   'expires is at most last access + the idle timeout');

my $v = $d->{visits} // 0;
sub visits_now {
    my $x = $c->dashboard_json;
    return $x ? $x->{visits} : -1;
}
for (1 .. 3) {
    is(visits_now(), ++$v, "each GET counts one visit ($v)");
}
$c->get('/dashboard');
$v++;
is(visits_now(), ++$v, 'the HTML view counted one visit');
$c->head('/dashboard');
my $after_head = visits_now();
ok($after_head == $v + 1 || $after_head == $v + 2, 'HEAD counts at most one visit');
$v = $after_head;

# ---- notes -----------------------------------------------------------------
$res = $c->add_note('first note', $csrf);
is($res->code, 303, 'add_note: 303');
is(location($res), '/dashboard', 'add_note: back to /dashboard');
$d = $c->dashboard_json;
is($d->{visits}, ++$v, 'the POST counted no visit');
is_deeply($d->{notes}, ['first note'], 'the note is there');

my $tricky = qq{quote " backslash \\ tab \t newline \n </script> & < > caf\x{e9} \x{2713}};
$res = $c->add_note($tricky, $csrf);
is($res->code, 303, 'add_note with special characters: 303');
$d = $c->dashboard_json;
$v++;
is_deeply($d->{notes}, ['first note', $tricky], 'JSON gives the note back exactly (UTF-8, escapes)');

for my $t ([ '', 'csrf missing' ], [ 'x' x 43, 'csrf wrong' ]) {
    my ($tok, $what) = @$t;
    my @f = (action => 'add_note', note => 'should not be added');
    push @f, csrf => $tok if length $tok;
    $res = $c->post_form('/dashboard', \@f);
    is($res->code, 403, "add_note, $what: 403");
}
$res = $c->add_note('', $csrf);
is($res->code, 400, 'an empty note: 400');
$res = $c->post_form('/dashboard', [ csrf => $csrf, action => 'add_note' ]);
is($res->code, 400, 'no note field: 400');
$res = $c->post_form('/dashboard', [ csrf => $csrf, action => 'frobnicate' ]);
is($res->code, 400, 'an unknown action: 400');
$res = $c->post_form('/dashboard', [ csrf => $csrf ]);
is($res->code, 400, 'no action: 400');
$res = $c->add_note('y' x 1001, $csrf);
is($res->code, 413, 'a note of 1001 bytes: 413');

$d = $c->dashboard_json;
is($d->{visits}, ++$v, 'refused POSTs counted no visit');
is_deeply($d->{notes}, ['first note', $tricky], 'refused POSTs changed nothing');

$res = $c->add_note('z' x 1000, $csrf);
is($res->code, 303, 'a note of exactly 1000 bytes: accepted');

# SessionDemoMaxDataSize is 4K here: fill up until 413.
my ($n413, $added) = (0, 0);
for my $i (1 .. 10) {
    $res = $c->add_note(sprintf('%02d', $i) . ('n' x 900), $csrf);
    if ($res->code == 413) { $n413 = $i; last }
    last unless $res->code == 303;
    $added++;
}
ok($n413, "notes beyond SessionDemoMaxDataSize: 413 (after $added more notes)");
$d = $c->dashboard_json;
$v++;
is($d->{visits}, $v, 'visits unchanged by the refused note');
is(scalar @{ $d->{notes} || [] }, 3 + $added, 'notes unchanged by the refused note');
is(visits_now(), ++$v, 'the session still counts visits');

$res = $c->clear_notes($csrf);
is($res->code, 303, 'clear_notes: 303');
is(location($res), '/dashboard', 'clear_notes: back to /dashboard');
$d = $c->dashboard_json;
is_deeply($d->{notes}, [], 'clear_notes removed all notes');
is($d->{visits}, ++$v, 'clear_notes counted no visit');

$res = $c->add_note('after clearing', $csrf);
is($res->code, 303, 'a note after clear_notes: memory was given back');

# Another user's session is separate.
my $o = client();
$o->login('alice', 'wonderland');
my $od = $o->dashboard_json;
is($od->{user}, 'alice', 'another session: its own user');
is_deeply($od->{notes}, [], 'another session: its own notes');
is($od->{visits}, 1, 'another session: its own visits');
$res = $o->add_note('alice note', $csrf);
is($res->code, 403, "one session's csrf token does not work for another session");

done_testing;
