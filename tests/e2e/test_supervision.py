"""The master as a supervisor, driven from outside with signals: the real
binary, no database needed (/health does not touch PostgreSQL).

Covers: N workers up; kill -9 -> replaced (time printed, never asserted:
each test waits on the event -- a log line, a pid, a reply -- with a generous
outer deadline and asserts what happened, not how fast);
SIGSTOP -> killed and replaced after worker_timeout; HUP with workers 2->3
under a request loop with zero failures; TTIN/TTOU; TERM with a slow request
in flight; workers dying at boot stop the master with exit 1; max_requests
recycling; USR1 log reopen; pidfile life cycle.
sd_notify and socket activation are test_systemd's (with systemd's own
systemd-socket-activate), not repeated here.
"""
import datetime
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from ofclient import BIN, Server, request, wait_until, read_pid, wait_pid_gone


class SupServer(Server):
    """Server with extra settings inside the server group (the base class
    writes the group itself, and libconfig refuses a second one)."""

    def __init__(self, server_extra="", worker_timeout=5, **kw):
        self.server_extra = server_extra
        self.worker_timeout = worker_timeout
        super().__init__(**kw)

    def write_config(self, workers=None, extra_cfg=None):
        if workers is not None:
            self.workers = workers
        if extra_cfg is not None:
            self.extra_cfg = extra_cfg
        tmp = self.cfg_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(
                "server: {\n"
                f'  listen = "127.0.0.1:{self.port}";\n'
                f"  workers = {self.workers};\n"
                f'  pidfile = "{self.pidfile}";\n'
                f"  worker_timeout = {self.worker_timeout};\n"
                "  graceful_timeout = 10;\n"
                f"  {self.server_extra}\n"
                "};\n" + self.extra_cfg + "\n"
            )
        os.replace(tmp, self.cfg_path)

    def wait_log(self, pred, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in self.log_lines():
                if pred(line):
                    return line
            time.sleep(0.01)
        raise AssertionError("log line not found:\n" + self.log()[-3000:])


class Loop:
    """A client hammering GET /health on fresh connections in a thread."""

    def __init__(self, port, path="/health"):
        self.port, self.path = port, path
        self.ok = 0
        self.failures = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                r = request(self.port, "GET", self.path, timeout=5)
                if r.status == 200:
                    self.ok += 1
                else:
                    self.failures.append(r.status)
            except Exception as e:  # noqa: BLE001 -- every failure counts
                self.failures.append(repr(e))

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self._t.join(10)


def log_ts(line):
    """Unix time of a log line's "ts" (RFC 3339 UTC with microseconds)."""
    return datetime.datetime.strptime(line["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def all_ok(port, n=50):
    for _ in range(n):
        r = request(port, "GET", "/health", timeout=5)
        assert r.status == 200, r


def test_two_workers_serve_health():
    with SupServer(workers=2) as s:
        pids = s.wait_workers(2)
        r = s.req("GET", "/health")
        assert r.status == 200
        assert r.json() == {"status": "ok"}
        ready = s.wait_log(lambda l: l.get("msg", "").startswith("all 2 workers ready"))
        assert ready["role"] == "master"
        assert len(set(pids)) == 2


def test_kill9_worker_is_replaced_and_requests_keep_succeeding():
    with SupServer(workers=2) as s:
        pids = s.wait_workers(2)
        s.wait_log(lambda l: l.get("msg", "").startswith("all 2 workers ready"))
        time.sleep(1.2)   # past the boot window: a crash now is not a boot failure
        victim = pids[0]
        wall0 = time.time()
        t0 = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        new = []
        while not new and time.monotonic() - t0 < 10:
            new = [p for p in s.worker_pids() if p not in pids]
            if not new:
                time.sleep(0.001)
        t_fork = time.monotonic() - t0
        assert len(new) == 1, f"no replacement for {victim}"
        ready = s.wait_log(lambda l: l.get("pid") == new[0] and l.get("msg", "").startswith("worker ready"))
        t_ready = log_ts(ready) - wall0
        print(f"\nkill -9 -> replacement worker {new[0]} seen in /proc after {t_fork * 1000:.1f} ms, "
              f"READY (accepting) {t_ready * 1000:.1f} ms after the kill (log timestamp)")
        assert sorted(s.wait_workers(2)) == sorted([pids[1], new[0]])
        all_ok(s.port, 100)
        msgs = [l["msg"] for l in s.log_lines() if l.get("role") == "master"]
        assert any(f"worker {victim}" in m and "killed by signal 9" in m for m in msgs), msgs


def test_frozen_worker_is_killed_after_worker_timeout():
    with SupServer(workers=2, worker_timeout=2) as s:
        pids = s.wait_workers(2)
        victim = pids[1]
        t0 = time.monotonic()
        os.kill(victim, signal.SIGSTOP)
        try:
            new = s.wait_workers(2, timeout=10, exclude=(victim,))
            wait_pid_gone(victim)
        finally:
            try:
                os.kill(victim, signal.SIGCONT)
            except ProcessLookupError:
                pass
        took = time.monotonic() - t0
        print(f"\nSIGSTOP'd worker replaced after {took:.2f} s (worker_timeout = 2 s)")
        assert victim not in new
        all_ok(s.port, 50)
        msgs = [l["msg"] for l in s.log_lines() if l.get("role") == "master"]
        # killed for the heartbeat (not a crash, not a stop), after at least worker_timeout
        missed = [m for m in msgs if f"worker {victim}" in m and "missed its heartbeat" in m]
        assert missed, msgs
        secs = int(missed[0].split("missed its heartbeat for ")[1].split("s")[0])
        assert secs >= 2, missed


def test_hup_reload_workers_2_to_3_without_failed_requests():
    with SupServer(workers=2) as s:
        old = s.wait_workers(2)
        with Loop(s.port) as loop:
            wait_until(lambda: loop.ok > 0, "the loop's first reply")
            s.write_config(workers=3)
            s.signal(signal.SIGHUP)
            wait_until(lambda: len(s.worker_pids()) == 3 and not set(s.worker_pids()) & set(old),
                       "3 workers of the new generation", timeout=60)
            s.wait_log(lambda l: l.get("msg", "").startswith("reload done: 3 workers"), timeout=60)
            after = loop.ok
            wait_until(lambda: loop.ok >= after + 20, "20 replies from the new generation")
        pids = s.worker_pids()
        assert len(pids) == 3 and not set(pids) & set(old), (old, pids, s.log()[-3000:])
        assert loop.failures == [], loop.failures[:10]
        print(f"\nHUP reload: {loop.ok} requests during the reload, 0 failed")
        msgs = [l["msg"] for l in s.log_lines() if l.get("role") == "master"]
        assert any(m.startswith("reload done: 3 workers of generation 2") for m in msgs), msgs


def test_hup_with_broken_config_keeps_running():
    with SupServer(workers=2) as s:
        old = s.wait_workers(2)
        with open(s.cfg_path, "a") as f:
            f.write("bogus: { x = 1; };\n")
        s.signal(signal.SIGHUP)
        s.wait_log(lambda l: "reload failed, keeping the running configuration" in l.get("msg", "")
                   and "unknown setting bogus" in l.get("msg", ""))
        all_ok(s.port, 20)
        assert s.worker_pids() == old
        assert not any(l.get("msg", "").startswith("reloading:") for l in s.log_lines()), s.log()[-3000:]


def test_ttin_ttou_add_and_remove_one_worker():
    with SupServer(workers=2) as s:
        first = s.wait_workers(2)
        s.signal(signal.SIGTTIN)
        three = s.wait_workers(3)
        assert set(first) < set(three)
        s.signal(signal.SIGTTOU)
        s.wait_workers(2)
        s.wait_log(lambda l: l.get("msg") == "TTOU: 2 workers wanted")
        for _ in range(3):           # never below one (signals may coalesce: the log says)
            s.signal(signal.SIGTTOU)
        s.wait_log(lambda l: l.get("msg") == "TTOU: 1 workers wanted")
        s.wait_workers(1)
        all_ok(s.port, 20)
        assert len(s.worker_pids()) == 1
        master = [l.get("msg", "") for l in s.log_lines() if l.get("role") == "master"]
        assert "TTOU: 0 workers wanted" not in master, master
        last = max(i for i, m in enumerate(master) if m.startswith("TTOU:"))
        assert not any(m.startswith("spawned worker") for m in master[last:]), master[last:]


def test_sigterm_lets_inflight_slow_request_finish_then_exits_0():
    with SupServer(workers=2) as s:
        s.wait_workers(2)
        probe = s.req("GET", "/__test/slow?ms=1")
        if probe.status == 404:
            pytest.fail("binary built without -DOF_TEST_ROUTES=ON (scripts/test.sh builds with it)")
        result = {}

        def slow():
            try:
                r = request(s.port, "GET", "/__test/slow?ms=2000", timeout=60)
                result["status"] = r.status
                result["body"] = r.json()
            except Exception as e:  # noqa: BLE001
                result["error"] = repr(e)

        th = threading.Thread(target=slow)
        th.start()
        # TERM only once the worker holds the request (its log line), not after a guess
        s.wait_log(lambda l: l.get("msg") == "test slow: holding the request for 2000 ms", timeout=30)
        s.signal(signal.SIGTERM)
        rc = s.proc.wait(timeout=60)
        th.join(10)
        assert "status" in result, result   # answered before the thread was told anything
        assert result.get("status") == 200, result
        assert result["body"] == {"status": "slow"}
        msgs = [l.get("msg", "") for l in s.log_lines()]
        assert any(m.startswith("graceful stop") for m in msgs), msgs[-20:]
        assert rc == 0, s.log()[-3000:]
        assert s.worker_pids() == []
        with pytest.raises(OSError):
            request(s.port, "GET", "/health", timeout=1)


def test_sigint_quick_stop_exits_0():
    with SupServer(workers=2) as s:
        s.wait_workers(2)
        rc = s.stop(sig=signal.SIGINT)
        assert rc == 0
        msgs = [l.get("msg", "") for l in s.log_lines() if l.get("role") == "master"]
        assert any(m.startswith("quick stop of") for m in msgs), msgs
        assert not any(m.startswith("graceful stop") for m in msgs), msgs


def test_workers_dying_at_boot_stop_the_master_with_exit_1():
    s = SupServer(workers=2, env={"ORDERFLOW_TEST_WORKER_BOOT_EXIT": "1"})
    s.start(wait=False)
    try:
        rc = s.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        s.stop(signal.SIGKILL)
        raise
    lines = s.log_lines()
    if not any("exited with status 3" in l.get("msg", "") for l in lines):
        pytest.fail("binary built without -DOF_TEST_ROUTES=ON (scripts/test.sh builds with it)")
    assert rc == 1
    spawned = [l for l in lines if l.get("msg", "").startswith("spawned worker")]
    assert len(spawned) <= 12, len(spawned)   # backed off, no fork bomb
    assert any("workers keep dying during boot" in l.get("msg", "") for l in lines)
    assert not os.path.exists(s.pidfile)


def test_max_requests_recycles_workers():
    with SupServer(workers=2, server_extra="max_requests = 20; max_requests_jitter = 5;") as s:
        first = s.wait_workers(2)
        # the kernel spreads connections unevenly: keep asking (every reply a 200)
        # until both first workers reached max_requests, bounded by count and time
        deadline = time.time() + 120
        sent = 0
        while set(s.worker_pids()) & set(first) and sent < 5000 and time.time() < deadline:
            all_ok(s.port, 10)
            sent += 10
        assert not set(s.worker_pids()) & set(first), (sent, s.log()[-3000:])
        s.wait_workers(2)
        msgs = [l["msg"] for l in s.log_lines() if l.get("role") == "master"]
        for pid in first:
            assert any(f"worker {pid} " in m and "(recycled)" in m for m in msgs), (pid, msgs)


def _usr1_server():
    s = SupServer(workers=1)
    logfile = os.path.join(s.dir, "app.log")
    s.server_extra = f'log_file = "{logfile}";'
    s.write_config()
    return s, logfile


def test_usr1_reopens_the_log_file_after_rotation():
    s, logfile = _usr1_server()
    with s:
        s.wait_workers(1)
        assert os.path.exists(logfile)
        os.rename(logfile, logfile + ".1")
        s.signal(signal.SIGUSR1)   # the worker may still be booting: it gets USR1 once READY
        deadline = time.time() + 5
        while time.time() < deadline and not os.path.exists(logfile):
            time.sleep(0.02)
        assert os.path.exists(logfile)
        deadline = time.time() + 5
        lines = []
        while time.time() < deadline and not any(l.get("role") == "worker" for l in lines):
            s.req("GET", "/health")   # the worker logs its access line to the new file
            time.sleep(0.1)
            with open(logfile) as f:
                lines = [json.loads(l) for l in f if l.strip()]
        assert any(l.get("msg") == "USR1: log reopened" for l in lines)
        assert any(l.get("role") == "worker" for l in lines), lines


def test_pidfile_written_and_removed():
    s = SupServer(workers=1)
    with s:
        with open(s.pidfile) as f:
            assert int(f.read().strip()) == s.proc.pid
    assert s.proc.returncode == 0
    assert not os.path.exists(s.pidfile)


def test_second_instance_refuses_a_live_pidfile():
    with SupServer(workers=1) as s:
        other = SupServer(workers=1)
        other.pidfile = s.pidfile
        other.write_config()
        other.start(wait=False)
        rc = other.proc.wait(timeout=10)
        assert rc == 1
        assert "already running" in other.log()
        assert os.path.exists(s.pidfile)   # the failed one did not remove ours


def test_bad_config_fails_check_config_and_serve_with_file_line():
    s = SupServer(workers=2)
    with open(s.cfg_path, "a") as f:
        f.write("\nserver2: { workers = 3; };\n")
    with open(s.cfg_path) as f:
        line = 1 + next(i for i, l in enumerate(f) if l.startswith("server2"))
    r = subprocess.run([BIN, "check-config", "-c", s.cfg_path], capture_output=True, text=True,
                       env=s.env, timeout=10)
    assert r.returncode == 1
    assert f"{s.cfg_path}:{line}: unknown setting server2" in r.stderr
    r = subprocess.run([BIN, "serve", "-c", s.cfg_path], capture_output=True, text=True,
                       env=s.env, timeout=10)
    assert r.returncode == 1
    assert f"{s.cfg_path}:{line}: unknown setting server2" in r.stderr
    assert not os.path.exists(s.pidfile)


def test_unix_socket_listen():
    s = SupServer(workers=1)
    sock = os.path.join(s.dir, "of.sock")
    s.env["ORDERFLOW_LISTEN"] = "unix:" + sock
    s.start(wait=False)
    try:
        deadline = time.time() + 10
        while time.time() < deadline and not os.path.exists(sock):
            time.sleep(0.02)
        out = b""
        deadline = time.time() + 10
        while time.time() < deadline and b"200" not in out.split(b"\r\n")[0]:
            c = socket.socket(socket.AF_UNIX)
            try:
                c.connect(sock)
                c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                out = b""
                while True:
                    d = c.recv(4096)
                    if not d:
                        break
                    out += d
            except OSError:
                time.sleep(0.05)
            finally:
                c.close()
        assert out.startswith(b"HTTP/1.1 200"), out
        assert oct(os.stat(sock).st_mode & 0o777) == oct(0o660)
    finally:
        assert s.stop() == 0
    assert not os.path.exists(sock)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_root_drops_privileges_to_server_user():
    import pwd
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    s = SupServer(workers=2, server_extra='user = "nobody";')
    os.chmod(s.dir, 0o777)   # so the unprivileged master can remove its pidfile
    with s:
        pids = s.wait_workers(2)

        def uids(pid):
            with open(f"/proc/{pid}/status") as f:
                line = next(l for l in f if l.startswith("Uid:"))
            return set(int(x) for x in line.split()[1:])

        assert uids(s.proc.pid) == {nobody.pw_uid}
        for p in pids:
            assert uids(p) == {nobody.pw_uid}
        assert s.req("GET", "/health").status == 200
    assert s.proc.returncode == 0
    assert not os.path.exists(s.pidfile)


def test_ipv6_listen():
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    s = SupServer(workers=1)
    s.env["ORDERFLOW_LISTEN"] = f"[::1]:{s.port}"
    s.start(wait=False)
    try:
        deadline = time.time() + 10
        status = None
        while time.time() < deadline and status != 200:
            try:
                status = request(s.port, "GET", "/health", timeout=1, host="::1").status
            except OSError:
                time.sleep(0.05)
        assert status == 200, s.log()
        with pytest.raises(OSError):   # v6-only: not on 127.0.0.1
            request(s.port, "GET", "/health", timeout=1)
    finally:
        assert s.stop() == 0


def test_usr2_binary_upgrade_under_load_drops_nothing():
    with SupServer(workers=2) as s:
        s.wait_log(lambda l: l.get("msg", "").startswith("all 2 workers ready"))
        old_pid = s.proc.pid
        oldbin = s.pidfile + ".oldbin"
        new_pid = None
        try:
            with Loop(s.port) as loop:
                wait_until(lambda: loop.ok > 0, "the loop's first reply")
                s.signal(signal.SIGUSR2)
                deadline = time.time() + 10
                while time.time() < deadline:
                    new_pid = read_pid(s.pidfile)
                    if new_pid not in (None, old_pid) and read_pid(oldbin) == old_pid:
                        break
                    time.sleep(0.02)
                assert new_pid not in (None, old_pid), s.log()[-3000:]
                s.wait_log(lambda l: l.get("pid") == new_pid
                           and l.get("msg", "").startswith("all 2 workers ready"))
                s.signal(signal.SIGWINCH)   # old workers stop gracefully
                deadline = time.time() + 15
                while time.time() < deadline and [p for p in s.worker_pids() if p != new_pid]:
                    time.sleep(0.05)
                assert [p for p in s.worker_pids() if p != new_pid] == []
                after = loop.ok             # only the new master's workers serve now
                wait_until(lambda: loop.ok >= after + 10, "10 replies from the new master's workers")
                s.signal(signal.SIGQUIT)    # old master: graceful after an upgrade
                rc = s.proc.wait(timeout=60)
                after = loop.ok
                wait_until(lambda: loop.ok >= after + 10, "10 replies after the old master left")
            assert rc == 0, s.log()[-3000:]
            assert loop.failures == [], loop.failures[:10]
            print(f"\nUSR2 upgrade: {loop.ok} requests during the upgrade, 0 failed")
            assert not os.path.exists(oldbin)
            assert read_pid(s.pidfile) == new_pid
            all_ok(s.port, 20)
        finally:
            if new_pid and new_pid != old_pid:
                try:
                    os.kill(new_pid, signal.SIGTERM)
                    wait_pid_gone(new_pid, timeout=20)
                except ProcessLookupError:
                    pass
        deadline = time.time() + 5
        while time.time() < deadline and os.path.exists(s.pidfile):
            time.sleep(0.05)
        assert not os.path.exists(s.pidfile)


def test_usr2_new_master_failing_rolls_back():
    with SupServer(workers=2) as s:
        s.wait_log(lambda l: l.get("msg", "").startswith("all 2 workers ready"))
        workers = s.wait_workers(2)
        with open(s.cfg_path, "a") as f:   # the new master will refuse this config
            f.write("bogus: { x = 1; };\n")
        s.signal(signal.SIGUSR2)
        s.wait_log(lambda l: l.get("pid") == s.proc.pid and "rolling back" in l.get("msg", ""))
        assert read_pid(s.pidfile) == s.proc.pid
        assert not os.path.exists(s.pidfile + ".oldbin")
        assert s.worker_pids() == workers
        all_ok(s.port, 20)
        s.signal(signal.SIGWINCH)   # no upgrade in progress: ignored
        s.wait_log(lambda l: l.get("msg", "").startswith("WINCH ignored"))
        all_ok(s.port, 20)
        assert s.worker_pids() == workers
