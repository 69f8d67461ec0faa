#!/bin/sh
# Run the libFuzzer harnesses built by fuzz/fuzz.mk, one at a time.
#
#   sh fuzz/run.sh [NAME...]        default: every harness in build/fuzz/
#
# Environment:
#   FUZZ_TIME    seconds per harness (default 60)
#   FUZZ_NICE    nice level (default 19: the fuzzers yield to other work)
#   FUZZ_FLAGS   extra libFuzzer flags, e.g. "-max_len=8192"
#   FUZZ_BUILD   where the binaries are (default build/fuzz)
#
# Each harness NAME runs build/fuzz/fuzz_NAME on its own corpus copy,
# build/fuzz/corpus-NAME (seeded from fuzz/corpus/NAME and the past
# findings fuzz/crashes/NAME-*; new inputs stay there between runs), with fuzz/dict/NAME.dict when there is one, as one
# process and one job (-workers=1 -jobs=1). Its log is
# build/fuzz/logs/NAME.log, a crash build/fuzz/NAME-crash-* (or
# NAME-timeout-*, NAME-leak-*, NAME-oom-*).
# After each run the script prints libFuzzer's final figures: executions,
# exec/s, cov, ft, corpus size, and whether it crashed. The exit status is
# non-zero when any harness crashed or could not run.

set -u
# libFuzzer status lines can carry raw bytes (DE: "..."): parse as bytes.
LC_ALL=C
export LC_ALL

top=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD:-$top/build/fuzz}
case $build in /*) ;; *) build=$top/$build ;; esac
time=${FUZZ_TIME:-60}
nice=${FUZZ_NICE:-19}
flags=${FUZZ_FLAGS:-}

if [ $# -eq 0 ]; then
    set --
    for b in "$build"/fuzz_*; do
        [ -x "$b" ] && set -- "$@" "${b##*/fuzz_}"
    done
fi
if [ $# -eq 0 ]; then
    echo "run.sh: no harness in $build (make fuzz-build first)" >&2
    exit 1
fi

mkdir -p "$build/logs"
status=0
summary=""

for name in "$@"; do
    bin=$build/fuzz_$name
    corpus=$build/corpus-$name
    log=$build/logs/$name.log
    work=$build/logs/$name.work
    if [ ! -x "$bin" ]; then
        echo "run.sh: $bin is missing" >&2
        status=1
        continue
    fi
    mkdir -p "$corpus"
    # Seeds, and the inputs of past findings (fuzz/crashes/NAME-*), which
    # are replayed first thing, so a regression stops the run at once.
    for f in "$top/fuzz/corpus/$name"/* "$top/fuzz/crashes/$name"-*; do
        [ -f "$f" ] && cp -n "$f" "$corpus/" 2>/dev/null
    done
    dict=
    [ -f "$top/fuzz/dict/$name.dict" ] && dict=-dict=$top/fuzz/dict/$name.dict
    # With -jobs, libFuzzer runs the fuzzing in a child whose output goes to
    # ./fuzz-0.log: run it in a directory of its own and keep that log.
    rm -rf "$work"
    mkdir -p "$work"
    touch "$work/.start"
    echo "== fuzz_$name: ${time}s, corpus $corpus ($(ls "$corpus" | wc -l) inputs)"
    # shellcheck disable=SC2086
    (cd "$work" && UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ASAN_OPTIONS=detect_leaks=1 \
        nice -n "$nice" "$bin" -workers=1 -jobs=1 \
        -max_total_time="$time" -print_final_stats=1 \
        -artifact_prefix="$build/$name-" $dict $flags \
        "$corpus" >"$build/logs/$name.driver.log" 2>&1)
    rc=$?
    if [ -f "$work/fuzz-0.log" ]; then
        mv "$work/fuzz-0.log" "$log"
    else
        mv "$build/logs/$name.driver.log" "$log"
    fi

    # libFuzzer's last status line ("#N DONE cov: C ft: F corp: K/S ...",
    # or the last pulse before a crash) and its final stats.
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p')
    files=$(ls "$corpus" | wc -l)
    crash=$(find "$build" -maxdepth 1 -type f -name "$name-*" -newer "$work/.start" \
        2>/dev/null | tr '\n' ' ')
    rm -rf "$work"
    if grep -qE 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error:|FUZZ PROPERTY FAILED' "$log"; then
        result="CRASH (see $log; $crash)"
        status=1
    elif [ "$rc" -ne 0 ]; then
        result="exit $rc (see $log)"
        status=1
    else
        result="ok"
    fi
    line=$(printf '%-9s execs %-10s exec/s %-7s cov %-5s ft %-6s corpus %s (%s files)  %s' \
        "$name" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" \
        "${corp:-?}" "$files" "$result")
    echo "$line"
    summary="$summary$line
"
done

echo
echo "== fuzz summary (${time}s each)"
printf '%s' "$summary"
exit $status
