# B9: every dynamic value is HTML-escaped.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SDemo::Test;

for my $t (['<b>x</b>', qr/&lt;b&gt;x&lt;\/b&gt;/, qr/<b>x<\/b>/],
           ['a"&\'b', qr/a(?:&quot;|&#34;|&#x22;)&amp;(?:'|&#39;|&#x27;|&apos;)b/, qr/a"&/]) {
    my ($name, $esc, $raw) = @$t;
    my $c = client();
    my $res = $c->login($name, 'password');
    is($res->code, 303, "guest login as $name: 303");
    $res = $c->get('/dashboard');
    is($res->code, 200, "dashboard of $name: 200");
    like($res->content, $esc, "dashboard shows $name escaped");
    unlike($res->content, $raw, "dashboard never shows $name raw");
    my $d = $c->dashboard_json;
    is($d && $d->{user}, $name, "JSON gives $name exactly");
    $res = $c->get('/logout');
    unlike($res->content, $raw, "logout page never shows $name raw");

    $res = $c->add_note("<script>alert('$name')</script> & <img src=x onerror=alert(1)>");
    is($res->code, 303, 'a note with markup: accepted');
    $res = $c->get('/dashboard');
    like($res->content, qr/&lt;script&gt;alert\(/, 'the note is escaped');
    unlike($res->content, qr/<script|<img/i, 'no raw markup from the note');
    $d = $c->dashboard_json;
    is($d->{notes}[0], "<script>alert('$name')</script> & <img src=x onerror=alert(1)>",
       'JSON gives the note exactly');
}

# UTF-8 is shown as UTF-8: escaping must not turn "café — ✓" into byte
# references (which browsers show as "cafÃ© â€” â✓").
{
    use utf8;
    my $note = "café — ünïcödé ✓";
    my $c = client();
    $c->login_ok('utf8user', 'password');
    require Encode;
    is($c->add_note(Encode::encode_utf8($note))->code, 303, 'a note in UTF-8: accepted');
    my $res = $c->get('/dashboard');
    like($res->header('Content-Type') // '', qr/charset=utf-8/i, 'the page is served as UTF-8');
    my $html = $res->decoded_content;
    like($html, qr/\Q$note\E/, 'the dashboard shows the note exactly as written');
    unlike($res->content, qr/&#\d+;/, 'no byte-by-byte character references');
    my $d = $c->dashboard_json;
    is($d && $d->{notes}[0], $note, 'JSON gives the note exactly (valid UTF-8)');
}

# A refused login that echoes the username escapes it.
{
    my $res = client()->login('<i>evil</i>', 'wrong');
    is($res->code, 403, 'refused login with markup in the name: 403');
    unlike($res->content, qr/<i>evil<\/i>/, 'never echoed raw');
}

# The return target in the form is escaped.
{
    my $res = client()->get('/login?return=' . url_escape('/x"><script>alert(1)</script>'));
    ok($res->code == 200 || $res->code == 400, 'a return value with markup: 200 or 400');
    unlike($res->content, qr/"><script>|<script/i, 'never echoed raw');
    my $v = form_value($res, 'return');
    ok(!defined $v || $v eq '/x"><script>alert(1)</script>', 'the field holds the value, no more');
}

done_testing;
