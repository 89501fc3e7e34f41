#!/bin/sh
# Builds the libFuzzer targets (clang, ASan+UBSan) into $1 (default
# build-fuzz/ at the repo root), straight from the sources they need.
# ctest runs each one with tests/fuzz/run.sh (label fuzz); by hand:
#   tests/fuzz/build.sh && tests/fuzz/run.sh build-fuzz body 60
# Seed corpora are committed in tests/fuzz/corpus/<target>/ (a crash found
# goes there too, as a regression input, with a unit test).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/build-fuzz}
mkdir -p "$out"
cc=${CC:-clang}
flags="-std=c17 -g -O1 -D_GNU_SOURCE -I$root -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Werror=incompatible-function-pointer-types"
r=$root
# the six targets compile side by side (the slowest sets the pace)
pids=""

$cc $flags -o "$out/fuzz_money" "$r/tests/fuzz/fuzz_money.c" "$r/domain/money.c" &
pids="$pids $!"
$cc $flags -o "$out/fuzz_rules" "$r/tests/fuzz/fuzz_rules.c" "$r/domain/rules.c" \
    "$r/domain/verr.c" "$r/common/util.c" "$r/common/mem.c" "$r/common/log.c" \
    "$r/common/hash.c" -lsodium &
pids="$pids $!"
$cc $flags -o "$out/fuzz_jwt" "$r/tests/fuzz/fuzz_jwt.c" "$r/worker/jwt.c" \
    "$r/common/util.c" -ljwt -ljansson -lsodium &
pids="$pids $!"
$cc $flags -o "$out/fuzz_query" "$r/tests/fuzz/fuzz_query.c" "$r/handlers/query.c" \
    "$r/common/urlcode.c" "$r/domain/verr.c" "$r/common/util.c" "$r/common/mem.c" \
    "$r/common/log.c" "$r/common/hash.c" -ljansson -lsodium &
pids="$pids $!"
$cc $flags -o "$out/fuzz_config" "$r/tests/fuzz/fuzz_config.c" "$r/config/config.c" \
    "$r"/common/*.c -lconfig -lsodium &
pids="$pids $!"
$cc $flags -o "$out/fuzz_body" "$r/tests/fuzz/fuzz_body.c" "$r/handlers/hdl.c" \
    "$r/handlers/reply.c" "$r/handlers/query.c" "$r/handlers/body.c" "$r/handlers/idem.c" "$r/handlers/products.c" "$r/handlers/customers.c" \
    "$r/handlers/orders.c" "$r/handlers/bank.c" "$r/handlers/list.c" "$r/handlers/cached.c" \
    "$r"/domain/*.c "$r"/common/*.c \
    -ljansson -lsodium &
pids="$pids $!"
rc=0
for p in $pids; do wait "$p" || rc=1; done
[ "$rc" = 0 ] || { echo "build.sh: a fuzz target failed to build" >&2; exit 1; }
echo "fuzz targets in $out"
