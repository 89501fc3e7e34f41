#!/bin/sh
# image.sh -- build the container image from the Dockerfile with Debian's
# podman/buildah, run it against a throwaway PostgreSQL and check it.
#
#   scripts/image.sh            build orderflow:local, run, check, remove the container
#
# 1. the .deb: scripts/package.sh -> dist/ (the Dockerfile installs it);
# 2. the base: no registry is reachable, so debian:12-slim is a local image
#    imported from a debootstrap minbase tarball (tests/packaging/debroot.py,
#    cached under /var/cache/orderflow);
# 3. podman build (host network for apt), podman run --network host against
#    tests/pg/testpg.sh's PostgreSQL (its unix socket mounted in), migrate up,
#    then: GET /health answers 200, the server runs as the non-root user
#    orderflow, and $pm healthcheck run reports healthy.
# Installs podman and buildah when missing. Needs root (or working rootless
# podman).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
tag=${OF_IMAGE_TAG:-orderflow:local}
port=${OF_IMAGE_PORT:-18080}
name="orderflow-image-check-$$"

missing=""
for p in podman buildah uidmap runc; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

[ -n "${OF_IMAGE_SKIP_PACKAGE:-}" ] || "$root/scripts/package.sh" "$root/dist"
deb=$(cd "$root" && ls dist/orderflow_*_amd64.deb | sort -V | tail -n 1)

# This sandbox's cgroups (hybrid v1/v2) defeat crun ("cgroups in hybrid mode
# not supported") and refuse raising rlimits: runc, and the rlimits we have.
pm="podman --runtime runc"
limits="--ulimit nofile=$(ulimit -n):$(ulimit -n) --ulimit nproc=4096:4096"

if ! podman image exists debian:12-slim; then
    base=$(python3 "$root/tests/packaging/debroot.py" base)
    podman import "$base" debian:12-slim >/dev/null
fi
podman build --format docker --isolation chroot --network host --build-arg "DEB=$deb" -t "$tag" "$root"

pgdir=$(mktemp -d /tmp/of-image-pg.XXXXXX)
cleanup() {
    $pm rm -f "$name" >/dev/null 2>&1 || true
    "$root/tests/pg/testpg.sh" stop "$pgdir" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM
url=$("$root/tests/pg/testpg.sh" start "$pgdir")
sock=$(echo "$url" | sed -n 's/.*host=\([^&]*\).*/\1/p')
pgport=$(echo "$url" | sed -n 's/.*port=\([0-9]*\).*/\1/p')
chmod o+x "$sock"   # the container's user orderflow reaches the socket (test cluster only)
curl_url="postgresql:///postgres?host=/pgsock&port=$pgport&user=postgres"
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

$pm run --rm $limits --network host -v "$sock:/pgsock" -e ORDERFLOW_DATABASE_URL="$curl_url" \
    "$tag" migrate up
$pm run -d $limits --name "$name" --network host -v "$sock:/pgsock" \
    -e ORDERFLOW_DATABASE_URL="$curl_url" -e ORDERFLOW_JWT_SECRET="$secret" \
    -e ORDERFLOW_LISTEN="127.0.0.1:$port" "$tag" >/dev/null

i=0
until curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 300 ]; then
        $pm logs "$name" >&2 || true
        echo "image: /health did not answer within 60 s" >&2
        exit 1
    fi
    sleep 0.2
done
echo "image: /health: $(curl -fsS "http://127.0.0.1:$port/health")"
user=$($pm exec "$name" id -un)
[ "$user" = orderflow ] || { echo "image: runs as $user, not orderflow" >&2; exit 1; }
echo "image: runs as $user (uid $($pm exec "$name" id -u))"
$pm healthcheck run "$name" && echo "image: HEALTHCHECK healthy"
echo "image: $tag ok"
