#!/usr/bin/env bash
# Runs fuzz targets built by `make fuzz`, each for a bounded time over a
# temporary copy of its seed corpus (the committed corpus is not modified).
#
#   test/fuzz/run.sh [-t SECONDS] [-j JOBS] [TARGET...]
#
# TARGET defaults to every test/fuzz/bin/fuzz_* program; SECONDS defaults to
# 30, JOBS (parallel libFuzzer workers per target) to 1.  Extra libFuzzer
# flags can be passed in FUZZ_FLAGS.  Crash reproducers and logs go to
# test/fuzz/bin/artifacts/ and test/fuzz/bin/logs/.  Exits non-zero if any
# target crashed or reported a sanitizer error.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN="$HERE/bin"
seconds=30
jobs=1

usage() { sed -n '2,11s/^# \{0,1\}//p' "$0"; }

while getopts "t:j:h" opt; do
    case "$opt" in
        t) seconds=$OPTARG ;;
        j) jobs=$OPTARG ;;
        h) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    for f in "$BIN"/fuzz_*; do
        [ -x "$f" ] && targets+=("$(basename "$f")")
    done
fi
if [ "${#targets[@]}" -eq 0 ]; then
    echo "run.sh: no fuzz targets in $BIN; run make fuzz first" >&2
    exit 2
fi

mkdir -p "$BIN/artifacts" "$BIN/logs"
work=$(mktemp -d "${TMPDIR:-/tmp}/streamlog-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
for t in "${targets[@]}"; do
    prog="$BIN/$t"
    if [ ! -x "$prog" ]; then
        echo "run.sh: $prog not built" >&2
        failed+=("$t")
        continue
    fi
    corpus="$work/$t"
    mkdir -p "$corpus"
    if [ -d "$HERE/corpus/$t" ]; then
        cp -R "$HERE/corpus/$t/." "$corpus/"
    fi
    log="$BIN/logs/$t.log"
    echo "run.sh: $t for ${seconds}s (log $log)"
    flags=(-max_total_time="$seconds" -timeout=20 -rss_limit_mb=2560
           -artifact_prefix="$BIN/artifacts/$t-" -print_final_stats=1)
    if [ "$jobs" -gt 1 ]; then
        flags+=(-fork="$jobs")
    fi
    # shellcheck disable=SC2086
    (cd "$work" && "$prog" "${flags[@]}" ${FUZZ_FLAGS:-} "$corpus") >"$log" 2>&1
    rc=$?
    if [ "$rc" -ne 0 ] || grep -qE "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|invariant failed" "$log"; then
        echo "run.sh: $t FAILED (exit $rc); end of $log:" >&2
        tail -n 40 "$log" >&2
        failed+=("$t")
    else
        grep -E "^stat::number_of_executed_units|^Done " "$log" | tail -n 1
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "run.sh: failed: ${failed[*]} (reproducers in $BIN/artifacts/)" >&2
    exit 1
fi
echo "run.sh: ${#targets[@]} target(s) ran ${seconds}s each without a crash"
