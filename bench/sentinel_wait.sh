#!/bin/sh
# What WAIT costs. With Sentinel the Redis store follows each login, logout
# and "log out everywhere" with WAIT 1 100 (SessionDemoRedisWait's default
# there): the answer waits until one replica has the write, or 100 ms. This
# measures that wait from a client's side. Figures only, never pass/fail.
#
# One redis-server master and one replica on loopback, and two httpd
# (event MPM) on the same master that differ in one line:
#
#   w0   SessionDemoRedisWait 0         (the master's answer is enough)
#   w1   SessionDemoRedisWait 1 100     (the Sentinel default)
#
# Requests alternate between them (which goes first alternates too), so
# both see the same machine at the same moment. Timed with curl's
# time_total, one request per connection:
#
#   login    POST /login: bcrypt (cost 10) + throttle + create (+ WAIT)
#   logout   POST /logout: no bcrypt, a get and a remove (+ WAIT): the
#            store's part of a login's WAIT cost shows here undiluted
#   view     GET /dashboard: a get and a replace, never a WAIT (control)
#
# and then once more with the replica stopped (SIGSTOP), where every WAIT
# runs out its 100 ms. Besides medians per server, the median of the
# paired differences (round by round, w1 - w0) is shown: on a busy machine
# it is the steadier figure. Last, WAIT alone, without httpd: a write
# followed by WAIT 1 100 against the write alone, on one connection.
#
# Knobs: WAIT_N (logins and logouts per server, 30), WAIT_N_DOWN (with
# the replica stopped, 10), WAIT_RAW (raw writes per kind, 2000), HTTPD,
# APXS.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

N=${WAIT_N:-30}
NDOWN=${WAIT_N_DOWN:-10}
RAW=${WAIT_RAW:-2000}
HTTPD=${HTTPD:-$(command -v apache2 || command -v httpd || echo /usr/sbin/apache2)}
APXS=${APXS:-$(command -v apxs || echo /usr/bin/apxs)}
REDIS=/usr/bin/redis-server

say() { printf '%s\n' "$*"; }
die() { say "sentinel_wait: $*" >&2; exit 1; }

for t in curl perl redis-cli; do
    command -v "$t" >/dev/null 2>&1 || die "'$t' is missing"
done
[ -x "$REDIS" ] || die "redis-server is missing (apt-get install redis-server)"
[ -x "$HTTPD" ] || die "no httpd at $HTTPD (set HTTPD=)"
[ -f .libs/mod_session_demo.so ] || die "build the module first (make)"

work=$(mktemp -d "${TMPDIR:-/tmp}/sdemo-wait.XXXXXX") || exit 1
chmod 755 "$work"
pids=""
cleanup() {
    for p in $pids; do kill -CONT "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null; done
    for s in w0 w1; do
        [ -f "$work/$s/httpd.pid" ] && kill -TERM "$(cat "$work/$s/httpd.pid")" 2>/dev/null
    done
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1,
        LocalAddr => "127.0.0.1", LocalPort => 0)->sockport'
}

# ---- Redis: a master and its replica ---------------------------------------
start_redis() {    # NAME PORT [replicaof PORT]
    mkdir -p "$work/$1"
    {
        echo "bind 127.0.0.1"; echo "port $2"; echo "dir $work/$1"
        echo "save ''"; echo "appendonly no"; echo "protected-mode no"
        echo "maxmemory-policy noeviction"
        [ $# -ge 4 ] && echo "replicaof 127.0.0.1 $4"
    } >"$work/$1/redis.conf"
    "$REDIS" "$work/$1/redis.conf" >"$work/$1/redis.log" 2>&1 &
    pids="$pids $!"
    eval "${1}_pid=$!"
}
mport=$(free_port)
start_redis master "$mport"
rport=$(free_port)
start_redis replica "$rport" replicaof "$mport"
i=0
until redis-cli -p "$rport" INFO replication 2>/dev/null | grep -q 'master_link_status:up'; do
    sleep 0.1; i=$((i + 1)); [ $i -lt 100 ] || die "the replica did not sync"
done

# ---- two httpd, WAIT 0 and WAIT 1 100 --------------------------------------
MODDIR=$("$APXS" -q LIBEXECDIR 2>/dev/null || echo /usr/lib/apache2/modules)
load() { [ -f "$MODDIR/mod_$1.so" ] && echo "LoadModule ${1}_module $MODDIR/mod_$1.so"; true; }
user_lines=""
if [ "$(id -u)" = 0 ]; then
    runuser=www-data
    id "$runuser" >/dev/null 2>&1 || runuser=nobody
    user_lines="User $runuser
Group $(id -gn "$runuser")"
fi
start_httpd() {    # NAME WAIT-ARGS
    d="$work/$1"
    mkdir -p "$d"
    port=$(free_port)
    eval "${1}_port=$port"
    cat >"$d/httpd.conf" <<CONF
ServerRoot "$d"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$d/httpd.pid"
DefaultRuntimeDir "$d"
Mutex file:$d default
ErrorLog "$d/error.log"
LogLevel warn
$user_lines
$(load mpm_event)
$(load authz_core)
$(load authz_host)
$(load mime)
LoadModule session_demo_module "$top/.libs/mod_session_demo.so"
TypesConfig /etc/mime.types
StartServers 2
ServerLimit 2
ThreadsPerChild 16
MaxRequestWorkers 32
DocumentRoot "$d"
SessionDemoStore redis:127.0.0.1:$mport
SessionDemoSecretFile "$work/secret"
SessionDemoRedisWait $2
SessionDemoGuestPassword password
SessionDemoLoginThrottle 1000 60
<Location "/login">
    SetHandler session-demo-login
</Location>
<Location "/dashboard">
    SetHandler session-demo-dashboard
</Location>
<Location "/logout">
    SetHandler session-demo-logout
</Location>
CONF
    "$HTTPD" -f "$d/httpd.conf" -k start >"$d/start.out" 2>&1 ||
        die "httpd $1 did not start: $(cat "$d/start.out" "$d/error.log" 2>/dev/null | head -5)"
    i=0
    until curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/login"; do
        sleep 0.1; i=$((i + 1)); [ $i -lt 100 ] || die "httpd $1 does not answer"
    done
}
start_httpd w0 "0"
start_httpd w1 "1 100"

# ---- the timed requests ----------------------------------------------------
# Each appends "SERVER OP CODE SECONDS ROUND" to $work/times.
csrf_of() { sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -n 1; }
port_of() { eval "echo \$${1}_port"; }
login() {    # SERVER USER PHASE
    base="http://127.0.0.1:$(port_of "$1")"
    jar="$work/jar-$1-$2"
    csrf=$(curl -s -c "$jar" "$base/login" | csrf_of)
    curl -s -o /dev/null -b "$jar" -c "$jar" -w "$1 login$3 %{http_code} %{time_total} $i\n" \
        --data-urlencode "username=$2" -d password=password \
        --data-urlencode "csrf=$csrf" "$base/login" >>"$work/times"
}
view() {    # SERVER USER PHASE
    base="http://127.0.0.1:$(port_of "$1")"
    curl -s -o /dev/null -b "$work/jar-$1-$2" -H 'Accept: application/json' \
        -w "$1 view$3 %{http_code} %{time_total} $i\n" "$base/dashboard" >>"$work/times"
}
logout() {    # SERVER USER PHASE
    base="http://127.0.0.1:$(port_of "$1")"
    jar="$work/jar-$1-$2"
    csrf=$(curl -s -b "$jar" "$base/logout" | csrf_of)
    curl -s -o /dev/null -b "$jar" -c "$jar" -w "$1 logout$3 %{http_code} %{time_total} $i\n" \
        --data-urlencode "csrf=$csrf" "$base/logout" >>"$work/times"
}
rounds() {    # COUNT PHASE
    i=1
    while [ "$i" -le "$1" ]; do
        if [ $((i % 2)) = 0 ]; then order="w0 w1"; else order="w1 w0"; fi
        for s in $order; do login "$s" "u$2$i" "$2"; done
        for s in $order; do view "$s" "u$2$i" "$2"; done
        for s in $order; do logout "$s" "u$2$i" "$2"; done
        i=$((i + 1))
    done
}
: >"$work/times"
rounds 3 warm                      # connections, scripts loaded, caches
rounds "$N" ""
kill -STOP "$replica_pid"
rounds "$NDOWN" _down
kill -CONT "$replica_pid"
i=0
until redis-cli -p "$rport" INFO replication 2>/dev/null | grep -q 'master_link_status:up'; do
    sleep 0.1; i=$((i + 1)); [ $i -lt 100 ] || break
done

# WAIT alone: HSET, or HSET then WAIT 1 100 (pipelined, one round trip
# each, as the store sends them), in alternating blocks of 100.
raw=$(perl -MIO::Socket::INET -MTime::HiRes=time -e '
    my ($port, $n) = @ARGV;
    my $s = IO::Socket::INET->new("127.0.0.1:$port") or die "connect: $!";
    $s->autoflush(1);
    sub cmd { my $o = "*" . @_ . "\r\n"; $o .= "\$" . length($_) . "\r\n$_\r\n" for @_; $o }
    my (%t, %w);
    for my $block (1 .. $n / 100) {
        for my $wait (0, 1) {
            my $t0 = time;
            for my $i (1 .. 100) {
                print $s cmd("HSET", "sdemo-bench", "f", $i) . ($wait ? cmd("WAIT", 1, 100) : "");
                <$s>;
                if ($wait) { my $r = <$s>; $w{short}++ unless $r =~ /^:1/ }
            }
            $t{$wait} += time - $t0;
        }
    }
    my $k = int($n / 100) * 100;
    printf "%d %.1f %.1f %d\n", $k, 1e6 * $t{0} / $k, 1e6 * $t{1} / $k, $w{short} || 0;
' "$mport" "$RAW")

# ---- figures ----------------------------------------------------------------
say "WAIT cost of the Redis store ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc 2>/dev/null || echo '?') CPUs, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'))"
say "master and replica on 127.0.0.1; w0: SessionDemoRedisWait 0, w1: SessionDemoRedisWait 1 100"
say "milliseconds per request as the client sees it (curl time_total)"
say
bad=$(awk '$3 != 303 && $2 !~ /^view/ || $3 != 200 && $2 ~ /^view/' "$work/times" | grep -vc warm)
[ "$bad" -gt 0 ] && say "FAILED: $bad responses were not what was meant (login and logout 303, view 200); see below" &&
    awk '$3 != 303 && $2 !~ /^view/ || $3 != 200 && $2 ~ /^view/' "$work/times" | head -5
printf '%-22s %4s %8s %8s %8s %8s\n' "" n median mean p90 max
for op in login logout view login_down logout_down view_down; do
    for s in w0 w1; do
        awk -v s="$s" -v op="$op" '$1 == s && $2 == op { print $4 * 1000 }' "$work/times" |
            sort -n | awk -v label="$op $s" '
            { v[NR] = $1; sum += $1 }
            END {
                if (!NR) exit
                printf "%-22s %4d %8.2f %8.2f %8.2f %8.2f\n", label, NR,
                    (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2),
                    sum / NR, v[int(0.9 * NR + 0.999)], v[NR]
            }'
    done
done
say
say "WAIT cost per request, w1 - w0 in ms: difference of the medians, and median (mean)"
say "of the paired differences, round by round:"
for op in login logout view login_down logout_down view_down; do
    awk -v op="$op" '$2 == op { t[$5, $1] = $4 * 1000; r[$5] = 1 }
        END { for (i in r) if ((i, "w0") in t && (i, "w1") in t) print t[i, "w0"], t[i, "w1"] }' \
        "$work/times" >"$work/pairs"
    a=$(cut -d' ' -f1 "$work/pairs" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')
    b=$(cut -d' ' -f2 "$work/pairs" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')
    awk '{ print $2 - $1 }' "$work/pairs" | sort -n | awk -v op="$op" -v a="$a" -v b="$b" '
        { v[NR] = $1; sum += $1 }
        END {
            if (!NR) exit
            printf "  %-12s %+8.2f   paired %+8.2f (%+.2f), n %d\n", op, b - a,
                (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), sum / NR, NR
        }'
done
say
set -- $raw
say "WAIT alone, one connection to the master, $1 writes of each kind:"
say "  HSET                      $2 us"
say "  HSET + WAIT 1 100         $3 us   (WAIT adds $(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.1f", b - a }') us; $4 answered fewer than 1 replica)"
