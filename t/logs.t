# B3: one log line per login success and failure, with the client address
# and the username, for fail2ban; usernames cannot forge log lines; the
# session ID never shows in a log (t/zz_error_log.t checks that for every ID
# the suite got).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::HiRes qw(sleep);
use SDemo::Test;

my $log = t_logs() . '/error_log';

sub log_text {
    open my $fh, '<', $log or return '';
    local $/;
    my $t = <$fh>;
    close $fh;
    return $t;
}

# Lines appended to the error log while CODE runs.
sub new_lines {
    my $code = shift;
    my $before = length log_text();
    $code->();
    my $text = '';
    for (1 .. 20) {
        $text = substr(log_text(), $before);
        last if $text =~ /login/;
        sleep 0.05;
    }
    return $text;
}

# B4: a warning at start names each user who cannot log in, and the fix.
for my $u (qw(md5user lowcost)) {
    like(log_text(), qr/^\[[^]]+\] \[session_demo:warn\] .*"$u".*htpasswd -B/m,
         "a startup warning names $u and the fix (htpasswd -B)");
}
unlike(log_text(), qr/\[session_demo:warn\] .*"(?:admin|alice|longpw)"/,
       'no warning about the good entries');

my $c = client();
my $got = new_lines(sub { $c->login('admin', 'secret') });
like($got, qr/^\[[^]]+\] \[session_demo:\w+\] .*SDEMO\d+: login ok: user "admin" from 127\.0\.0\.1\b/m,
     'success: SDEMOnnnnn: login ok: user "admin" from 127.0.0.1');
my @ok_lines = grep { /login ok/ } split /\n/, $got;
is(scalar @ok_lines, 1, 'exactly one line for one login');

$got = new_lines(sub { client()->login('bob', 'whatever') });
like($got, qr/^\[[^]]+\] \[session_demo:\w+\] .*SDEMO\d+: login failed: user "bob" from 127\.0\.0\.1\b/m,
     'failure: SDEMOnnnnn: login failed: user "bob" from 127.0.0.1');

$got = new_lines(sub { client()->login('admin', 'wrong') });
like($got, qr/login failed: user "admin" from 127\.0\.0\.1\b/m,
     'a wrong password of a known user: the same kind of line');

my $sid = $c->sid;
unlike(log_text(), qr/\Q$sid\E/, 'the session ID is not in the error log');

# A username cannot forge a log line or break the quoting.
my $evil = qq{zz"\nINJECTED [session_demo:notice] login ok: user "fakeadmin" from 10.9.9.9};
$got = new_lines(sub { client()->login($evil, 'password-wrong') });
ok(length $got, 'the forged attempt was logged');
unlike(log_text(), qr/^INJECTED/m, 'no log line starts with text from the username');
unlike(log_text(), qr/login ok: user "fakeadmin"/, 'no forged "login ok" line');
my ($line) = grep { /login failed/ && /zz/ } split /\n/, $got;
ok($line, 'one "login failed" line for it');
# A log watcher's failregex, strict or lazy, must find the real client.
for my $re (qr/login failed: user ".*?" from (\S+)/, qr/login failed: user "[^"]*" from (\S+)/,
            qr/login failed: user ".*" from (\S+)/) {
    my ($host) = ($line // '') =~ $re;
    is($host, '127.0.0.1', "failregex $re finds 127.0.0.1 in the forged attempt's line")
        or diag($line);
}

# fail2ban: the documented failregex finds the address of every failure.
my $failregex = qr/login failed: user ".*" from (\d+\.\d+\.\d+\.\d+)/;
my @addrs = map { /$failregex/ ? $1 : () } split /\n/, log_text();
ok(@addrs >= 2 && !grep({ $_ ne '127.0.0.1' } @addrs), 'a failregex finds 127.0.0.1 in every failure line');

# Access log: neither the ID nor the password.
{
    open my $fh, '<', t_logs() . '/access_log';
    my $acc = do { local $/; <$fh> } // '';
    unlike($acc, qr/\Q$sid\E/, 'the session ID is not in the access log');
    unlike($acc, qr/secret/, 'no password in the access log');
}

done_testing;
