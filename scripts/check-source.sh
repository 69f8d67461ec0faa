#!/bin/sh
# Structural checks of the source, run by `make test` (and `make check`):
#
# 1. Layers depend one way. Each file of the module has a rank:
#      0  src/sd_*          the plain-C core: no httpd header, no glue header
#      1  src/sdemo_config  configuration and process state
#      2  src/sdemo_users   user and group files, credentials
#      3  src/sdemo_session the session lifecycle
#      4  src/sdemo_pages   the pages and guarded areas
#      5  mod_session_demo.c the module record, hooks and dispatch
#    A file may include our headers of its own rank or lower, never higher
#    (so there can be no include cycle), and a core file no httpd header.
# 2. Every log event has its own tag: each SDEMOnnnnn appears in exactly
#    one message of the C sources.
#
# Prints every violation and exits 1 when there is one.
cd "$(dirname "$0")/.." || exit 1

rank() {
    case $1 in
    src/sd_*) echo 0 ;;
    src/sdemo_config.*) echo 1 ;;
    src/sdemo_users.*) echo 2 ;;
    src/sdemo_session.*) echo 3 ;;
    src/sdemo_pages.*) echo 4 ;;
    mod_session_demo.c) echo 5 ;;
    *) echo 9 ;;
    esac
}

bad=0
for f in mod_session_demo.c src/*.c src/*.h; do
    [ -f "$f" ] || continue
    r=$(rank "$f")
    # shellcheck disable=SC2013
    for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
        base=${inc##*/}
        case $base in
        httpd.h | http_*.h | ap_*.h | util_*.h | mod_*.h | mpm_*.h | scoreboard.h | unixd.h)
            if [ "$r" = 0 ]; then
                echo "layering: $f (core) includes the httpd header $inc" >&2
                bad=1
            fi
            continue
            ;;
        esac
        [ -f "src/$base" ] || continue
        ir=$(rank "src/$base")
        if [ "$ir" -gt "$r" ]; then
            echo "layering: $f (rank $r) includes $inc (rank $ir): a lower layer may not use a higher one" >&2
            bad=1
        fi
    done
done

# Log tags: one message each.
dups=$(grep -ho 'SDEMO[0-9]\{5\}:' mod_session_demo.c src/*.c | sort | uniq -d)
if [ -n "$dups" ]; then
    for d in $dups; do
        echo "log tags: $d is used by more than one message:" >&2
        grep -n "$d" mod_session_demo.c src/*.c >&2
    done
    bad=1
fi

[ "$bad" = 0 ] && echo "check-source: layers and log tags ok"
exit $bad
