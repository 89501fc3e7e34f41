"""systemd/orderflow.service and orderflow.socket, and the master's side of
the systemd protocols, with Debian's systemd tools (no running systemd
needed):

- `systemd-analyze verify` passes on both units (copied to a temp dir with
  ExecStart pointing at the built binary, since /usr/local/bin/orderflow is
  not installed here), and `systemd-analyze security --offline` rates the
  service's exposure low;
- socket activation: `systemd-socket-activate -l 127.0.0.1:PORT orderflow
  serve` -> /health 200 on PORT, while server.listen names another port that
  nobody binds (the master used LISTEN_FDS);
- sd_notify: the test listens on its own AF_UNIX datagram NOTIFY_SOCKET and
  sees READY=1 once the workers serve, RELOADING=1 then READY=1 around HUP,
  and STOPPING=1 on TERM; MAINPID= is the master's pid.
(test_supervision's copies of the last two went: one scenario, one place.)
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from ofclient import BIN, TEST_SECRET, Server, assert_no_sanitizer_report, free_port, request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("OF_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "../..")))
UNITS = os.path.join(SRC, "systemd")
ANALYZE = shutil.which("systemd-analyze")
ACTIVATE = shutil.which("systemd-socket-activate")
assert ANALYZE is not None and ACTIVATE is not None, \
    "systemd-analyze / systemd-socket-activate missing: scripts/deps.sh test installs systemd"


def units_for_verify(tmp):
    """Both units in tmp, ExecStart rewritten to the built binary."""
    with open(os.path.join(UNITS, "orderflow.service")) as f:
        svc = f.read()
    svc, n = re.subn(r"^ExecStart=/usr/local/bin/orderflow ", f"ExecStart={os.path.abspath(BIN)} ", svc,
                     flags=re.M)
    assert n == 1, "ExecStart=/usr/local/bin/orderflow ... not found in orderflow.service"
    with open(os.path.join(tmp, "orderflow.service"), "w") as f:
        f.write(svc)
    shutil.copy(os.path.join(UNITS, "orderflow.socket"), tmp)
    return os.path.join(tmp, "orderflow.service"), os.path.join(tmp, "orderflow.socket")


@pytest.mark.static
def test_units_verify(tmp_path):
    service, sock = units_for_verify(str(tmp_path))
    r = subprocess.run([ANALYZE, "verify", service, sock], capture_output=True, text=True,
                       timeout=60, cwd=str(tmp_path))
    assert r.returncode == 0 and "orderflow" not in r.stderr, r.stdout + r.stderr


@pytest.mark.static
def test_unit_settings_and_exposure(tmp_path):
    with open(os.path.join(UNITS, "orderflow.service")) as f:
        svc = f.read()
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "KillMode=mixed",
                 "EnvironmentFile=-/etc/orderflow/env", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "ProtectHome=yes", "PrivateTmp=yes", "DynamicUser=yes", "CapabilityBoundingSet=",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"):
        assert re.search("^" + re.escape(line) + "$", svc, re.M), f"missing: {line}"
    with open(os.path.join(UNITS, "orderflow.socket")) as f:
        assert re.search(r"^ListenStream=127\.0\.0\.1:8000$", f.read(), re.M)
    service, _ = units_for_verify(str(tmp_path))
    r = subprocess.run([ANALYZE, "security", "--offline=yes", service], capture_output=True, text=True,
                       timeout=60, cwd=str(tmp_path))
    out = r.stdout + r.stderr
    m = re.search(r"Overall exposure level for orderflow\.service: ([0-9.]+)", out)
    assert m, out[-2000:]
    print(f"systemd-analyze security: exposure {m.group(1)}")
    assert float(m.group(1)) <= 2.0, out[-4000:]


def test_socket_activation(tmp_path):
    port = free_port()
    unused = free_port()
    cfg = tmp_path / "orderflow.cfg"
    log = tmp_path / "orderflow.log"
    cfg.write_text(f'server: {{ listen = "127.0.0.1:{unused}"; workers = 2; }};\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env["ORDERFLOW_JWT_SECRET"] = TEST_SECRET
    env["ORDERFLOW_DATABASE_URL"] = "postgresql:///nonexistent?host=/nonexistent"
    args = [ACTIVATE, "-l", f"127.0.0.1:{port}",
            "-E", "ORDERFLOW_JWT_SECRET", "-E", "ORDERFLOW_DATABASE_URL", "-E", "PATH",
            os.path.abspath(BIN), "serve", "-c", str(cfg)]
    with open(log, "wb") as logf:
        proc = subprocess.Popen(args, env=env, stdout=logf, stderr=logf)
    try:
        # systemd-socket-activate listens, and starts orderflow on the first
        # connection (which waits in the backlog meanwhile).
        deadline = time.time() + 20
        r = None
        while time.time() < deadline:
            assert proc.poll() is None, log.read_text()
            try:
                r = request(port, "GET", "/health", timeout=15)
                break
            except OSError:
                time.sleep(0.1)
        assert r is not None and r.status == 200, (r, log.read_text()[-3000:])
        for _ in range(20):
            assert request(port, "GET", "/health").status == 200
        # server.listen was not bound: the socket came from LISTEN_FDS.
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", unused), timeout=1).close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert "socket passed by systemd" in log.read_text(), log.read_text()[-3000:]
    assert_no_sanitizer_report(str(log))


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="of-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []        # one list of "KEY=VALUE" lines per datagram

    def wait_for(self, key_value, after=-1, timeout=15):
        """Index of the first datagram after index `after` that carries
        key_value, reading more as they come."""
        deadline = time.time() + timeout
        i = after + 1
        while True:
            for j in range(i, len(self.messages)):
                if key_value in self.messages[j]:
                    return j
            i = len(self.messages)
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError(f"no {key_value} on NOTIFY_SOCKET after #{after}; got {self.messages}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            self.messages.append(data.decode().split("\n"))

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_sd_notify_ready_reload_stopping():
    ns = NotifySocket()
    s = Server(workers=2, env={"NOTIFY_SOCKET": ns.path})
    try:
        s.start(wait=False)
        ready = ns.wait_for("READY=1")
        assert f"MAINPID={s.proc.pid}" in ns.messages[ready], ns.messages[ready]
        # READY=1 means the workers serve.
        assert request(s.port, "GET", "/health").status == 200
        assert s.proc.poll() is None

        s.signal(signal.SIGHUP)
        reloading = ns.wait_for("RELOADING=1")
        assert reloading > ready
        msg = ns.messages[reloading]
        assert any(x.startswith("MONOTONIC_USEC=") for x in msg), msg
        ready2 = ns.wait_for("READY=1", after=reloading)
        assert request(s.port, "GET", "/health").status == 200

        s.signal(signal.SIGTERM)
        stopping = ns.wait_for("STOPPING=1", after=ready2)
        assert stopping > ready2
        assert s.proc.wait(timeout=20) == 0
    finally:
        s.stop()
        ns.close()
