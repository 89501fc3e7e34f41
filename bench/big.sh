#!/bin/sh
# big.sh TMP -- bench/run.sh --big: lists at 1,000,000 products. Runs inside
# run.sh (PG* env, BASE = the server, cache off, 10,000 seeded products).
#
# The products are inserted directly (generate_series, names 'Product ' ||
# md5(i), every 10th out of stock; the trigram GIN index is dropped for the
# insert and rebuilt after, as a bulk load would), then VACUUM ANALYZE.
# The deep cursor is one the API handed out, not one built here: with ids
# 1..500,000 in the table the server answers `?limit=20&sort=-id` and its
# next_cursor points after id 499,981; ids 500,001..1,000,000 are inserted
# after, so the same cursor then stands 500,020 rows deep in `sort=-id`.
# Prints a markdown table: p50 / p90 ms of 21 sequential requests each (the
# first 3 are warm-up), with the number of items in the answer.
# shellcheck disable=SC2016  # markdown backquotes in single quotes
set -eu
TMP=$1
N=21

fail() { echo "big: $*" >&2; exit 1; }

load() {  # FROM TO
    psql -XqAt -v ON_ERROR_STOP=1 -c "INSERT INTO products (id, name, price_cents, in_stock)
        SELECT g, 'Product ' || md5(g::text), 100 + (g::bigint * 7919) % 99900, g % 10 <> 0
        FROM generate_series($1, $2) g" >/dev/null
}

echo "big: inserting 1,000,000 products" >&2
psql -XqAt -v ON_ERROR_STOP=1 -c "DROP INDEX IF EXISTS products_name_trgm_idx" >/dev/null
load 10001 500000
curl -sf "$BASE/api/v1/products?limit=20&sort=-id" -o "$TMP/big_first.json" || fail "first page"
CURSOR=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["next_cursor"])' "$TMP/big_first.json")
load 500001 1000000
psql -XqAt -v ON_ERROR_STOP=1 \
    -c "SELECT setval(pg_get_serial_sequence('products', 'id'), 1000000)" \
    -c "CREATE INDEX products_name_trgm_idx ON products USING gin (lower(name) gin_trgm_ops)" \
    -c "VACUUM ANALYZE products" >/dev/null
echo "big: measuring" >&2

# one LABEL PATH: "| label | p50 | p90 | items |"
one() {
    : > "$TMP/big_t"
    i=0
    while [ $i -lt $N ]; do
        t=$(curl -s -o "$TMP/big_resp" -w '%{http_code} %{time_total}' "$BASE$2")
        [ "${t%% *}" = 200 ] || fail "$2 answered ${t%% *}: $(head -c 200 "$TMP/big_resp")"
        [ $i -lt 3 ] || echo "${t#* }" >> "$TMP/big_t"
        i=$((i + 1))
    done
    items=$(python3 -c 'import json,sys; d = json.load(open(sys.argv[1])); print(len(d["items"]) if "items" in d else 1, d.get("total", ""))' "$TMP/big_resp")
    sort -n "$TMP/big_t" | awk -v l="$1" -v it="$items" '{ v[NR] = $1 * 1000 }
        END { printf "| %s | %.1f | %.1f | %s |\n", l, v[int(NR * 0.5 + 0.5)], v[int(NR * 0.9 + 0.5)], it }'
}
C=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$CURSOR")
echo "### Benchmark: \`bench/run.sh --big\` (1,000,000 products)"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD), $(nproc) CPUs, load $(cut -d ' ' -f 1-3 /proc/loadavg)."
echo "One client, sequential requests, cache off; p50 / p90 of $((N - 3)) after 3 warm-up."
echo "Targets: the deep cursor page within 2x of page 1; \`q=\` search p50 <= 20 ms."
echo
echo "| request | p50 ms | p90 ms | items (total) |"
echo "|---|---|---|---|"
one '`?limit=20&sort=-id` (cursor paging, page 1)' "/api/v1/products?limit=20&sort=-id"
one '`?limit=20&sort=-id&cursor=…` (depth 500,020, handed out by the API)' "/api/v1/products?limit=20&sort=-id&cursor=$C"
one '`?limit=20` (sort=id, page 1)' "/api/v1/products?limit=20"
one '`?page=1&page_size=20` (exact total)' "/api/v1/products?page=1&page_size=20"
one '`?limit=20&sort=name` (page 1)' "/api/v1/products?limit=20&sort=name"
one '`?page=1&page_size=20&sort=name` (exact total)' "/api/v1/products?page=1&page_size=20&sort=name"
one '`?limit=20&q=abc123` (search)' "/api/v1/products?limit=20&q=abc123"
one '`?page=1&page_size=20&q=abc123` (search, exact total)' "/api/v1/products?page=1&page_size=20&q=abc123"
one '`/api/v1/products/{id}` (id 777,777)' "/api/v1/products/777777"
