#!/bin/sh
# package.sh -- build the Debian package the Debian way: dpkg-buildpackage
# -us -uc -b over debian/ (debhelper compat 13, dh + cmake), in a copy of the
# tree in a temporary directory, so the work tree stays clean. Then lintian.
#
#   scripts/package.sh [OUTDIR]     default OUTDIR: dist/
#
# Leaves OUTDIR/orderflow_<version>-1_amd64.deb (and the .buildinfo/.changes);
# installs what building needs when missing (scripts/deps.sh run, plus
# debhelper, dpkg-dev, fakeroot, lintian), as scripts/deps.sh does.
# Fails when lintian reports an error (warnings are printed; the accepted
# ones are explained in debian/orderflow.lintian-overrides).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)

"$root/scripts/deps.sh" run
missing=""
for p in debhelper dpkg-dev fakeroot lintian; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "package: installing$missing" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/orderflow-pkg.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
src="$tmp/orderflow"
mkdir "$src"
# the tree as git sees it (tracked and new files, nothing ignored: no build
# directories); a plain copy without build*/ when this is no git checkout
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # (a file deleted in the work tree but still in the index is left out)
    (cd "$root" && git ls-files -z --cached --others --exclude-standard |
        tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -C "$src" -xf -
else
    (cd "$root" && tar cf - --exclude='./build*' --exclude=./dist --exclude=./var .) | (cd "$src" && tar xf -)
fi

# both cores unless the caller says otherwise (debhelper reads parallel=N)
export DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=$(nproc)}"
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1 || {
    tail -n 60 "$tmp/build.log" >&2
    echo "package: dpkg-buildpackage failed (log above)" >&2
    exit 1
}
for f in "$tmp"/orderflow_*; do
    [ -f "$f" ] && cp "$f" "$out/"
done
deb=$(ls "$out"/orderflow_*_"$(dpkg --print-architecture)".deb | sort -V | tail -n 1)
echo "package: $deb"
lintian --fail-on error --info "$deb"
echo "package: lintian: no errors"
