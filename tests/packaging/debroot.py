"""debroot.py -- cached Debian 12 roots made with debootstrap, for the
packaging test (a throwaway root to install the .deb into) and for
scripts/image.sh (the container image's base).

    python3 debroot.py base                 print the minbase tarball's path
    python3 debroot.py testroot PKG...      print the path of a tarball of
                                            minbase + PKG... (apt-get install)

Tarballs live under /var/cache/orderflow (OF_DEBROOT_CACHE), never in the
repository: debootstrap takes minutes and the network, so it runs once per
machine; a testroot is keyed by its package list. The mirror is the one apt
is configured with (/etc/apt/sources.list*), else deb.debian.org.
"""
import contextlib
import fcntl
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

CACHE = os.environ.get("OF_DEBROOT_CACHE", "/var/cache/orderflow")
SUITE = "bookworm"


def mirror():
    for path in glob.glob("/etc/apt/sources.list.d/*.sources") + glob.glob("/etc/apt/sources.list*"):
        if not os.path.isfile(path):
            continue
        text = open(path, errors="replace").read()
        for m in re.finditer(r"^URIs:\s*(\S+/debian)/?\s*$", text, re.M):
            return m.group(1)
        for m in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s+" + SUITE + r"\s", text, re.M):
            return m.group(1)
    return "http://deb.debian.org/debian"


@contextlib.contextmanager
def locked():
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def proc_mounted(root):
    subprocess.run(["mount", "-t", "proc", "proc", os.path.join(root, "proc")], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", os.path.join(root, "proc")], check=False)


def pack(root, out):
    tmp = out + ".tmp"
    subprocess.run(["tar", "-C", root, "--numeric-owner", "-czf", tmp, "."], check=True)
    os.replace(tmp, out)


def unpack(tarball, root):
    os.makedirs(root, exist_ok=True)
    subprocess.run(["tar", "-C", root, "--numeric-owner", "-xzf", tarball], check=True)


def base():
    out = os.path.join(CACHE, f"{SUITE}-minbase.tar.gz")
    with locked():
        if not os.path.exists(out):
            work = tempfile.mkdtemp(prefix="debroot-", dir=CACHE)
            try:
                subprocess.run(["debootstrap", "--variant=minbase", SUITE, work + "/root", mirror()],
                               check=True, stdout=subprocess.DEVNULL, timeout=1200)
                subprocess.run(["chroot", work + "/root", "apt-get", "clean"], check=True)
                pack(work + "/root", out)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return out


def testroot(pkgs):
    pkgs = sorted(set(pkgs))
    key = hashlib.sha256(" ".join(pkgs).encode()).hexdigest()[:12]
    out = os.path.join(CACHE, f"{SUITE}-test-{key}.tar.gz")
    b = base()
    with locked():
        if not os.path.exists(out):
            work = tempfile.mkdtemp(prefix="debroot-", dir=CACHE)
            root = work + "/root"
            try:
                unpack(b, root)
                shutil.copy("/etc/resolv.conf", root + "/etc/resolv.conf")
                env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
                with proc_mounted(root):
                    for cmd in (["apt-get", "update", "-qq"],
                                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *pkgs],
                                ["apt-get", "clean"]):
                        subprocess.run(["chroot", root, *cmd], check=True, env=env,
                                       stdout=subprocess.DEVNULL, timeout=900)
                pack(root, out)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return out


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "base":
        print(base())
    elif len(sys.argv) >= 2 and sys.argv[1] == "testroot":
        print(testroot(sys.argv[2:]))
    else:
        sys.exit("usage: debroot.py base | testroot PKG...")
