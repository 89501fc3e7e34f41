#!/bin/sh
# run.sh -- OrderFlow's benchmark, one command (see bench/README.md).
#
#   bench/run.sh           10 s per run after a 2 s warm-up (about 2.5 minutes)
#   bench/run.sh --quick   2 s per run after a 1 s warm-up (a smoke check)
#   bench/run.sh --perf    also `perf record` the workers during the product read
#                          (report in the results; combines with --quick)
#   bench/run.sh --replica also product reads primary-only vs one streaming
#                          replica (bench/replica.sh; combines with --quick)
#
# In one invocation, against one throwaway PostgreSQL 15 (tests/pg/testpg.sh),
# with the server built from this tree (Release) at its default config
# (config/orderflow.cfg: workers = CPUs, pool_size 4, access log on), each
# workload runs with wrk -t1 -c64 next to its reference:
#   GET /health                  nginx `return 200` (Debian nginx-light, started here)
#   GET /api/v1/products/{id}    pgbench -M prepared: the server's product_get
#   GET /api/v1/products?page=N  pgbench: the best hand-written SQL (pg_product_list.sql)
#   POST /api/v1/orders          pgbench: the server's statements for one order
#   POST /api/v1/transfers       pgbench: the server's statements for one transfer
# The pgbench scripts are bench/pg_*.sql templates filled with the SQL text the
# server prepares (printed by bench/stmts.c, linked against the build), so the
# references cannot drift from store/. pgbench runs -c 16 (env BENCH_PG_CLIENTS).
#
# Prints a markdown table (requests/s, p50, p99, ratio to the reference) and
# writes it to bench/results.md (not committed by this script), with the RSS
# of every worker at idle and after all runs. Everything started here (nginx,
# the server, PostgreSQL, wrk, pgbench) is stopped by PID on exit, also on
# failure or Ctrl-C.
#
# The only settings changed from the defaults: the listen port, and
# rate_limit.writes_per_minute = 0 (600/min per user would turn the write runs
# into 429s). Env: BENCH_BUILD_DIR (default build-release if configured, else
# build-bench), BENCH_DURATION, BENCH_WARMUP, BENCH_PG_CLIENTS, BENCH_KEEP=1
# (keep the temp dir with logs), BENCH_CACHE=0 (cache.enabled = false: the
# product reads without the per-worker cache, to compare).
# shellcheck disable=SC2016  # markdown backquotes in single quotes
set -eu

usage() { echo "usage: bench/run.sh [--quick] [--perf] [--replica] | --big" >&2; exit 2; }
QUICK=0
PERF=0
REPLICA=0
BIG=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --perf)  PERF=1 ;;
        --replica) REPLICA=1 ;;
        --big)   BIG=1 ;;
        *)       usage ;;
    esac
done

cd "$(dirname "$0")/.."
ROOT=$(pwd -P)

DUR=${BENCH_DURATION:-10}
WARM=${BENCH_WARMUP:-2}
if [ "$QUICK" = 1 ]; then
    DUR=2
    WARM=1
fi
CONNS=64
PGCLIENTS=${BENCH_PG_CLIENTS:-16}
NPRODUCTS=10000
NCUSTOMERS=1000
NACCOUNTS=100
NCPU=$(nproc)
EMAIL=bench@orderflow.local

# The server must see its defaults, not the caller's environment.
for v in $(env | sed -n 's/^\(ORDERFLOW_[A-Za-z0-9_]*\)=.*/\1/p'); do
    unset "$v"
done

TMP=""
SERVER_PID=""
TRACED_PID=""
NGINX_PID=""
NODE_PID=""
CHILD=""
PERF_PID=""
SINK_PID=""
WORKERS=""

log() { printf '%s\n' "bench: $*" >&2; }
die() { log "$*"; exit 1; }

# Wait up to $2 seconds for child $1 to exit (gone or a zombie), then
# SIGKILL it; reap it.
reap() {
    n=$(($2 * 10))
    while [ $n -gt 0 ]; do
        st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || echo gone)
        [ "$st" = Z ] || [ "$st" = gone ] && break
        sleep 0.1
        n=$((n - 1))
    done
    [ $n -gt 0 ] || kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

cleanup() {
    rc=$?
    trap - EXIT INT TERM HUP
    set +e
    for p in $CHILD $PERF_PID $SINK_PID; do
        kill -TERM "$p" 2>/dev/null
        reap "$p" 5
    done
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        reap "$SERVER_PID" 15
        for w in $WORKERS; do kill -KILL "$w" 2>/dev/null; done
    fi
    if [ -n "$TRACED_PID" ]; then
        kill -TERM "$TRACED_PID" 2>/dev/null
        reap "$TRACED_PID" 15
    fi
    [ -z "${REP_CLEANUP:-}" ] || $REP_CLEANUP
    if [ -n "$NGINX_PID" ]; then
        kill -QUIT "$NGINX_PID" 2>/dev/null
        reap "$NGINX_PID" 10
    fi
    if [ -n "$NODE_PID" ]; then
        kill -TERM "$NODE_PID" 2>/dev/null
        reap "$NODE_PID" 10
    fi
    if [ -n "$TMP" ]; then
        "$ROOT/tests/pg/testpg.sh" stop "$TMP/pg" >/dev/null 2>&1
        if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
            log "logs kept in $TMP"
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Run a command in the background and wait for it, so a signal reaches the
# trap at once; a run that overstays its bound ($1 seconds) is stopped.
run_bounded() {
    secs=$1
    shift
    timeout -s TERM -k 5 "$secs" "$@" &
    CHILD=$!
    st=0
    wait "$CHILD" || st=$?
    CHILD=""
    return "$st"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

http_code() {  # METHOD URL [curl args...]
    m=$1
    u=$2
    shift 2
    curl -s -o "$TMP/resp" -w '%{http_code}' -X "$m" "$@" "$u" || echo 000
}

# ---------------------------------------------------------------- build
scripts/deps.sh test
command -v perf >/dev/null 2>&1 || [ "$PERF" = 0 ] || die "--perf needs perf (linux-perf)"

TMP=$(mktemp -d /tmp/ofbench.XXXXXX)
chmod 755 "$TMP"

BUILD=${BENCH_BUILD_DIR:-}
if [ -z "$BUILD" ]; then
    if [ -f build-release/CMakeCache.txt ]; then BUILD=build-release; else BUILD=build-bench; fi
fi
log "building $BUILD (Release)"
if ! { cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release &&
       cmake --build "$BUILD" -j"$NCPU" --target orderflow; } >"$TMP/build.log" 2>&1; then
    tail -n 40 "$TMP/build.log" >&2
    die "build failed"
fi
BIN="$ROOT/$BUILD/orderflow"
B="$ROOT/$BUILD"
# shellcheck disable=SC2046
cc -std=c17 -O1 -D_GNU_SOURCE -I"$ROOT" $(pkg-config --cflags libpq) bench/stmts.c \
    -o "$TMP/stmts" -Wl,--whole-archive "$B/libof_store.a" -Wl,--no-whole-archive \
    "$B/libof_domain.a" "$B/libof_config.a" "$B/libof_common.a" \
    $(pkg-config --libs libevent libevent_pthreads jansson libpq libconfig libsodium libjwt libsystemd) \
    -lpthread 2>"$TMP/stmts.log" || { cat "$TMP/stmts.log" >&2; die "bench/stmts.c failed to build"; }
"$TMP/stmts" > "$TMP/stmts.txt"
# bench/pool_loop.c: the pool's single-query loop (moved out of the unit tests)
# shellcheck disable=SC2046
cc -std=c17 -O2 -D_GNU_SOURCE -I"$ROOT" $(pkg-config --cflags libpq) bench/pool_loop.c \
    -o "$TMP/pool_loop" "$B/libof_store.a" "$B/libof_domain.a" "$B/libof_config.a" "$B/libof_common.a" \
    $(pkg-config --libs libevent libevent_pthreads jansson libpq libconfig libsodium libjwt libsystemd) \
    -lpthread 2>"$TMP/pool_loop.log" || { cat "$TMP/pool_loop.log" >&2; die "bench/pool_loop.c failed to build"; }

# ---------------------------------------------------------------- database
log "starting a throwaway PostgreSQL"
URL=$(tests/pg/testpg.sh start "$TMP/pg" | tail -n 1)
# shellcheck disable=SC1091
. "$TMP/pg/env"
ORDERFLOW_DATABASE_URL=$URL "$BIN" migrate up >"$TMP/migrate.log" 2>&1 ||
    { cat "$TMP/migrate.log" >&2; die "migrate failed"; }
log "pool loop (bench/pool_loop.c)"
POOL_LOOP_N=40000; [ "$QUICK" = 0 ] || POOL_LOOP_N=4000
"$TMP/pool_loop" "$URL" "$POOL_LOOP_N" > "$TMP/pool_loop.txt" || die "bench/pool_loop failed"
PASSWORD=$(openssl rand -hex 16)
printf '%s\n' "$PASSWORD" | ORDERFLOW_DATABASE_URL=$URL "$BIN" user create --email "$EMAIL" \
    --role admin >"$TMP/user.log" 2>&1 || { cat "$TMP/user.log" >&2; die "user create failed"; }
USER_ID=$(psql -XAtc "SELECT id FROM users WHERE email = '$EMAIL'")
psql -Xq -v products=$NPRODUCTS -v customers=$NCUSTOMERS -v accounts=$NACCOUNTS \
    -v owner="$USER_ID" -f bench/seed.sql >"$TMP/seed.log" 2>&1 ||
    { cat "$TMP/seed.log" >&2; die "seeding failed"; }
psql -XAt -F ' ' -c "SELECT min(id), max(id), count(*) FROM bank_accounts WHERE owner_id = $USER_ID" \
    > "$TMP/accounts"
read -r ACCT_LO ACCT_HI acct_n < "$TMP/accounts"
if [ "$acct_n" != "$NACCOUNTS" ] || [ $((ACCT_HI - ACCT_LO + 1)) != "$NACCOUNTS" ]; then
    die "bank account ids not consecutive"
fi

# ---------------------------------------------------------------- nginx
NGINX_PORT=$(free_port)
mkdir -p "$TMP/nginx"
cat > "$TMP/nginx/nginx.conf" <<EOF
# generated by bench/run.sh: the HTTP reference, nginx return 200
worker_processes $NCPU;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    default_type application/json;
    keepalive_requests 1000000;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / { return 200 '{"status":"ok"}'; }
    }
}
EOF
nginx -e "$TMP/nginx/error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' \
    >"$TMP/nginx/stderr.log" 2>&1 &
NGINX_PID=$!

# ---------------------------------------------------------------- Node peer
# bench/node: fastify + pg, 2 processes, the product reads (pinned by its
# package-lock.json; `npm ci` here, never in the tests). No node/npm: n/a rows.
NODE_STATE="n/a (node or npm missing)"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    if run_bounded 300 npm ci --prefix bench/node --no-audit --no-fund --silent >"$TMP/npm.log" 2>&1; then
        NODE_PORT=$(free_port)
        NODE_PEER_PORT=$NODE_PORT DATABASE_URL=$URL node bench/node/server.js >"$TMP/node.log" 2>&1 &
        NODE_PID=$!
        NODE_STATE=ok
    else
        NODE_STATE="n/a (npm ci failed)"
        tail -n 5 "$TMP/npm.log" >&2
    fi
fi

# ---------------------------------------------------------------- server
PORT=$(free_port)
cat > "$TMP/bench.cfg" <<EOF
# generated by bench/run.sh: the defaults of config/orderflow.cfg except these
server: { listen = "127.0.0.1:$PORT"; };
rate_limit: { writes_per_minute = 0; };
webhooks: { allow_http = true; allow_private = true; };
EOF
if [ "${BENCH_CACHE:-1}" = 0 ] || [ "$BIG" = 1 ]; then   # --big: every request reaches the database
    echo 'cache: { enabled = false; };' >> "$TMP/bench.cfg"
fi
SECRET=$(openssl rand -hex 32)
ORDERFLOW_DATABASE_URL=$URL ORDERFLOW_JWT_SECRET=$SECRET "$BIN" serve -c "$TMP/bench.cfg" \
    2>"$TMP/server.log" &
SERVER_PID=$!
BASE="http://127.0.0.1:$PORT"

log "waiting for the server and nginx"
ok=0
i=0
while [ $i -lt 100 ]; do
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 20 "$TMP/server.log" >&2; die "server exited"; }
    if [ "$(http_code GET "$BASE/ready")" = 200 ]; then ok=$((ok + 1)); else ok=0; fi
    [ $ok -ge 5 ] && break
    i=$((i + 1))
    sleep 0.2
done
[ $ok -ge 5 ] || { tail -n 20 "$TMP/server.log" >&2; die "server not ready after 20 s"; }
i=0
until [ "$(http_code GET "http://127.0.0.1:$NGINX_PORT/")" = 200 ]; do
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$TMP/nginx/stderr.log" "$TMP/nginx/error.log" >&2; die "nginx exited"; }
    i=$((i + 1))
    [ $i -lt 50 ] || die "nginx not answering"
    sleep 0.2
done
WORKERS=$(ps -o pid= --ppid "$SERVER_PID" | tr -s ' \n' ' ')
[ -n "$WORKERS" ] || die "no worker processes under $SERVER_PID"
if [ "$NODE_STATE" = ok ]; then
    i=0
    until [ "$(http_code GET "http://127.0.0.1:$NODE_PORT/api/v1/products/1")" = 200 ]; do
        kill -0 "$NODE_PID" 2>/dev/null || { cat "$TMP/node.log" >&2; die "node peer exited"; }
        i=$((i + 1))
        [ $i -lt 100 ] || die "node peer not answering after 20 s"
        sleep 0.2
    done
    NODE_PIDS="$NODE_PID $(ps -o pid= --ppid "$NODE_PID" | tr -s ' \n' ' ')"
fi

PROBES=0
code=$(http_code POST "$BASE/api/v1/auth/login" -d "username=$EMAIL&password=$PASSWORD")
PROBES=$((PROBES + 1))
[ "$code" = 200 ] || { cat "$TMP/resp" >&2; die "login answered $code"; }
TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$TMP/resp")
AUTH="Authorization: Bearer $TOKEN"

for u in "/api/v1/products/1" "/api/v1/products?page=1&page_size=20"; do
    code=$(http_code GET "$BASE$u")
    PROBES=$((PROBES + 1))
    [ "$code" = 200 ] || { cat "$TMP/resp" >&2; die "GET $u answered $code"; }
done

# POST probe: "ok" and the 201 body (what idem_store stores) in $TMP/NAME.body,
# or why the row is n/a.
post_probe() {  # NAME PATH BODY
    code=$(http_code POST "$BASE$2" -H "$AUTH" -H "Content-Type: application/json" \
           -H "Idempotency-Key: probe-$1" -d "$3")
    PROBES=$((PROBES + 1))
    if [ "$code" = 201 ]; then
        cp "$TMP/resp" "$TMP/$1.body"
        echo ok
    elif [ "$code" = 404 ] && grep -q '"Not Found"' "$TMP/resp"; then
        echo "n/a (route missing)"
    else
        echo "n/a (probe answered $code: $(head -c 120 "$TMP/resp"))"
    fi
}
ORDERS_STATE=$(post_probe order_create /api/v1/orders \
    '{"customer_id":1,"items":[{"product_id":1,"quantity":1},{"product_id":2,"quantity":2}],"notes":"bench"}')
TRANSFERS_STATE=$(post_probe transfer /api/v1/transfers \
    "{\"from_account_id\":$ACCT_LO,\"to_account_id\":$ACCT_HI,\"amount\":\"0.01\"}")

# pgbench scripts from the templates and the server's statements
for t in product_get product_list order_create transfer; do
    st=0
    python3 bench/pgscript.py "$TMP/stmts.txt" "bench/pg_$t.sql" "$TMP/$t.pgb" 2>"$TMP/$t.pgscript" || st=$?
    if [ $st = 3 ]; then
        echo "n/a ($(cat "$TMP/$t.pgscript"))" > "$TMP/${t}_ref.pgstate"
    elif [ $st != 0 ]; then
        cat "$TMP/$t.pgscript" >&2
        die "bench/pg_$t.sql: cannot expand"
    else
        echo ok > "$TMP/${t}_ref.pgstate"
    fi
done

# ---------------------------------------------------------------- --big
# 1,000,000 products (bench/big.sh): page 1 vs a cursor page at depth 500,000
# vs search vs sort=name, p50 of single requests; then exit.
if [ "$BIG" = 1 ]; then
    BASE=$BASE run_bounded 3600 sh bench/big.sh "$TMP" > "$TMP/big.md" || die "bench/big.sh failed"
    cp "$TMP/big.md" bench/results.md
    cat bench/results.md
    exit 0
fi

# ---------------------------------------------------------------- measuring
rss_of() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo "?"; }
TICKS=$(getconf CLK_TCK)
PG_PM=$(head -n 1 "$TMP/pg/data/postmaster.pid")
# CPU snapshot, in seconds: wall, whole machine busy, PostgreSQL (postmaster,
# its live children and the ones it reaped), this shell's reaped children
# (wrk, pgbench: `times` must run in this shell, not in the $(snap) subshell),
# then each process of $SNAP_PIDS (the server's workers, or nginx's).
SNAP_PIDS=$WORKERS
snap() {
    pgkids=$(ps -o pid= --ppid "$PG_PM" | tr -s ' \n' ' ')
    {
        cat /proc/uptime
        awk '/^cpu / { print "busy", $2 + $3 + $4 + $7 + $8 }' /proc/stat
        awk '{ print "pgself", $14 + $15 + $16 + $17 }' "/proc/$PG_PM/stat"
        for p in $pgkids; do awk '{ print "pgkid", $14 + $15 }' "/proc/$p/stat" 2>/dev/null || true; done
        awk 'NR == 2 { print "client", $1, $2 }' "$TMP/times"
        for w in $SNAP_PIDS; do awk '{ print "worker", $14 + $15 }' "/proc/$w/stat" 2>/dev/null || echo "worker 0"; done
    } | awk -v t="$TICKS" '
        NR == 1 { wall = $1; next }
        $1 == "busy" { busy = $2 / t } $1 == "pgself" || $1 == "pgkid" { pg += $2 / t }
        $1 == "client" { for (i = 2; i <= 3; i++) { split($i, a, "m"); sub(/s$/, "", a[2]); cl += a[1] * 60 + a[2] } }
        $1 == "worker" { w = w " " $2 / t }
        END { printf "%.2f %.2f %.2f %.2f%s\n", wall, busy, pg, cl, w }'
}
# cpu_line BEFORE AFTER -> "wall busy pg client w1/w2/..." (differences)
cpu_line() {
    echo "$1 | $2" | awk '{ n = 0; while ($(n + 1) != "|") n++;
        printf "%.1f %.1f %.1f %.1f ", $(n + 2) - $1, $(n + 3) - $2, $(n + 4) - $3, $(n + 5) - $4;
        s = ""; for (i = 5; i <= n; i++) s = s sprintf("%s%.1f", i > 5 ? "/" : "", $(n + 1 + i) - $i);
        print (s == "" ? "-" : s) }'
}
for w in $WORKERS; do
    echo "$w $(rss_of "$w")" >> "$TMP/rss_idle"
done
SERVER_REQS=$PROBES
LOAD_BEFORE=$(cut -d ' ' -f 1-3 /proc/loadavg)
RUNID=$(date +%s)-$$

# Before each measured run: vacuum and checkpoint what the previous runs wrote,
# so their background work (autovacuum, checkpoints) does not land in this one.
settle() {
    psql -XqAt -c "VACUUM (ANALYZE)" -c "CHECKPOINT" >/dev/null 2>&1 || log "settle: vacuum failed"
}

# field NAME FILE -> value of NAME=... on the BENCH line
field() {
    awk -v k="$1" '/^BENCH / { for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1] == k) v = a[2] } }
                   END { print v }' "$2"
}

# --perf: sample the workers for a few seconds of the measured product read.
PERF_RUN=""
if [ "$PERF" = 1 ]; then PERF_RUN=product_get; fi
perf_start() {
    pids=$(echo "$WORKERS" | tr -s ' ' ',' | sed 's/^,//; s/,$//')
    secs=$((DUR > 6 ? 5 : (DUR + 1) / 2))
    ( sleep 1; exec perf record -q -o "$TMP/perf.data" -p "$pids" -- sleep "$secs" ) \
        >"$TMP/perf.log" 2>&1 &
    PERF_PID=$!
}
perf_stop() {
    [ -n "$PERF_PID" ] || return 0
    wait "$PERF_PID" || true
    PERF_PID=""
    {
        perf report -i "$TMP/perf.data" --no-children --sort dso --stdio -q 2>/dev/null |
            grep -v '^$' | head -n 10
        echo
        perf report -i "$TMP/perf.data" --no-children --sort dso,sym --stdio -q 2>/dev/null |
            grep -v '^$' | head -n 30
    } > "$TMP/perf.txt" || true
}

# wrk_run NAME URL [LUA]: warm-up, then the measured run; result in $TMP/NAME.res
# as "rps p50_us p99_us requests non2xx sockerr".
wrk_run() {
    name=$1
    url=$2
    script="$TMP/$name.lua"
    if [ $# -ge 3 ]; then cat "bench/$3" bench/report.lua > "$script"; else cp bench/report.lua "$script"; fi
    export BENCH_TOKEN="$TOKEN" BENCH_NPRODUCTS=$NPRODUCTS BENCH_NCUSTOMERS=$NCUSTOMERS \
        BENCH_ACCT_LO="$ACCT_LO" BENCH_ACCT_HI="$ACCT_HI"
    export BENCH_RUN_ID="$RUNID-$name-w"
    run_bounded $((WARM + 20)) wrk -t1 -c$CONNS -d"${WARM}s" -s "$script" "$url" >"$TMP/$name.warm.out" 2>&1 ||
        die "wrk warm-up $name failed: $(tail -n 3 "$TMP/$name.warm.out")"
    settle
    times > "$TMP/times"
    cpu0=$(snap)
    [ "$name" != "$PERF_RUN" ] || perf_start
    export BENCH_RUN_ID="$RUNID-$name"
    run_bounded $((DUR + 20)) wrk -t1 -c$CONNS -d"${DUR}s" -s "$script" "$url" >"$TMP/$name.out" 2>&1 ||
        die "wrk $name failed: $(tail -n 3 "$TMP/$name.out")"
    times > "$TMP/times"
    cpu1=$(snap)
    f="$TMP/$name.out"
    [ -n "$(field rps "$f")" ] || die "wrk $name printed no result: $(tail -n 5 "$f")"
    echo "$(field rps "$f") $(field p50_us "$f") $(field p99_us "$f") $(field requests "$f")" \
         "$(field non2xx "$f") $(field sockerr "$f")" > "$TMP/$name.res"
    cpu_line "$cpu0" "$cpu1" > "$TMP/$name.cpu"
    case "$url" in
        "$BASE/"*) SERVER_REQS=$((SERVER_REQS + $(field requests "$TMP/$name.warm.out") + $(field requests "$f"))) ;;
    esac
}

# pgb_run NAME MODE [pgbench args]: warm-up, then the measured run of
# $TMP/NAME.pgb; result in $TMP/NAME_ref.res as "tps p50_us p99_us transactions
# failed -".
pgb_run() {
    name=${1}_ref
    pgb="$TMP/$1.pgb"
    mode=$2
    shift 2
    run_bounded $((WARM + 30)) pgbench -n -M "$mode" -c "$PGCLIENTS" -j 1 -T "$WARM" "$@" \
        -f "$pgb" >"$TMP/$name.warm.out" 2>&1 ||
        die "pgbench warm-up $name failed: $(grep -m 3 -i error "$TMP/$name.warm.out")"
    settle
    times > "$TMP/times"
    cpu0=$(snap)
    run_bounded $((DUR + 30)) pgbench -n -M "$mode" -c "$PGCLIENTS" -j 1 -T "$DUR" "$@" \
        --log --log-prefix="$TMP/$name.log" --sampling-rate=0.05 \
        -f "$pgb" >"$TMP/$name.out" 2>&1 ||
        die "pgbench $name failed: $(grep -m 3 -i error "$TMP/$name.out")"
    times > "$TMP/times"
    cpu_line "$cpu0" "$(snap)" > "$TMP/$name.cpu"
    f="$TMP/$name.out"
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$f")
    n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$f")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$f")
    [ -n "$tps" ] || die "pgbench $name printed no tps: $(tail -n 5 "$f")"
    pct=$(cat "$TMP/$name.log".* | awk '$3 ~ /^[0-9]+$/ { print $3 }' | sort -n |
          awk '{ v[NR] = $1 } END { if (NR == 0) { print "0 0"; exit }
               a = int(NR * 0.50 + 0.999999); b = int(NR * 0.99 + 0.999999);
               print v[a], v[b] }')
    echo "$tps $pct $n ${failed:-0} -" > "$TMP/$name.res"
}

total=$(( 12 * (DUR + WARM) ))
log "measuring: 12 runs of ${WARM}s warm-up + ${DUR}s (about ${total}s)"

log "nginx return 200 / GET /health"
SNAP_PIDS=$(ps -o pid= --ppid "$NGINX_PID" | tr -s ' \n' ' ')
wrk_run nginx "http://127.0.0.1:$NGINX_PORT/"
SNAP_PIDS=$WORKERS
wrk_run health "$BASE/health"

log "GET /api/v1/products/{id}"
if [ "$(cat "$TMP/product_get_ref.pgstate")" = ok ]; then
    pgb_run product_get prepared -D nproducts=$NPRODUCTS
fi
wrk_run product_get "$BASE/api/v1/products/1" product_get.lua
perf_stop

# The same read on a second server with tracing on: every request sampled
# (sample_ratio 1.0), its spans exported as OTLP/HTTP JSON to nginx's
# `return 200` (a sink that answers at once). Only one server runs the load.
log "GET /api/v1/products/{id}, tracing on"
TPORT=$(free_port)
cat > "$TMP/traced.cfg" <<EOF
server: { listen = "127.0.0.1:$TPORT"; };
rate_limit: { writes_per_minute = 0; };
tracing: { otlp_endpoint = "http://127.0.0.1:$NGINX_PORT"; sample_ratio = 1.0; };
EOF
ORDERFLOW_DATABASE_URL=$URL ORDERFLOW_JWT_SECRET=$SECRET "$BIN" serve -c "$TMP/traced.cfg" \
    2>"$TMP/traced.log" &
TRACED_PID=$!
i=0
until [ "$(http_code GET "http://127.0.0.1:$TPORT/ready")" = 200 ]; do
    kill -0 "$TRACED_PID" 2>/dev/null || { tail -n 20 "$TMP/traced.log" >&2; die "traced server exited"; }
    i=$((i + 1))
    [ $i -lt 100 ] || die "traced server not ready after 20 s"
    sleep 0.2
done
SNAP_PIDS=$(ps -o pid= --ppid "$TRACED_PID" | tr -s ' \n' ' ')
# The sink's CPU (nginx workers, idle but for the spans here) is reported
# apart, over the warm-up and the measured run, per request of both.
SINK_PIDS=$(ps -o pid= --ppid "$NGINX_PID" | tr -s ' \n' ' ')
sink_cpu() {
    for p in $SINK_PIDS; do awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || true; done |
        awk -v t="$TICKS" '{ s += $1 } END { printf "%.2f", s / t }'
}
SINK0=$(sink_cpu)
wrk_run product_get_traced "http://127.0.0.1:$TPORT/api/v1/products/1" product_get.lua
SINK1=$(sink_cpu)
SINK_N=$(( $(field requests "$TMP/product_get_traced.warm.out") + $(field requests "$TMP/product_get_traced.out") ))
SINK=$(awk -v a="$SINK0" -v b="$SINK1" -v n="$SINK_N" \
       'BEGIN { printf "%.2f CPU-s, %.1f µs per request", b - a, (n > 0 ? (b - a) * 1e6 / n : 0) }')
http_code GET "http://127.0.0.1:$TPORT/metrics" >/dev/null
SPANS=$(awk '/^orderflow_trace_spans_(exported|dropped)_total / { printf "%s%s %s", s, $1, $2; s = ", " }' "$TMP/resp")
kill -TERM "$TRACED_PID" 2>/dev/null
reap "$TRACED_PID" 15
TRACED_PID=""
SNAP_PIDS=$WORKERS

log "GET /api/v1/products?page=N&page_size=20"
if [ "$(cat "$TMP/product_list_ref.pgstate")" = ok ]; then
    pgb_run product_list prepared -D nproducts=$NPRODUCTS
fi
wrk_run product_list "$BASE/api/v1/products" product_list.lua
if [ "$REPLICA" = 1 ]; then . "$ROOT/bench/replica.sh"; fi

# The Node peer (fastify + pg, 2 processes): the same two reads.
if [ "$NODE_STATE" = ok ]; then
    log "Node peer: GET /api/v1/products/{id} and ?page=N"
    SNAP_PIDS=$NODE_PIDS
    wrk_run node_get "http://127.0.0.1:$NODE_PORT/api/v1/products/1" product_get.lua
    wrk_run node_list "http://127.0.0.1:$NODE_PORT/api/v1/products" product_list.lua
    SNAP_PIDS=$WORKERS
else
    echo "$NODE_STATE" > "$TMP/node_get.pgstate"
    echo "$NODE_STATE" > "$TMP/node_list.pgstate"
fi

FP=$(printf 'bench' | sha256sum | cut -c1-64)
write_row() {  # NAME STATE ROUTE LUA [pgbench -D args] (sh has no locals: wr_*)
    wr_name=$1
    wr_state=$2
    wr_route=$3
    wr_lua=$4
    shift 4
    if [ "$wr_state" != ok ]; then
        echo "$wr_state" > "$TMP/$wr_name.na"
        return 0
    fi
    log "POST $wr_route"
    if [ "$(cat "$TMP/${wr_name}_ref.pgstate")" = ok ]; then
        pgb_run "$wr_name" prepared -D uid="$USER_ID" -D "route=POST $wr_route" -D fp="$FP" \
            -D status=201 -D "body=$(cat "$TMP/$wr_name.body")" "$@"
    fi
    wrk_run "$wr_name" "$BASE$wr_route" "$wr_lua"
}
write_row order_create "$ORDERS_STATE" /api/v1/orders order_create.lua \
    -D notes=bench -D nproducts=$NPRODUCTS -D ncustomers=$NCUSTOMERS
# the same order creation with one webhook registered (order.created, to a
# local 204 sink): the jobs process delivers while orders are made
if [ "$ORDERS_STATE" = ok ]; then
    log "POST /api/v1/orders with a webhook registered"
    python3 bench/jobs_delivery.py --sink > "$TMP/sink.port" 2>"$TMP/sink.err" &
    SINK_PID=$!
    n=100
    while [ ! -s "$TMP/sink.port" ] && [ $n -gt 0 ]; do sleep 0.1; n=$((n - 1)); done
    [ -s "$TMP/sink.port" ] || die "webhook sink did not start: $(cat "$TMP/sink.err")"
    HOOK_ID=$(psql -XAtq -c "INSERT INTO webhooks (url, events, secret) VALUES
        ('http://127.0.0.1:$(cat "$TMP/sink.port")/hook', '{order.created}',
         'whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=') RETURNING id")
    wrk_run order_create_hook "$BASE/api/v1/orders" order_create.lua
    psql -XAtq -c "UPDATE webhooks SET is_active = false WHERE id = $HOOK_ID" >/dev/null
    HOOK_DELIVERED=$(psql -XAt -c "SELECT count(*) FILTER (WHERE status = 'succeeded') || ' of ' || count(*)
        FROM deliveries WHERE webhook_id = $HOOK_ID")
    kill -TERM "$SINK_PID" 2>/dev/null
    reap "$SINK_PID" 5
    SINK_PID=""
else
    echo "$ORDERS_STATE" > "$TMP/order_create_hook.na"
fi
write_row transfer "$TRANSFERS_STATE" /api/v1/transfers transfer.lua \
    -D acct_lo="$ACCT_LO" -D acct_hi="$ACCT_HI"

LOAD_AFTER=$(cut -d ' ' -f 1-3 /proc/loadavg)
sleep 1
for w in $WORKERS; do
    echo "$w $(rss_of "$w")" >> "$TMP/rss_after"
done
WORKERS_NOW=$(ps -o pid= --ppid "$SERVER_PID" | tr -s ' \n' ' ')
ERRLINES=$(grep -c '"level":"error"' "$TMP/server.log" || true)

# ---------------------------------------------------------------- report
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
cell_rps() { awk -v r="$1" 'BEGIN { printf "%d", r + 0.5 }'; }

# row LABEL NAME REFLABEL REFNAME TARGET
row() {
    label=$1
    name=$2
    reflabel=$3
    ref=$4
    target=$5
    if [ -f "$TMP/$name.na" ]; then
        printf '| %s | %s | | | %s | | | | | %s |\n' "$label" "$(cat "$TMP/$name.na")" "$reflabel" "≥ $target"
        return
    fi
    read -r srps sp50 sp99 _ snon ssock < "$TMP/$name.res"
    warn=""
    [ "$snon" = 0 ] || warn=" ($snon non-2xx!)"
    [ "$ssock" = 0 ] || warn="$warn ($ssock socket errors)"
    if [ -f "$TMP/$ref.res" ]; then
        read -r rrps rp50 rp99 _ rfail _ < "$TMP/$ref.res"
        rwarn=""
        [ "$rfail" = 0 ] || [ "$rfail" = "-" ] || rwarn=" ($rfail failed!)"
        ratio=$(awk -v a="$srps" -v b="$rrps" 'BEGIN { printf "%.2f", a / b }')
        met=$(awk -v r="$ratio" -v t="$target" 'BEGIN { print (r >= t) ? "yes" : "no" }')
        printf '| %s | %s%s | %s | %s | %s | %s%s | %s | %s | **%s** | ≥ %s %s |\n' \
            "$label" "$(cell_rps "$srps")" "$warn" "$(ms "$sp50")" "$(ms "$sp99")" \
            "$reflabel" "$(cell_rps "$rrps")" "$rwarn" "$(ms "$rp50")" "$(ms "$rp99")" \
            "$ratio" "$target" "$met"
    else
        printf '| %s | %s%s | %s | %s | %s | %s | | | | ≥ %s |\n' \
            "$label" "$(cell_rps "$srps")" "$warn" "$(ms "$sp50")" "$(ms "$sp99")" \
            "$reflabel" "$(cat "$TMP/$ref.pgstate" 2>/dev/null || echo n/a)" "$target"
    fi
}

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT+dirty"
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
MODE="bench/run.sh"
if [ "$QUICK" = 1 ]; then MODE="$MODE --quick"; fi
if [ "$PERF" = 1 ]; then MODE="$MODE --perf"; fi
if [ "$REPLICA" = 1 ]; then MODE="$MODE --replica"; fi
if [ "${BENCH_CACHE:-1}" = 0 ]; then MODE="BENCH_CACHE=0 $MODE"; fi
NW=$(echo "$WORKERS" | wc -w)

{
    echo "### Benchmark: \`$MODE\`"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $COMMIT, $NCPU CPUs ($CPU_MODEL), $(uname -sr)."
    echo "wrk -t1 -c$CONNS, ${WARM} s warm-up + ${DUR} s per run; server: Release build, default config"
    echo "($NW workers, pool_size 4, access log on; rate_limit.writes_per_minute = 0); pgbench -c $PGCLIENTS -j 1"
    echo "over the unix socket; nginx-light $NCPU workers. wrk, server, nginx and PostgreSQL share the CPUs."
    echo "Load average before / after: $LOAD_BEFORE / $LOAD_AFTER."
    echo
    echo "| workload | OrderFlow req/s | p50 ms | p99 ms | reference (same run) | ref req/s | ref p50 ms | ref p99 ms | ratio | target met |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    row '`GET /health`' health 'nginx `return 200`' nginx 0.6
    row '`GET /api/v1/products/{id}` (random of 10,000)' product_get \
        'pgbench -M prepared: `product_get`' product_get_ref 1.0
    row '`GET /api/v1/products/{id}`, tracing on (ratio 1.0, OTLP to a 200 sink)' product_get_traced \
        'same read, tracing off (row above)' product_get 0.9
    row '`GET /api/v1/products?page=N&page_size=20`' product_list \
        'pgbench -M prepared: best SQL (keyset id range + product_counts)' product_list_ref 0.9
    row '`GET /api/v1/products/{id}` (random of 10,000)' product_get \
        'Node peer: fastify + pg, 2 processes' node_get 2.0
    row '`GET /api/v1/products?page=N&page_size=20`' product_list \
        'Node peer: fastify + pg, 2 processes' node_list 1.5
    row '`POST /api/v1/orders` (2 items, new Idempotency-Key)' order_create \
        'pgbench -M prepared: same statements + round trips' order_create_ref 0.8
    row '`POST /api/v1/orders`, one webhook registered (receiver running)' order_create_hook \
        'same creation, no webhook (row above)' order_create 0.9
    row '`POST /api/v1/transfers` (100 accounts, new Idempotency-Key)' transfer \
        'pgbench -M prepared: same statements + round trips' transfer_ref 0.8
    echo
    echo "Where the CPU went during each measured run, in CPU-seconds (the machine has $NCPU per"
    echo "second of wall time; \"others\" is every process this run did not start), and the CPU"
    echo "cost of one request (µs, all parts together): less noisy than req/s on a shared machine."
    echo
    echo "| run | wall s | machine busy | server workers (each) | PostgreSQL | wrk / pgbench | others | µs CPU / request |"
    echo "|---|---|---|---|---|---|---|---|"
    for n in nginx health product_get_ref product_get product_get_traced product_list_ref product_list \
             node_get node_list \
             order_create_ref order_create order_create_hook transfer_ref transfer; do
        [ -f "$TMP/$n.cpu" ] || continue
        read -r c_wall c_busy c_pg c_cl c_w < "$TMP/$n.cpu"
        read -r _ _ _ c_n _ < "$TMP/$n.res"
        c_ws=$(echo "$c_w" | awk -F/ '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.1f", s }')
        c_oth=$(awk -v b="$c_busy" -v p="$c_pg" -v c="$c_cl" -v w="$c_ws" \
                'BEGIN { o = b - p - c - w; printf "%.1f", o < 0 ? 0 : o }')
        c_us=$(awk -v n="$c_n" -v p="$c_pg" -v c="$c_cl" -v w="$c_ws" \
               'BEGIN { if (n > 0) printf "%.0f", (p + c + w) * 1e6 / n; else print "-" }')
        case $n in
            nginx) c_w="nginx: $c_w" ;;
            node_*) c_w="node: $c_w" ;;
            *_ref) c_w="-" ;;
        esac
        printf '| %s | %s | %s | %s (%s) | %s | %s | %s | %s |\n' "$n" "$c_wall" "$c_busy" "$c_ws" "$c_w" \
            "$c_pg" "$c_cl" "$c_oth" "$c_us"
    done
    echo
    echo "| worker PID | RSS idle (KiB) | RSS after $SERVER_REQS requests (KiB) |"
    echo "|---|---|---|"
    for w in $WORKERS; do
        printf '| %s | %s | %s |\n' "$w" "$(awk -v p="$w" '$1 == p { print $2 }' "$TMP/rss_idle")" \
            "$(awk -v p="$w" '$1 == p { print $2 }' "$TMP/rss_after")"
    done
    [ "$WORKERS_NOW" = "$WORKERS" ] || echo "Workers changed during the run: $WORKERS -> $WORKERS_NOW"
    [ "$ERRLINES" = 0 ] || echo "The server logged $ERRLINES error lines."
    [ -z "${HOOK_DELIVERED:-}" ] || echo "Webhook run: $HOOK_DELIVERED deliveries succeeded by its end."
    echo "Tracing-on run: $SPANS (target: at most 10 % fewer req/s than tracing off)."
    # server workers' µs CPU per request, tracing off (product_get) and on
    wus() { read -r _ _ _ _ wu_w < "$TMP/$1.cpu"; read -r _ _ _ wu_n _ < "$TMP/$1.res"
            echo "$wu_w" | awk -F/ -v n="$wu_n" '{ s = 0; for (i = 1; i <= NF; i++) s += $i
                                             printf "%.1f", (n > 0 ? s * 1e6 / n : 0) }'; }
    if [ -f "$TMP/product_get.cpu" ] && [ -f "$TMP/product_get_traced.cpu" ]; then
        echo "Server workers' µs CPU per product read: $(wus product_get) tracing off," \
             "$(wus product_get_traced) on; the OTLP sink (nginx return 200, not in the" \
             "server's figures; in \"others\" above): $SINK."
    fi
    if [ -s "$TMP/replica.md" ]; then cat "$TMP/replica.md"; fi
    echo "Pool loop, no HTTP (bench/pool_loop.c): $(cat "$TMP/pool_loop.txt")"
    if [ -s "$TMP/perf.txt" ]; then
        echo
        echo "perf record of the workers during the product read (self time by library, then by symbol):"
        echo '```'
        cat "$TMP/perf.txt"
        echo '```'
    fi
} > "$TMP/results.md"
cp "$TMP/results.md" bench/results.md
echo
cat bench/results.md
