#!/bin/sh
# run.sh BUILD_DIR TARGET SECONDS -- one libFuzzer target for a bounded time
# (what ctest's fuzz_long.TARGET tests do). It replays every input of the
# committed corpus tests/fuzz/corpus/TARGET/ first (the regression inputs
# included), then mutates for SECONDS; new inputs go to BUILD_DIR/work-TARGET,
# never into the source tree. SECONDS = 0: the replay only, every corpus input
# once, no mutation (ctest's fuzz.TARGET, the fast default). A crash, leak, UB report, timeout (10 s per input) or
# a property abort() fails the run; the input is left in
# BUILD_DIR/TARGET-crash-* (copy it into the corpus and write a unit test).
set -eu
[ $# -eq 3 ] || { echo "usage: $0 BUILD_DIR TARGET SECONDS" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$1 t=$2 secs=$3
bin=$out/fuzz_$t
seeds=$root/tests/fuzz/corpus/$t
work=$out/work-$t
[ -x "$bin" ] || { echo "run.sh: $bin missing (tests/fuzz/build.sh $out)" >&2; exit 1; }
mkdir -p "$seeds"
dict=""
[ -f "$root/tests/fuzz/$t.dict" ] && dict="-dict=$root/tests/fuzz/$t.dict"
export LSAN_OPTIONS="suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
if [ "$secs" = 0 ]; then
    n=$(find "$seeds" -type f | wc -l)
    [ "$n" -gt 0 ] || { echo "run.sh: empty corpus $seeds" >&2; exit 1; }
    echo "run.sh: replaying $n corpus inputs of $t"
    # files (not the directory) as arguments: libFuzzer runs each exactly once
    find "$seeds" -type f -print0 | sort -z | xargs -0 "$bin" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/$t-"
    exit $?
fi
# the work directory is the timed run's alone (the replay, fuzz.TARGET, may
# run beside it and touches nothing there)
rm -rf "$work"
mkdir -p "$work"
# shellcheck disable=SC2086
exec "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$out/$t-" $dict "$work" "$seeds"
