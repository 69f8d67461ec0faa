# B10: malformed, oversized and hostile input gets a clear 4xx or is treated
# as anonymous: never a 500, never a crash, never a changed session.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use IO::Socket::INET ();
use Apache::Test ();
use SDemo::Test;

my $vars = Apache::Test::vars();

my $v = client();
$v->login_ok('victim', 'password');
my $sid = $v->sid;
my $csrf = $v->session_csrf;
my $d0 = $v->dashboard_json;
ok($d0, 'a valid session');

# A 500 from LWP itself (connection trouble) is as bad as one from httpd.
sub answered {
    my ($res, $what, @codes) = @_;
    my $code = $res->code;
    my $internal = ($res->header('Client-Warning') // '') =~ /Internal/;
    ok(!$internal, "$what: the server answered") or diag($res->content);
    if (@codes) {
        ok((grep { $_ == $code } @codes), "$what: " . join('/', @codes) . " (got $code)");
    }
    else {
        ok($code < 500, "$what: no 5xx (got $code)");
    }
}

my $a = client(jar => 0);

# ---- cookies ---------------------------------------------------------------
my $noncanon = do {
    my @al = ('A' .. 'Z', 'a' .. 'z', '0' .. '9', '-', '_');
    my %ix; @ix{@al} = 0 .. 63;
    my $last = substr $sid, -1;
    substr($sid, 0, 42) . $al[ $ix{$last} ^ 1 ];
};
for my $t (["pad=" . ('x' x 7000), 'a 7 KB Cookie header'],
           [join('; ', map { "c$_=v$_" } 1 .. 300), '300 cookies'],
           [join('; ', map { "sid=x$_" } 1 .. 50), '50 sid cookies'],
           ["sid=$sid; sid=$sid", 'the valid sid twice'],
           ["sid=$sid; sid=garbage", 'the valid sid and a garbage one'],
           ['sid=' . ('A' x 41) . '$%', 'a sid with bad characters'],
           ['sid=' . ('a+b/' x 10) . 'abc', 'a sid with + and / (not base64url)'],
           ["sid=$noncanon", 'a 43-character non-canonical variant of the valid ID'],
           ["sid=${sid}A", 'the valid ID plus a character'],
           ['sid=' . substr($sid, 0, 42), 'the valid ID minus a character'],
           ["sid=$sid=", 'the valid ID with padding'],
           ["sid=\"$sid\"x", 'a quoted sid with trailing junk'],
           ['sid=' . ('A' x 5000), 'a 5000-character sid'],
           ["sid=%41%41$sid", 'a %-escaped sid'],
           ['=; ;;; =sid; sid', 'cookie syntax garbage']) {
    my ($cookie, $what) = @$t;
    my $res = $a->get('/dashboard', Cookie => $cookie);
    answered($res, "dashboard with $what", 303, 400);
    $res = $a->get('/private/', Cookie => $cookie);
    answered($res, "guarded page with $what", 303, 400);
}

# ---- bodies ------------------------------------------------------------------
my ($ltok) = client()->login_csrf;
for my $t (['username=%FF%FE&password=password&csrf=' . $ltok, 'non-UTF-8 username', 400, 403],
           ['username=ad%00min&password=secret&csrf=' . $ltok, 'a NUL in the username', 400, 403],
           ['username=admin&password=sec%00ret&csrf=' . $ltok, 'a NUL in the password', 400, 403],
           ['username=%G1&password=x&csrf=' . $ltok, 'a bad %-escape', 400],
           ['username=admin&password=secret%&csrf=' . $ltok, 'a lone % at the end', 400],
           ['username=admin&password=secret%4&csrf=' . $ltok, 'a truncated %-escape', 400],
           ['&&&==&=&', 'only separators', 400, 403],
           ['username=' . ('u' x 5000) . '&password=password&csrf=' . $ltok, 'a 5000-byte username', 400, 403, 413],
           ['username=admin&username=alice&password=secret&csrf=' . $ltok, 'the username twice', 400, 403],
           ["\x00\x01\x02\xff" x 100, 'binary junk', 400, 403]) {
    my ($body, $what, @codes) = @$t;
    my $res = $a->post_raw('/login', 'application/x-www-form-urlencoded', $body);
    answered($res, "POST /login with $what", @codes);
    ok(!defined $res->header('Set-Cookie'), "POST /login with $what: no cookie");
}
{
    my $res = $a->post_raw('/login', 'application/x-www-form-urlencoded', 'x=' . ('y' x (1024 * 1024)));
    answered($res, 'POST /login with 1 MB', 413);
    $res = $a->post_raw('/login', 'text/plain', 'username=admin&password=secret');
    answered($res, 'POST /login as text/plain', 415);
}

# Hostile POSTs to the dashboard with the valid session: refused, unchanged.
for my $t (["csrf=$csrf&action=add_note&note=%FF%FEbad", 'a non-UTF-8 note', 400],
           ["csrf=$csrf&action=add_note&note=a%00b", 'a NUL in the note', 400],
           ["csrf=$csrf&action=add_note&note=%ZZ", 'a bad %-escape', 400],
           ["csrf=$csrf&action=add_note&note=" . ('n' x 70000), 'a 70 KB note', 413],
           ["csrf=$csrf&action=add_note&action=clear_notes&note=x", 'two actions', 400]) {
    my ($body, $what, @codes) = @$t;
    my $res = $a->post_raw('/dashboard', 'application/x-www-form-urlencoded', $body, Cookie => "sid=$sid");
    answered($res, "POST /dashboard with $what", @codes);
}
{
    my $res = $a->post_raw('/dashboard', 'text/plain', "csrf=$csrf&action=add_note&note=x", Cookie => "sid=$sid");
    answered($res, 'POST /dashboard as text/plain', 415);
    $res = $a->post_raw('/dashboard', 'application/x-www-form-urlencoded',
                        "csrf=$csrf&action=add_note&note=" . ('x' x (1024 * 1024)), Cookie => "sid=$sid");
    answered($res, 'POST /dashboard with 1 MB', 413);
}

# ---- query strings and methods -------------------------------------------------
for my $t (['/login?return=%2F' . ('a' x 7000), 'a 7 KB return target'],
           ['/login?return=%2Fx%00y', 'a NUL in the return target'],
           ['/login?return=%FF%FE', 'a non-UTF-8 return target'],
           ['/login?%%%', 'a broken query'],
           ['/login?' . join('&', map { "k$_=v" } 1 .. 2000), '2000 query parameters'],
           ['/dashboard?' . ('q' x 7000), 'a 7 KB query on the dashboard'],
           ['/session-status?json&' . ('j' x 5000), 'a long status query']) {
    my ($url, $what) = @$t;
    my $res = $a->get($url);
    answered($res, "GET with $what");
    unlike($res->content, qr/\x00/, "GET with $what: no NUL in the page");
}

for my $m (qw(PROPFIND OPTIONS FOO DELETE PUT)) {
    for my $p ('/login', '/dashboard', '/logout', '/session-status') {
        my $res = $a->request($m => $p, headers => [ Cookie => "sid=$sid" ]);
        answered($res, "$m $p");
        isnt($res->code, 200, "$m $p: not 200") unless $m eq 'OPTIONS';
    }
}

# ---- raw requests ----------------------------------------------------------------
sub raw {
    my $req = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $vars->{port}, Timeout => 10)
        or return 'no connection';
    print $s $req;
    shutdown($s, 1);    # no more to send: never wait for httpd's Timeout
    local $/;
    my $out = <$s>;
    close $s;
    return $out // '';
}
{
    my $host = "Host: $vars->{servername}:$vars->{port}";
    my $out = raw("GET /dashboard HTTP/1.1\r\n$host\r\nCookie: sid=\x00$sid\r\nConnection: close\r\n\r\n");
    like($out, qr{^HTTP/1\.1 (?:303|400) }, 'a NUL byte in the Cookie header: 303 or 400');
    $out = raw("POST /login HTTP/1.1\r\n$host\r\nContent-Type: application/x-www-form-urlencoded\r\n"
             . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
             . join('', map { "1000\r\n" . ('z' x 4096) . "\r\n" } 1 .. 5) . "0\r\n\r\n");
    like($out, qr{^HTTP/1\.1 413 }, 'a chunked 20 KB login body: 413');
    $out = raw("POST /dashboard HTTP/1.1\r\n$host\r\nCookie: sid=$sid\r\n"
             . "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\nConnection: close\r\n\r\n"
             . "csrf=$csrf&action=add_note&note=short");
    like($out, qr{^HTTP/1\.1 [2-4]\d\d }, 'a body shorter than its Content-Length: an answer, no 5xx');
    $out = raw("GET /dashboard HTTP/1.0\r\nCookie: sid=$sid\r\n\r\n");
    like($out, qr{^HTTP/1\.1 200 }, 'HTTP/1.0 without Host: the session works');
}

# ---- the session survived untouched ---------------------------------------------
my $d1 = $v->dashboard_json;
ok($d1, 'the valid session still works');
my $visits_before = $d0->{visits} + 1;    # + the raw HTTP/1.0 GET above
is($d1->{visits}, $visits_before + 1, 'its visits changed only by its own GETs');
my @notes = @{ $d1->{notes} || [] };
ok(@notes <= 1 && !grep({ $_ ne 'short' } @notes), 'no hostile note was stored')
    or diag(explain \@notes);
is(client()->login('admin', 'secret')->code, 303, 'the server still logs people in');

done_testing;
