#!/bin/sh
# Serve the demo in the foreground: a generated httpd configuration in a
# run directory (never /etc/apache2), the module from .libs, the site from
# conf/ and htdocs/. Ctrl-C stops it.
#
#   PORT, HOST  where to listen: 127.0.0.1:8080 (8443 with TLS=1)
#   TLS=1       over HTTPS (`make run-https`), on a self-signed certificate
#               made in build/tls/, with the TLS settings of
#               conf/session_demo-https.conf
#   HTTPD, APXS the httpd binary and apxs to take the module directory from
#   SDEMO_HTTPD_ENV  assignments for httpd's environment (scripts/run-tests.sh
#               sets the ASan preload there for a SANITIZE=1 build)
#
# The URL is printed only once httpd listens. The access log goes to
# build/demo/access.log (build/demo-https/ with TLS); the error log (logins,
# logouts, problems) to the terminal.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
TLS=${TLS:-}
HOST=${HOST:-127.0.0.1}
if [ "$TLS" = 1 ]; then
    PORT=${PORT:-8443} scheme=https target="make run-https" name=demo-https
else
    PORT=${PORT:-8080} scheme=http target="make run" name=demo
fi
HTTPD=${HTTPD:-$(command -v apache2 || command -v httpd || echo /usr/sbin/apache2)}
MODDIR=$("${APXS:-apxs}" -q LIBEXECDIR)
cat=$(command -v cat)

say() { printf '%s\n' "$*"; }
fail() { printf 'run-demo: %s\n' "$*" >&2; exit 1; }

case $PORT in '' | *[!0-9]*) fail "PORT must be a number, not '$PORT'" ;; esac
case $HOST in
*:*) hostport="[$HOST]:$PORT" ;; # IPv6 literal
*) hostport="$HOST:$PORT" ;;
esac
case $HOST in
0.0.0.0 | ::) urlhost=127.0.0.1 ;;
*:*) urlhost="[$HOST]" ;;
*) urlhost=$HOST ;;
esac
url="$scheme://$urlhost:$PORT/"

# Is the port free? Asked before anything else is printed, so that a
# newcomer sees why and what to do rather than httpd's bind error.
# (perl-base is part of every Debian system.)
if command -v perl >/dev/null 2>&1; then
    rc=0
    perl -MIO::Socket::IP -e '
        my $s = IO::Socket::IP->new(LocalHost => $ARGV[0], LocalPort => $ARGV[1],
                                    Listen => 1, ReuseAddr => 1);
        exit 0 if $s;
        exit 1 if $!{EADDRINUSE};
        exit 3 if $!{EACCES};
        exit 4;' "$HOST" "$PORT" 2>/dev/null || rc=$?
    case $rc in
    0) ;;
    1) fail "port $PORT on $HOST is already in use (another server, or a demo already running).
         Choose another port:  $target PORT=$((PORT + 1))" ;;
    3) fail "not allowed to listen on port $PORT (ports below 1024 need root).
         Choose another port:  $target PORT=$((PORT + 8000))" ;;
    *) fail "cannot listen on $HOST port $PORT: is HOST an address of this machine?" ;;
    esac
fi

# As root, httpd's children run as an unprivileged user that must be able
# to read the site: stage conf/ and htdocs/ in a world-readable directory.
run=$(mktemp -d "${TMPDIR:-/tmp}/session-demo.XXXXXX")
httpd_pid=
cleanup() { rm -rf "$run"; }
stop() {
    trap - INT TERM
    if [ -n "$httpd_pid" ] && kill -0 "$httpd_pid" 2>/dev/null; then
        kill -TERM "$httpd_pid" 2>/dev/null || true
        wait "$httpd_pid" 2>/dev/null || true
    fi
    say "  Stopped."
    exit 0
}
trap cleanup EXIT
trap stop INT TERM
cp -R "$top/conf" "$top/htdocs" "$run/"
cp "$top/.libs/mod_session_demo.so" "$run/"
mkdir -p "$run/logs"
chmod -R a+rX "$run"
logdir="$top/build/$name"
mkdir -p "$logdir"
user_lines=""
if [ "$(id -u)" = 0 ]; then
    runuser=www-data
    id "$runuser" >/dev/null 2>&1 || runuser=nobody
    rungroup=$(id -gn "$runuser")
    user_lines="User $runuser
Group $rungroup"
fi

# HTTPS: a self-signed certificate for this host, kept in build/tls/ and
# made again when it is about to expire (or HOST changed), and the TLS
# block of the shipped example. The key stays in build/tls/ (mode 600):
# httpd reads it as the user who started it, before dropping privileges.
tls_lines=""
if [ "$TLS" = 1 ]; then
    command -v openssl >/dev/null 2>&1 || fail "openssl is missing: run 'make deps-run' as root"
    tls="$top/build/tls"
    mkdir -p "$tls"
    case $urlhost in
    127.0.0.1 | localhost) san="IP:127.0.0.1,DNS:localhost" ;;
    \[*) san="IP:$HOST,IP:127.0.0.1,DNS:localhost" ;;
    *[!0-9.]*) san="DNS:$urlhost,IP:127.0.0.1,DNS:localhost" ;;
    *) san="IP:$urlhost,IP:127.0.0.1,DNS:localhost" ;;
    esac
    if ! openssl x509 -in "$tls/cert.pem" -noout -checkend 86400 >/dev/null 2>&1 ||
        [ "$(cat "$tls/san" 2>/dev/null)" != "$san" ]; then
        # A server certificate, not a CA (the distribution's openssl.cnf
        # would make it one, and mod_ssl warns about that).
        cat >"$tls/openssl.cnf" <<CNF
[req]
distinguished_name = dn
x509_extensions = ext
prompt = no
[dn]
# mod_ssl compares ServerName with the CN and DNS names, browsers with
# subjectAltName.
CN = $urlhost
[ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $san
CNF
        (umask 077 && openssl req -x509 -config "$tls/openssl.cnf" -newkey ec \
            -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
            -keyout "$tls/key.pem" -out "$tls/cert.pem" >"$tls/openssl.log" 2>&1) ||
            { cat "$tls/openssl.log" >&2; fail "openssl could not make a certificate"; }
        printf '%s\n' "$san" >"$tls/san"
    fi
    # Stapling needs a CA-issued certificate: left out for a self-signed one.
    tls_block=$(sed -n '/^# ---- modern TLS (begin)/,/^# ---- modern TLS (end)/p' \
        "$top/conf/session_demo-https.conf" | grep -v '^ *SSLStapling\|^ *SSLUseStapling')
    [ -n "$tls_block" ] || fail "no '# ---- modern TLS' block in conf/session_demo-https.conf"
    tls_lines="$tls_block
SSLEngine on
SSLCertificateFile \"$tls/cert.pem\"
SSLCertificateKeyFile \"$tls/key.pem\"
SSLSessionCache \"shmcb:$run/logs/ssl_scache(512000)\"
# No HSTS here: browsers ignore it for IP addresses, and for localhost it
# would outlive the demo."
fi

load() { [ -f "$MODDIR/mod_$1.so" ] && echo "LoadModule ${1}_module $MODDIR/mod_$1.so"; true; }
tls_modules=""
[ "$TLS" = 1 ] && tls_modules="$(load socache_shmcb)
$(load ssl)"
cat > "$run/httpd.conf" <<CONF
ServerRoot "$run"
ServerName $urlhost:$PORT
Listen $hostport${TLS:+ https}
PidFile "$run/logs/httpd.pid"
DefaultRuntimeDir "$run/logs"
Mutex file:$run/logs default
# Through a pipe rather than /dev/stderr: reopening that path is refused
# when stderr is a file or pipe another user owns (su, CI logs).
ErrorLog "|$cat"
$user_lines
$(load mpm_event)
$(load authz_core)
$(load authz_host)
$(load authz_user)
$(load authn_core)
$(load mime)
$(load dir)
$(load log_config)
$(load headers)
$(load status)
$tls_modules
LoadModule session_demo_module "$run/mod_session_demo.so"
TypesConfig /etc/mime.types
LogFormat "%a %l %u %t \"%r\" %>s %b" common
CustomLog "$logdir/access.log" common
Define SDEMO_CONF "$run/conf"
Define SDEMO_HTDOCS "$run/htdocs"
Include "$run/conf/session_demo.conf"
$tls_lines
CONF

# shellcheck disable=SC2086
out=$(env ${SDEMO_HTTPD_ENV:-} "$HTTPD" -t -f "$run/httpd.conf" 2>&1) || { say "$out" >&2; fail "httpd refused the configuration (above)"; }

# Start httpd and wait until it listens (it writes its pid file after
# binding the port), so that the URL below is true when it is printed.
# shellcheck disable=SC2086
env ${SDEMO_HTTPD_ENV:-} "$HTTPD" -f "$run/httpd.conf" -DFOREGROUND &
httpd_pid=$!
i=0
while [ ! -s "$run/logs/httpd.pid" ]; do
    if ! kill -0 "$httpd_pid" 2>/dev/null; then
        httpd_pid=
        fail "httpd did not start (its messages are above)"
    fi
    i=$((i + 1))
    [ $i -le 300 ] || { kill -TERM "$httpd_pid" 2>/dev/null; fail "httpd did not start within 30 s"; }
    sleep 0.1
done

say ""
say "  Server Sessions Demo: $url"
say "  Log in as admin / secret, or any username with the password 'password'."
say "  Store status (local clients only): ${url}session-status"
if [ "$TLS" = 1 ]; then
    say "  The certificate is self-signed (build/tls/cert.pem): the browser warns"
    say "  once; the session cookie is __Host-sid."
fi
say "  Access log: $logdir/access.log"
case $HOST in
127.* | ::1 | localhost) ;;
*)
    if grep -q '^[[:space:]]*SessionDemoGuestPassword' "$top/conf/session_demo.conf"; then
        say ""
        say "  WARNING: listening on $HOST in demo mode: anyone who can reach port $PORT"
        say "  can log in, with any username and the password 'password'. Remove"
        say "  SessionDemoGuestPassword from conf/session_demo.conf to turn that off."
    fi
    ;;
esac
say "  Ctrl-C stops the server."
say ""
# Ctrl-C reaches httpd too, which then stops cleanly (status 0).
rc=0
wait "$httpd_pid" || rc=$?
[ "$rc" -gt 128 ] && stop
httpd_pid=
[ "$rc" = 0 ] || fail "httpd stopped (exit status $rc; its messages are above)"
say "  Stopped."
