"""USR2 (binary upgrade) and HUP (reload) drop nothing for keep-alive clients
with database work in flight (docs/operations.md sections 6 and the signal
table, ARCHITECTURE.md "Graceful stop of a worker").

Several persistent HTTP/1.1 connections (http.client, as nginx keeps its
upstream connections) loop keyed order POSTs and product GETs while the
master goes through USR2 -> WINCH -> QUIT of the old master, or HUP.

The rules, from ARCHITECTURE.md: a stopping worker answers what is in flight
and closes *idle* keep-alive connections. So a client may find its idle
connection closed; that is no loss only when the server said
`Connection: close` (the client then opens a new connection) or the request
had not been sent. As a keep-alive client does (urllib3, nginx), each client
looks at its idle connection before reusing it and reconnects when the
server has closed it; what remains is HTTP/1.1's own race (the close and
the request cross), which the client retries -- with the same
Idempotency-Key for a POST, so a retry can never make a second order.
Such an attempt counts as "not sent" only if the server shows no trace of it:
  - no access-log line has its X-Request-ID (each attempt has its own);
  - a POST's retry was not a replay (`Idempotent-Replayed: true` would mean
    the server ran the first attempt and its answer was lost);
  - every worker that left exited with status 0 after its graceful stop (no
    signal death, no error-level exit line, no "graceful_timeout reached").
Afterwards every 201 order exists as answered and no key made two orders.
"""
import http.client
import json
import os
import re
import select
import signal
import threading
import time
import uuid

import pytest

from conftest import run_psql
from ofclient import Server, make_admin, register_and_login, token_for, wait_until, read_pid, pid_alive, wait_pid_gone

N_CLIENTS = 4


def log_has(s, pred):
    return any(pred(l) for l in s.log_lines())


class KeepAliveClient(threading.Thread):
    """One persistent connection: POST an order (keyed), GET the product, repeat."""

    def __init__(self, port, token, cust_id, product_id, n):
        super().__init__(daemon=True)
        self.port, self.token = port, token
        self.cust_id, self.product_id, self.n = cust_id, product_id, n
        self.stop = threading.Event()
        self.answered = 0            # attempts that got a full response
        self.unanswered = []         # (request id, repr(error)) of attempts without one
        self.bad = []                # answers that are not the expected status
        self.orders = {}             # key -> order id of its 201
        self.reconnects = 0          # new connections after Connection: close or a close
        self.idle_closed = 0         # idle connections found closed before a request
        self.replayed_after_close = []
        self.conn = None

    def _connect(self):
        if self.conn is not None:
            self.conn.close()
            self.reconnects += 1
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def _attempt(self, method, path, body, headers):
        """One attempt on the persistent connection: the response, or None
        (recorded) when the connection closed without one."""
        rid = "ka-" + uuid.uuid4().hex
        so = self.conn.sock
        if so is not None and select.select([so], [], [], 0)[0]:
            self.idle_closed += 1    # EOF (or junk) on an idle connection: never reuse it
            self._connect()
        h = dict(headers, **{"X-Request-ID": rid, "Authorization": "Bearer " + self.token})
        try:
            self.conn.request(method, path, body=body, headers=h)
            r = self.conn.getresponse()
            data = r.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                http.client.BadStatusLine) as e:
            self.unanswered.append((rid, repr(e)))
            self._connect()
            return None
        self.answered += 1
        if r.will_close:             # the server said Connection: close
            self._connect()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def _order(self):
        key = "ka-" + uuid.uuid4().hex
        body = json.dumps({"customer_id": self.cust_id, "notes": key,
                           "items": [{"product_id": self.product_id, "quantity": 1}]})
        retried = False
        for _ in range(50):          # bounded: retries after a close or a 409 in progress
            got = self._attempt("POST", "/api/v1/orders", body,
                                {"Content-Type": "application/json", "Idempotency-Key": key})
            if got is None:
                retried = True
                continue
            status, headers, data = got
            if status == 201:
                self.orders[key] = json.loads(data)["id"]
                if retried and headers.get("idempotent-replayed") == "true":
                    self.replayed_after_close.append(key)
                return
            if status == 409 and b"in progress" in data:
                time.sleep(0.05)
                continue
            self.bad.append((status, data[:200]))
            return
        self.bad.append(("no answer after 50 attempts", key))

    def _product(self):
        for _ in range(50):
            got = self._attempt("GET", f"/api/v1/products/{self.product_id}", None, {})
            if got is None:
                continue
            if got[0] != 200:
                self.bad.append((got[0], got[2][:200]))
            return
        self.bad.append(("no answer after 50 attempts", "GET"))

    def run(self):
        self._connect()
        self.reconnects = 0
        while not self.stop.is_set():
            self._order()
            self._product()
        self.conn.close()


@pytest.fixture(scope="module")
def shop(db_url):
    """A user, a customer and a product in the module's database."""
    with Server(db_url=db_url, workers=1) as s:
        email, pw = make_admin(db_url, "ka-admin@x.io")
        admin = token_for(s.port, email, pw)
        r = s.req("POST", "/api/v1/products", token=admin,
                  body={"name": "KA lamp", "price": "3.50", "in_stock": True})
        assert r.status == 201, r
        pid = r.json()["id"]
        _, tok = register_and_login(s.port, "ka-user@x.io")
        r = s.req("POST", "/api/v1/customers", token=tok, body={"name": "KA", "email": "ka@x.io"})
        assert r.status == 201, r
        return {"token": tok, "customer": r.json()["id"], "product": pid}


def start_clients(s, shop):
    cs = [KeepAliveClient(s.port, shop["token"], shop["customer"], shop["product"], i)
          for i in range(N_CLIENTS)]
    for c in cs:
        c.start()
    wait_until(lambda: all(c.answered >= 4 for c in cs), "every client's first answers")
    return cs


def progress(cs, more=6):
    """Wait until every client has had `more` answers beyond now."""
    base = [c.answered for c in cs]
    wait_until(lambda: all(c.answered >= b + more for c, b in zip(cs, base)),
               f"{more} more answers on every connection")


def finish(cs):
    for c in cs:
        c.stop.set()
    for c in cs:
        c.join(60)
        assert not c.is_alive(), "a client is stuck"


def check(s, cs, db_url):
    """The rules in the module docstring, on a stopped server's full log."""
    bad = [b for c in cs for b in c.bad]
    assert bad == [], bad[:10]
    seen = {l["request_id"]: l["status"] for l in s.log_lines() if l.get("msg") == "access"}
    lost = [(rid, err, seen[rid]) for c in cs for rid, err in c.unanswered if rid in seen]
    assert lost == [], f"requests the server read and answered nobody: {lost[:10]}"
    replayed = [k for c in cs for k in c.replayed_after_close]
    assert replayed == [], f"orders made by an attempt whose answer was lost: {replayed[:10]}"
    died = [l["msg"] for l in s.log_lines()
            if (l.get("level") == "error" and l.get("msg", "").startswith("worker "))
            or "graceful_timeout reached" in l.get("msg", "")]
    assert died == [], died
    exits = [l["msg"] for l in s.log_lines()
             if l.get("role") == "master" and re.match(r"worker \d+ \(slot \d+\) ", l.get("msg", ""))]
    assert exits and all("exited with status 0" in m for m in exits), exits
    orders = {k: v for c in cs for k, v in c.orders.items()}
    assert orders, "no order was made"
    rows = run_psql(db_url, "SELECT notes || ' ' || id FROM orders WHERE notes LIKE 'ka-%'")
    made = {}
    for line in rows.splitlines():
        key, oid = line.split()
        made.setdefault(key, []).append(int(oid))
    twice = {k: v for k, v in made.items() if len(v) > 1}
    assert twice == {}, f"keys that made two orders: {twice}"
    missing = {k: v for k, v in orders.items() if made.get(k) != [v]}
    assert missing == {}, f"201 orders not in the database as answered: {missing}"
    answered = sum(c.answered for c in cs)
    closes = sum(len(c.unanswered) for c in cs)
    print(f"\n{answered} answers on {N_CLIENTS} keep-alive connections, {len(orders)} orders, "
          f"{sum(c.idle_closed for c in cs)} idle connections found closed before reuse, "
          f"{closes} closes crossing a request (retried, never seen by the server), "
          f"{sum(c.reconnects for c in cs)} reconnects")


def test_usr2_winch_quit_keepalive_clients_lose_nothing(db_url, shop):
    s = Server(db_url=db_url, workers=2,
               extra_cfg="rate_limit: { login_per_minute = 0; writes_per_minute = 0; };")
    s.start()
    old_pid, new_pid = s.proc.pid, None
    oldbin = s.pidfile + ".oldbin"
    try:
        cs = start_clients(s, shop)
        try:
            s.signal(signal.SIGUSR2)
            wait_until(lambda: read_pid(s.pidfile) not in (None, old_pid) and read_pid(oldbin) == old_pid,
                       "the new master's pidfile")
            new_pid = read_pid(s.pidfile)
            wait_until(lambda: log_has(s, lambda l: l.get("pid") == new_pid and
                                       l.get("msg", "").startswith("all 2 workers ready")),
                       "the new master's workers ready")
            progress(cs)
            s.signal(signal.SIGWINCH)
            wait_until(lambda: s.worker_pids() == [], "the old master's workers gone")
            progress(cs)
            s.signal(signal.SIGQUIT)
            assert s.proc.wait(timeout=60) == 0, s.log()[-3000:]
            assert log_has(s, lambda l: l.get("pid") == old_pid and
                           l.get("msg", "").startswith("graceful stop")), "QUIT to an old master is graceful"
            progress(cs)
        finally:
            finish(cs)
        assert read_pid(s.pidfile) == new_pid and not os.path.exists(oldbin)
    finally:
        if new_pid and pid_alive(new_pid):
            os.kill(new_pid, signal.SIGTERM)
            wait_pid_gone(new_pid, timeout=60)
        s.stop()
    check(s, cs, db_url)


def test_hup_keepalive_clients_lose_nothing(db_url, shop):
    s = Server(db_url=db_url, workers=2,
               extra_cfg="rate_limit: { login_per_minute = 0; writes_per_minute = 0; };")
    s.start()
    try:
        old = s.wait_workers(2)
        cs = start_clients(s, shop)
        try:
            for gen in (2, 3):       # two reloads, each a full worker generation change
                s.signal(signal.SIGHUP)
                wait_until(lambda: log_has(s, lambda l: l.get("msg", "").startswith(
                    f"reload done: 2 workers of generation {gen}")), f"reload to generation {gen}")
                wait_until(lambda: len(s.worker_pids()) == 2 and not set(s.worker_pids()) & set(old),
                           "the old generation gone")
                old = s.worker_pids()
                progress(cs)
        finally:
            finish(cs)
    finally:
        assert s.stop() == 0
    check(s, cs, db_url)
