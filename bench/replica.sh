# replica.sh -- the read-replica section of bench/run.sh (--replica), sourced
# by it after the product reads; uses its helpers (wrk_run, free_port, ...).
#
# Makes a streaming standby of the benchmark's PostgreSQL (pg_basebackup -c
# fast -R, its own port and socket dir under $TMP) and runs two more
# servers, both with cache.enabled = false so every read reaches PostgreSQL
# (a read from a replica is never cached): one primary-only, one with
# database.replica_url. The same product-by-id and product-list loads run
# against each in turn; the result is the ratio replica / primary-only. On
# one machine both PostgreSQL servers share its CPUs: the ratio says what the
# routing costs or gains here, not what a second host would give.
# Everything started here is stopped by PID (rep_cleanup, also from cleanup).
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
REP_DIR="$TMP/rep"
REP_PIDS=""
REP_UP=0

rep_as_owner() {
    if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

rep_cleanup() {
    for p in $REP_PIDS; do
        kill -TERM "$p" 2>/dev/null
        reap "$p" 15
    done
    REP_PIDS=""
    [ "$REP_UP" = 0 ] || rep_as_owner "$PGBIN/pg_ctl" -D "$REP_DIR/data" -m fast -w stop >/dev/null 2>&1
    REP_UP=0
}
REP_CLEANUP=rep_cleanup

rep_server() {  # NAME EXTRA-DATABASE-SETTINGS: starts it, sets REP_BASE
    rp=$(free_port)
    cat > "$TMP/$1.cfg" <<EOC
server: { listen = "127.0.0.1:$rp"; };
rate_limit: { writes_per_minute = 0; };
cache: { enabled = false; };
database: { $2 };
EOC
    ORDERFLOW_DATABASE_URL=$URL ORDERFLOW_JWT_SECRET=$SECRET "$BIN" serve -c "$TMP/$1.cfg" \
        2>"$TMP/$1.log" &
    REP_PID=$!
    REP_PIDS="$REP_PIDS $REP_PID"
    REP_BASE="http://127.0.0.1:$rp"
    i=0
    until [ "$(http_code GET "$REP_BASE/ready")" = 200 ]; do
        i=$((i + 1))
        [ $i -lt 100 ] || { tail -n 20 "$TMP/$1.log" >&2; die "$1 server not ready after 20 s"; }
        sleep 0.2
    done
}

log "read replica: pg_basebackup of the benchmark's PostgreSQL"
mkdir -p "$REP_DIR"
[ "$(id -u)" != 0 ] || chown postgres "$REP_DIR"
PG_HOST=$(printf '%s' "$URL" | sed -n 's/.*host=\([^&]*\).*/\1/p')
PG_PORT=$(printf '%s' "$URL" | sed -n 's/.*port=\([0-9]*\).*/\1/p')
REP_PORT=$((PG_PORT + 1))
REP_SOCK=$(mktemp -d /tmp/ofrep.XXXXXX)
[ "$(id -u)" != 0 ] || chown postgres "$REP_SOCK"
rep_as_owner "$PGBIN/pg_basebackup" -D "$REP_DIR/data" -c fast -R -X stream \
    -h "$PG_HOST" -p "$PG_PORT" -U postgres >"$REP_DIR/basebackup.log" 2>&1 ||
    die "pg_basebackup failed: $(tail -n 3 "$REP_DIR/basebackup.log")"
rep_as_owner "$PGBIN/pg_ctl" -D "$REP_DIR/data" -l "$REP_DIR/postgres.log" -w -t 60 \
    -o "-p $REP_PORT -k $REP_SOCK -c listen_addresses=''" start >/dev/null ||
    die "standby did not start: $(tail -n 5 "$REP_DIR/postgres.log")"
REP_UP=1
REP_URL=$(printf '%s' "$URL" | sed "s|host=[^&]*|host=$REP_SOCK|; s|port=[0-9]*|port=$REP_PORT|")

rep_server rep_primary ""
REP_PRIMARY=$REP_BASE
REP_PRIMARY_W=$(ps -o pid= --ppid "$REP_PID" | tr -s ' \n' ' ')
rep_server rep_replica "replica_url = \"$REP_URL\"; replica_max_lag = 1.0;"
REP_REPLICA=$REP_BASE
REP_REPLICA_W=$(ps -o pid= --ppid "$REP_PID" | tr -s ' \n' ' ')
i=0
until http_code GET "$REP_REPLICA/metrics" >/dev/null &&
      grep -q '^db_replica_serving [1-9]' "$TMP/resp"; do
    i=$((i + 1))
    [ $i -lt 100 ] || die "replica server never routed to the replica"
    sleep 0.2
done

log "read replica: product reads, primary-only vs one replica"
for w in get list; do
    SNAP_PIDS=$REP_PRIMARY_W
    wrk_run rep_primary_$w "$REP_PRIMARY/api/v1/products$( [ $w = get ] && echo /1 )" product_$w.lua
    SNAP_PIDS=$REP_REPLICA_W
    wrk_run rep_replica_$w "$REP_REPLICA/api/v1/products$( [ $w = get ] && echo /1 )" product_$w.lua
done
http_code GET "$REP_REPLICA/metrics" >/dev/null
REP_QUERIES=$(awk '/^db_pool_queries_total/ { printf "%s%s %s", s, $1, $2; s = ", " }' "$TMP/resp")
rep_cleanup
SNAP_PIDS=$WORKERS

{
    echo
    echo "Read replica (\`--replica\`; both servers cache.enabled = false, the standby on this machine):"
    echo
    echo "| workload | primary-only req/s | with one replica req/s | ratio | replica p99 ms |"
    echo "|---|---|---|---|---|"
    for w in get list; do
        read -r p_rps _ _ _ _ _ < "$TMP/rep_primary_$w.res"
        read -r r_rps _ r_p99 _ _ _ < "$TMP/rep_replica_$w.res"
        printf '| product %s | %s | %s | %s | %s |\n' "$w" "$(cell_rps "$p_rps")" "$(cell_rps "$r_rps")" \
            "$(awk -v a="$r_rps" -v b="$p_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')" "$(ms "$r_p99")"
    done
    echo
    echo "Replica server's pools after the runs: $REP_QUERIES."
} > "$TMP/replica.md"
