"""The binary upgrade's systemd hand-over and its rollback, as
docs/operations.md (sections 1 "Upgrades" and 6) and ARCHITECTURE.md say:

- under systemd (Type=notify, NotifyAccess=all in systemd/orderflow.service)
  the new master started by USR2 tells systemd `MAINPID=<its pid>` once its
  workers are ready -- the test is the NOTIFY_SOCKET listener (as in
  test_systemd) and checks, by the datagram's SO_PASSCRED credentials, that
  the new master itself sent it;
- rollback after USR2 + WINCH, nginx's way: HUP to the old master brings its
  workers back, then QUIT to the new master leaves the old one serving, with
  orderflow.pid its own again;
- rollback as section 6 words it: QUIT to the new master (WINCH had stopped
  the old workers); the old master sees it exit, takes orderflow.pid back and
  starts its workers again.
No database: /health does not touch PostgreSQL.
"""
import os
import re
import signal
import socket
import struct
import threading
import time

from conftest import SRC
from ofclient import Server, children_of, proc_comm, request, wait_until, read_pid, pid_alive, wait_pid_gone


def workers_of(pid):
    return sorted(p for p in children_of(pid) if proc_comm(p) == "of-worker")


def log_has(s, pred):
    return any(pred(l) for l in s.log_lines())


class Loop(threading.Thread):
    """GET /health on fresh connections until stopped; counts ok and failures."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.ok, self.failures = port, 0, []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                r = request(self.port, "GET", "/health", timeout=10)
                if r.status == 200:
                    self.ok += 1
                else:
                    self.failures.append(r.status)
            except Exception as e:  # noqa: BLE001 -- every failure counts
                self.failures.append(repr(e))

    def finish(self):
        self.stop.set()
        self.join(30)


def upgrade(s):
    """USR2 and wait for the new master's workers: its pid."""
    old = s.proc.pid
    s.signal(signal.SIGUSR2)
    wait_until(lambda: read_pid(s.pidfile) not in (None, old) and read_pid(s.pidfile + ".oldbin") == old,
               "the new master's pidfile")
    new = read_pid(s.pidfile)
    wait_until(lambda: log_has(s, lambda l: l.get("pid") == new and
                               l.get("msg", "").startswith("all 2 workers ready")),
               "the new master's workers ready")
    return new


def winch(s):
    s.signal(signal.SIGWINCH)
    wait_until(lambda: workers_of(s.proc.pid) == [], "the old master's workers gone")


def cleanup(s, new):
    if new and pid_alive(new):
        os.kill(new, signal.SIGTERM)
        wait_pid_gone(new, timeout=60)
    assert s.stop() == 0, s.log()[-3000:]


def test_unit_lets_the_new_master_notify():
    with open(os.path.join(SRC, "systemd", "orderflow.service")) as f:
        unit = f.read()
    assert re.search(r"^Type=notify$", unit, re.M)
    assert re.search(r"^NotifyAccess=all$", unit, re.M), "MAINPID= from the new master needs NotifyAccess=all"


def test_usr2_new_master_sends_mainpid(tmp_path):
    s = Server(workers=2)
    path = str(tmp_path / "notify.sock")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(path)
    ns.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    ns.settimeout(60)
    s.env["NOTIFY_SOCKET"] = path
    ucred = struct.Struct("3i")

    def recv():
        msg, anc, _, _ = ns.recvmsg(4096, socket.CMSG_SPACE(ucred.size))
        pid = next(ucred.unpack(d[:ucred.size])[0] for lvl, typ, d in anc
                   if lvl == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS)
        return pid, msg.decode().split("\n")

    def expect_mainpid():
        for _ in range(50):
            sender, lines = recv()
            mp = [l for l in lines if l.startswith("MAINPID=")]
            if mp:
                return sender, int(mp[0].split("=")[1]), lines
        raise AssertionError("no MAINPID= in 50 datagrams")

    new = None
    try:
        s.start()
        sender, mainpid, lines = expect_mainpid()
        assert sender == mainpid == s.proc.pid and "READY=1" in lines, lines
        new = upgrade(s)
        sender, mainpid, lines = expect_mainpid()
        assert (sender, mainpid) == (new, new), (s.proc.pid, new, lines)
        assert "READY=1" in lines, lines
        assert len(workers_of(new)) == 2     # sent once its workers were ready
    finally:
        ns.close()
        cleanup(s, new)


def test_winch_rollback_hup_old_then_quit_new():
    s = Server(workers=2)
    new = None
    loop = Loop(s.port)
    try:
        s.start()
        new = upgrade(s)
        winch(s)
        loop.start()
        s.signal(signal.SIGHUP)          # the old master: workers back
        wait_until(lambda: len(workers_of(s.proc.pid)) == 2, "the old master's workers back")
        wait_until(lambda: log_has(s, lambda l: l.get("pid") == s.proc.pid and
                                   l.get("msg", "").startswith("reload done: 2 workers")),
                   "the old master's workers ready")
        os.kill(new, signal.SIGQUIT)     # the new master leaves
        wait_pid_gone(new, timeout=60)
        wait_until(lambda: read_pid(s.pidfile) == s.proc.pid, "orderflow.pid back to the old master")
        assert not os.path.exists(s.pidfile + ".oldbin")
        assert log_has(s, lambda l: l.get("pid") == s.proc.pid and "rolling back" in l.get("msg", ""))
        assert s.proc.poll() is None and len(workers_of(s.proc.pid)) == 2
        after = loop.ok
        wait_until(lambda: loop.ok >= after + 20, "20 answers from the old master alone")
        loop.finish()
        # QUIT is a quick stop for the new master (the docs promise no
        # drain there), so failures are printed, not asserted
        print(f"\nrollback (HUP old, QUIT new): {loop.ok} answers, failures: {loop.failures[:5]}")
        for _ in range(20):
            assert request(s.port, "GET", "/health").status == 200
    finally:
        loop.stop.set()
        cleanup(s, new)


def test_winch_rollback_quit_new_restarts_old_workers():
    s = Server(workers=2)
    new = None
    try:
        s.start()
        new = upgrade(s)
        winch(s)
        os.kill(new, signal.SIGQUIT)
        wait_pid_gone(new, timeout=60)
        wait_until(lambda: log_has(s, lambda l: l.get("pid") == s.proc.pid and
                                   l.get("msg", "") == "starting 2 workers again"),
                   "the old master starting its workers again")
        wait_until(lambda: len(workers_of(s.proc.pid)) == 2, "the old master's 2 workers")
        assert read_pid(s.pidfile) == s.proc.pid
        assert not os.path.exists(s.pidfile + ".oldbin")
        for _ in range(20):
            assert request(s.port, "GET", "/health", timeout=10).status == 200
    finally:
        cleanup(s, new)


def test_quit_is_quick_except_for_an_old_master():
    """The signal table: QUIT is a quick stop, graceful only for an old
    master during an upgrade (that case: test_reload_keepalive)."""
    s = Server(workers=2)
    s.start()
    rc = s.stop(sig=signal.SIGQUIT)
    assert rc == 0
    msgs = [l.get("msg", "") for l in s.log_lines() if l.get("role") == "master"]
    assert any(m.startswith("quick stop of") for m in msgs), msgs
    assert not any(m.startswith("graceful stop") for m in msgs), msgs
