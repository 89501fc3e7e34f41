#!/bin/sh
# report.sh BUILD_DIR -- after the fuzz runs (ctest's fuzz.report, the cleanup
# of fixture fuzzbin): for each target, how many inputs its timed run added
# to BUILD_DIR/work-TARGET beside the committed corpus, and every crash, leak,
# timeout or slow-unit input libFuzzer left (BUILD_DIR/TARGET-*). Any such
# input fails: each run that wrote one has failed already, and this names
# them together, with where they are, so they can go into the corpus.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
found=0
for seeds in "$root"/tests/fuzz/corpus/*/; do
    t=$(basename "$seeds")
    n=$(find "$seeds" -type f | wc -l)
    if [ -d "$out/work-$t" ]; then
        w=$(find "$out/work-$t" -type f | wc -l)
        echo "fuzz $t: $n corpus inputs, the timed run added $w in $out/work-$t"
    else
        echo "fuzz $t: $n corpus inputs, no timed run"
    fi
    for a in "$out/$t"-*; do
        [ -e "$a" ] || continue
        echo "FOUND $a" >&2
        found=$((found + 1))
    done
done
[ "$found" = 0 ] || { echo "report.sh: $found input(s) libFuzzer flagged" >&2; exit 1; }
