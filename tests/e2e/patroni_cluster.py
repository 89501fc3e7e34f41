"""A throwaway Patroni-managed PostgreSQL 15 cluster for tests (issue 14).

Owns: one etcd (etcd-server 3.4) and N Patroni nodes (Debian `patroni`, the
binaries of /usr/lib/postgresql/15/bin), all on loopback ports, in one temp
dir. PostgreSQL refuses to run as root, so as root each Patroni runs as the
`postgres` user through runuser. Settings are the test's, chosen for speed:
ttl 10 s, loop_wait 1 s, retry_timeout 3 s, `synchronous_mode: true`,
`primary_start_timeout: 0` (a crashed primary fails over to the synchronous
standby instead of restarting in place), pg_rewind for the old primary,
basebackup with a fast checkpoint, trust on loopback (test data only).

Everything waits on state -- Patroni's REST API (/health, /primary, /replica,
/sync) and `patronictl list` -- never on sleeps, and every wait is bounded.
`stop()` ends what `start()` started, by PID (also after a failed test).
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid

from ofclient import free_port

PGBIN = "/usr/lib/postgresql/15/bin"
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
PATRONI = shutil.which("patroni") or "/usr/bin/patroni"
PATRONICTL = shutil.which("patronictl") or "/usr/bin/patronictl"
for _tool in (ETCD, PATRONI, PATRONICTL, PGBIN + "/postgres"):
    assert os.path.exists(_tool), f"{_tool} missing: scripts/deps.sh test installs it"

AS_ROOT = os.getuid() == 0


def wait_for(pred, what, timeout):
    """pred() until it returns something true; that value. Bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def http_status(url, method="GET", body=None, timeout=2):
    """The HTTP status of one request (an error status too), or None when
    nothing answers."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def children(ppid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            if int(st[st.rfind(")") + 2:].split()[1]) == ppid:
                out.append(int(d))
    return out


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except OSError:
        return False


class Node:
    """One Patroni process and the PostgreSQL it manages."""

    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name
        self.dir = os.path.join(cluster.dir, name)
        self.data = os.path.join(self.dir, "data")
        self.pg_port = free_port()
        self.api_port = free_port()
        self.cfg = os.path.join(self.dir, "patroni.yml")
        self.log_path = os.path.join(self.dir, "patroni.log")
        self.proc = None          # runuser (as root) or patroni itself

    def config(self):
        hba = ["local all all trust", "local replication all trust",
               "host all all 127.0.0.1/32 trust", "host replication all 127.0.0.1/32 trust"]
        c = self.cluster
        return {
            "scope": c.scope, "namespace": "/orderflow-test/", "name": self.name,
            "log": {"level": "INFO"},
            "restapi": {"listen": f"127.0.0.1:{self.api_port}",
                        "connect_address": f"127.0.0.1:{self.api_port}"},
            "etcd3": {"hosts": [f"127.0.0.1:{c.etcd_port}"]},
            "bootstrap": {
                "dcs": {"ttl": 10, "loop_wait": 1, "retry_timeout": 3,
                        "maximum_lag_on_failover": 16 * 1024 * 1024,
                        "synchronous_mode": True, "primary_start_timeout": 0,
                        "postgresql": {"use_pg_rewind": True, "use_slots": True,
                                       "parameters": {"wal_log_hints": "on",
                                                      "max_connections": 200,
                                                      "max_wal_senders": 10,
                                                      "wal_keep_size": "128MB"}}},
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{self.pg_port}",
                "connect_address": f"127.0.0.1:{self.pg_port}",
                "data_dir": self.data, "bin_dir": PGBIN,
                "pgpass": os.path.join(self.dir, "pgpass"),
                "authentication": {"superuser": {"username": "postgres"},
                                   "replication": {"username": "postgres"},
                                   "rewind": {"username": "postgres"}},
                "parameters": {"unix_socket_directories": self.dir,
                               "fsync": "off", "shared_buffers": "32MB"},
                "basebackup": [{"checkpoint": "fast"}],
                "remove_data_directory_on_rewind_failure": True,
                "remove_data_directory_on_diverged_timelines": True,
                "pg_hba": hba,
            },
            "tags": {},
        }

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        with open(self.cfg, "w") as f:
            json.dump(self.config(), f, indent=1)   # JSON is YAML
        if AS_ROOT:
            shutil.chown(self.dir, "postgres", "postgres")
            os.chmod(self.dir, 0o700)
        cmd = [PATRONI, self.cfg]
        if AS_ROOT:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=self.logf, cwd=self.dir)

    def patroni_pid(self):
        """Patroni's PID: runuser's child as root, else the process we started."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        if not AS_ROOT:
            return self.proc.pid
        kids = children(self.proc.pid)
        return kids[0] if kids else None

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def api(self, path, method="GET", body=None, timeout=2):
        return http_status(f"http://127.0.0.1:{self.api_port}{path}", method, body, timeout)

    def is_primary(self):
        return self.api("/primary") == 200

    def is_sync_standby(self):
        return self.api("/sync") == 200

    def url(self, db="postgres"):
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{db}"

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout=40):
        """TERM to Patroni (it stops its PostgreSQL), then KILL whatever is left."""
        pm = self.postmaster_pid()
        pid = self.patroni_pid()
        if pid:
            os.kill(pid, signal.SIGTERM)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                if self.patroni_pid():
                    os.kill(self.patroni_pid(), signal.SIGKILL)
                self.proc.kill()
                self.proc.wait(10)
        pm = self.postmaster_pid() or (pm if pm and alive(pm) else None)
        if pm:
            os.kill(pm, signal.SIGKILL)
            wait_for(lambda: not alive(pm), f"postmaster {pm} to exit", 20)


class PatroniCluster:
    """etcd + `n` Patroni nodes. Use as a context manager, or start()/stop()."""

    def __init__(self, n=2):
        self.dir = tempfile.mkdtemp(prefix="of-patroni-")
        os.chmod(self.dir, 0o755)   # the postgres user reaches its node dirs
        self.scope = "of" + uuid.uuid4().hex[:8]
        self.etcd_port = free_port()
        self.etcd_peer_port = free_port()
        self.etcd = None
        self.nodes = [Node(self, f"node{i}") for i in range(n)]

    # ---- life cycle ----
    def start_etcd(self):
        d = os.path.join(self.dir, "etcd")
        self.etcd_log = open(os.path.join(self.dir, "etcd.log"), "ab")
        self.etcd = subprocess.Popen(
            [ETCD, "--name", "etcd0", "--data-dir", d,
             "--listen-client-urls", f"http://127.0.0.1:{self.etcd_port}",
             "--advertise-client-urls", f"http://127.0.0.1:{self.etcd_port}",
             "--listen-peer-urls", f"http://127.0.0.1:{self.etcd_peer_port}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.etcd_peer_port}",
             "--initial-cluster", f"etcd0=http://127.0.0.1:{self.etcd_peer_port}",
             "--initial-cluster-state", "new", "--initial-cluster-token", self.scope],
            stdout=self.etcd_log, stderr=self.etcd_log)
        wait_for(lambda: self.etcd.poll() is None and
                 http_status(f"http://127.0.0.1:{self.etcd_port}/health") == 200,
                 "etcd /health", 60)

    def start(self):
        try:
            self.start_etcd()
            first = self.nodes[0]
            first.start()      # bootstraps the cluster (initdb) and takes the leader key
            wait_for(first.is_primary, f"{first.name} primary\n" + first.log()[-3000:], 120)
            for n in self.nodes[1:]:
                n.start()      # basebackup from the primary
            self.wait_healthy()
        except BaseException:
            print(self.diagnostics())
            self.stop()
            raise
        return self

    def wait_healthy(self, timeout=120):
        """One primary, every other node a running replica and one of them the
        synchronous standby (so an acknowledged commit is on two nodes)."""
        def ok():
            p = self.primary()
            if p is None:
                return False
            reps = [n for n in self.nodes if n is not p]
            return (all(n.api("/replica") == 200 for n in reps)
                    and any(n.is_sync_standby() for n in reps))
        wait_for(ok, "a primary and a synchronous standby\n" + self.list_text(), timeout)

    def stop(self):
        for n in self.nodes:
            try:
                n.stop()
            except Exception as e:      # keep stopping the others
                print(f"stopping {n.name}: {e}")
        if self.etcd is not None and self.etcd.poll() is None:
            self.etcd.terminate()
            try:
                self.etcd.wait(20)
            except subprocess.TimeoutExpired:
                self.etcd.kill()
                self.etcd.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    # ---- state ----
    def primary(self):
        for n in self.nodes:
            if n.is_primary():
                return n
        return None

    def replicas(self):
        return [n for n in self.nodes if n.api("/replica") == 200]

    def list_text(self):
        """`patronictl list` (for messages)."""
        try:
            r = subprocess.run([PATRONICTL, "-c", self.nodes[0].cfg, "list"],
                               capture_output=True, text=True, timeout=20)
            return r.stdout + r.stderr
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"patronictl list: {e}"

    def diagnostics(self):
        out = [self.list_text()]
        for n in self.nodes:
            out.append(f"--- {n.name} patroni log (tail)\n{n.log()[-2500:]}")
        return "\n".join(out)

    def url(self, db, attrs="read-write"):
        """libpq multi-host URL naming every node."""
        hosts = ",".join(f"127.0.0.1:{n.pg_port}" for n in self.nodes)
        return (f"postgresql://postgres@{hosts}/{db}"
                f"?target_session_attrs={attrs}&connect_timeout=2")

    # ---- events ----
    def kill_primary_postmaster(self):
        """SIGKILL the primary's postmaster; the node that was primary."""
        p = self.primary()
        assert p is not None, self.list_text()
        pm = p.postmaster_pid()
        assert pm, f"no postmaster pid for {p.name}"
        os.kill(pm, signal.SIGKILL)
        return p

    def switchover(self, leader, candidate):
        """Patroni's REST API POST /switchover (what `patronictl switchover` calls)."""
        return leader.api("/switchover", "POST",
                          {"leader": leader.name, "candidate": candidate.name}, timeout=60)
