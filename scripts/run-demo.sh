#!/bin/sh
# Serve the demo in the foreground: a generated httpd configuration in a
# run directory (never /etc/apache2), the module from .libs, the site from
# conf/ and htdocs/. Ctrl-C stops it.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
PORT=${PORT:-8080}
HOST=${HOST:-127.0.0.1}
HTTPD=${HTTPD:-$(command -v apache2 || command -v httpd || echo /usr/sbin/apache2)}
MODDIR=$("${APXS:-apxs}" -q LIBEXECDIR)
cat=$(command -v cat)

# As root, httpd's children run as an unprivileged user that must be able
# to read the site: stage conf/ and htdocs/ in a world-readable directory.
run=$(mktemp -d "${TMPDIR:-/tmp}/session-demo.XXXXXX")
trap 'rm -rf "$run"' EXIT INT TERM
cp -R "$top/conf" "$top/htdocs" "$run/"
cp "$top/.libs/mod_session_demo.so" "$run/"
mkdir -p "$run/logs"
chmod -R a+rX "$run"
user_lines=""
if [ "$(id -u)" = 0 ]; then
    runuser=www-data
    id "$runuser" >/dev/null 2>&1 || runuser=nobody
    rungroup=$(id -gn "$runuser")
    user_lines="User $runuser
Group $rungroup"
fi

load() { [ -f "$MODDIR/mod_$1.so" ] && echo "LoadModule ${1}_module $MODDIR/mod_$1.so"; true; }
cat > "$run/httpd.conf" <<CONF
ServerRoot "$run"
ServerName $HOST
Listen $HOST:$PORT
PidFile "$run/logs/httpd.pid"
DefaultRuntimeDir "$run/logs"
Mutex file:$run/logs default
# Through a pipe rather than /dev/stderr: reopening that path is refused
# when stderr is a file or pipe another user owns (sudo, su, CI logs).
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
$(load status)
LoadModule session_demo_module "$run/mod_session_demo.so"
TypesConfig /etc/mime.types
LogFormat "%a %l %u %t \"%r\" %>s %b" common
CustomLog "|$cat" common
Define SDEMO_CONF "$run/conf"
Define SDEMO_HTDOCS "$run/htdocs"
Include "$run/conf/session_demo.conf"
CONF

"$HTTPD" -t -f "$run/httpd.conf"
echo
echo "  Server Sessions Demo: http://$HOST:$PORT/"
echo "  Log in as admin / secret, or any username with the password 'password'."
echo "  Store status (local clients): http://$HOST:$PORT/session-status"
echo "  Ctrl-C stops the server."
echo
"$HTTPD" -f "$run/httpd.conf" -DFOREGROUND
