"""Helpers shared by the end-to-end tests: start the real binary, talk HTTP.

Servers are started with a config file written into a temp dir, on a free
loopback port, and stopped by PID at the end. Nothing here mocks anything.
"""
import json
import os
import random
import re
import signal
import socket
import subprocess
import tempfile
import time
import http.client

BIN = os.environ.get("ORDERFLOW_BIN", os.path.join(os.path.dirname(__file__), "../../build/orderflow"))
# PostgreSQL's own binaries. psql straight from there: /usr/bin/psql is
# Debian's pg_wrapper, a Perl script that costs 60 ms of CPU per call (the
# suite runs psql a thousand times).
PGBIN = os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin")
PSQL = os.path.join(PGBIN, "psql") if os.access(os.path.join(PGBIN, "psql"), os.X_OK) else "psql"
TEST_SECRET = "test-secret-0123456789abcdef0123456789abcdef"


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A loopback port nothing listens on, below the kernel's ephemeral range:
    a port the kernel picks (bind to 0) can be taken again at once as the
    local end of any test's outgoing connection, and the server's bind then
    fails with EADDRINUSE (seen in CI). Ports under the range are never
    handed out implicitly; tests pick them at random and check they bind."""
    lo, _ = _ephemeral_range()
    top = max(lo - 1, 2048)
    for _ in range(200):
        port = random.randint(max(1024, top - 20000), top)
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:        # a crowded machine: the kernel's pick
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return f"<Response {self.status} {self.body[:200]!r}>"


def request(port, method, path, body=None, headers=None, token=None, timeout=10, host="127.0.0.1"):
    """One HTTP/1.1 request on a fresh connection. body: dict/list -> JSON,
    str/bytes -> sent as is."""
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
    if token:
        hdrs["Authorization"] = "Bearer " + token
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "WARNING: ThreadSanitizer")



def metric(port, name):
    """The value of an unlabelled series in /metrics (AssertionError if absent)."""
    text = request(port, "GET", "/metrics").body.decode()
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))

def sanitizer_report(log):
    """The first ASan/LSan/UBSan report in a server's log text, or None."""
    for mark in SANITIZER_MARKS:
        i = log.find(mark)
        if i >= 0:
            return log[max(0, i - 200):i + 6000]
    return None


def assert_no_sanitizer_report(log_path):
    """For servers a test starts without Server (systemd-socket-activate...)."""
    with open(log_path, errors="replace") as f:
        rep = sanitizer_report(f.read())
    assert rep is None, f"sanitizer report in {log_path}:\n{rep}"


def proc_comm(pid):
    """A process's name (prctl PR_SET_NAME): of-worker, of-jobs; "" if gone."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def children_of(ppid):
    """Live (not zombie) children of ppid, from /proc."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rfind(")") + 2:].split()
        if rest[0] != "Z" and int(rest[1]) == ppid:
            out.append(int(d))
    return out


def wait_until(pred, what, timeout=60, step=0.02):
    """Poll pred() until it is true; fail naming `what` after timeout seconds
    (a generous outer deadline: tests wait on events, not stopwatches)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def read_pid(path):
    """The pid in a pidfile, or None while it is missing or half-written."""
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return not f.read().split(") ")[1].startswith("Z")
    except OSError:
        return False


def wait_pid_gone(pid, timeout=30):
    """Wait until pid has exited (a zombie counts as gone)."""
    wait_until(lambda: not pid_alive(pid), f"pid {pid} to exit", timeout, step=0.01)


class Server:
    """The real orderflow binary, master + workers."""

    def __init__(self, db_url=None, workers=2, extra_cfg="", env=None, port=None, args=None,
                 server_cfg="", wrapper=None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="of-e2e-")
        self.cfg_path = os.path.join(self.dir, "orderflow.cfg")
        self.log_path = os.path.join(self.dir, "orderflow.log")
        self.pidfile = os.path.join(self.dir, "orderflow.pid")
        self.workers = workers
        self.db_url = db_url or "postgresql:///nonexistent?host=/nonexistent"
        self.extra_cfg = extra_cfg
        self.server_cfg = server_cfg     # more settings inside the server group
        self.env = dict(os.environ)
        self.env["ORDERFLOW_JWT_SECRET"] = TEST_SECRET
        self.env["ORDERFLOW_DATABASE_URL"] = self.db_url
        self.env.pop("ORDERFLOW_LISTEN", None)
        self.env.pop("ORDERFLOW_WORKERS", None)
        if env:
            self.env.update(env)
        self.args = args or []
        self.wrapper = list(wrapper or [])   # e.g. ["valgrind", ...]: runs BIN under it
        self.proc = None
        self.write_config()

    def write_config(self, workers=None, extra_cfg=None):
        if workers is not None:
            self.workers = workers
        if extra_cfg is not None:
            self.extra_cfg = extra_cfg
        with open(self.cfg_path, "w") as f:
            f.write(
                f'server: {{ listen = "127.0.0.1:{self.port}"; workers = {self.workers}; '
                f'pidfile = "{self.pidfile}"; worker_timeout = 5; graceful_timeout = 10; '
                f'{self.server_cfg} }};\n'
                + self.extra_cfg + "\n"
            )

    def start(self, wait=True):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.wrapper + [BIN, "serve", "-c", self.cfg_path] + self.args,
                                     env=self.env, stdout=self.logf, stderr=self.logf)
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if request(self.port, "GET", "/health", timeout=1).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become healthy:\n" + self.log())

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_lines(self):
        out = []
        for line in self.log().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def req(self, method, path, **kw):
        return request(self.port, method, path, **kw)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def worker_pids(self):
        """Children of the master, from /proc (no psutil in Debian's base)."""
        pids = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            rest = st[st.rfind(")") + 2:].split()
            if rest[0] != "Z" and int(rest[1]) == self.proc.pid and proc_comm(d) == "of-worker":
                pids.append(int(d))
        return sorted(pids)

    def jobs_pids(self):
        """The master's jobs processes (named of-jobs)."""
        return sorted(p for p in children_of(self.proc.pid) if proc_comm(p) == "of-jobs")

    def wait_workers(self, n, timeout=15, exclude=()):
        deadline = time.time() + timeout
        pids = []
        while time.time() < deadline:
            pids = [p for p in self.worker_pids() if p not in exclude]
            if len(pids) == n:
                return pids
            time.sleep(0.05)
        raise AssertionError(f"expected {n} workers, have {pids}\n{self.log()[-3000:]}")

    def stop(self, sig=None, timeout=20):
        # (the method `signal` above shadows the module in the class body, so
        # the default cannot be written signal.SIGTERM here)
        if sig is None:
            sig = signal.SIGTERM
        if self.proc is None or self.proc.poll() is not None:
            self.check_sanitizers()
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.check_sanitizers()
        return rc

    # An ASan/UBSan build (-DOF_SANITIZE=ON) writes its reports to stderr,
    # which is this server's log: any report fails the test that stops it.
    def sanitizer_report(self):
        return sanitizer_report(self.log())

    def check_sanitizers(self):
        if getattr(self, "_sanitizers_checked", False):
            return
        self._sanitizers_checked = True
        rep = self.sanitizer_report()
        if rep:
            raise AssertionError(f"sanitizer report in {self.log_path}:\n{rep}")

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


# ---- users and tokens (helper H4) ----

def create_user(db_url, email, password, role="user", config_path=None):
    """`orderflow user create` with the real binary: the password on stdin,
    ORDERFLOW_DATABASE_URL set. Returns the CompletedProcess (check .returncode)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env["ORDERFLOW_DATABASE_URL"] = db_url   # the JWT secret is not required by the CLI
    args = [BIN, "user", "create", "--email", email, "--role", role]
    if config_path:
        args[1:1] = ["-c", config_path]
    return subprocess.run(args, input=(password + "\n").encode(), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


def make_admin(db_url, email="admin@x.io", password="admin-pass-123"):
    """An admin made from the command line, as API.md says the first one is."""
    r = create_user(db_url, email, password, "admin")
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    return email, password


def login(port, email, password, headers=None):
    """POST /api/v1/auth/login (OAuth2 password form); returns the Response."""
    from urllib.parse import urlencode
    h = {"Content-Type": "application/x-www-form-urlencoded"}
    h.update(headers or {})
    return request(port, "POST", "/api/v1/auth/login",
                   body=urlencode({"username": email, "password": password}), headers=h)


def token_for(port, email, password):
    r = login(port, email, password)
    assert r.status == 200, r
    return r.json()["access_token"]


def register_and_login(port, email, password="user-pass-123"):
    """Register a user through the API and return (user json, token)."""
    r = request(port, "POST", "/api/v1/auth/register", body={"email": email, "password": password})
    assert r.status == 201, r
    return r.json(), token_for(port, email, password)



# ---- raw sockets (helper H9): hostile and slow clients ----

def raw_exchange(port, data, timeout=3.0, half_close=False, host="127.0.0.1"):
    """Send bytes as they are, then read until the server closes or stays
    silent for `timeout` seconds. Returns (received bytes, closed_by_server)."""
    so = socket.create_connection((host, port), timeout=timeout)
    out = b""
    closed = False
    try:
        try:
            so.sendall(data)
            if half_close:
                so.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass   # the server may answer and close before reading it all
        while True:
            try:
                d = so.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not d:
                closed = True
                break
            out += d
    finally:
        so.close()
    return out, closed


def parse_responses(data, head=False):
    """Split raw bytes into Responses (Content-Length framing; a response
    without one runs to the end, except after HEAD or for 1xx/204/304).
    Raises ValueError on anything that is not a well-formed HTTP/1.x answer."""
    out = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            raise ValueError(f"truncated response head: {data[:200]!r}")
        lines = data[:end].decode("latin1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ValueError(f"bad status line: {lines[0]!r}")
        status = int(parts[1])
        headers = []
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers.append((k.strip(), v.strip()))
        rest = data[end + 4:]
        cl = [v for k, v in headers if k.lower() == "content-length"]
        if head or status in (204, 304) or status < 200:
            n = 0
        elif cl:
            n = int(cl[0])
        else:
            n = len(rest)
        if len(rest) < n:
            raise ValueError(f"truncated body: want {n}, have {len(rest)}")
        out.append(Response(status, headers, rest[:n]))
        data = rest[n:]
    return out
