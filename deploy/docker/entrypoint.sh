#!/bin/sh
# entrypoint.sh -- the container's entrypoint (see Dockerfile): secrets from
# files (Docker/Kubernetes secrets) into the environment orderflow reads,
# then exec orderflow with the container's arguments (default: serve), so
# the master is PID 1 and gets docker's signals directly.
#
#   ORDERFLOW_JWT_SECRET_FILE     -> ORDERFLOW_JWT_SECRET
#   ORDERFLOW_DATABASE_URL_FILE   -> ORDERFLOW_DATABASE_URL
# A variable already set in the environment wins over its _FILE.
set -eu

for var in ORDERFLOW_JWT_SECRET ORDERFLOW_DATABASE_URL; do
    eval "val=\${$var:-}"
    eval "file=\${${var}_FILE:-}"
    if [ -z "$val" ] && [ -n "$file" ]; then
        if [ ! -r "$file" ]; then
            echo "orderflow-entrypoint: ${var}_FILE=$file is not readable" >&2
            exit 1
        fi
        val=$(cat "$file")
        export "$var=$val"
    fi
    unset "${var}_FILE"
done

exec /usr/sbin/orderflow "$@"
