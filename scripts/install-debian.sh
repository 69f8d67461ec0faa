#!/bin/sh
# After `apxs -i`: install Debian's mods-available files so that
# `a2enmod session_demo` works. Elsewhere, say what to add by hand.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
apxs=${1:-apxs}
moddir=$("$apxs" -q LIBEXECDIR)
if [ -d /etc/apache2/mods-available ]; then
    sed "s#/usr/lib/apache2/modules#$moddir#" "$top/conf/debian/session_demo.load" \
        > /etc/apache2/mods-available/session_demo.load
    cp "$top/conf/debian/session_demo.conf" /etc/apache2/mods-available/session_demo.conf
    echo "installed; enable with: a2enmod session_demo && systemctl reload apache2"
else
    echo "add to httpd.conf: LoadModule session_demo_module $moddir/mod_session_demo.so"
fi
