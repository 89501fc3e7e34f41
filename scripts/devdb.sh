#!/bin/sh
# devdb.sh -- the embedded development database.
#
#   scripts/devdb.sh [start]   print the database URL to use. When
#                              ORDERFLOW_DATABASE_URL is set, that is it and
#                              nothing is started. Otherwise a private
#                              PostgreSQL 15 in ./var/pg (kept between runs)
#                              is created if needed, started if not running,
#                              and gets a database "orderflow".
#   scripts/devdb.sh stop      stop that private server (data is kept)
#   scripts/devdb.sh status    running or not, and its URL
#
# Only progress goes to stderr; stdout is exactly the URL, so callers can do
#   url=$(scripts/devdb.sh) && ORDERFLOW_DATABASE_URL=$url orderflow migrate up
# The server listens on a unix socket only (no TCP), mode 0700: only its owner
# (or root) can connect. As root it runs as the `postgres` system user.
# ORDERFLOW_DEVDB_DIR overrides ./var/pg. Nothing here is for production.
set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
DIR=${ORDERFLOW_DEVDB_DIR:-$ROOT/var/pg}
PORT=5432
DB=orderflow
cmd=${1:-start}

say() { echo "devdb: $*" >&2; }

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

sockdir() {
    # unix socket paths are limited to 107 bytes
    if [ ${#DIR} -le 80 ]; then
        echo "$DIR"
    else
        echo "/tmp/orderflow-devdb-$(id -u)-$(printf '%s' "$DIR" | cksum | cut -d' ' -f1)"
    fi
}

url() {
    echo "postgresql:///$DB?host=$(sockdir)&port=$PORT&user=postgres"
}

running() {
    [ -f "$DIR/data/postmaster.pid" ] && as_owner "$PGBIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1
}

init_cluster() {
    sock=$(sockdir)
    mkdir -p "$DIR" "$sock"
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$DIR" "$sock"
        chmod 700 "$DIR"
        if ! runuser -u postgres -- test -w "$DIR"; then
            say "user postgres cannot reach $DIR; set ORDERFLOW_DEVDB_DIR to a directory it can reach"
            exit 1
        fi
    fi
    say "creating a private PostgreSQL cluster in $DIR"
    as_owner "$PGBIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
        >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; exit 1; }
    as_owner sh -c "cat >> '$DIR/data/postgresql.conf'" <<CONF
# scripts/devdb.sh
listen_addresses = ''
unix_socket_directories = '$sock'
unix_socket_permissions = 0700
port = $PORT
max_connections = 200
CONF
}

start() {
    if [ -n "${ORDERFLOW_DATABASE_URL:-}" ]; then
        echo "$ORDERFLOW_DATABASE_URL"
        return 0
    fi
    [ -x "$PGBIN/initdb" ] || { say "PostgreSQL 15 not found in $PGBIN"; exit 1; }
    [ -f "$DIR/data/PG_VERSION" ] || init_cluster
    sock=$(sockdir)
    if [ ! -d "$sock" ]; then    # /tmp socket dir wiped by a reboot
        mkdir -p "$sock"
        [ "$(id -u)" != 0 ] || chown postgres "$sock"
    fi
    if ! running; then
        say "starting PostgreSQL (log: $DIR/postgres.log)"
        as_owner "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 60 -s start >/dev/null || {
            tail -n 20 "$DIR/postgres.log" >&2 || true
            exit 1
        }
    fi
    if [ "$(psql -X -Atq -d "postgresql:///postgres?host=$sock&port=$PORT&user=postgres" \
            -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
        psql -X -q -d "postgresql:///postgres?host=$sock&port=$PORT&user=postgres" \
            -c "CREATE DATABASE $DB" >&2
        say "created database $DB"
    fi
    url
}

case "$cmd" in
    start)  start ;;
    stop)   if running; then as_owner "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w -s stop; say "stopped"; fi ;;
    status) if running; then echo "running $(url)"; else echo "stopped"; exit 3; fi ;;
    url)    url ;;
    *)      echo "usage: $0 [start|stop|status|url]" >&2; exit 2 ;;
esac
