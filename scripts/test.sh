#!/bin/sh
# test.sh -- build OrderFlow and run every test (the README's test command;
# .ci/run runs exactly this).
#
#   1. install missing Debian packages (scripts/deps.sh test): a missing tool
#      is installed here, never a skip
#   2. build into build/ with the test-only routes compiled in
#   3. one ctest -j4 run over every label -- unit, e2e, chaos, static, fuzz
#      (corpus replay), fuzz_long (6 timed libFuzzer runs, one at a time),
#      packaging (the Debian package built, linted and installed into a
#      debootstrap root), ha and whatever else is registered -- and the ASan
#      pass in the same run: asan.build builds the ASan + UBSan tree
#      (build-asan/) beside the first tests, then every test
#      that executes an orderflow binary runs again as asan.<name> against it
#      (tests/CMakeLists.txt says what is not repeated, and why). The chaos
#      tests (label heavy) take a lock and run one at a time beside the
#      others, Patroni its own; the longest tests start first (COST)
#   4. a summary: how long each part took, and every skip (there should be
#      none but documented platform ones; README, "Testing").
# Extra arguments go to ctest (e.g. -L unit, -R products, -LE asan).
# Env: OF_TEST_JOBS (ctest -j, default 4), BUILD_DIR, ASAN_BUILD_DIR,
# OF_SKIP_ASAN=1 (no asan.* tests).
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
case $ASAN_BUILD in /*) ;; *) ASAN_BUILD=$root/$ASAN_BUILD ;; esac
asan=ON
[ "${OF_SKIP_ASAN:-0}" != 1 ] || asan=OFF
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOF_TEST_ROUTES=ON \
    -DOF_ASAN_PASS="$asan" -DOF_ASAN_DIR="$ASAN_BUILD" >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
t_build=$(now)

: > "$BUILD/skips.log"
rm -f "$BUILD/ctest.rc"
# (set -e stays on: ctest's status is taken with ||, and a missing rc file
# is a failure too)
( cd "$BUILD" || exit 1
  crc=0
  OF_SKIP_LOG="$root/$BUILD/skips.log" ctest -j"$JOBS" --output-on-failure \
      --timeout 900 --output-junit "$root/$BUILD/ctest-junit.xml" "$@" || crc=$?
  echo "$crc" > "$root/$BUILD/ctest.rc" ) 2>&1 | tee "$BUILD/ctest.log"
rc=$(cat "$BUILD/ctest.rc" 2>/dev/null || echo 1)
# cmocka skips are in the test output (junit), ctest's own in its log
grep -ho '\[  SKIPPED \] [^&<]*' "$BUILD/ctest-junit.xml" 2>/dev/null |
    sed "s/^/SKIP unit: /" >> "$BUILD/skips.log" || true
grep -E '\*\*\*Skipped|Not Run' "$BUILD/ctest.log" | sed "s/^/SKIP ctest: /" \
    >> "$BUILD/skips.log" || true
t_ctest=$(now)

echo
echo "== test.sh summary =="
asan_s=$(grep -o 'asan\.build [.]* *Passed *[0-9.]* sec' "$BUILD/ctest.log" | grep -o '[0-9.]* sec' || true)
echo "deps $t_deps s; build $((t_build - t_deps)) s; ctest -j$JOBS (plain and ASan," \
     "the ASan build ${asan_s:-not run} beside the first tests) $((t_ctest - t_build)) s;" \
     "total $(now) s"
nskip=$(grep -c '^SKIP' "$BUILD/skips.log" || true)
sed 's/^/  /' "$BUILD/skips.log"
echo "skips: $nskip"
echo "result: $([ "$rc" = 0 ] && echo pass || echo "FAIL (ctest rc $rc)")"
exit "$rc"
