#!/bin/sh
# test.sh -- build OrderFlow and run every test (the README's test command;
# .ci/run runs exactly this).
#
#   1. install missing Debian packages (scripts/deps.sh test): a missing tool
#      is installed here, never a skip
#   2. build into build/ with the test-only routes compiled in; the ASan +
#      UBSan build (build-asan/, -DOF_SANITIZE=ON) starts beside step 3, at
#      low priority
#   3. ctest -j4 in build/: every label -- unit, e2e, chaos, static, fuzz
#      (corpus replay), fuzz_long (6 x 20 s timed libFuzzer runs, one at a
#      time), packaging (the Debian package built, linted and installed into a
#      debootstrap root), ha and whatever else is registered. Tests that load
#      both cores (label heavy: chaos, valgrind, packaging, Patroni) take a
#      lock and run one at a time beside the light ones (tests/CMakeLists.txt)
#   4. ctest -j4 in build-asan/: the same tests again against the ASan+UBSan
#      binary; a sanitizer report in a test's output or in the server's log
#      fails that test (tests/e2e/ofclient.py). Not what runs no orderflow
#      binary (label static, and @pytest.mark.static tests), valgrind (it
#      cannot run an ASan binary), the fuzzers (already ASan+UBSan) nor
#      packaging (it builds its own Release binary). OF_SKIP_ASAN=1 skips it.
#   5. a summary: how long each part took, and every skip (there should be
#      none but documented platform ones; README, "Testing").
# Extra arguments go to both ctest runs (e.g. -L unit, -R products).
# Env: OF_TEST_JOBS (ctest -j, default 4), BUILD_DIR, ASAN_BUILD_DIR, OF_SKIP_ASAN.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
JOBS=${OF_TEST_JOBS:-4}
t0=$(date +%s)
now() { echo $(($(date +%s) - t0)); }

scripts/deps.sh test
t_deps=$(now)
BUILD=${BUILD_DIR:-build}
ASAN_BUILD=${ASAN_BUILD_DIR:-build-asan}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOF_TEST_ROUTES=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
t_build=$(now)

asan_pid=""
if [ "${OF_SKIP_ASAN:-0}" != 1 ]; then
    mkdir -p "$ASAN_BUILD"
    ( cmake -S . -B "$ASAN_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOF_SANITIZE=ON \
          -DOF_TEST_ROUTES=ON >/dev/null &&
      nice -n 10 cmake --build "$ASAN_BUILD" -j"$(nproc)" ) >"$ASAN_BUILD/build.log" 2>&1 &
    asan_pid=$!
fi

# One pass of ctest in build dir $1 (name $2); the rest are ctest arguments.
# Its output goes to the terminal and to $1/ctest.log; skips to $1/skips.log.
run_pass() {
    dir=$1 name=$2
    shift 2
    : > "$dir/skips.log"
    ( cd "$dir" && OF_SKIP_LOG="$root/$dir/skips.log" ctest -j"$JOBS" --output-on-failure \
          --timeout 900 --output-junit "$root/$dir/ctest-junit.xml" "$@"
      echo $? > "$root/$dir/ctest.rc" ) 2>&1 | tee "$dir/ctest.log"
    prc=$(cat "$dir/ctest.rc")
    # cmocka skips are in the test output (junit), ctest's own in its log
    grep -ho '\[  SKIPPED \] [^&<]*' "$dir/ctest-junit.xml" 2>/dev/null |
        sed "s/^/SKIP $name unit: /" >> "$dir/skips.log" || true
    grep -E '\*\*\*Skipped|Not Run' "$dir/ctest.log" | sed "s/^/SKIP $name ctest: /" \
        >> "$dir/skips.log" || true
    return "$prc"
}

rc=0
run_pass "$BUILD" plain "$@" || rc=$?
t_plain=$(now)

t_asan_build=$t_plain t_asan=$t_plain
if [ -n "$asan_pid" ]; then
    if ! wait "$asan_pid"; then
        tail -n 40 "$ASAN_BUILD/build.log" >&2
        echo "test.sh: the ASan build failed" >&2
        exit 1
    fi
    t_asan_build=$(now)
    # abort_on_error: a report kills the process, so it cannot go unnoticed;
    # libconfig 1.5's own leaks on syntax errors are suppressed (lsan.supp).
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    export LSAN_OPTIONS="suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0"
    export PYTEST_ADDOPTS="-m 'not static'"
    run_pass "$ASAN_BUILD" asan \
        -LE 'fuzz|fuzz_long|packaging|static' -E '^e2e\.test_valgrind$' "$@" || rc=$?
    t_asan=$(now)
fi

echo
echo "== test.sh summary =="
echo "deps $t_deps s; build $((t_build - t_deps)) s; ctest -j$JOBS plain $((t_plain - t_build)) s" \
     "(the ASan build beside it); ASan build wait $((t_asan_build - t_plain)) s;" \
     "ctest -j$JOBS ASan $((t_asan - t_asan_build)) s; total $(now) s"
nskip=0
for d in "$BUILD" ${asan_pid:+"$ASAN_BUILD"}; do
    n=$(grep -c '^SKIP' "$d/skips.log" || true)
    nskip=$((nskip + n))
    echo "skips in $d: $n"
    sed 's/^/  /' "$d/skips.log"
done
echo "skips: $nskip"
echo "result: $([ "$rc" = 0 ] && echo pass || echo "FAIL (ctest rc $rc)")"
exit "$rc"
