"""deploy/nginx/orderflow.conf with the real nginx (Debian's nginx-light) in
front of the real binary, over HTTPS with a certificate openssl makes here.

The production file is used as it is, except for what cannot be the same on
a test machine: listen ports, certificate paths and the upstream's servers
(each rewrite is asserted to have happened, so a change to the file that
dodges the test fails it).

1. One instance: /health and a login through HTTPS (HTTP/2 offered, TLS 1.2
   and 1.3 only, HSTS), the client address orderflow logs is the one nginx
   forwarded (a client-sent X-Forwarded-For cannot spoof it), X-Request-ID
   passed on, body limit, redirect from plain HTTP; X-Forwarded-For sent
   straight to orderflow by an untrusted peer is ignored.
2. Two instances (one PostgreSQL) behind one upstream; one is killed -9
   (master and workers) in the middle of a loop of writes: nginx sends the
   rest to the other, every write that got a 2xx is in the database, and the
   only failures are retryable ones (502/503/504).
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
import warnings
from urllib.parse import urlencode

import pytest

from ofclient import Server, free_port, make_admin, request, wait_until, wait_pid_gone

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("OF_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "../..")))
CONF = os.path.join(SRC, "deploy", "nginx", "orderflow.conf")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

assert os.path.exists(NGINX), "nginx missing: scripts/deps.sh test installs nginx-light"


class Nginx:
    """The real nginx as a child process, everything under one temp dir."""

    def __init__(self, upstream_ports):
        self.dir = tempfile.mkdtemp(prefix="of-nginx-")
        os.chmod(self.dir, 0o755)     # nginx workers (nobody when run as root) use temp dirs here
        self.https_port = free_port()
        self.http_port = free_port()
        self.cert = os.path.join(self.dir, "cert.pem")
        self.key = os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                        "-days", "2", "-keyout", self.key, "-out", self.cert],
                       check=True, capture_output=True, timeout=60)
        self.site = os.path.join(self.dir, "orderflow.conf")
        self.main = os.path.join(self.dir, "nginx.conf")
        self.error_log = os.path.join(self.dir, "error.log")
        self.write_site(upstream_ports)
        with open(self.main, "w") as f:
            f.write(f"""
pid {self.dir}/nginx.pid;
error_log {self.error_log} info;
worker_processes 1;
events {{ worker_connections 512; }}
http {{
    access_log {self.dir}/access.log;
    client_body_temp_path {self.dir}/client_body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    include {self.site};
}}
""")
        self.proc = None

    def write_site(self, upstream_ports):
        with open(CONF) as f:
            text = f.read()

        def sub(pattern, repl, want=1):
            nonlocal text
            text, n = re.subn(pattern, repl, text, flags=re.M)
            assert n == want, f"{CONF}: expected {want} match(es) of {pattern!r}, found {n}"

        servers = "".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in upstream_ports)
        sub(r"^    server 127\.0\.0\.1:8000 .*;\n", servers)
        sub(r"^    listen 443 ssl http2;$", f"    listen 127.0.0.1:{self.https_port} ssl http2;")
        sub(r"^    listen \[::\]:443 ssl http2;\n", "")
        sub(r"^    listen 80;$", f"    listen 127.0.0.1:{self.http_port};")
        sub(r"^    listen \[::\]:80;\n", "")
        sub(r"^    ssl_certificate     /etc/ssl/orderflow/fullchain\.pem;$", f"    ssl_certificate     {self.cert};")
        sub(r"^    ssl_certificate_key /etc/ssl/orderflow/privkey\.pem;$", f"    ssl_certificate_key {self.key};")
        with open(self.site, "w") as f:
            f.write(text)

    def start(self):
        base = [NGINX, "-p", self.dir + "/", "-c", self.main]
        t = subprocess.run(base + ["-t"], capture_output=True, text=True, timeout=30)
        assert t.returncode == 0, f"nginx -t failed:\n{t.stderr}"
        self.proc = subprocess.Popen(base + ["-g", "daemon off;"], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "stderr.log"), "wb"))
        deadline = time.time() + 10
        while time.time() < deadline:
            assert self.proc.poll() is None, "nginx exited:\n" + self.log()
            try:
                socket.create_connection(("127.0.0.1", self.https_port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nginx did not start listening:\n" + self.log())

    def log(self):
        out = ""
        for name in ("stderr.log", "error.log"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out += f.read()[-4000:]
            except OSError:
                pass
        return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)       # graceful
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()


def tls_context(cafile=None, version=None):
    ctx = ssl.create_default_context(cafile=cafile)
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


def https(ng, method, path, body=None, headers=None, token=None, source="127.0.0.1", timeout=15,
          ctx=None):
    """One request through nginx over HTTPS (the certificate verified against
    itself), from the given loopback source address."""
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        else:
            data = body.encode() if isinstance(body, str) else body
    if token:
        hdrs["Authorization"] = "Bearer " + token
    ctx = ctx or tls_context(ng.cert)
    conn = http.client.HTTPSConnection("localhost", ng.https_port, timeout=timeout, context=ctx,
                                       source_address=(source, 0))
    try:
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        from ofclient import Response
        return Response(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


def access_lines(server, request_id):
    return [line for line in server.log_lines()
            if line.get("msg") == "access" and line.get("request_id") == request_id]


def wait_access(server, request_id, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        lines = access_lines(server, request_id)
        if lines:
            return lines[0]
        time.sleep(0.05)
    raise AssertionError(f"no access log line for {request_id}:\n{server.log()[-3000:]}")


# ---------------------------------------------------------------------------
# one instance

@pytest.fixture(scope="module")
def single(db_url):
    s = Server(db_url=db_url, workers=2, server_cfg='forwarded_allow_ips = ["127.0.0.1"];')
    s.start()
    ng = Nginx([s.port]).start()
    yield s, ng
    ng.stop()
    s.stop()


def test_health_over_https(single):
    s, ng = single
    r = https(ng, "GET", "/health")
    assert r.status == 200 and r.json() == {"status": "ok"}, r
    assert r.header("Strict-Transport-Security").startswith("max-age=63072000")
    assert r.header("X-Request-ID")


def tls11_client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


def tls11_control_handshake(client_ctx, cert, key):
    """Handshake client_ctx with a loopback server that accepts TLS 1.1; the
    version agreed (raises if the handshake fails)."""
    srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        srv_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        srv_ctx.minimum_version = ssl.TLSVersion.TLSv1_1
    srv_ctx.load_cert_chain(cert, key)
    lsock = socket.create_server(("127.0.0.1", 0))
    lsock.settimeout(10)
    errors = []

    def serve():
        try:
            conn, _ = lsock.accept()
            conn.settimeout(10)
            with srv_ctx.wrap_socket(conn, server_side=True):
                pass
        except (OSError, ssl.SSLError) as e:
            errors.append(e)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with socket.create_connection(lsock.getsockname(), timeout=10) as raw:
            with client_ctx.wrap_socket(raw) as tls:
                return tls.version()
    finally:
        t.join(10)
        lsock.close()


def test_tls_versions_and_http2(single):
    _, ng = single
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        r = https(ng, "GET", "/health", ctx=tls_context(ng.cert, v))
        assert r.status == 200, (v, r)
    # TLS 1.1 is refused by nginx. The client is made to offer only TLS 1.1,
    # and a control server that does accept TLS 1.1 proves it can, so the
    # refusal below is nginx's and not a client that cannot speak 1.1.
    ctx = tls11_client_context()
    assert tls11_control_handshake(ctx, ng.cert, ng.key) == "TLSv1.1"
    with pytest.raises(ssl.SSLError):
        https(ng, "GET", "/health", ctx=ctx)
    # HTTP/2 is offered through ALPN.
    ctx = tls_context(ng.cert)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", ng.https_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "h2"
    curl = shutil.which("curl")
    if curl:
        out = subprocess.run([curl, "-s", "--http2", "--cacert", ng.cert, "-o", "/dev/null",
                              "-w", "%{http_version} %{http_code}",
                              "--resolve", f"localhost:{ng.https_port}:127.0.0.1",
                              f"https://localhost:{ng.https_port}/health"],
                             capture_output=True, text=True, timeout=30)
        assert out.stdout == "2 200", out


def test_plain_http_redirects(single):
    _, ng = single
    r = request(ng.http_port, "GET", "/health")
    assert r.status == 301
    assert r.header("Location").startswith("https://")


def test_register_and_login(single):
    _, ng = single
    email = f"ng-{uuid.uuid4().hex[:8]}@example.com"
    r = https(ng, "POST", "/api/v1/auth/register", body={"email": email, "password": "nginx-pass-123"})
    assert r.status == 201, r
    r = https(ng, "POST", "/api/v1/auth/login", body=urlencode({"username": email, "password": "nginx-pass-123"}),
              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200, r
    token = r.json()["access_token"]
    r = https(ng, "GET", "/api/v1/auth/me", token=token)
    assert r.status == 200 and r.json()["email"] == email, r
    r = https(ng, "GET", "/api/v1/auth/me", token="garbage")
    assert r.status == 401 and r.header("WWW-Authenticate") == "Bearer"


def test_client_ip_is_what_nginx_forwarded(single):
    """nginx appends the address it saw ($proxy_add_x_forwarded_for);
    orderflow trusts nginx (127.0.0.1) and takes the rightmost address that
    is not a trusted proxy. The client connects from 127.0.0.2: not trusted."""
    s, ng = single
    rid = "ng-ip-" + uuid.uuid4().hex[:8]
    r = https(ng, "GET", "/health", headers={"X-Request-ID": rid}, source="127.0.0.2")
    assert r.status == 200 and r.header("X-Request-ID") == rid
    assert wait_access(s, rid)["client_ip"] == "127.0.0.2"

    # A client-made X-Forwarded-For cannot spoof its address: nginx sends
    # "203.0.113.7, 127.0.0.2" and the rightmost untrusted entry wins.
    rid = "ng-spoof-" + uuid.uuid4().hex[:8]
    r = https(ng, "GET", "/health", headers={"X-Request-ID": rid, "X-Forwarded-For": "203.0.113.7"},
              source="127.0.0.2")
    assert r.status == 200
    assert wait_access(s, rid)["client_ip"] == "127.0.0.2"

    # From a trusted address (127.0.0.1 is in forwarded_allow_ips, as if it
    # were another proxy in front), the chain is followed one step further:
    # "203.0.113.7, 127.0.0.1" -> 203.0.113.7 is the rightmost untrusted.
    rid = "ng-chain-" + uuid.uuid4().hex[:8]
    r = https(ng, "GET", "/health", headers={"X-Request-ID": rid, "X-Forwarded-For": "203.0.113.7"})
    assert r.status == 200
    assert wait_access(s, rid)["client_ip"] == "203.0.113.7"


def test_request_id_made_by_nginx_is_passed_on(single):
    s, ng = single
    r = https(ng, "GET", "/health")
    rid = r.header("X-Request-ID")
    assert re.fullmatch(r"[0-9a-f]{32}", rid), rid        # nginx's $request_id
    assert wait_access(s, rid)["route"] == "/health"


def test_trace_context_passes_through(single):
    s, ng = single
    tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    r = https(ng, "GET", "/health", headers={"traceparent": f"00-{tid}-{sid}-01",
                                              "tracestate": "rojo=00f067aa0ba902b7"})
    m = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", r.header("traceparent") or "")
    assert m and m.group(1) == tid and m.group(2) != sid, r.header("traceparent")
    assert r.header("tracestate") == "rojo=00f067aa0ba902b7"
    line = wait_access(s, r.header("X-Request-ID"))
    assert (line["trace_id"], line["span_id"]) == (tid, m.group(2))


def test_body_limit_matches(single):
    _, ng = single
    r = https(ng, "POST", "/api/v1/auth/register", body=b"x" * (1024 * 1024 + 10),
              headers={"Content-Type": "application/json"})
    assert r.status == 413, r
    assert r.json() == {"detail": "Request body too large"}


def test_forwarded_for_from_untrusted_peer_is_ignored(db_url):
    """Straight to orderflow (no nginx): the peer 127.0.0.1 is not in
    forwarded_allow_ips, so its X-Forwarded-For means nothing."""
    s = Server(db_url=db_url, workers=1, server_cfg='forwarded_allow_ips = ["10.1.1.1"];')
    s.start()
    try:
        rid = "direct-" + uuid.uuid4().hex[:8]
        r = s.req("GET", "/health", headers={"X-Request-ID": rid, "X-Forwarded-For": "203.0.113.7"})
        assert r.status == 200
        assert wait_access(s, rid)["client_ip"] == "127.0.0.1"
    finally:
        s.stop()


# ---------------------------------------------------------------------------
# two instances, one killed mid-load

class WriteLoop:
    """Threads creating products with unique names through nginx."""

    def __init__(self, ng, token, threads=4):
        self.ng, self.token = ng, token
        self.results = []          # (name, status or repr(exception), t)
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(threads)]

    def run(self, i):
        n = 0
        ctx = tls_context(self.ng.cert)
        while not self.stop_ev.is_set() and n < 5000:
            name = f"ng-{i}-{n}-{uuid.uuid4().hex[:6]}"
            n += 1
            t_start = time.time()
            try:
                r = https(self.ng, "POST", "/api/v1/products", body={"name": name, "price": "1.00"},
                          token=self.token, ctx=ctx, timeout=20)
                status = r.status
            except Exception as e:  # noqa: BLE001 -- every outcome is recorded
                status = repr(e)
            with self.lock:
                self.results.append((name, status, time.time(), t_start))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=60)


def test_failover_no_lost_writes(new_db, psql):
    url = new_db()
    email, password = make_admin(url, email="ng-admin@example.com")
    cfg = dict(db_url=url, workers=2, server_cfg='forwarded_allow_ips = ["127.0.0.1"];',
               extra_cfg="rate_limit: { writes_per_minute = 0; login_per_minute = 0; };")
    a = Server(**cfg).start()
    b = Server(**cfg).start()
    ng = Nginx([a.port, b.port]).start()
    try:
        r = https(ng, "POST", "/api/v1/auth/login", body=urlencode({"username": email, "password": password}),
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status == 200, r
        token = r.json()["access_token"]

        def wrote(inst):
            return any(line.get("msg") == "access" and line.get("route") == "/api/v1/products"
                       and line.get("status") == 201 for line in inst.log_lines())

        with WriteLoop(ng, token) as loop:
            # the loop got going and both instances took writes (round robin)
            wait_until(lambda: len(loop.results) >= 10 and wrote(a) and wrote(b), "writes through both instances")
            with loop.lock:
                before_kill = len(loop.results)
            # kill -9 instance A: master first (so nothing respawns), then its workers.
            victims = [a.proc.pid] + a.worker_pids()
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
            a.proc.wait(timeout=10)
            for pid in victims:
                wait_pid_gone(pid)
            killed_at = time.time()         # A is gone: every write started now must land on B

            def settled_on_b():
                # the last 10 writes started after the kill all succeeded
                later = sorted((x for x in list(loop.results) if x[3] > killed_at), key=lambda x: x[3])
                return len(later) >= 10 and all(st == 201 for _, st, *_ in later[-10:])
            wait_until(settled_on_b, "the last 10 writes to land")
        results = loop.results
        after_kill = [x for x in results if x[3] > killed_at]

        ok = [name for name, st, *_ in results if isinstance(st, int) and 200 <= st < 300]
        failed = [(name, st) for name, st, *_ in results if not (isinstance(st, int) and 200 <= st < 300)]
        print(f"writes: {len(results)} total, {len(ok)} ok, {len(failed)} failed "
              f"({before_kill} before the kill, {len(after_kill)} started after A was gone); failures: "
              f"{sorted(set(str(s) for _, s in failed))}")

        assert before_kill >= 10, "the load loop did not get going"
        # Both instances took writes (round robin) before A died.
        for inst in (a, b):
            served = [line for line in inst.log_lines() if line.get("msg") == "access"
                      and line.get("route") == "/api/v1/products" and line.get("status") == 201]
            assert served, f"instance on port {inst.port} served no write"
        assert len(after_kill) >= 10, "too few writes after the kill"
        # nginx sends everything to B once A is gone, but for a POST it had
        # already written to a kept-alive connection to A that A's death had
        # closed and nginx had not yet noticed (a race of its event loop,
        # wider on a loaded machine): that POST reached "an instance", so it
        # is not re-sent, and the client gets the 503. Each such failure is
        # one of nginx's errors against A's address, none against B's, and
        # at most one per connection nginx kept to A (the loop's 4 threads).
        late_failed = [st for _, st, *_ in after_kill if st != 201]
        with open(ng.error_log) as f:
            upstream_errors = [ln for ln in f if "upstream:" in ln and "[error]" in ln]
        against_a = [ln for ln in upstream_errors if f"127.0.0.1:{a.port}" in ln]
        against_b = [ln for ln in upstream_errors if f"127.0.0.1:{b.port}" in ln]
        print(f"after the kill: {len(late_failed)} failed; nginx errors against A {len(against_a)}, "
              f"against B {len(against_b)}")
        assert not against_b, against_b[:5]
        assert all(st == 503 for st in late_failed), late_failed
        assert len(late_failed) <= min(len(against_a), 4), (late_failed, upstream_errors[-10:])
        # Failures only where a write was in flight on A: retryable statuses.
        assert all(st in (502, 503, 504) for _, st in failed), failed[:10]
        assert len(failed) <= 16, failed

        # No lost writes: every 2xx is a row.
        names = set(psql(url, "SELECT name FROM products").split("\n")) - {""}
        lost = [n for n in ok if n not in names]
        assert not lost, f"{len(lost)} acknowledged writes missing: {lost[:10]}"
        # and nothing the client did not ask for.
        asked = {name for name, *_ in results}
        assert names <= asked
        # B is fine on its own.
        assert https(ng, "GET", "/health").status == 200
    finally:
        ng.stop()
        a.stop()
        b.stop()
