#!/bin/sh
# The browser suite: the demo as `make run` and `make run-https` serve it
# (scripts/run-demo.sh on free loopback ports, in the background), Debian's
# Chromium driven by Playwright (playwright-core from npm; no browser is
# downloaded), axe-core for accessibility. t/browser/suite.js prints TAP;
# prove runs it.
#
#   sh t/browser/run.sh                 the tests (exit status: prove's)
#   sh t/browser/run.sh --screenshots   write docs/screenshots/*.png
#
# Needs the module built (make). The npm packages are pinned by
# t/browser/package-lock.json and installed with `npm ci` into
# build/browser/ (cache: build/npm-cache, so a second run needs no
# network). If Chromium is missing and cannot be installed, the tests are
# skipped (exit 0) with a message saying so; every other problem fails.
#
# Environment: CHROMIUM (default /usr/bin/chromium), APXS, HTTPD,
# TEST_VERBOSE=1 (prove -v).

set -u
cd "$(dirname "$0")/../.." || exit 1
TOP=$(pwd -P)
mode=test
[ "${1:-}" = --screenshots ] && mode=screenshots
log() { printf 'browser: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian's chromium"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
        >/dev/null 2>&1 || true
fi
if [ ! -x "$CHROMIUM" ]; then
    [ $mode = test ] || die "no Chromium at $CHROMIUM (as root: apt-get install chromium)"
    log "SKIP: no Chromium at $CHROMIUM and it could not be installed"
    log "      (as root: apt-get install chromium; or set CHROMIUM=/path/to/chromium)"
    exit 0
fi
command -v node >/dev/null 2>&1 || die "node is missing (as root: apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || die "npm is missing (as root: apt-get install npm)"
[ -f .libs/mod_session_demo.so ] || die ".libs/mod_session_demo.so is not built: run make"

work="$TOP/build/browser"
mkdir -p "$work" "$TOP/build/npm-cache"
rm -f "$work"/failed-*.png

# ---- npm packages, exactly as locked -------------------------------------
cp t/browser/package.json t/browser/package-lock.json "$work/"
if ! (cd "$work" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --cache "$TOP/build/npm-cache" \
    --prefer-offline --ignore-scripts --no-audit --no-fund --loglevel=error) >"$work/npm.log" 2>&1; then
    cat "$work/npm.log" >&2
    die "npm ci failed (log: build/browser/npm.log)"
fi

# ---- the demo, as make run and make run-https serve it -------------------
free_port() {
    node -e 'const s = require("net").createServer();
             s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}
pids=
stop_demos() {
    for p in $pids; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in $pids; do
        wait "$p" 2>/dev/null
    done
    pids=
}
trap stop_demos EXIT
trap 'exit 130' INT TERM

# start NAME TLS: scripts/run-demo.sh in the background; waits until it
# prints its URL (it does once httpd listens) and sets $started_url.
start() {
    port=$(free_port) || die "no free port"
    # Emptied here, not by the redirection below: that happens in the
    # child, maybe after the first look for the URL.
    : >"$work/$1.log"
    TLS=$2 PORT=$port HOST=127.0.0.1 sh scripts/run-demo.sh >>"$work/$1.log" 2>&1 &
    pids="$pids $!"
    i=0
    while ! grep -q 'Server Sessions Demo: http' "$work/$1.log"; do
        if ! kill -0 "$!" 2>/dev/null || [ $i -ge 300 ]; then
            cat "$work/$1.log" >&2
            die "the $1 server did not start (log: build/browser/$1.log)"
        fi
        i=$((i + 1))
        sleep 0.1
    done
    started_url=$(sed -n 's/^ *Server Sessions Demo: \(http[^ ]*\).*/\1/p' "$work/$1.log")
    [ -n "$started_url" ] || die "no URL in build/browser/$1.log"
}
start demo ""
http_url=$started_url
https_url=
if [ $mode = test ]; then
    start demo-https 1
    https_url=$started_url
fi
log "demo at $http_url ${https_url:+and $https_url }(logs: build/browser/demo*.log)"

export NODE_PATH="$work/node_modules" CHROMIUM SDEMO_URL="$http_url" \
       SDEMO_HTTPS_URL="$https_url" SDEMO_ARTIFACTS="$work" \
       SDEMO_LOGS="$work/demo.log $work/demo-https.log"
if [ $mode = screenshots ]; then
    SDEMO_SCREENSHOTS="$TOP/docs/screenshots" node t/browser/suite.js
    exit $?
fi
flags=--timer
[ "${TEST_VERBOSE:-}" = 1 ] && flags="--timer -v"
# shellcheck disable=SC2086
prove $flags --exec node t/browser/suite.js </dev/null
