package SDemo::Redis;

# A real redis-server (or redis-sentinel) that a test starts on a free
# loopback port, in its own directory under t/logs/, and that stops when
# the object goes away. Tests skip with a clear message when Debian's
# redis-server is not installed (make test installs it).
#
#   my $r = SDemo::Redis->new(name => 'flow') or plan skip_all => ...;
#   $r->start or die $r->why;
#   $r->cli('DBSIZE');  $r->pause;  $r->resume;  $r->kill9;  $r->stop;
#
#   my $s = SDemo::Redis->new(name => 's1', sentinel => 1,
#                             monitor => [mymaster => $master_port]);

use strict;
use warnings;

use File::Path ();
use File::Spec ();
use IO::Socket::INET ();
use POSIX ();
use Time::HiRes ();

use SDemo::Httpd ();
use SDemo::Test ();

sub server_bin   { -x '/usr/bin/redis-server' ? '/usr/bin/redis-server' : undef }
sub sentinel_bin { -x '/usr/bin/redis-sentinel' ? '/usr/bin/redis-sentinel' : undef }
sub available    { defined server_bin() }

# new(name => NAME, password => PW, sentinel => 1, monitor => [NAME, PORT],
#     replicaof => PORT, args => [extra config lines])
sub new {
    my ($class, %o) = @_;
    my $dir = File::Spec->catdir(SDemo::Test::t_logs(), "redis-$o{name}");
    File::Path::rmtree($dir);
    File::Path::mkpath($dir);
    my $self = bless { %o, dir => $dir, owner => $$ }, $class;
    return $self;
}

sub port { $_[0]{port} }
sub addr { "127.0.0.1:$_[0]{port}" }
sub dir  { $_[0]{dir} }
sub why  { $_[0]{why} || '' }
sub pid  { $_[0]{pid} }
sub log_file { "$_[0]{dir}/redis.log" }

sub _config {
    my $self = shift;
    my @c = ("bind 127.0.0.1", "port $self->{port}", "dir $self->{dir}",
             "logfile $self->{dir}/redis.log", "daemonize no",
             "protected-mode no");
    if ($self->{sentinel}) {
        my ($name, $mport) = @{ $self->{monitor} };
        push @c, "sentinel monitor $name 127.0.0.1 $mport 2",
                 "sentinel down-after-milliseconds $name 1000",
                 "sentinel failover-timeout $name 5000",
                 "sentinel parallel-syncs $name 1",
                 "sentinel resolve-hostnames no";
        push @c, "sentinel auth-pass $name $self->{master_password}"
            if $self->{master_password};
        push @c, "requirepass $self->{password}" if $self->{password};
    }
    else {
        push @c, "save ''", "appendonly no", "maxmemory-policy noeviction";
        push @c, "requirepass $self->{password}", "masterauth $self->{password}"
            if $self->{password};
        push @c, "replicaof 127.0.0.1 $self->{replicaof}" if $self->{replicaof};
        push @c, "repl-diskless-sync yes", "repl-diskless-sync-delay 0";
    }
    push @c, @{ $self->{args} || [] };
    return join("\n", @c) . "\n";
}

# Start (again, on the same port when it ran before); true when it answers.
sub start {
    my $self = shift;
    my $bin = $self->{sentinel} ? sentinel_bin() : server_bin();
    unless ($bin) {
        $self->{why} = 'redis-server not installed';
        return 0;
    }
    $self->{port} ||= SDemo::Httpd::free_port();
    my $conf = "$self->{dir}/" . ($self->{sentinel} ? 'sentinel.conf' : 'redis.conf');
    # Sentinel rewrites its file; write it only the first time.
    if (!$self->{sentinel} || !-f $conf) {
        open my $fh, '>', $conf or die "write $conf: $!";
        print $fh $self->_config;
        close $fh;
    }
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$self->{dir}/stdout.log";
        open STDERR, '>&', \*STDOUT;
        POSIX::setsid();
        exec $bin, $conf;
        POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    my $end = Time::HiRes::time() + 10;
    while (Time::HiRes::time() < $end) {
        my $pong = eval { $self->cli('PING') } // '';
        return 1 if $pong =~ /PONG|NOAUTH/;
        last if waitpid($pid, POSIX::WNOHANG()) == $pid;
        Time::HiRes::sleep(0.05);
    }
    $self->{why} = "redis on port $self->{port} did not answer; see $self->{dir}/redis.log";
    return 0;
}

# One command, RESP over a socket: returns the reply as a string (arrays
# joined with newlines); dies on a connection error.
sub cli {
    my ($self, @cmd) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port},
                                  Proto => 'tcp', Timeout => 2)
        or die "connect $self->{port}: $!";
    if ($self->{password} && $cmd[0] ne 'AUTH') {
        print $s _resp('AUTH', $self->{password});
        _read($s);
    }
    print $s _resp(@cmd);
    my $r = _read($s);
    close $s;
    return $r;
}

sub _resp {
    my @a = @_;
    return join '', "*" . scalar(@a) . "\r\n", map { '$' . length($_) . "\r\n$_\r\n" } @a;
}

sub _read {
    my $s = shift;
    local $/ = "\r\n";
    my $line = <$s>;
    die "no reply\n" unless defined $line;
    chomp $line;
    my ($t, $rest) = (substr($line, 0, 1), substr($line, 1));
    return $rest if $t eq '+' || $t eq '-' || $t eq ':';
    if ($t eq '$') {
        return undef if $rest < 0;
        my $buf = '';
        read($s, $buf, $rest + 2);
        return substr($buf, 0, $rest);
    }
    if ($t eq '*') {
        return join "\n", map { my $v = _read($s); defined $v ? $v : '' } 1 .. $rest;
    }
    die "bad reply: $line\n";
}

sub pause  { kill 'STOP', $_[0]{pid} }
sub resume { kill 'CONT', $_[0]{pid} }

sub kill9 {
    my $self = shift;
    return unless $self->{pid};
    kill 'KILL', $self->{pid};
    waitpid $self->{pid}, 0;
    delete $self->{pid};
}

sub stop {
    my $self = shift;
    return unless $self->{pid};
    kill 'CONT', $self->{pid};
    kill 'TERM', $self->{pid};
    my $end = Time::HiRes::time() + 10;
    while (Time::HiRes::time() < $end) {
        last if waitpid($self->{pid}, POSIX::WNOHANG()) == $self->{pid};
        Time::HiRes::sleep(0.05);
    }
    kill 'KILL', $self->{pid} if kill 0, $self->{pid};
    waitpid $self->{pid}, 0;
    delete $self->{pid};
}

sub DESTROY {
    my $self = shift;
    $self->stop if $self->{owner} == $$;
}

1;
