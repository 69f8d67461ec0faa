#!/bin/sh
# Install the Debian packages that building, running and testing need.
# As root: apt-get installs what is missing. Otherwise: print the command.
set -e
PKGS="apache2 apache2-dev apache2-utils libapr1-dev libaprutil1-dev libssl-dev
      libapache2-mod-perl2 libwww-perl libhtml-form-perl libjson-pp-perl perl gcc make
      fail2ban openssl"
[ -n "$SD_EXTRA_PKGS" ] && PKGS="$PKGS $SD_EXTRA_PKGS"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages:$missing" >&2
    echo "install them with:  sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
