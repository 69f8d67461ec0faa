package SDemo::Httpd;

# An extra httpd a test starts by itself, next to the Apache::Test server:
# same httpd binary, same module and modules list (build/test-modules.conf,
# written by scripts/run-tests.sh), but its own MPM, port, logs and
# server-wide directives, so that a test can check store-wide behaviour
# (prefork, a full store, restarts) on a fresh store.
#
#   my $h = SDemo::Httpd->new(name => 'full', mpm => 'prefork',
#                             config => "SessionDemoCapacity 3\n");
#   $h->start or die $h->why;
#   my $c = SDemo::Client->new(base => $h->base);
#   $h->graceful; $h->restart; $h->stop;
#
# Logs go to t/logs/NAME/ (error_log, access_log with "%P %{tid}P" first,
# so tests can see which process served a request); t/zz_error_log.t checks
# them like the main server's. The server is stopped when the object goes
# away.

use strict;
use warnings;

use Cwd ();
use File::Path ();
use File::Spec ();
use IO::Socket::INET ();
use POSIX ();
use Time::HiRes ();

my %MPM_DEFAULTS = (
    # MaxConnectionsPerChild 1: every connection gets a fresh process, so
    # consecutive requests are served by different processes.
    prefork => <<'EOF',
StartServers 6
MinSpareServers 6
MaxSpareServers 12
ServerLimit 24
MaxRequestWorkers 24
MaxConnectionsPerChild 1
EOF
    event => <<'EOF',
StartServers 3
ServerLimit 4
ThreadsPerChild 8
MinSpareThreads 8
MaxSpareThreads 32
MaxRequestWorkers 32
EOF
    worker => <<'EOF',
StartServers 3
ServerLimit 4
ThreadsPerChild 8
MinSpareThreads 8
MaxSpareThreads 32
MaxRequestWorkers 32
EOF
);

# new(name => NAME, mpm => prefork|event|worker, config => TEXT (server
# config appended after the defaults below), mpm_config => TEXT (replaces the
# MPM defaults), pages => 0 (no <Location>s for the module's pages),
# tls => 1 (HTTPS with a throw-away self-signed certificate), module => PATH
# (another build of the module))
sub new {
    my ($class, %o) = @_;
    require Apache::Test;
    my $vars = Apache::Test::vars();
    my $name = $o{name} or die "SDemo::Httpd->new: name required";
    my $self = bless {
        name     => $name,
        mpm      => $o{mpm} || 'prefork',
        config   => $o{config} || '',
        mpm_config => $o{mpm_config},
        pages    => exists $o{pages} ? $o{pages} : 1,
        tls      => $o{tls} ? 1 : 0,
        module   => $o{module},
        httpd    => $vars->{httpd},
        top_dir  => $vars->{top_dir},
        t_dir    => $vars->{t_dir},
        user     => $vars->{user},
        group    => $vars->{group},
        dir      => File::Spec->catdir($vars->{t_logs}, $name),
        owner    => $$,
    }, $class;
    $self->{conf} = File::Spec->catfile($self->{dir}, 'httpd.conf');
    $self->{pid_file} = File::Spec->catfile($self->{dir}, 'httpd.pid');
    $self->{error_log} = File::Spec->catfile($self->{dir}, 'error_log');
    $self->{access_log} = File::Spec->catfile($self->{dir}, 'access_log');
    File::Path::rmtree($self->{dir});
    File::Path::mkpath($self->{dir});
    chmod 0755, $self->{dir};
    return $self;
}

sub port      { $_[0]{port} }
sub base      { ($_[0]{tls} ? 'https' : 'http') . "://127.0.0.1:$_[0]{port}" }
sub error_log { $_[0]{error_log} }
sub access_log { $_[0]{access_log} }
sub dir       { $_[0]{dir} }
sub why       { $_[0]{why} || '' }

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, Proto => 'tcp', ReuseAddr => 1)
        or die "cannot bind a free port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub _module_lines {
    my $self = shift;
    my $file = File::Spec->catfile($self->{top_dir}, 'build', 'test-httpd.conf');
    open my $fh, '<', $file or die "open $file: $! (run scripts/run-tests.sh)";
    my @lines = grep { !/^\s*#/ && !/mpm_\w+_module/ } <$fh>;
    close $fh;
    my $moddir = (map { m{^LoadModule\s+mpm_\w+\s+(\S+)/mod_mpm_} ? $1 : () }
                  do { open my $f2, '<', $file; <$f2> })[0]
        or die "no MPM LoadModule in $file";
    my @extra;
    push @extra, "LoadModule ssl_module $moddir/mod_ssl.so\n" if $self->{tls};
    return ("LoadModule mpm_$self->{mpm}_module $moddir/mod_mpm_$self->{mpm}.so\n",
            @lines, @extra);
}

# A self-signed certificate for 127.0.0.1 (not a CA, with the IP as
# subjectAltName, so that mod_ssl has nothing to warn about).
sub _tls_config {
    my $self = shift;
    my $dir = $self->{dir};
    my ($crt, $key) = ("$dir/server.crt", "$dir/server.key");
    unless (-s $crt && -s $key) {
        system('openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1'
             . " -addext basicConstraints=critical,CA:FALSE -addext subjectAltName=IP:127.0.0.1"
             . " -keyout '$key' -out '$crt' >/dev/null 2>&1") == 0
            or die 'openssl req failed';
    }
    return <<"EOF";
SSLEngine on
SSLCertificateFile "$crt"
SSLCertificateKeyFile "$key"
SSLSessionCache "shmcb:$dir/ssl_scache(512000)"
EOF
}

sub write_config {
    my $self = shift;
    my $t = $self->{t_dir};
    my $dir = $self->{dir};
    my $mpm_config = defined $self->{mpm_config} ? $self->{mpm_config}
                                                 : $MPM_DEFAULTS{$self->{mpm}};
    my $run_as = '';
    if ($> == 0) {
        $run_as = "User $self->{user}\nGroup $self->{group}\n";
    }
    my $pages = !$self->{pages} ? '' : <<"EOF";
<Location /login>
    SetHandler session-demo-login
</Location>
<Location /dashboard>
    SetHandler session-demo-dashboard
</Location>
<Location /logout>
    SetHandler session-demo-logout
</Location>
<Location /session-status>
    SetHandler session-demo-status
    Require ip 127.0.0.1 ::1
</Location>
<Location /server-status>
    SetHandler server-status
    Require ip 127.0.0.1 ::1
</Location>
<Location /private>
    AuthType session-demo
    Require valid-user
</Location>
EOF
    my $tls = $self->{tls} ? $self->_tls_config : '';
    my $conf = join '', "# generated by SDemo::Httpd for $0\n",
        $self->_module_lines, <<"EOF";
LoadModule session_demo_module "@{[ $self->{module} || "$self->{top_dir}/.libs/mod_session_demo.so" ]}"

ServerRoot "$t"
DocumentRoot "$t/htdocs"
Listen 127.0.0.1:$self->{port}
ServerName 127.0.0.1:$self->{port}
PidFile "$self->{pid_file}"
DefaultRuntimeDir "$dir"
ErrorLog "$self->{error_log}"
LogLevel info session_demo:debug
LogFormat "%P %{tid}P %h \\"%r\\" %>s" sdemo
CustomLog "$self->{access_log}" sdemo
ExtendedStatus On
KeepAlive On
$run_as
$mpm_config
$tls
<Directory />
    Options FollowSymLinks
    AllowOverride None
</Directory>
AddType text/html .shtml
AddOutputFilter INCLUDES .shtml
DirectoryIndex index.html index.shtml
<Directory "$t/htdocs">
    Options +Includes
</Directory>

SessionDemoUserFile "$t/conf/users"
SessionDemoGroupFile "$t/conf/groups"
SessionDemoGuestPassword password
SessionDemoLoginThrottle 1000 60

$self->{config}
$pages
EOF
    open my $fh, '>', $self->{conf} or die "write $self->{conf}: $!";
    print $fh $conf;
    close $fh;
    chmod 0644, $self->{conf};
}

# Run httpd with ARGS (a list), with $SDEMO_HTTPD_ENV; returns (exit code,
# output).
sub httpd_cmd {
    my ($self, @args) = @_;
    my @env = split ' ', ($ENV{SDEMO_HTTPD_ENV} || '');
    my @cmd = ((@env ? ('env', @env) : ()), $self->{httpd},
               '-d', $self->{t_dir}, '-f', $self->{conf}, @args);
    my $out = '';
    my $pid = open my $fh, '-|';
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', '/dev/null';
        exec @cmd or POSIX::_exit(127);
    }
    local $/;
    $out = <$fh>;
    close $fh;
    return ($? >> 8, $out // '');
}

sub pid {
    my $self = shift;
    open my $fh, '<', $self->{pid_file} or return undef;
    my $pid = <$fh>;
    close $fh;
    return undef unless defined $pid && $pid =~ /^(\d+)/;
    return $1;
}

sub _accepts {
    my $self = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $self->{port}, Timeout => 2);
    return 0 unless $s;
    close $s;
    return 1;
}

sub configtest {
    my $self = shift;
    $self->{port} ||= free_port();
    $self->write_config;
    return $self->httpd_cmd('-t');
}

# Start; returns true when the server answers. On failure, why() tells.
sub start {
    my $self = shift;
    for my $try (1 .. 3) {
        $self->{port} = free_port();
        $self->write_config;
        my ($rc, $out) = $self->httpd_cmd('-k', 'start');
        if ($rc != 0) {
            $self->{why} = "httpd -k start exited $rc: $out";
            next if $out =~ /Address already in use/;
            return 0;
        }
        if ($self->wait_up(30)) {
            $self->{started} = 1;
            return 1;
        }
        $self->{why} = "httpd did not come up on port $self->{port}; "
                     . $self->tail_error_log(10);
        $self->kill_all;
        return 0 unless $self->tail_error_log(50) =~ /Address already in use/;
    }
    return 0;
}

sub wait_up {
    my ($self, $timeout) = @_;
    my $end = Time::HiRes::time() + $timeout;
    while (Time::HiRes::time() < $end) {
        my $pid = $self->pid;
        return 1 if $pid && kill(0, $pid) && $self->_accepts;
        Time::HiRes::sleep(0.1);
    }
    return 0;
}

sub tail_error_log {
    my ($self, $n) = @_;
    open my $fh, '<', $self->{error_log} or return '(no error_log)';
    my @l = <$fh>;
    close $fh;
    splice @l, 0, @l - $n if @l > $n;
    return join '', @l;
}

# The number of "resuming normal operations" lines: one per (re)start.
sub generations {
    my $self = shift;
    open my $fh, '<', $self->{error_log} or return 0;
    my $n = grep { /resuming normal operations/ } <$fh>;
    close $fh;
    return $n;
}

sub _signal_and_wait {
    my ($self, $how) = @_;
    my $before = $self->generations;
    my ($rc, $out) = $self->httpd_cmd('-k', $how);
    if ($rc != 0) {
        $self->{why} = "httpd -k $how exited $rc: $out";
        return 0;
    }
    my $end = Time::HiRes::time() + 30;
    while (Time::HiRes::time() < $end) {
        return 1 if $self->generations > $before && $self->_accepts;
        Time::HiRes::sleep(0.1);
    }
    $self->{why} = "no new generation after -k $how; " . $self->tail_error_log(10);
    return 0;
}

sub graceful { $_[0]->_signal_and_wait('graceful') }
sub restart  { $_[0]->_signal_and_wait('restart') }

# Stop and wait until the parent is gone.
sub stop {
    my $self = shift;
    return 1 unless $self->{started};
    my $pid = $self->pid;
    $self->httpd_cmd('-k', 'stop');
    my $end = Time::HiRes::time() + 30;
    while ($pid && kill(0, $pid) && Time::HiRes::time() < $end) {
        Time::HiRes::sleep(0.1);
    }
    if ($pid && kill(0, $pid)) {
        $self->{why} = "httpd $pid did not stop";
        $self->kill_all;
        $self->{started} = 0;
        return 0;
    }
    $self->{started} = 0;
    return 1;
}

sub kill_all {
    my $self = shift;
    my $pid = $self->pid or return;
    kill 'KILL', $pid;
}

# The child processes of the server (pids), from /proc.
sub children {
    my $self = shift;
    my $ppid = $self->pid or return ();
    my @kids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh>;
        close $fh;
        next unless defined $line && $line =~ /^(\d+) \(.*?\) \S (\d+)/;
        push @kids, $1 if $2 == $ppid;
    }
    return @kids;
}

# Pids that served requests whose request line matches RE (access_log).
sub served_by {
    my ($self, $re) = @_;
    open my $fh, '<', $self->{access_log} or return ();
    my %pids;
    while (<$fh>) {
        next unless /^(\d+) \d+ \S+ "([^"]*)"/;
        my ($pid, $line) = ($1, $2);
        $pids{$pid}++ if $line =~ $re;
    }
    close $fh;
    return keys %pids;
}

sub DESTROY {
    my $self = shift;
    return unless $self->{owner} == $$;
    local $?;
    $self->stop if $self->{started};
}

1;
