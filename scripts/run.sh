#!/bin/sh
# run.sh -- build OrderFlow and serve it on an embedded default (the README's
# run command).
#
# Without ORDERFLOW_DATABASE_URL a private PostgreSQL lives in ./var/pg (kept
# between runs); with it, that database is used and nothing is started.
# The schema is migrated, a dev admin is made once, and a dev JWT secret is
# generated once into ./var (both printed). Ctrl-C stops the server.
set -eu
cd "$(dirname "$0")/.."

scripts/deps.sh run
BUILD=${BUILD_DIR:-build-release}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
BIN="$BUILD/orderflow"
mkdir -p var

if [ -z "${ORDERFLOW_DATABASE_URL:-}" ]; then
    ORDERFLOW_DATABASE_URL=$(scripts/devdb.sh start | tail -n 1)
    export ORDERFLOW_DATABASE_URL
    echo "embedded PostgreSQL: $ORDERFLOW_DATABASE_URL"
fi

if [ -z "${ORDERFLOW_JWT_SECRET:-}" ]; then
    if [ ! -s var/dev_jwt_secret ]; then
        (umask 077 && openssl rand -hex 32 > var/dev_jwt_secret)
    fi
    ORDERFLOW_JWT_SECRET=$(cat var/dev_jwt_secret)
    export ORDERFLOW_JWT_SECRET
    echo "dev JWT secret (var/dev_jwt_secret): $ORDERFLOW_JWT_SECRET"
fi

"$BIN" migrate up

if [ ! -s var/dev_admin_password ]; then
    (umask 077 && openssl rand -hex 12 > var/dev_admin_password)
    "$BIN" user create --email admin@orderflow.local --role admin < var/dev_admin_password ||
        echo "dev admin already exists"
fi
echo "dev admin: admin@orderflow.local / $(cat var/dev_admin_password)"

CFG=${ORDERFLOW_CONFIG:-config/orderflow.cfg}
echo "serving on the listen address of $CFG (default http://127.0.0.1:8000)"
exec "$BIN" serve -c "$CFG"
