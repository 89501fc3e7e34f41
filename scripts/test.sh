#!/bin/sh
# test.sh -- build OrderFlow and run every test (the README's test command;
# .ci/run runs exactly this).
#
#   1. install missing Debian packages (scripts/deps.sh test)
#   2. build into build/ with the test-only routes compiled in
#   3. ctest: cmocka unit tests, then end-to-end tests against the real binary
#      and a throwaway PostgreSQL (started and stopped by a ctest fixture)
set -eu
cd "$(dirname "$0")/.."

scripts/deps.sh test
BUILD=${BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOF_TEST_ROUTES=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
cd "$BUILD"
ctest --output-on-failure --timeout 900 "$@"
