# Identity headers under other spellings are removed over HTTP/2 as well as
# HTTP/1.1: a client's x_session_demo_user (HTTP/2 header names are lower
# case) must not reach anything behind the module. mod_http2 hands the
# request to the same hooks, so the strip runs first there too.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use SDemo::Test;
use SDemo::Httpd;
use Apache::Test ();

my $curl = -x '/usr/bin/curl' ? '/usr/bin/curl' : undef;
my ($moddir) = map { m{LoadModule \S+ (\S+)/mod_\w+\.so} ? $1 : () }
               do { open my $fh, '<', Apache::Test::vars()->{top_dir} . '/build/test-modules.conf' or (); <$fh> };
plan skip_all => 'curl is not installed' unless $curl;
plan skip_all => 'curl has no HTTP/2' unless `$curl --version` =~ /HTTP2/;
plan skip_all => 'mod_http2 is not installed' unless $moddir && -f "$moddir/mod_http2.so";

my $h = SDemo::Httpd->new(name => 'http2', mpm => 'event', config => <<"EOF2");
<IfModule !http2_module>
    LoadModule http2_module "$moddir/mod_http2.so"
</IfModule>
Protocols h2c http/1.1
<Location />
    Header always set X-Echo-1 "%{X_Session_Demo_User}i"
    Header always set X-Echo-2 "%{X-Session_Demo-User}i"
    Header always set X-Echo-3 "%{x-session-demo-role}i"
</Location>
EOF2
ok($h->start, 'httpd with h2c') or BAIL_OUT($h->why);

for my $proto (['--http2-prior-knowledge', qr{^HTTP/2 200}m, 'HTTP/2'],
               ['--http1.1', qr{^HTTP/1\.1 200}m, 'HTTP/1.1']) {
    my ($flag, $status, $name) = @$proto;
    my $out = `$curl -s -o /dev/null -D - $flag -H 'x_session_demo_user: admin' -H 'X-Session_Demo-User: admin' -H 'x-session-demo-role: admins' ${\ $h->base}/index.html`;
    like($out, $status, "$name: 200");
    for my $n (1 .. 3) {
        my ($v) = $out =~ /^x-echo-$n: (.*?)\r?$/mi;
        ok(defined $v && $v !~ /admin/, "$name: look-alike header $n removed (" . ($v // 'none') . ')');
    }
}
ok($h->stop, 'stopped');
done_testing;
