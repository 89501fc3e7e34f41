#!/bin/sh
# asan_build.sh CMAKE SOURCE_DIR ASAN_DIR BUILD_TYPE -- ctest's asan.build:
# configure and build the ASan + UBSan tree the asan.* tests run (it builds
# while the first plain tests run beside it; not niced: every asan.* test
# waits for it, and at nice 10 under -j4 it took 6 minutes instead of 1).
# The log is ASAN_DIR/build.log; its tail is printed when the build fails.
set -eu
[ $# -eq 4 ] || { echo "usage: $0 CMAKE SOURCE_DIR ASAN_DIR BUILD_TYPE" >&2; exit 2; }
cmake=$1 src=$2 dir=$3 type=$4
mkdir -p "$dir"
if ! { "$cmake" -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DOF_SANITIZE=ON \
           -DOF_TEST_ROUTES=ON -DOF_ASAN_PASS=OFF &&
       "$cmake" --build "$dir" -j"$(nproc)"; } >"$dir/build.log" 2>&1; then
    tail -n 60 "$dir/build.log"
    echo "asan_build.sh: the ASan build failed (log: $dir/build.log)" >&2
    exit 1
fi
echo "asan_build.sh: ASan + UBSan tree built in $dir"
