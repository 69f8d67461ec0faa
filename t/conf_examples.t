# The configurations shipped in conf/ are valid httpd syntax: the demo's
# own (conf/session_demo.conf, which `make run` uses) and the HTTPS example
# with HSTS (conf/session_demo-https.conf), with a throw-away certificate
# in place of the example paths.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use File::Spec;
use Apache::Test ();
use SDemo::Test;

my $vars = Apache::Test::vars();
my $httpd = $vars->{httpd};
my $top = $vars->{top_dir};
my $dir = File::Spec->catdir(t_logs(), 'conf_examples');
mkdir $dir;
my $moddir = `$vars->{apxs} -q LIBEXECDIR`;
chomp $moddir;

my ($cert, $key) = ("$dir/cert.pem", "$dir/key.pem");
system("openssl req -x509 -newkey rsa:2048 -nodes -keyout '$key' -out '$cert' "
       . "-days 1 -subj /CN=www.example.com >/dev/null 2>&1") == 0
    or BAIL_OUT('openssl could not make a certificate');

sub base {
    my $conf = "ServerRoot \"$dir\"\nServerName www.example.com\n"
             . "PidFile \"$dir/httpd.pid\"\nErrorLog \"$dir/error_log\"\n"
             . "TypesConfig /etc/mime.types\n";
    for my $m (qw(mpm_event authz_core authz_host alias headers mime dir
                  socache_shmcb ssl)) {
        $conf .= "LoadModule ${m}_module $moddir/mod_$m.so\n";
    }
    return $conf . "LoadModule session_demo_module \"$top/.libs/mod_session_demo.so\"\n";
}

sub configtest {
    my ($name, $text) = @_;
    my $file = "$dir/$name.conf";
    open my $fh, '>', $file or die "write $file: $!";
    print $fh $text;
    close $fh;
    # Under SANITIZE=1 the module needs the ASan runtime preloaded.
    my $env = $ENV{SDEMO_HTTPD_ENV} || '';
    my $out = `env $env '$httpd' -t -f '$file' 2>&1`;
    return ($? >> 8, $out);
}

my $https = do { local (@ARGV, $/) = ("$top/conf/session_demo-https.conf"); <> };
like($https, qr/Strict-Transport-Security "max-age=\d+/, 'the HTTPS example sends HSTS');
$https =~ s{/etc/ssl/certs/www\.example\.com\.pem}{$cert};
$https =~ s{/etc/ssl/private/www\.example\.com\.key}{$key};
$https =~ s{/etc/apache2/session-demo\.users}{$top/conf/users};
$https =~ s{/etc/apache2/session-demo\.groups}{$top/conf/groups};
$https =~ s{\*:80\b}{127.0.0.1:80};
$https =~ s{\*:443\b}{127.0.0.1:443};
my ($rc, $out) = configtest('https', base() . "Listen 127.0.0.1:80\nListen 127.0.0.1:443\n" . $https);
is($rc, 0, 'conf/session_demo-https.conf passes configtest') or diag($out);

my ($rc2, $out2) = configtest('demo', base() . "Listen 127.0.0.1:80\n"
    . "Define SDEMO_CONF \"$top/conf\"\nDefine SDEMO_HTDOCS \"$top/htdocs\"\n"
    . "Include \"$top/conf/session_demo.conf\"\n");
is($rc2, 0, 'conf/session_demo.conf passes configtest') or diag($out2);

done_testing;
