#!/bin/sh
# Builds the libFuzzer targets (clang, ASan+UBSan) into $1 (default
# build-fuzz/ at the repo root) and seeds corpora. Not part of ctest: run
#   build-fuzz/fuzz_money -max_total_time=60 build-fuzz/corpus-money
#   build-fuzz/fuzz_jwt   -max_total_time=60 build-fuzz/corpus-jwt
#   build-fuzz/fuzz_rules -max_total_time=60 build-fuzz/corpus-rules
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/build-fuzz}
mkdir -p "$out" "$out/corpus-money" "$out/corpus-jwt" "$out/corpus-rules"
cc=${CC:-clang}
flags="-std=c17 -g -O1 -D_GNU_SOURCE -I$root -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"

$cc $flags -o "$out/fuzz_money" "$root/tests/fuzz/fuzz_money.c" "$root/domain/money.c"
$cc $flags -o "$out/fuzz_rules" "$root/tests/fuzz/fuzz_rules.c" "$root/domain/rules.c" \
    "$root/domain/verr.c" "$root/common/util.c" "$root/common/mem.c" "$root/common/log.c" \
    "$root/common/hash.c" -lsodium
$cc $flags -o "$out/fuzz_jwt" "$root/tests/fuzz/fuzz_jwt.c" "$root/worker/jwt.c" \
    "$root/common/util.c" -ljwt -ljansson -lsodium

for s in 19.99 0.10 -0.01 99999999.99 100000000.00 1.234 1e2 abc; do
    printf '%s' "$s" > "$out/corpus-money/seed-$s"
done
for s in 'a@b.c' '  Ada@Example.COM ' 'x@@y.z' 'é@b.c'; do
    printf '%s' "$s" > "$out/corpus-rules/seed-$(printf '%s' "$s" | od -An -tx1 | tr -d ' \n')"
done
# real HS256 tokens signed with another key, alg none, and HS512 shapes
printf '%s' 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiIsInJvbGUiOiJ1c2VyIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjQxMDAwMDAwMDB9.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmE' > "$out/corpus-jwt/hs256"
printf '%s' 'eyJhbGciOiJub25lIn0.eyJzdWIiOiI0MiIsImV4cCI6NDEwMDAwMDAwMH0.' > "$out/corpus-jwt/none"
printf '%s' 'eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiI0MiJ9.AAAA' > "$out/corpus-jwt/hs512"
echo "fuzz targets in $out"
