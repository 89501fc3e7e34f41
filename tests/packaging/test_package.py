"""The Debian package, built from the tree and installed into a throwaway
Debian 12 root (label packaging; issue 16):

- scripts/package.sh builds it with dpkg-buildpackage (into a temp dir) and
  lintian --fail-on error passes;
- dpkg-deb -c lists the binary, migrations, config, env (0600), units, both
  man pages and the bash completion; both /etc files are conffiles; the
  version is the CMake project's;
- dpkg -i into a cached debootstrap root (debroot.py) whose packages are the
  .deb's own Depends: the postinst creates the orderflow system user;
  orderflow --version, check-config -c /etc/orderflow/orderflow.cfg and
  man -l of both pages work there; orderflow.cfg(5) names every setting of
  the key table; the completion offers the commands;
- upgrade: a master started by hand in the root keeps answering /health from
  a client loop while the package is installed again over it (new binary
  file) and upgrade.sh --pidfile hands over to a new master; no request fails.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("OF_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "../..")))
sys.path.insert(0, HERE)
import debroot  # noqa: E402

EXPECTED = [
    "./usr/sbin/orderflow",
    "./etc/orderflow/orderflow.cfg",
    "./etc/orderflow/env",
    "./usr/share/orderflow/migrations/0001_init.up.sql",
    "./usr/share/orderflow/upgrade.sh",
    "./lib/systemd/system/orderflow.service",
    "./lib/systemd/system/orderflow.socket",
    "./usr/share/man/man8/orderflow.8.gz",
    "./usr/share/man/man5/orderflow.cfg.5.gz",
    "./usr/share/bash-completion/completions/orderflow",
]


def run(cmd, timeout=120, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def work():
    d = tempfile.mkdtemp(prefix="of-pkgtest-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def deb(work):
    out = os.path.join(work, "dist")
    r = run([os.path.join(SRC, "scripts/package.sh"), out], timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    debs = [f for f in os.listdir(out) if f.endswith(".deb")]
    assert len(debs) == 1, debs
    deb = os.path.join(out, debs[0])
    LINTIAN[deb] = r.stdout
    return deb


LINTIAN = {}      # deb -> package.sh's output, lintian's report at its end


@pytest.fixture(scope="module")
def root(work, deb):
    """A debootstrap root with the .deb's dependencies, the .deb installed."""
    depends = run(["dpkg-deb", "-f", deb, "Depends"]).stdout
    pkgs = [re.split(r"[ (]", p.strip())[0] for p in depends.split(",") if p.strip()]
    tarball = debroot.testroot(pkgs + ["man-db"])
    r = os.path.join(work, "root")
    debroot.unpack(tarball, r)
    subprocess.run(["mount", "-t", "proc", "proc", r + "/proc"], check=True)
    try:
        shutil.copy(deb, r + "/tmp/orderflow.deb")
        res = run(["chroot", r, "dpkg", "-i", "/tmp/orderflow.deb"], timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        yield r
    finally:
        subprocess.run(["umount", "-l", r + "/proc"], check=False)


def in_root(root, *cmd, **kw):
    return run(["chroot", root, *cmd], **kw)


def project_version():
    with open(os.path.join(SRC, "CMakeLists.txt")) as f:
        return re.search(r"project\(orderflow VERSION ([0-9.]+)", f.read()).group(1)


def test_contents_and_metadata(deb):
    listing = run(["dpkg-deb", "-c", deb]).stdout
    paths = {line.split()[-1]: line.split()[0] for line in listing.splitlines()}
    for p in EXPECTED:
        assert p in paths, f"{p} missing from the package:\n{listing}"
    assert paths["./etc/orderflow/env"] == "-rw-------"
    assert paths["./usr/sbin/orderflow"] == "-rwxr-xr-x"
    ctl = tempfile.mkdtemp()
    try:
        subprocess.run(["dpkg-deb", "-e", deb, ctl], check=True)
        conffiles = open(os.path.join(ctl, "conffiles")).read().split()
        assert sorted(conffiles) == ["/etc/orderflow/env", "/etc/orderflow/orderflow.cfg"]
    finally:
        shutil.rmtree(ctl)
    fields = run(["dpkg-deb", "-f", deb, "Version", "Depends"]).stdout
    assert f"Version: {project_version()}-1" in fields
    assert "libpq5" in fields and "libevent" in fields and "adduser" in fields


def test_lintian_no_errors(deb):
    """package.sh ran lintian --fail-on error --info over this .deb (it exits
    non-zero on an error, which the fixture asserts); its report is here."""
    out = LINTIAN[deb]
    report = out[out.rindex(os.path.basename(deb)):]
    assert "package: lintian: no errors" in report, out[-3000:]
    assert not re.search(r"^E: ", report, re.M), report


def test_installed_binary_and_config(root):
    r = in_root(root, "/usr/sbin/orderflow", "--version")
    assert r.returncode == 0 and r.stdout.strip() == f"orderflow {project_version()}", r
    r = in_root(root, "/usr/sbin/orderflow", "check-config", "-c", "/etc/orderflow/orderflow.cfg")
    assert r.returncode == 0, r.stderr
    assert "# orderflow effective settings (/etc/orderflow/orderflow.cfg)" in r.stdout
    assert in_root(root, "getent", "passwd", "orderflow").returncode == 0
    st = os.stat(root + "/etc/orderflow/env")
    assert (st.st_mode & 0o777, st.st_uid) == (0o600, 0)
    with open(root + "/usr/sbin/orderflow", "rb") as f:
        assert b"/usr/share/orderflow/migrations" in f.read()   # compiled-in default


def test_man_pages(root):
    env = dict(os.environ, MANWIDTH="120", LANG="C.UTF-8")
    m8 = in_root(root, "man", "-l", "/usr/share/man/man8/orderflow.8.gz", env=env)
    assert m8.returncode == 0, m8.stderr
    for word in ("check-config", "migrate", "USR2", "WINCH", "ORDERFLOW_JWT_SECRET", "EXIT STATUS"):
        assert word in m8.stdout, word
    m5 = in_root(root, "man", "-l", "/usr/share/man/man5/orderflow.cfg.5.gz", env=env)
    assert m5.returncode == 0, m5.stderr
    keys = in_root(root, "/usr/sbin/orderflow", "config-reference").stdout.splitlines()
    assert len(keys) > 40
    group = None
    for line in keys:
        full, kind, default = line.split("\t")[:3]
        g, name = full.split(".")
        assert re.search(rf"^ {{3}}{re.escape(g)}$", m5.stdout, re.M), g
        assert re.search(rf"^ {{7}}{re.escape(name)}\b", m5.stdout, re.M), full
        group = g
    assert group == keys[-1].split("\t")[0].split(".")[0]


def test_bash_completion(root):
    script = ('source /usr/share/bash-completion/completions/orderflow; '
              'COMP_WORDS=(orderflow ""); COMP_CWORD=1; _orderflow; echo "${COMPREPLY[*]}"; '
              'COMP_WORDS=(orderflow migrate ""); COMP_CWORD=2; _orderflow; echo "${COMPREPLY[*]}"; '
              'COMP_WORDS=(orderflow user create --role ""); COMP_CWORD=4; _orderflow; echo "${COMPREPLY[*]}"')
    r = in_root(root, "bash", "-c", script)
    top, mig, role = r.stdout.splitlines()
    assert {"serve", "check-config", "migrate", "user", "--version"} <= set(top.split())
    assert mig.split() == ["up", "down", "status"]
    assert role.split() == ["admin", "user"]


def _port():
    sys.path.insert(0, os.path.join(SRC, "tests/e2e"))
    from ofclient import free_port     # below the ephemeral range (see there)
    return free_port()


def _children(ppid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            if stat[stat.rindex(")") + 2:].split()[1] == str(ppid):
                out.append(int(d))
    return out


def test_upgrade_by_hand_drops_nothing(root, deb):
    port = _port()
    with open(root + "/tmp/up.cfg", "w") as f:
        f.write('server: { pidfile = "/tmp/of.pid"; workers = 2; graceful_timeout = 10; };\n'
                'jobs: { enabled = false; };\n')
    env = dict(os.environ, ORDERFLOW_JWT_SECRET="x" * 40, ORDERFLOW_LISTEN=f"127.0.0.1:{port}")
    logpath = os.path.join(root, "tmp/serve.log")
    log = open(logpath, "w")
    master = subprocess.Popen(["chroot", root, "/usr/sbin/orderflow", "serve", "-c", "/tmp/up.cfg"],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    stop = threading.Event()
    results = []

    def client():
        while not stop.is_set():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as r:
                    results.append(r.status)
            except Exception as e:   # noqa: BLE001 -- any failure counts
                results.append(repr(e))
            time.sleep(0.01)

    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_children(master.pid)) < 2:
            time.sleep(0.1)
        assert len(_children(master.pid)) == 2, open(logpath).read()[-3000:]
        old = int(open(root + "/tmp/of.pid").read())
        t = threading.Thread(target=client)
        t.start()
        time.sleep(0.5)
        # the newer package over the running master (a new file at /usr/sbin/orderflow)
        r = in_root(root, "dpkg", "-i", "/tmp/orderflow.deb", timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        r = in_root(root, "/usr/share/orderflow/upgrade.sh", "--pidfile", "/tmp/of.pid", "--timeout", "60",
                    timeout=120)
        assert r.returncode == 0, r.stderr + open(logpath).read()[-3000:]
        new = int(open(root + "/tmp/of.pid").read())
        assert new != old
        master.wait(timeout=60)   # the old master leaves (QUIT, graceful)
        time.sleep(0.5)
        stop.set()
        t.join(timeout=30)
        assert results and all(s == 200 for s in results), [s for s in results if s != 200][:5]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
            assert resp.status == 200
        os.kill(new, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and os.path.exists(f"/proc/{new}"):
            time.sleep(0.1)
        assert not os.path.exists(f"/proc/{new}")
    finally:
        stop.set()
        if master.poll() is None:
            master.kill()
            master.wait(timeout=30)
        log.close()
