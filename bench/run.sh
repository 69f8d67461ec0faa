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
#      and loaded at start through SessionDemoSnapshot).
#
# Knobs (environment): BENCH_DURATION (seconds per wrk run, 3),
# BENCH_ROUNDS (static/dashboard pairs per case, 7),
# BENCH_THREADS (wrk threads, 2), BENCH_CONNECTIONS (32), BENCH_SESSIONS
# ("10000 1000000"), BENCH_STORE_SECONDS (per store measurement, 1),
# HTTPD, APXS, CC.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1

DURATION=${BENCH_DURATION:-3}
ROUNDS=${BENCH_ROUNDS:-7}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-32}
SIZES=${BENCH_SESSIONS:-"10000 1000000"}
STORE_SECS=${BENCH_STORE_SECONDS:-1}
WARMUP=3
CAPACITY=1100000            # SessionDemoCapacity of the bench httpd
MEMORY_MB=512               # SessionDemoMemory of the bench httpd
COOKIE=sid
HTTPD=${HTTPD:-$(command -v apache2 || command -v httpd || echo /usr/sbin/apache2)}
APXS=${APXS:-$(command -v apxs || echo /usr/bin/apxs)}
CC=${CC:-cc}

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

work=$(mktemp -d "${TMPDIR:-/tmp}/sdemo-bench.XXXXXX") || exit 1
chmod 755 "$work"
pidfile=""
stop_httpd() {
    [ -n "$pidfile" ] && [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile" 2>/dev/null)
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    # At stop httpd writes the store to its snapshot: a few seconds at 1M.
    i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 600 ]; do
        sleep 0.1; i=$((i + 1))
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    pidfile=""
}
cleanup() {
    stop_httpd
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
say "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src mod_session_demo.c sdemo_pages.c 2>/dev/null || echo ' + local changes')"
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
    curl -s --max-time 10 "http://127.0.0.1:$port/session-status?json" |
        sed -n "s/.*\"$1\": *\([0-9][0-9]*\).*/\1/p"
}

# CPU ticks (user + system) used so far by httpd: the parent and its
# children.
TICK=$(getconf CLK_TCK 2>/dev/null || echo 100)
httpd_ticks() {
    ppid=$(cat "$pidfile" 2>/dev/null || echo 0)
    cat /proc/[0-9]*/stat 2>/dev/null | awk -v pp="$ppid" '
        { pid = $1; sub(/^.*\) /, "")
          if (pid == pp || $2 == pp) t += $12 + $13 }
        END { print t + 0 }'
}

# check NAME EXPECTED_BYTES [HITS_BEFORE MISSES_BEFORE]: is the run what it
# claims to be? Prints nothing when it is, else the reason.
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
    if [ $# -ge 4 ]; then
        hits=$(status_field hits); misses=$(status_field misses)
        if [ -z "$hits" ] || [ -z "$misses" ]; then
            echo "the store's counters could not be read"; return
        fi
        if [ "$misses" -ne "$4" ]; then
            echo "$((misses - $4)) lookups found no session (invalid cookie or ended session: 303s)"; return
        fi
        # A valid dashboard view looks its session up at least once (once,
        # plus a re-read each time a concurrent update of the same session
        # wins the race).
        if [ $((hits - $3)) -lt "$n" ]; then
            echo "only $((hits - $3)) store hits for $n dashboard responses (at least 1 expected per response)"; return
        fi
    fi
    [ "$err" -gt 0 ] && echo "($err socket errors)"
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
    cat >"$srv/httpd.conf" <<CONF
ServerRoot "$srv"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
PidFile "$srv/logs/httpd.pid"
DefaultRuntimeDir "$srv/logs"
Mutex file:$srv/logs default
ErrorLog "$srv/logs/error.log"
LogLevel warn session_demo:notice
$user_lines
$(load mpm_event)
$(load authz_core)
$(load authz_host)
$(load mime)
$(load dir)
LoadModule session_demo_module "$srv/mod_session_demo.so"
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

SessionDemoStore shm
SessionDemoCapacity $CAPACITY
SessionDemoMemory ${MEMORY_MB}M
SessionDemoSnapshot "$srv/sessions.snap"
SessionDemoGuestPassword password
SessionDemoCookieName $COOKIE

DocumentRoot "$srv/htdocs"
<Directory "$srv/htdocs">
    # FollowSymLinks spares the static file an lstat() per path component:
    # the faster baseline.
    Options FollowSymLinks
    AllowOverride None
    Require all granted
</Directory>
<Location "/dashboard">
    SetHandler session-demo-dashboard
</Location>
<Location "/session-status">
    SetHandler session-demo-status
    Require ip 127.0.0.1
</Location>
CONF
    cp htdocs/style.css "$srv/htdocs/" 2>/dev/null
    chmod -R a+rX "$srv"

    t2=$(date +%s.%N)
    if ! "$HTTPD" -f "$srv/httpd.conf" -k start >"$srv/logs/start.out" 2>&1; then
        warn "httpd did not start for $N sessions:"
        sed 's/^/    /' "$srv/logs/start.out" "$srv/logs/error.log" 2>/dev/null | head -20
        continue
    fi
    pidfile="$srv/logs/httpd.pid"
    i=0
    until curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/style.css"; do
        sleep 0.1; i=$((i + 1))
        [ $i -lt 1200 ] || break
    done
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

    export SDB_IDS="$work/ids-$N.txt" SDB_COOKIE="$COOKIE"
    # Warm up both (first touches of the store's pages, of the file).
    DUR=$WARMUP
    wrk_run warm-s "$base/static.html" -H "Cookie: $COOKIE=$id"
    wrk_run warm-d "$base/dashboard" -s bench/cookies.lua
    DUR=$DURATION

    for mode in one many; do
        if [ $mode = one ]; then
            set -- -H "Cookie: $COOKIE=$id"
            label="one session"
        else
            set -- -s bench/cookies.lua
            label="many sessions"
        fi
        # Alternate static and dashboard runs; the machine is noisy, so
        # each figure is the median of ROUNDS runs.
        r=1
        while [ $r -le "$ROUNDS" ]; do
            tag="$N-$mode-$r"
            c0=$(httpd_ticks)
            wrk_run "s-$tag" "$base/static.html" "$@"
            c1=$(httpd_ticks)
            why_s=$(check "s-$tag" "$ssize")
            v0=$(curl -s -H 'Accept: application/json' -b "$COOKIE=$id" "$base/dashboard" |
                sed -n 's/.*"visits": *\([0-9][0-9]*\).*/\1/p')
            h0=$(status_field hits); m0=$(status_field misses)
            c2=$(httpd_ticks)
            wrk_run "d-$tag" "$base/dashboard" "$@"
            c3=$(httpd_ticks)
            why_d=$(check "d-$tag" "$dsize" "${h0:-0}" "${m0:-0}")
            if [ $mode = one ] && [ -z "$why_d" ]; then
                # Every 200 counted one visit of that one session.
                v1=$(curl -s -H 'Accept: application/json' -b "$COOKIE=$id" "$base/dashboard" |
                    sed -n 's/.*"visits": *\([0-9][0-9]*\).*/\1/p')
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
            echo "$N|$label|$r|$rs|$rd|$us|$ud|$why_s|$why_d" >>"$results"
            r=$((r + 1))
        done
    done
    stop_httpd
    grep -E '\[(emerg|alert|crit|error)\]' "$srv/logs/error.log" 2>/dev/null | head -5 |
        sed "s/^/  error log ($N): /" >>"$notes"
    rm -rf "$srv" "$work/ids-$N.txt"
done

say
say "wrk -t$THREADS -c$CONNS -d${DURATION}s per run, static and dashboard alternating, $ROUNDS runs"
say "each, medians shown; httpd event MPM, 2 processes x 32 threads; wrk and httpd"
say "share the machine's $(nproc 2>/dev/null || echo '?') CPUs. Same server, same run for both columns."
say "\"one session\": every request carries the same cookie; \"many sessions\": each"
say "request picks one of all the live sessions at random (bench/cookies.lua, used for"
say "the static file too). ratio = median over the rounds of dashboard/static"
say "(goal >= 0.9), with the lowest and highest round. httpd us/req: CPU time of all"
say "httpd processes (user + system, from /proc) per response, median: what a"
say "response costs the server whatever share of the CPUs wrk took."
say
# Medians per (sessions, case); a cell with any invalid run is FAILED.
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
        k = $1 "|" $2
        if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
        S[k] = S[k] " " $4; D[k] = D[k] " " $5
        if ($4 > 0) R[k] = R[k] " " ($5 / $4)
        US[k] = US[k] " " $6; UD[k] = UD[k] " " $7
        if ($8 != "" && $8 !~ /^\(/) fs[k] = 1
        if ($9 != "" && $9 !~ /^\(/) fd[k] = 1
    }
    END {
        printf "%10s  %-14s %13s %13s %6s %12s %13s\n", "sessions", "case", "static req/s", "dashb. req/s", "ratio", "(min-max)", "httpd us/req"
        printf "%10s  %-14s %13s %13s %6s %12s %13s\n", "", "", "", "", "", "", "static dashb."
        for (i = 1; i <= nk; i++) {
            k = order[i]; split(k, p, "|")
            s = fs[k] ? sprintf("%13s", "FAILED") : sprintf("%13.0f", med(S[k]))
            d = fd[k] ? sprintf("%13s", "FAILED") : sprintf("%13.0f", med(D[k]))
            if (fs[k] || fd[k] || R[k] == "") { r = "n/a"; mm = "" }
            else { r = sprintf("%.2f", med(R[k])); mm = sprintf("(%.2f-%.2f)", lo(R[k]), hi(R[k])) }
            printf "%10s  %-14s %s %s %6s %12s %6.1f %6.1f\n", p[1], p[2], s, d, r, mm, med(US[k]), med(UD[k])
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
                    printf "%s, %s vs %s sessions: dashboard req/s x%.2f, ratio to static x%.2f,\n  httpd CPU per dashboard %.1f -> %.1f us (goal: no measurable drop)\n", c, last[c], first[c], b / a, rb / ra, ua, ub
            }
    }' "$results"
awk -F'|' '
    $8 != "" { printf "WARNING: %s, %s, round %s, static: %s\n", $1, $2, $3, $8 }
    $9 != "" { printf "WARNING: %s, %s, round %s, dashboard: %s\n", $1, $2, $3, $9 }' "$results"
cat "$notes"
