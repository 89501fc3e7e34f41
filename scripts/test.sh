#!/bin/sh
# test.sh -- build OrderFlow and run every test (the README's test command;
# .ci/run runs exactly this).
#
#   1. install missing Debian packages (scripts/deps.sh test)
#   2. build into build/ with the test-only routes compiled in
#   3. ctest: cmocka unit tests, end-to-end tests against the real binary and
#      a throwaway PostgreSQL (started and stopped by a ctest fixture), the
#      chaos tests (label chaos), valgrind memcheck of a short scenario, and
#      a 20 s run of each libFuzzer target (label fuzz), and the Debian
#      package built, linted and installed into a debootstrap root (label
#      packaging, about 3 minutes)
#   4. the same unit and end-to-end tests again, built with ASan + UBSan
#      (-DOF_SANITIZE=ON) into build-asan/: a sanitizer report in a test's
#      output or in the server's log fails that test (tests/e2e/ofclient.py).
#      Not valgrind (it cannot run an ASan binary), the fuzzers (already
#      ASan+UBSan) nor packaging (it builds its own Release binary). OF_SKIP_ASAN=1 skips this step.
# Extra arguments go to both ctest runs (e.g. -L unit, -R products).
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/deps.sh test
BUILD=${BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOF_TEST_ROUTES=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
rc=0
(cd "$BUILD" && ctest --output-on-failure --timeout 900 "$@") || rc=$?

if [ "${OF_SKIP_ASAN:-0}" != 1 ]; then
    ASAN_BUILD=${ASAN_BUILD_DIR:-build-asan}
    cmake -S . -B "$ASAN_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOF_SANITIZE=ON \
          -DOF_TEST_ROUTES=ON >/dev/null
    cmake --build "$ASAN_BUILD" -j"$(nproc)"
    # abort_on_error: a report kills the process, so it cannot go unnoticed;
    # libconfig 1.5's own leaks on syntax errors are suppressed (lsan.supp).
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    export LSAN_OPTIONS="suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0"
    (cd "$ASAN_BUILD" && ctest --output-on-failure --timeout 900 -LE 'fuzz|packaging' \
        -E '^e2e\.test_valgrind$' "$@") || rc=$?
fi
exit "$rc"
