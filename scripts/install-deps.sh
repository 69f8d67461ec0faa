#!/bin/sh
# Bring the Debian packages that one job needs to a consistent, current
# state:   sh scripts/install-deps.sh build|run|test
#
#   build  compiler, apxs and the libraries the module links with
#   run    build + what `make run` serves the demo with (apache2, openssl)
#   test   run + what `make test` uses (Apache::Test, Redis and Sentinel,
#          Chromium and Node for the browser suite, fail2ban for its filter)
#
# "Installed" is not "consistent": a fresh image may ship a libssl3 older
# than the one Debian's apache2 was built against, and mod_ssl then logs
# AH01882 at every start. So a package counts as needing work when it is
# missing *or* when apt has a newer version of it; the libraries whose
# versions must match apache2's build (libssl3, openssl, libssl-dev) are
# always on the list.
#
# As root this runs apt-get; otherwise it prints the command to run as root
# and fails when something is missing (an outdated package is then only
# reported: an ordinary user cannot fix it, and the demo may still work).
set -e
job=${1:-test}

BUILD="gcc make apache2-dev libapr1-dev libaprutil1-dev libssl-dev libssl3
       openssl libhiredis-dev pkg-config"
RUN="apache2 apache2-utils"
TEST="libapache2-mod-perl2 libwww-perl libhtml-form-perl libjson-pp-perl perl
      fail2ban redis-server redis-sentinel chromium nodejs npm curl"
case $job in
build) PKGS=$BUILD ;;
run) PKGS="$BUILD $RUN" ;;
test) PKGS="$BUILD $RUN $TEST" ;;
*) echo "usage: $0 build|run|test" >&2; exit 2 ;;
esac
[ -n "${SD_EXTRA_PKGS:-}" ] && PKGS="$PKGS $SD_EXTRA_PKGS"

# node and npm may come from elsewhere than Debian (an image's own build):
# then they are present and need nothing from apt.
filter() {
    for p in $PKGS; do
        case $p in
        nodejs) command -v node >/dev/null 2>&1 && continue ;;
        npm) command -v npm >/dev/null 2>&1 && continue ;;
        esac
        echo "$p"
    done
}
PKGS=$(filter)

# missing: not installed. stale: installed, but apt's candidate differs.
state() {
    missing="" stale=""
    for p in $PKGS; do
        inst=$(dpkg-query -W -f='${Status} ${Version}' "$p" 2>/dev/null |
            sed -n 's/^install ok installed //p')
        if [ -z "$inst" ]; then
            missing="$missing $p"
            continue
        fi
        cand=$(apt-cache policy "$p" 2>/dev/null |
            sed -n 's/^ *Candidate: //p')
        [ -n "$cand" ] && [ "$cand" != "(none)" ] && [ "$cand" != "$inst" ] &&
            stale="$stale $p"
    done
    return 0
}

state
[ -z "$missing$stale" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    if [ -n "$missing" ]; then
        echo "missing Debian packages:$missing" >&2
        echo "install them as root:  apt-get install -y$missing$stale" >&2
        exit 1
    fi
    echo "note: newer versions available of:$stale" >&2
    echo "      bring them up to date as root: apt-get install -y$stale" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# A package list from the image may be older than the archive: refresh it
# first, then look again with what it says.
apt-get update -qq >/dev/null 2>&1 || echo "apt-get update failed; using the package lists as they are" >&2
state
[ -z "$missing$stale" ] && exit 0
[ -n "$missing" ] && echo "installing:$missing"
[ -n "$stale" ] && echo "upgrading:$stale"
# apt-get install both installs what is missing and upgrades what is
# installed to the candidate version.
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing $stale >/dev/null
