package SDemo::Test;

# Helpers shared by the t/*.t tests of mod_session_demo: a browser-like
# client (SDemo::Client: cookie jar, never follows redirects), parsing of
# Set-Cookie and of the module's forms, JSON checks, and the registry of
# log lines a test provokes on purpose (t/zz_error_log.t allows exactly
# those).

use strict;
use warnings;

use Exporter 'import';
use B ();
use File::Spec ();
use File::Path ();
use JSON::PP ();
use HTML::Form ();

# Test names and diagnostics may contain non-ASCII text.
if (eval { require Test::Builder; 1 }) {
    my $tb = Test::Builder->new;
    binmode($tb->$_, ':encoding(UTF-8)') for qw(output failure_output todo_output);
}

our @EXPORT = qw(
    base_url client parse_set_cookie set_cookies form_value forms
    decode_json_ok is_json_int json_int_fields expect_log t_logs t_dir
    status_json page_headers_ok url_escape no_set_cookie location
    random_id
);

# The base URL of the Apache::Test server, or of one of its virtual hosts
# (the name of a <VirtualHost NAME> in t/conf/extra.conf.in).
sub base_url {
    my $vhost = shift;
    require Apache::Test;
    my $vars = Apache::Test::vars();
    my $port = $vhost ? $vars->{"${vhost}_port"} : $vars->{port};
    die "no port for virtual host '$vhost'" unless $port;
    return "http://$vars->{servername}:$port";
}

sub t_dir {
    require Apache::Test;
    return Apache::Test::vars()->{t_dir};
}

sub t_logs {
    require Apache::Test;
    return Apache::Test::vars()->{t_logs};
}

# client(vhost => NAME | base => URL, jar => 0)
sub client { SDemo::Client->new(@_) }

# All cookies of a response: a list of { name, value, attrs => {lc => v},
# names => [attribute names as sent], raw }.
sub set_cookies {
    my $res = shift;
    my @out;
    for my $raw ($res->header('Set-Cookie')) {
        next unless defined $raw;
        my ($pair, @attrs) = split /;\s*/, $raw;
        my ($name, $value) = split /=/, $pair, 2;
        my %attrs;
        my @names;
        for (@attrs) {
            my ($k, $v) = split /=/, $_, 2;
            push @names, $k;
            $attrs{lc $k} = defined $v ? $v : 1;
        }
        push @out, { name => $name, value => $value, attrs => \%attrs,
                     names => \@names, raw => $raw };
    }
    return @out;
}

# The Set-Cookie of NAME (default sid) in a response, or undef.
sub parse_set_cookie {
    my ($res, $name) = @_;
    $name = 'sid' unless defined $name;
    my @c = grep { $_->{name} eq $name } set_cookies($res);
    return $c[0];
}

sub no_set_cookie {
    my $res = shift;
    my @c = $res->header('Set-Cookie');
    return !grep { defined && /\bsid=/ } @c;
}

# The forms of an HTML response.
sub forms {
    my $res = shift;
    my $base = $res->request ? $res->request->uri : 'http://localhost/';
    return HTML::Form->parse($res->decoded_content, base => $base);
}

# The value of the input NAME in the first form of RES that has it
# (optionally: whose action path is ACTION).
sub form_value {
    my ($res, $name, $action) = @_;
    for my $f (forms($res)) {
        next if defined $action && $f->action->path ne $action;
        my $in = $f->find_input($name);
        return $in->value if $in;
    }
    return undef;
}

sub decode_json_ok {
    my $res = shift;
    my $data = eval { JSON::PP->new->utf8->decode($res->content) };
    return $data;
}

# True for a JSON number holding a non-negative integer (not a string).
sub is_json_int {
    my $v = shift;
    return 0 unless defined $v && !ref $v;
    my $f = B::svref_2object(\$v)->FLAGS;
    return 0 if $f & B::SVf_POK;
    return 0 unless $f & (B::SVf_IOK | B::SVf_NOK);
    return $v =~ /^\d+$/ ? 1 : 0;
}

sub json_int_fields {
    my ($data, @names) = @_;
    return grep { !is_json_int($data->{$_}) } @names;
}

# GET /session-status?json on the main server (or the given client).
sub status_json {
    my $c = shift || client();
    my $res = $c->get('/session-status?json', Accept => 'application/json');
    return undef unless $res->code == 200;
    return decode_json_ok($res);
}

# %-escapes a string; Perl character strings are sent as UTF-8.
sub url_escape {
    my $s = shift;
    utf8::encode($s) if $s =~ /[^\x00-\xff]/ || utf8::is_utf8($s);
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

# Register a log line this test provokes on purpose: t/zz_error_log.t then
# allows lines matching REGEX (a string, matched against each error_log
# line) in the error logs whose path contains /SCOPE/ (SCOPE: the name of an
# SDemo::Httpd server; undef or '*': every log). Keep it precise.
sub expect_log {
    my ($regex, $why, $scope) = @_;
    qr/$regex/;    # dies here on a bad pattern, not in zz_error_log.t
    my $file = File::Spec->catfile(t_logs(), 'expected-log-lines');
    open my $fh, '>>', $file or die "open $file: $!";
    $why = '' unless defined $why;
    $why =~ s/\s+/ /g;
    $scope = '*' unless defined $scope && length $scope;
    print $fh "$scope\t$regex\t# $0: $why\n";
    close $fh;
}

# Every session ID a test client received is noted in t/logs/issued-ids, so
# that t/zz_error_log.t can check that none of them shows in any log.
sub note_issued_ids {
    my $res = shift;
    my @ids = grep { defined && length >= 16 }
              map { $_->{value} } set_cookies($res);
    return unless @ids;
    my $file = File::Spec->catfile(t_logs(), 'issued-ids');
    open my $fh, '>>', $file or return;
    print $fh "$_\n" for @ids;
    close $fh;
}

# Test::More checks of the headers every module page carries (B9).
sub page_headers_ok {
    my ($res, $what) = @_;
    require Test::More;
    my $tb = Test::More->builder;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ok = 1;
    my $csp = $res->header('Content-Security-Policy') || '';
    $ok = $tb->is_eq(scalar $res->header('Cache-Control'), 'no-store',
                       "$what: Cache-Control: no-store") && $ok;
    $ok = $tb->is_eq(scalar $res->header('X-Content-Type-Options'), 'nosniff',
                       "$what: X-Content-Type-Options: nosniff") && $ok;
    $ok = $tb->is_eq(scalar $res->header('Referrer-Policy'), 'same-origin',
                       "$what: Referrer-Policy: same-origin") && $ok;
    $ok = $tb->ok($csp =~ /default-src 'none'/,
                    "$what: CSP has default-src 'none' ($csp)") && $ok;
    $ok = $tb->ok($csp =~ /frame-ancestors 'none'/,
                    "$what: CSP has frame-ancestors 'none'") && $ok;
    $ok = $tb->ok($res->content !~ /<script/i, "$what: no <script in the body") && $ok;
    return $ok;
}

# The Location of a redirect as a local path (with query), or the absolute
# URL when it points to another host. undef without Location.
sub location {
    my $res = shift;
    my $loc = $res->header('Location');
    return undef unless defined $loc;
    return $loc if $loc =~ m{^/};
    require URI;
    my $u = URI->new($loc);
    my $req = $res->request ? $res->request->uri : undef;
    if ($u->scheme && $req && lc($u->host_port) eq lc($req->host_port)) {
        return $u->path_query;
    }
    return $loc;
}

# A well-formed session ID the server never issued: 43 base64url characters
# of 256 random bits (last character with its two low bits zero).
sub random_id {
    my @a = ('A' .. 'Z', 'a' .. 'z', '0' .. '9', '-', '_');
    my $id = join '', map { $a[rand 64] } 1 .. 42;
    return $id . $a[4 * int rand 16];
}

# ---------------------------------------------------------------------------
package SDemo::Client;

use strict;
use warnings;

use LWP::UserAgent ();
use HTTP::Cookies ();
use HTTP::Request ();
use JSON::PP ();

sub new {
    my ($class, %o) = @_;
    my $base = $o{base} || SDemo::Test::base_url($o{vhost});
    $base =~ s{/$}{};
    my $ua = LWP::UserAgent->new(
        agent                 => $o{agent} || 'sdemo-test/1.0',
        max_redirect          => 0,
        requests_redirectable => [],
        timeout               => $o{timeout} || 30,
        keep_alive            => 0,
    );
    $ua->cookie_jar(HTTP::Cookies->new) unless defined $o{jar} && !$o{jar};
    # the test servers' certificates are self-signed
    $ua->ssl_opts(verify_hostname => 0, SSL_verify_mode => 0) if $base =~ /^https:/;
    return bless { base => $base, ua => $ua }, $class;
}

sub base { $_[0]{base} }
sub ua   { $_[0]{ua} }

sub url {
    my ($self, $path) = @_;
    return $path if $path =~ m{^\w+://};
    return $self->{base} . $path;
}

# request(METHOD, PATH, headers => [..], content => BYTES)
sub request {
    my ($self, $method, $path, %o) = @_;
    my $req = HTTP::Request->new($method, $self->url($path),
                                 [ @{ $o{headers} || [] } ]);
    if (defined $o{content}) {
        $req->content($o{content});
        $req->header('Content-Length' => length $o{content});
    }
    my $res = $self->{ua}->request($req);
    SDemo::Test::note_issued_ids($res);
    return $res;
}

sub get {
    my ($self, $path, @headers) = @_;
    return $self->request(GET => $path, headers => \@headers);
}

sub head {
    my ($self, $path, @headers) = @_;
    return $self->request(HEAD => $path, headers => \@headers);
}

sub form_encode {
    my @pairs = @_;
    my @out;
    while (@pairs) {
        my ($k, $v) = splice @pairs, 0, 2;
        push @out, SDemo::Test::url_escape($k) . '=' . SDemo::Test::url_escape($v);
    }
    return join '&', @out;
}

# post_form(PATH, [name => value, ...], extra headers...)
sub post_form {
    my ($self, $path, $fields, @headers) = @_;
    return $self->request(POST => $path,
        headers => [ 'Content-Type' => 'application/x-www-form-urlencoded',
                     @headers ],
        content => form_encode(@$fields));
}

sub post_raw {
    my ($self, $path, $type, $body, @headers) = @_;
    return $self->request(POST => $path,
        headers => [ (defined $type ? ('Content-Type' => $type) : ()), @headers ],
        content => $body);
}

# The login form's token (and the response it came from).
sub login_csrf {
    my ($self, $query) = @_;
    my $res = $self->get('/login' . (defined $query ? "?$query" : ''));
    return (SDemo::Test::form_value($res, 'csrf'), $res);
}

# GET the form, then POST it: returns the POST's response.
# Options: return => PATH (sent as the hidden field), csrf => TOKEN (use this
# instead of the form's), headers => [...].
sub login {
    my ($self, $user, $pass, %o) = @_;
    my ($csrf) = $self->login_csrf(
        defined $o{return} ? 'return=' . SDemo::Test::url_escape($o{return}) : undef);
    $csrf = $o{csrf} if exists $o{csrf};
    my @f = (username => $user, password => $pass);
    push @f, csrf => $csrf if defined $csrf;
    push @f, return => $o{return} if defined $o{return};
    return $self->post_form('/login', \@f, @{ $o{headers} || [] });
}

# Log in and die unless it worked; returns $self.
sub login_ok {
    my ($self, $user, $pass) = @_;
    my $res = $self->login($user, $pass);
    die "login $user failed: " . $res->status_line . "\n" unless $res->code == 303;
    return $self;
}

# The sid cookie the jar holds, or undef.
sub sid {
    my ($self, $name) = @_;
    $name = 'sid' unless defined $name;
    my $jar = $self->{ua}->cookie_jar or return undef;
    my $val;
    $jar->scan(sub { $val = $_[2] if $_[1] eq $name });
    return $val;
}

# Replace the jar's cookies by NAME=VALUE (for this client's host).
sub set_sid {
    my ($self, $value, $name) = @_;
    $name = 'sid' unless defined $name;
    my $jar = $self->{ua}->cookie_jar;
    $jar->clear;
    my $uri = URI->new($self->{base});
    my $host = $uri->host;
    $host .= '.local' unless $host =~ /\./;
    $jar->set_cookie(0, $name, $value, '/', $host, undef, 1, 0, 3600, 0);
}

# GET /dashboard as JSON: (data or undef, response).
sub dashboard_json {
    my ($self, @headers) = @_;
    my $res = $self->get('/dashboard', Accept => 'application/json', @headers);
    my $data = $res->code == 200 ? SDemo::Test::decode_json_ok($res) : undef;
    return wantarray ? ($data, $res) : $data;
}

# The session's CSRF token from the logout page (counts no visit).
sub session_csrf {
    my $self = shift;
    my $res = $self->get('/logout');
    return SDemo::Test::form_value($res, 'csrf');
}

sub add_note {
    my ($self, $note, $csrf, @headers) = @_;
    $csrf = $self->session_csrf unless defined $csrf;
    return $self->post_form('/dashboard',
        [ csrf => $csrf, action => 'add_note', note => $note ], @headers);
}

sub clear_notes {
    my ($self, $csrf) = @_;
    $csrf = $self->session_csrf unless defined $csrf;
    return $self->post_form('/dashboard', [ csrf => $csrf, action => 'clear_notes' ]);
}

sub logout {
    my ($self, $csrf) = @_;
    $csrf = $self->session_csrf unless defined $csrf;
    return $self->post_form('/logout', [ csrf => $csrf ]);
}

1;
