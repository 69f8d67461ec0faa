#!/bin/sh
# Benchmarks of mod_session_demo (make bench). Figures only, never
# pass/fail: a measurement that turns out to be invalid (the responses were
# not what was meant to be measured) is reported as FAILED with the reason,
# and the run goes on.
#
#   1. The store alone: bench/store_bench.c against src/*.c and APR.
#   2. Through httpd on loopback with wrk: GET /dashboard with a valid
#      session cookie against a static copy of the same page, on the same
#      server in the same run, with one session shared by all connections
#      and with a different session per request (bench/cookies.lua), at
#      10 thousand and at 1 million live sessions (made by bench/mkstore.c
#      and loaded at start through SessionDemoSnapshot). At 10 thousand a
#      second httpd with SessionDemoStore redis: on a redis-server of its
#      own (free loopback port, started and stopped here) is driven in the
#      same rounds, and Redis's INFO counters give what a view costs it.
#
# Knobs (environment): BENCH_QUICK=1 (a short run: 10 thousand sessions
# only, 3 rounds of 2 seconds), BENCH_DURATION (seconds per wrk run, 3),
# BENCH_ROUNDS (static/dashboard rounds per case, 7), BENCH_THREADS (wrk
# threads, 2), BENCH_CONNECTIONS (32), BENCH_SESSIONS ("10000 1000000"),
# BENCH_REDIS_SESSIONS (the size Redis is measured at, 10000; "" for no
# Redis), BENCH_STORE_SECONDS (per store measurement, 1), HTTPD, APXS, CC,
# REDIS_SERVER.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

if [ "${BENCH_QUICK:-0}" = 1 ]; then
    q_dur=2 q_rounds=3 q_sizes=10000 q_store=0.3
else
    q_dur=3 q_rounds=7 q_sizes="10000 1000000" q_store=1
fi
DURATION=${BENCH_DURATION:-$q_dur}
ROUNDS=${BENCH_ROUNDS:-$q_rounds}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-32}
SIZES=${BENCH_SESSIONS:-$q_sizes}
REDIS_AT=${BENCH_REDIS_SESSIONS-10000}
STORE_SECS=${BENCH_STORE_SECONDS:-$q_store}
WARMUP=3
CAPACITY=1100000            # SessionDemoCapacity of the bench httpd
MEMORY_MB=512               # SessionDemoMemory of the bench httpd
COOKIE=sid
HTTPD=${HTTPD:-$(command -v apache2 || command -v httpd || echo /usr/sbin/apache2)}
APXS=${APXS:-$(command -v apxs || echo /usr/bin/apxs)}
CC=${CC:-cc}
REDIS_SERVER=${REDIS_SERVER:-$(command -v redis-server || echo /usr/bin/redis-server)}
REDIS_CLI=${REDIS_CLI:-$(command -v redis-cli || echo /usr/bin/redis-cli)}

say() { printf '%s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*"; }

# ---- tools ---------------------------------------------------------------
missing=""
for t in wrk curl; do
    command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        # shellcheck disable=SC2086
        SD_EXTRA_PKGS="$missing" sh scripts/install-deps.sh || true
    fi
    for t in $missing; do
        command -v "$t" >/dev/null 2>&1 || {
            say "bench: '$t' is missing; install it (apt-get install$missing) and run make bench again" >&2
            exit 1
        }
    done
fi
for t in apr-1-config apu-1-config; do
    command -v "$t" >/dev/null 2>&1 || { say "bench: $t is missing (libapr1-dev, libaprutil1-dev)" >&2; exit 1; }
done
[ -x "$HTTPD" ] || { say "bench: no httpd at $HTTPD (set HTTPD=)" >&2; exit 1; }
[ -f .libs/mod_session_demo.so ] || { say "bench: build the module first (make)" >&2; exit 1; }
if [ -n "$REDIS_AT" ] && { [ ! -x "$REDIS_SERVER" ] || [ ! -x "$REDIS_CLI" ]; }; then
    [ "$(id -u)" = 0 ] && { SD_EXTRA_PKGS="redis-server redis-tools" sh scripts/install-deps.sh build || true; }
    REDIS_SERVER=$(command -v redis-server || echo "$REDIS_SERVER")
    REDIS_CLI=$(command -v redis-cli || echo "$REDIS_CLI")
    if [ ! -x "$REDIS_SERVER" ] || [ ! -x "$REDIS_CLI" ]; then
        warn "no redis-server/redis-cli (apt-get install redis-server): no Redis figures"
        REDIS_AT=""
    fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sdemo-bench.XXXXXX") || exit 1
chmod 755 "$work"
pidfile=""     # the shared-memory httpd's
rpidfile=""    # the Redis httpd's
redis_pid=""   # the redis-server this script started
# stop_httpd PIDFILE
stop_httpd() {
    [ -n "$1" ] && [ -f "$1" ] || return 0
    pid=$(cat "$1" 2>/dev/null)
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    # At stop httpd writes the store to its snapshot: a few seconds at 1M.
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 600 ]; do
        sleep 0.1; i=$((i + 1))
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    return 0
}
stop_redis() {
    [ -n "$redis_pid" ] || return 0
    kill -TERM "$redis_pid" 2>/dev/null
    i=0
    while kill -0 "$redis_pid" 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.1; i=$((i + 1))
    done
    kill -0 "$redis_pid" 2>/dev/null && kill -KILL "$redis_pid" 2>/dev/null
    wait "$redis_pid" 2>/dev/null
    redis_pid=""
}
cleanup() {
    stop_httpd "$pidfile"; pidfile=""
    stop_httpd "$rpidfile"; rpidfile=""
    stop_redis
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build the tools -----------------------------------------------------
bin="$work/bin"
mkdir -p "$bin"
CFLAGS_B="-std=gnu99 -O2 -Isrc -Ibench $(apr-1-config --cflags --cppflags --includes) $(apu-1-config --includes)"
LIBS_B="$(apu-1-config --link-ld --libs) $(apr-1-config --link-ld --libs) -lcrypto -lpthread"
CORE="src/sd_sha256.c src/sd_id.c src/sd_record.c src/sd_shm.c src/sd_snapshot.c"
# mkstore also creates sessions in Redis through the Redis store itself.
# shellcheck disable=SC2086
if ! $CC $CFLAGS_B -o "$bin/store_bench" bench/store_bench.c $CORE $LIBS_B ||
    ! $CC $CFLAGS_B -o "$bin/mkstore" bench/mkstore.c $CORE src/sd_store.c \
        src/sd_store_redis.c -lhiredis $LIBS_B; then
    say "bench: building the benchmark tools failed" >&2
    exit 1
fi

say "mod_session_demo benchmarks ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc 2>/dev/null || echo '?') CPUs, $(uname -m))"
say "$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')"
say "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src mod_session_demo.c 2>/dev/null || echo ' + local changes')"
say

# ---- 1. the store alone --------------------------------------------------
say "== 1. The store alone ==================================================="
say
# shellcheck disable=SC2086
"$bin/store_bench" "$STORE_SECS" $SIZES || warn "store_bench failed"
say

# ---- 2. through httpd ----------------------------------------------------
say "== 2. Through httpd (event MPM) with wrk on 127.0.0.1 ===================="
say

MODDIR=$("$APXS" -q LIBEXECDIR 2>/dev/null || echo /usr/lib/apache2/modules)
load() { [ -f "$MODDIR/mod_$1.so" ] && echo "LoadModule ${1}_module $MODDIR/mod_$1.so"; true; }
user_lines=""
if [ "$(id -u)" = 0 ]; then
    runuser=www-data
    id "$runuser" >/dev/null 2>&1 || runuser=nobody
    user_lines="User $runuser
Group $(id -gn "$runuser")"
fi

# wrk_run NAME URL [wrk options...]: run wrk, keep its output in
# $work/NAME.wrk.
wrk_run() {
    name=$1; url=$2; shift 2
    wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --latency "$@" "$url" \
        >"$work/$name.wrk" 2>&1
}

# Figures from a wrk output: requests/s, requests, bytes read, non-2xx/3xx,
# socket errors.
wrk_field() {
    awk -v want="$2" '
        /Requests\/sec:/ { rps = $2 }
        / requests in / {
            n = $1; b = $5; sub(/,$/, "", b)
            u = b; gsub(/[0-9.]/, "", u); v = b; sub(/[A-Za-z]+$/, "", v)
            m = 1
            if (u == "KB") m = 1024; else if (u == "MB") m = 1048576
            else if (u == "GB") m = 1073741824
            bytes = v * m
        }
        /Non-2xx or 3xx responses:/ { bad = $NF }
        /Socket errors:/ {
            gsub(/,/, "")
            err = $4 + $6 + $8 + $10
        }
        /Latency/ && !lat { lat = $2 }
        END {
            if (want == "rps") print rps + 0
            else if (want == "n") print n + 0
            else if (want == "bytes") printf "%.0f\n", bytes
            else if (want == "bad") print bad + 0
            else if (want == "err") print err + 0
            else if (want == "lat") print lat
        }' "$1"
}

status_field() {
    # status_field PORT NAME: a figure of that httpd's /session-status?json
    curl -s --max-time 10 "http://127.0.0.1:$1/session-status?json" |
        sed -n "s/.*\"$2\": *\([0-9][0-9]*\).*/\1/p"
}

# visits PORT ID: the visit counter of session ID, as its dashboard says
# (the view itself counts one).
visits() {
    curl -s -H 'Accept: application/json' -b "$COOKIE=$2" \
        "http://127.0.0.1:$1/dashboard" |
        sed -n 's/.*"visits": *\([0-9][0-9]*\).*/\1/p'
}

# CPU ticks (user + system) used so far by an httpd (httpd_ticks PIDFILE:
# the parent and its children) or by the redis-server (redis_ticks).
TICK=$(getconf CLK_TCK 2>/dev/null || echo 100)
httpd_ticks() {
    ppid=$(cat "$1" 2>/dev/null || echo 0)
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v pp="$ppid" '
        { pid = $1; sub(/^.*\) /, "")
          if (pid == pp || $2 == pp) t += $12 + $13 }
        END { print t + 0 }'
}
redis_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$redis_pid/stat" 2>/dev/null || echo 0
}

# Redis's own counters, from one connection (one redis-cli): commands sent
# by clients (EVALSHA, EVAL and connection set-up; not INFO), all commands
# (those scripts run included), INFO commands, bytes received, bytes sent,
# connections accepted.
rcli() { "$REDIS_CLI" -h 127.0.0.1 -p "$rport" "$@"; }
redis_info() {
    printf 'INFO stats\nINFO commandstats\n' |
        "$REDIS_CLI" -h 127.0.0.1 -p "$rport" 2>/dev/null | tr -d '\r' |
        awk -F'[:,=]' '
        $1 == "total_commands_processed" { c = $2 }
        $1 == "total_net_input_bytes" { i = $2 }
        $1 == "total_net_output_bytes" { o = $2 }
        $1 == "total_connections_received" { n = $2 }
        $1 ~ /^cmdstat_(evalsha|eval|auth|select|role|hello|ping)$/ { t += $3 }
        $1 == "cmdstat_info" { q = $3 }
        END { printf "%.0f %.0f %.0f %.0f %.0f %.0f\n", t, c, q, i, o, n }'
}

# check NAME EXPECTED_BYTES [PORT HITS_BEFORE MISSES_BEFORE]: is the run
# what it claims to be? Prints nothing when it is, else the reason.
check() {
    f="$work/$1.wrk"
    n=$(wrk_field "$f" n); bad=$(wrk_field "$f" bad); err=$(wrk_field "$f" err)
    bytes=$(wrk_field "$f" bytes)
    if [ "$n" -eq 0 ]; then
        echo "no responses at all"; return
    fi
    if [ "$bad" -gt 0 ]; then
        echo "$bad of $n responses were not 2xx/3xx"; return
    fi
    # A 303 to the login page (session not valid) is 3xx, which wrk does
    # not count: the response size and the store's counters tell.
    awk -v b="$bytes" -v n="$n" -v e="$2" 'BEGIN {
        a = b / n; d = a - e; if (d < 0) d = -d
        if (d > 0.05 * e + 16)
            printf "responses averaged %.0f bytes, a 200 is %d bytes: not (all) the page meant\n", a, e
    }'
    if [ $# -ge 5 ]; then
        hits=$(status_field "$3" hits); misses=$(status_field "$3" misses)
        if [ -z "$hits" ] || [ -z "$misses" ]; then
            echo "the store's counters could not be read"; return
        fi
        if [ "$misses" -ne "$5" ]; then
            echo "$((misses - $5)) lookups found no session (invalid cookie or ended session: 303s)"; return
        fi
        # A valid dashboard view looks its session up at least once (once,
        # plus a re-read each time a concurrent update of the same session
        # wins the race).
        if [ $((hits - $4)) -lt "$n" ]; then
            echo "only $((hits - $4)) store hits for $n dashboard responses (at least 1 expected per response)"; return
        fi
    fi
    [ "$err" -gt 0 ] && echo "($err socket errors)"
}

# write_conf DIR PORT STORE_LINES: the bench httpd's configuration. The
# shared-memory and the Redis httpd differ only in STORE_LINES.
write_conf() {
    cat >"$1/httpd.conf" <<CONF
ServerRoot "$1"
ServerName 127.0.0.1
Listen 127.0.0.1:$2
PidFile "$1/logs/httpd.pid"
DefaultRuntimeDir "$1/logs"
Mutex file:$1/logs default
ErrorLog "$1/logs/error.log"
LogLevel warn session_demo:notice
$user_lines
$(load mpm_event)
$(load authz_core)
$(load authz_host)
$(load mime)
$(load dir)
LoadModule session_demo_module "$1/mod_session_demo.so"
TypesConfig /etc/mime.types
# No access log: it would cost the static file and the dashboard alike.

# Two processes of 32 threads (one per wrk connection), none ever started
# or stopped during a run.
StartServers 2
ServerLimit 2
ThreadLimit 32
ThreadsPerChild 32
MaxRequestWorkers 64
MinSpareThreads 1
MaxSpareThreads 64
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30

$3
SessionDemoGuestPassword password
SessionDemoCookieName $COOKIE

DocumentRoot "$1/htdocs"
<Directory "$1/htdocs">
    # FollowSymLinks spares the static file an lstat() per path component:
    # the faster baseline.
    Options FollowSymLinks
    AllowOverride None
    Require all granted
</Directory>
<Location "/login">
    SetHandler session-demo-login
</Location>
<Location "/dashboard">
    SetHandler session-demo-dashboard
</Location>
<Location "/session-status">
    SetHandler session-demo-status
    Require ip 127.0.0.1
</Location>
CONF
    cp htdocs/style.css "$1/htdocs/" 2>/dev/null
    chmod -R a+rX "$1"
    # ... except the snapshot and its key: the module loads them only when
    # nobody but their owner can read them.
    chmod go-rwx "$1"/*.snap "$1"/*.snap.key 2>/dev/null
    return 0
}

# start_httpd DIR PORT WHAT: start it and wait until it answers.
start_httpd() {
    if ! "$HTTPD" -f "$1/httpd.conf" -k start >"$1/logs/start.out" 2>&1; then
        warn "httpd did not start for $3:"
        sed 's/^/    /' "$1/logs/start.out" "$1/logs/error.log" 2>/dev/null | head -20
        return 1
    fi
    i=0
    until curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$2/style.css"; do
        sleep 0.1; i=$((i + 1))
        [ $i -lt 1200 ] || break
    done
    return 0
}

# start_redis: a redis-server of our own on a free loopback port ($rport),
# configured as t/lib/SDemo/Redis.pm does (no persistence, noeviction).
start_redis() {
    rdir="$work/redis"
    mkdir -p "$rdir"
    rport=$("$bin/mkstore" port)
    while [ "$rport" = 6379 ] || [ "$rport" = "$port" ]; do
        rport=$("$bin/mkstore" port)
    done
    cat >"$rdir/redis.conf" <<CONF
bind 127.0.0.1
port $rport
dir $rdir
logfile $rdir/redis.log
daemonize no
save ""
appendonly no
maxmemory-policy noeviction
CONF
    "$REDIS_SERVER" "$rdir/redis.conf" >"$rdir/stdout.log" 2>&1 &
    redis_pid=$!
    i=0
    until [ "$(rcli PING 2>/dev/null)" = PONG ]; do
        sleep 0.1; i=$((i + 1))
        if [ $i -ge 100 ] || ! kill -0 "$redis_pid" 2>/dev/null; then
            warn "redis-server did not answer on 127.0.0.1:$rport:"
            tail -5 "$rdir/redis.log" 2>/dev/null | sed 's/^/    /'
            stop_redis
            return 1
        fi
    done
    return 0
}

# A few real guest logins over HTTP on the Redis httpd: how long one takes
# (the reason the sessions are not made that way) and whether the session
# a login leaves in Redis is shaped like those bench/mkstore wrote.
redis_shape() {
    h=$1
    f=$(rcli HKEYS "sdemo:s:$h" | sort | tr '\n' ' ')
    t=$(rcli TTL "sdemo:s:$h")
    e=$(rcli ZSCORE sdemo:ends "$h")
    o=$(rcli HGET "sdemo:s:$h" owner)
    u=$(rcli ZSCORE "sdemo:u:$o" "$h")
    ut=$(rcli TTL "sdemo:u:$o")
    echo "fields ${f}| TTL $([ "${t:-0}" -gt 0 ] && [ "${t:-0}" -le 1831 ] && echo 'in (0, idle+31]' || echo "$t")| in ends: $([ -n "$e" ] && echo yes || echo no)| in its owner's index: $([ -n "$u" ] && echo yes || echo no), index TTL $([ "${ut:-0}" -ge "${t:-1}" ] && echo '>= the session' || echo "$ut")"
}
real_logins() {
    jar="$work/jar.txt"
    best=""
    k=0
    while [ $k -lt 3 ]; do
        k=$((k + 1))
        rm -f "$jar"
        csrf=$(curl -s -c "$jar" -b "$jar" "$rbase/login" |
            sed -n 's/.*name="csrf"[^>]*value="\([^"]*\)".*/\1/p' | head -n 1)
        a=$(date +%s%N)
        code=$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" \
            --data-urlencode "username=realguest$k" \
            --data-urlencode password=password --data-urlencode "csrf=$csrf" \
            "$rbase/login")
        b=$(date +%s%N)
        if [ "$code" != 303 ]; then
            say "  a real guest login answered $code, not 303: no comparison"
            return
        fi
        ms=$(((b - a) / 1000000))
        [ -z "$best" ] || [ "$ms" -lt "$best" ] && best=$ms
    done
    sid=$(awk -v c="$COOKIE" '$6 == c { v = $7 } END { print v }' "$jar")
    real=$(redis_shape "$("$bin/mkstore" key "$sid")")
    made=$(redis_shape "$("$bin/mkstore" key "$(head -n 1 "$work/rids-$N.txt")")")
    awk -v ms="$best" -v n="$N" -v c="$(nproc 2>/dev/null || echo 1)" 'BEGIN {
        printf "  Redis sessions: a real guest login took %d ms at best (bcrypt, cost 12), so %d logins would take at least %.0f s on %d CPUs; bench/mkstore created them through the Redis store'"'"'s own create instead.\n", ms, n, ms * n / 1000 / c, c }'
    if [ "$real" = "$made" ]; then
        say "  The session a real login left in Redis and one bench/mkstore wrote have the same shape: $real"
    else
        warn "a real login's session and a written one differ in Redis:"
        say "    login:    $real"
        say "    mkstore:  $made"
    fi
}

results="$work/results.txt"
: >"$results"
notes="$work/notes.txt"
: >"$notes"

for N in $SIZES; do
    DUR=$DURATION
    srv="$work/httpd-$N"
    mkdir -p "$srv/htdocs" "$srv/logs"
    cp .libs/mod_session_demo.so "$srv/"
    t0=$(date +%s.%N)
    if ! "$bin/mkstore" "$N" "$CAPACITY" $((MEMORY_MB * 1024 * 1024)) \
        "$srv/sessions.snap" "$work/ids-$N.txt"; then
        warn "could not make $N sessions; skipped"
        continue
    fi
    t1=$(date +%s.%N)
    port=$("$bin/mkstore" port)
    write_conf "$srv" "$port" "SessionDemoStore shm
SessionDemoCapacity $CAPACITY
SessionDemoMemory ${MEMORY_MB}M
SessionDemoSnapshot \"$srv/sessions.snap\""

    t2=$(date +%s.%N)
    start_httpd "$srv" "$port" "$N sessions" || continue
    pidfile="$srv/logs/httpd.pid"
    t3=$(date +%s.%N)
    loaded=$(sed -n 's/.*SDEMO00[0-9]*: \([0-9][0-9]*\) sessions loaded.*/\1/p' "$srv/logs/error.log" | tail -1)
    awk -v n="$N" -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v l="${loaded:-0}" 'BEGIN {
        printf "%d sessions: made and saved by bench/mkstore in %.1f s; httpd up in %.1f s with %d sessions loaded from the snapshot\n", n, b - a, d - c, l }'
    if [ "${loaded:-0}" -ne "$N" ]; then
        warn "httpd loaded ${loaded:-no} sessions instead of $N (error log below); figures for $N are not at $N live sessions"
        grep -i sdemo "$srv/logs/error.log" | head -5 | sed 's/^/    /'
    fi

    id=$(head -n 1 "$work/ids-$N.txt")
    base="http://127.0.0.1:$port"
    # The static twin: one dashboard body, saved as a file of the same size.
    code=$(curl -s -o "$srv/htdocs/static.html" -w '%{http_code}' \
        -b "$COOKIE=$id" "$base/dashboard")
    chmod a+r "$srv/htdocs/static.html"
    if [ "$code" != 200 ]; then
        warn "GET /dashboard with a session of the snapshot answered $code, not 200: the figures for $N are meaningless"
    fi
    dsize=$(curl -s -o /dev/null -w '%{size_header} %{size_download}' \
        -b "$COOKIE=$id" "$base/dashboard" | awk '{ print $1 + $2 }')
    ssize=$(curl -s -o /dev/null -w '%{size_header} %{size_download}' \
        -b "$COOKIE=$id" "$base/static.html" | awk '{ print $1 + $2 }')
    body=$(wc -c <"$srv/htdocs/static.html" | tr -d ' ')
    say "  response sizes: dashboard $dsize bytes, static.html $ssize bytes (headers included; body $body bytes)"

    # The Redis httpd, at one size: same configuration but the store, its
    # sessions created in a redis-server of its own.
    redis_here=0
    if [ -n "$REDIS_AT" ] && [ "$N" = "$REDIS_AT" ] && start_redis; then
        rsrv="$work/httpd-redis-$N"
        mkdir -p "$rsrv/htdocs" "$rsrv/logs"
        cp .libs/mod_session_demo.so "$rsrv/"
        t0=$(date +%s.%N)
        if "$bin/mkstore" redis 127.0.0.1 "$rport" "$N" "$work/rids-$N.txt"; then
            t1=$(date +%s.%N)
            rhttp=$("$bin/mkstore" port)
            while [ "$rhttp" = "$port" ] || [ "$rhttp" = "$rport" ]; do
                rhttp=$("$bin/mkstore" port)
            done
            write_conf "$rsrv" "$rhttp" "SessionDemoStore redis:127.0.0.1:$rport"
            if start_httpd "$rsrv" "$rhttp" "Redis, $N sessions"; then
                rpidfile="$rsrv/logs/httpd.pid"
                rbase="http://127.0.0.1:$rhttp"
                rid=$(head -n 1 "$work/rids-$N.txt")
                code=$(curl -s -o /dev/null -w '%{http_code}' -b "$COOKIE=$rid" "$rbase/dashboard")
                rdsize=$(curl -s -o /dev/null -w '%{size_header} %{size_download}' \
                    -b "$COOKIE=$rid" "$rbase/dashboard" | awk '{ print $1 + $2 }')
                rver=$("$REDIS_SERVER" --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
                awk -v n="$N" -v a="$t0" -v b="$t1" -v l="$(rcli DBSIZE)" -v v="$rver" -v p="$rport" -v s="$rdsize" 'BEGIN {
                    printf "  Redis %s on 127.0.0.1:%s: %d sessions created by bench/mkstore in %.1f s (%d keys); Redis httpd dashboard %d bytes\n", v, p, n, b - a, l, s }'
                if [ "$code" = 200 ]; then
                    redis_here=1
                else
                    warn "GET /dashboard on the Redis httpd answered $code, not 200: no Redis figures"
                fi
            fi
        else
            warn "could not create $N sessions in Redis: no Redis figures"
        fi
    fi

    # Warm up (first touches of the store's pages, of the file, Redis).
    DUR=$WARMUP
    export SDB_COOKIE="$COOKIE"
    export SDB_IDS="$work/ids-$N.txt"
    wrk_run warm-s "$base/static.html" -H "Cookie: $COOKIE=$id"
    wrk_run warm-d "$base/dashboard" -s bench/cookies.lua
    if [ $redis_here = 1 ]; then
        export SDB_IDS="$work/rids-$N.txt"
        wrk_run warm-r "$rbase/dashboard" -s bench/cookies.lua
    fi
    DUR=$DURATION

    for mode in one many; do
        if [ $mode = one ]; then
            label="one session"
        else
            label="many sessions"
        fi
        # Alternate static and dashboard runs; the machine is noisy, so
        # each figure is the median of ROUNDS runs.
        r=1
        while [ "$r" -le "$ROUNDS" ]; do
            tag="$N-$mode-$r"
            export SDB_IDS="$work/ids-$N.txt"
            if [ $mode = one ]; then
                set -- -H "Cookie: $COOKIE=$id"
            else
                set -- -s bench/cookies.lua
            fi
            c0=$(httpd_ticks "$pidfile")
            wrk_run "s-$tag" "$base/static.html" "$@"
            c1=$(httpd_ticks "$pidfile")
            why_s=$(check "s-$tag" "$ssize")
            v0=$(visits "$port" "$id")
            h0=$(status_field "$port" hits); m0=$(status_field "$port" misses)
            c2=$(httpd_ticks "$pidfile")
            wrk_run "d-$tag" "$base/dashboard" "$@"
            c3=$(httpd_ticks "$pidfile")
            why_d=$(check "d-$tag" "$dsize" "$port" "${h0:-0}" "${m0:-0}")
            if [ $mode = one ] && [ -z "$why_d" ]; then
                # Every 200 counted one visit of that one session.
                v1=$(visits "$port" "$id")
                nd=$(wrk_field "$work/d-$tag.wrk" n)
                if [ -z "$v0" ] || [ -z "$v1" ] || [ $((v1 - v0 - 1)) -lt "$nd" ]; then
                    why_d="the session counted $((${v1:-0} - ${v0:-0} - 1)) visits for $nd responses"
                fi
            fi
            rs=$(wrk_field "$work/s-$tag.wrk" rps)
            rd=$(wrk_field "$work/d-$tag.wrk" rps)
            # httpd CPU microseconds per response
            us=$(awk -v a="$c0" -v b="$c1" -v t="$TICK" -v n="$(wrk_field "$work/s-$tag.wrk" n)" \
                'BEGIN { printf "%.1f", n ? (b - a) * 1e6 / t / n : 0 }')
            ud=$(awk -v a="$c2" -v b="$c3" -v t="$TICK" -v n="$(wrk_field "$work/d-$tag.wrk" n)" \
                'BEGIN { printf "%.1f", n ? (b - a) * 1e6 / t / n : 0 }')
            echo "$N|$label|shm|$r|$rs|$rd|$us|$ud|$why_s|$why_d||||||" >>"$results"

            if [ $redis_here = 1 ]; then
                # The same round against the Redis httpd, with Redis's
                # counters and CPU read just before and after the run.
                export SDB_IDS="$work/rids-$N.txt"
                [ $mode = one ] && set -- -H "Cookie: $COOKIE=$rid"
                v0=$(visits "$rhttp" "$rid")
                h0=$(status_field "$rhttp" hits); m0=$(status_field "$rhttp" misses)
                i0=$(redis_info); k0=$(redis_ticks)
                c2=$(httpd_ticks "$rpidfile")
                wrk_run "r-$tag" "$rbase/dashboard" "$@"
                c3=$(httpd_ticks "$rpidfile")
                i1=$(redis_info); k1=$(redis_ticks)
                why_r=$(check "r-$tag" "$rdsize" "$rhttp" "${h0:-0}" "${m0:-0}")
                nr=$(wrk_field "$work/r-$tag.wrk" n)
                if [ $mode = one ] && [ -z "$why_r" ]; then
                    v1=$(visits "$rhttp" "$rid")
                    if [ -z "$v0" ] || [ -z "$v1" ] || [ $((v1 - v0 - 1)) -lt "$nr" ]; then
                        why_r="the session counted $((${v1:-0} - ${v0:-0} - 1)) visits for $nr responses"
                    fi
                fi
                rr=$(wrk_field "$work/r-$tag.wrk" rps)
                # Per view: client commands (round trips), commands run by
                # scripts, bytes in and out, new connections, Redis CPU us.
                per=$(echo "$i0 $i1" | awk -v n="$nr" -v k0="$k0" -v k1="$k1" -v t="$TICK" '{
                    if (!n || NF != 12) { print "|||||"; exit }
                    printf "%.3f|%.2f|%.0f|%.0f|%.4f|%.1f", ($7 - $1) / n,
                        (($8 - $2) - ($7 - $1) - ($9 - $3)) / n,
                        ($10 - $4) / n, ($11 - $5) / n, ($12 - $6 - 1) / n,
                        (k1 - k0) * 1e6 / t / n }')
                ur=$(awk -v a="$c2" -v b="$c3" -v t="$TICK" -v n="$nr" \
                    'BEGIN { printf "%.1f", n ? (b - a) * 1e6 / t / n : 0 }')
                echo "$N|$label|redis|$r|$rs|$rr|$us|$ur|$why_s|$why_r|$per" >>"$results"
            fi
            r=$((r + 1))
        done
    done
    [ $redis_here = 1 ] && real_logins
    stop_httpd "$pidfile"; pidfile=""
    stop_httpd "$rpidfile"; rpidfile=""
    stop_redis
    grep -E '\[(emerg|alert|crit|error)\]' "$srv/logs/error.log" 2>/dev/null | head -5 |
        sed "s/^/  error log ($N): /" >>"$notes"
    [ -n "${rsrv:-}" ] && grep -E '\[(emerg|alert|crit|error)\]' "$rsrv/logs/error.log" 2>/dev/null | head -5 |
        sed "s/^/  error log (Redis, $N): /" >>"$notes"
    rm -rf "$srv" "${rsrv:-$srv}" "$work/ids-$N.txt" "$work/rids-$N.txt" "$work/redis"
    rsrv=""
done

say
say "wrk -t$THREADS -c$CONNS -d${DURATION}s per run, static and dashboard alternating, $ROUNDS runs"
say "each, medians shown; httpd event MPM, 2 processes x 32 threads; wrk, httpd (and"
say "redis-server) share the machine's $(nproc 2>/dev/null || echo '?') CPUs. Same run for every column; the"
say "Redis rows are a second httpd (SessionDemoStore redis:) driven in the same"
say "rounds, right after the shared-memory one, against the same static runs."
say "\"one session\": every request carries the same cookie; \"many sessions\": each"
say "request picks one of all the live sessions at random (bench/cookies.lua, used for"
say "the static file too). ratio = median over the rounds of dashboard/static"
say "(goal >= 0.9 for shm, >= 0.6 for Redis), with the lowest and highest round."
say "httpd us/req: CPU time of all httpd processes (user + system, from /proc) per"
say "response, median: what a response costs the server whatever share of the CPUs"
say "wrk took."
say
# Medians per (sessions, case, store); a cell with any invalid run is FAILED.
awk -F'|' '
    function med(list,    a, n, i, j, t) {
        n = split(list, a, " ")
        for (i = 1; i <= n; i++)
            for (j = i + 1; j <= n; j++)
                if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
        if (n == 0) return 0
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function lo(list,    a, n, i, m) { n = split(list, a, " "); m = a[1]
        for (i = 2; i <= n; i++) if (a[i] + 0 < m + 0) m = a[i]; return m }
    function hi(list,    a, n, i, m) { n = split(list, a, " "); m = a[1]
        for (i = 2; i <= n; i++) if (a[i] + 0 > m + 0) m = a[i]; return m }
    {
        k = $1 "|" $2 "|" $3
        if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
        S[k] = S[k] " " $5; D[k] = D[k] " " $6
        if ($5 > 0) R[k] = R[k] " " ($6 / $5)
        US[k] = US[k] " " $7; UD[k] = UD[k] " " $8
        if ($9 != "" && $9 !~ /^\(/) fs[k] = 1
        if ($10 != "" && $10 !~ /^\(/) fd[k] = 1
        if ($3 == "redis" && $11 != "") {
            RT[k] = RT[k] " " $11; LU[k] = LU[k] " " $12; BI[k] = BI[k] " " $13
            BO[k] = BO[k] " " $14; NC[k] = NC[k] " " $15; RC[k] = RC[k] " " $16
            redis = 1
        }
    }
    END {
        printf "%10s  %-14s %-5s %13s %13s %6s %12s %13s\n", "sessions", "case", "store", "static req/s", "dashb. req/s", "ratio", "(min-max)", "httpd us/req"
        printf "%10s  %-14s %-5s %13s %13s %6s %12s %13s\n", "", "", "", "", "", "", "", "static dashb."
        for (i = 1; i <= nk; i++) {
            k = order[i]; split(k, p, "|")
            s = fs[k] ? sprintf("%13s", "FAILED") : sprintf("%13.0f", med(S[k]))
            d = fd[k] ? sprintf("%13s", "FAILED") : sprintf("%13.0f", med(D[k]))
            if (fs[k] || fd[k] || R[k] == "") { r = "n/a"; mm = "" }
            else { r = sprintf("%.2f", med(R[k])); mm = sprintf("(%.2f-%.2f)", lo(R[k]), hi(R[k])) }
            printf "%10s  %-14s %-5s %s %s %6s %12s %6.1f %6.1f\n", p[1], p[2], p[3], s, d, r, mm, med(US[k]), med(UD[k])
            if (p[3] != "shm") continue
            dm[p[2] "|" p[1]] = fd[k] ? -1 : med(D[k])
            rm[p[2] "|" p[1]] = (fs[k] || fd[k] || R[k] == "") ? -1 : med(R[k])
            um[p[2] "|" p[1]] = fd[k] ? -1 : med(UD[k])
            if (!(p[2] in first)) first[p[2]] = p[1]
            last[p[2]] = p[1]
        }
        print ""
        for (c in first)
            if (first[c] != last[c]) {
                a = dm[c "|" first[c]]; b = dm[c "|" last[c]]
                ra = rm[c "|" first[c]]; rb = rm[c "|" last[c]]
                ua = um[c "|" first[c]]; ub = um[c "|" last[c]]
                if (a > 0 && b > 0 && ra > 0 && rb > 0)
                    printf "shm, %s, %s vs %s sessions: dashboard req/s x%.2f, ratio to static x%.2f,\n  httpd CPU per dashboard %.1f -> %.1f us (goal: no measurable drop)\n", c, last[c], first[c], b / a, rb / ra, ua, ub
            }
        if (!redis) exit
        print ""
        print "What a dashboard view costs Redis (from its INFO stats and commandstats,"
        print "read just before and after each run, divided by the responses; medians):"
        print "round trips = commands httpd sent (EVALSHA, EVAL); script cmds = the"
        print "commands those scripts ran inside Redis; bytes to/from Redis as Redis"
        print "counts them; new conns = connections Redis accepted per 1000 views;"
        print "redis us = redis-server CPU (user + system) per view."
        print ""
        printf "%10s  %-14s %11s %12s %9s %11s %11s %9s\n", "sessions", "case", "round trips", "script cmds", "bytes to", "bytes from", "new conns", "redis us"
        printf "%10s  %-14s %11s %12s %9s %11s %11s %9s\n", "", "", "per view", "per view", "Redis", "Redis", "/1000 views", "per view"
        for (i = 1; i <= nk; i++) {
            k = order[i]; split(k, p, "|")
            if (p[3] != "redis" || RT[k] == "") continue
            printf "%10s  %-14s %11.2f %12.1f %9.0f %11.0f %11.1f %9.1f\n", p[1], p[2], med(RT[k]), med(LU[k]), med(BI[k]), med(BO[k]), 1000 * med(NC[k]), med(RC[k])
        }
    }' "$results"
awk -F'|' '
    $9 != "" && $3 == "shm" { printf "WARNING: %s, %s, round %s, static: %s\n", $1, $2, $4, $9 }
    $10 != "" { printf "WARNING: %s, %s, %s, round %s, dashboard: %s\n", $1, $2, $3, $4, $10 }' "$results"
cat "$notes"
