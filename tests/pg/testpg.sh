#!/bin/sh
# testpg.sh -- a throwaway PostgreSQL 15 cluster for tests.
#
#   testpg.sh start DIR   initdb into DIR/data (unless already there), start it
#                         listening on a unix socket only, write DIR/url and DIR/env.
#   testpg.sh stop DIR    pg_ctl stop -m fast, then remove DIR.
#   testpg.sh pgstop DIR  stop the server but keep DIR (tests of "database down").
#   testpg.sh pgstart DIR start an existing, stopped cluster again (same port).
#   testpg.sh pgkill DIR  stop the server with -m immediate (a crash: WAL recovery
#                         at the next pgstart), keep DIR.
#
# Both start and stop are idempotent. PostgreSQL refuses to run as root: when
# run as root the cluster belongs to the `postgres` system user (DIR is chowned
# to it), otherwise to the current user. fsync is off: test data only.
#
# DIR/url  postgresql:///postgres?host=SOCKDIR&port=N&user=postgres
# DIR/env  shell assignments PGHOST PGPORT PGUSER PGDATABASE ORDERFLOW_TEST_PG_URL
set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

usage() { echo "usage: $0 start|stop|pgstop|pgkill|pgstart DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

abs_dir() {
    mkdir -p "$1"
    (cd "$1" && pwd -P)
}

is_running() {
    [ -f "$1/data/postmaster.pid" ] && as_owner "$PGBIN/pg_ctl" -D "$1/data" status >/dev/null 2>&1
}

start_server() {
    d=$1
    if [ -f "$d/sockdir" ]; then           # a short socket dir in /tmp may be gone
        s=$(cat "$d/sockdir")
        mkdir -p "$s"
        [ "$(id -u)" != 0 ] || chown postgres "$s"
    fi
    as_owner "$PGBIN/pg_ctl" -D "$d/data" -l "$d/postgres.log" -w -t 60 -s start >/dev/null || {
        echo "testpg: postgres failed to start; log follows" >&2
        tail -n 30 "$d/postgres.log" >&2 || true
        exit 1
    }
}

do_start() {
    d=$(abs_dir "$dir")
    if [ -f "$d/url" ] && is_running "$d"; then
        cat "$d/url"
        return 0
    fi
    if [ -f "$d/data/PG_VERSION" ] && [ -f "$d/port" ]; then
        start_server "$d"
        cat "$d/url"
        return 0
    fi
    rm -rf "$d/data"
    # A unix socket path must fit in 107 bytes: long DIRs get a short socket dir.
    sock=$d
    if [ ${#d} -gt 80 ]; then
        sock=$(mktemp -d /tmp/ofpg.XXXXXX)
        echo "$sock" > "$d/sockdir"
    fi
    # Random-ish port: only names the socket file, but keep clusters apart anyway.
    port=$(( 20000 + ($$ * 7919 + $(date +%N | sed 's/^0*//;s/^$/0/') ) % 40000 ))
    echo "$port" > "$d/port"
    if [ "$(id -u)" = 0 ]; then
        chown postgres "$d"
        [ "$sock" = "$d" ] || chown postgres "$sock"
        if ! runuser -u postgres -- test -w "$d"; then
            echo "testpg: user postgres cannot reach $d: make its parent directories traversable" >&2
            exit 1
        fi
    fi
    as_owner "$PGBIN/initdb" -D "$d/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
        --no-sync >"$d/initdb.log" 2>&1 || {
        echo "testpg: initdb failed; log follows" >&2
        cat "$d/initdb.log" >&2
        exit 1
    }
    as_owner sh -c "cat >> '$d/data/postgresql.conf'" <<CONF
# testpg.sh
listen_addresses = ''
unix_socket_directories = '$sock'
unix_socket_permissions = 0777
port = $port
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 64MB
log_min_messages = warning
log_connections = off
CONF
    start_server "$d"
    url="postgresql:///postgres?host=$sock&port=$port&user=postgres"
    printf '%s\n' "$url" > "$d/url.tmp"
    cat > "$d/env" <<ENV
PGHOST='$sock'
PGPORT=$port
PGUSER=postgres
PGDATABASE=postgres
ORDERFLOW_TEST_PG_URL='$url'
export PGHOST PGPORT PGUSER PGDATABASE ORDERFLOW_TEST_PG_URL
ENV
    mv "$d/url.tmp" "$d/url"
    echo "$url"
}

do_pgstop() {
    [ -d "$dir" ] || return 0
    d=$(cd "$dir" && pwd -P)
    if is_running "$d"; then
        as_owner "$PGBIN/pg_ctl" -D "$d/data" -m fast -w -t 60 -s stop || true
    fi
}

do_stop() {
    [ -d "$dir" ] || return 0
    do_pgstop
    d=$(cd "$dir" && pwd -P)
    if [ -f "$d/sockdir" ]; then
        rm -rf "$(cat "$d/sockdir")"
    fi
    rm -rf "$d"
}

case "$cmd" in
    start)   do_start ;;
    stop)    do_stop ;;
    pgstop)  do_pgstop ;;
    pgkill)  d=$(cd "$dir" && pwd -P)
             ! is_running "$d" || as_owner "$PGBIN/pg_ctl" -D "$d/data" -m immediate -w -t 60 -s stop ;;
    pgstart) [ -f "$dir/data/PG_VERSION" ] || { echo "testpg: no cluster in $dir" >&2; exit 1; }
             d=$(cd "$dir" && pwd -P); is_running "$d" || start_server "$d" ;;
    *)       usage ;;
esac
