#!/bin/sh
# deps.sh -- install the Debian 12 packages OrderFlow needs, when missing.
#
#   scripts/deps.sh run    what building and serving needs
#   scripts/deps.sh test   that, plus what the test suite needs
#
# Runs apt-get (as root, or through sudo) only if a package is missing.
set -eu

RUN_PKGS="build-essential cmake pkg-config libevent-dev libjansson-dev libpq-dev
libconfig-dev libsodium-dev libjwt-dev libssl-dev libsystemd-dev libcmocka-dev
libcurl4-openssl-dev
postgresql-15 postgresql-client-15 openssl"
TEST_PKGS="python3 python3-pytest wrk nginx-light curl systemd python3-prometheus-client python3-jsonschema
clang libclang-rt-14-dev valgrind pgbouncer prometheus
debhelper dpkg-dev fakeroot lintian debootstrap man-db
python3-aiosmtpd
patroni etcd-server etcd-client"

case "${1:-run}" in
    run)  want="$RUN_PKGS" ;;
    test) want="$RUN_PKGS $TEST_PKGS" ;;
    *)    echo "usage: $0 run|test" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
# npm fetches Swagger UI (swagger-ui-dist) at build time for GET /docs. Any
# npm will do: Debian's is installed only when none is on the PATH (a NodeSource
# node, say, conflicts with Debian's npm package).
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0

echo "deps: installing$missing" >&2
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "deps: missing packages ($missing) and not root; install them first" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
