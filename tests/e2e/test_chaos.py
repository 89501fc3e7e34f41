"""Chaos under load (issue 7, "Chaos and load"); ctest label `chaos`.

Bounded in time (about two minutes in all), loopback only, the real binary.

(a) kill -9 a random worker every 250 ms for 20 s while client threads do
    mixed reads and writes: product creates (admin, unique names), orders with
    Idempotency-Keys, transfers with Idempotency-Keys. Clients retry a failed
    request with the same key. Afterwards: no half orders (every order has
    items and total = sum of its items), one order per key, as many transfers
    as keys that got a 201, the bank total unchanged; the only failures seen
    are connection errors (requests in flight on a killed worker) and 503s.
(b) PostgreSQL (a private cluster) stopped and started again mid-load: 503s
    only during the outage (with /ready 503 from every worker, /health 200,
    Retry-After), full recovery afterwards by the same workers (no restart),
    no leaked or stuck connections (pg_stat_activity).
(c) HUP, TTIN and TTOU under load: zero failed requests.
(d) 300 slow clients trickling headers one byte at a time do not starve
    normal clients, and are cut off by server.header_timeout; a client that
    disconnects mid-request frees everything (with pool_size = 1 the one
    connection comes back).

Kills only hit workers older than 1.3 s: a worker that dies within 1 s of
its start counts as a boot failure for the master, which gives up after 8
in a row (by design, against fork bombs), and that is not what this tests.
"""
import http.client
import os
import random
import signal
import socket
import threading
import time
import uuid

import pytest

from conftest import run_psql
from ofclient import Server, make_admin, register_and_login, request, token_for, wait_until

NO_LIMITS = "rate_limit: { writes_per_minute = 0; login_per_minute = 0; };\n"
ADMIN = ("chaos-admin@x.io", "admin-pass-123")


def pool_cfg(size=4, queue_ms=2000):
    return (f"database: {{ pool_size = {size}; queue_timeout = {queue_ms}; "
            f"statement_timeout = 5000; connect_timeout = 2; }};\n")


def dbname(url):
    return url.split("/")[3].split("?")[0]


def psql1(url, sql):
    return run_psql(url, sql).strip()


class Outcome:
    """What one HTTP attempt gave: a status, or the connection error's name."""

    def __init__(self, status=None, error=None, body=b"", t0=0.0, t1=0.0):
        self.status, self.error, self.body, self.t0, self.t1 = status, error, body, t0, t1

    def __repr__(self):
        return f"<{self.status or self.error} {self.body[:80]!r}>"


def attempt(port, method, path, timeout=15, **kw):
    t0 = time.monotonic()
    try:
        r = request(port, method, path, timeout=timeout, **kw)
        return Outcome(r.status, None, r.body, t0, time.monotonic())
    except (OSError, http.client.HTTPException) as e:
        return Outcome(None, type(e).__name__, b"", t0, time.monotonic())


# ---------------------------------------------------------------------------
# (a) kill -9 a random worker every 250 ms for 20 s
# ---------------------------------------------------------------------------

class Chaos:
    def __init__(self, srv, db_url):
        self.srv = srv
        self.url = db_url
        self.lock = threading.Lock()
        self.bad = []             # unexpected answers: (op, Outcome)
        self.conn_errors = 0
        self.unavailable = 0
        self.ok = {"read": 0, "order": 0, "transfer": 0, "product": 0}
        self.order_keys = {}      # key -> final status
        self.transfer_keys = {}   # key -> final status
        self.stop = threading.Event()
        self.retry_deadline = None

    def note_bad(self, op, o):
        with self.lock:
            self.bad.append((op, o))

    def retrying(self, op, fn, done):
        """Call fn() until done(outcome) says it is final; connection errors,
        503s and "in progress" 409s are retried with the same request."""
        while True:
            o = fn()
            if o.error is not None:
                with self.lock:
                    self.conn_errors += 1
                if o.error in ("timeout", "TimeoutError"):
                    self.note_bad(op, o)     # a hang is not a crash
                    return o
            elif o.status == 503:
                with self.lock:
                    self.unavailable += 1
            elif o.status == 409 and b"in progress" in o.body:
                pass
            elif done(o):
                with self.lock:
                    self.ok[op] += 1
                return o
            else:
                self.note_bad(op, o)
                return o
            if self.retry_deadline and time.monotonic() > self.retry_deadline:
                self.note_bad(op, Outcome(error="gave up retrying"))
                return o
            time.sleep(0.05)


def chaos_client(ch, user, rnd):
    port = ch.srv.port
    while not ch.stop.is_set():
        p = rnd.random()
        if p < 0.30:
            path = rnd.choice([f"/api/v1/products/{rnd.choice(ch.products)}",
                               f"/api/v1/products?page={rnd.randint(1, 3)}&page_size=10",
                               "/api/v1/orders?page_size=5", "/api/v1/bank-accounts"])
            ch.retrying("read", lambda: attempt(port, "GET", path, token=user["token"]),
                        lambda o: o.status == 200)
        elif p < 0.60:
            key = str(uuid.uuid4())
            picks = rnd.sample(ch.products, rnd.randint(1, 3))
            body = {"customer_id": rnd.choice(ch.customers), "notes": key,
                    "items": [{"product_id": pid, "quantity": rnd.randint(1, 3)} for pid in picks]}
            o = ch.retrying("order", lambda: attempt(port, "POST", "/api/v1/orders", body=body,
                                                     token=user["token"],
                                                     headers={"Idempotency-Key": key}),
                            lambda o: o.status == 201)
            with ch.lock:
                ch.order_keys[key] = o.status
        elif p < 0.90:
            key = str(uuid.uuid4())
            src = rnd.choice(user["accounts"])
            dst = rnd.choice([a for a in ch.accounts if a != src])
            body = {"from_account_id": src, "to_account_id": dst,
                    "amount": f"{rnd.randint(1, 500) / 100:.2f}"}
            o = ch.retrying("transfer", lambda: attempt(port, "POST", "/api/v1/transfers",
                                                        body=body, token=user["token"],
                                                        headers={"Idempotency-Key": key}),
                            lambda o: o.status == 201 or (o.status == 409 and
                                                          b"Insufficient funds" in o.body))
            with ch.lock:
                ch.transfer_keys[key] = o.status
        else:
            name = "chaos " + uuid.uuid4().hex
            first = [True]

            def create():
                o = attempt(port, "POST", "/api/v1/products", token=ch.admin,
                            body={"name": name, "price": f"{rnd.randint(1, 9999) / 100:.2f}"})
                if o.status == 409 and not first[0]:
                    o.status = 201       # our earlier attempt got in before the kill
                first[0] = False
                return o
            ch.retrying("product", create, lambda o: o.status == 201)


def test_kill9_random_worker_every_250ms_under_mixed_load(db_url):
    make_admin(db_url, *ADMIN)
    srv = Server(db_url=db_url, workers=4, extra_cfg=NO_LIMITS + pool_cfg(size=4))
    srv.start()
    try:
        ch = Chaos(srv, db_url)
        ch.admin = token_for(srv.port, *ADMIN)
        ch.products = []
        for i in range(12):
            r = srv.req("POST", "/api/v1/products", token=ch.admin,
                        body={"name": f"chaos base {i}", "price": f"{i + 1}.99"})
            assert r.status == 201, r
            ch.products.append(r.json()["id"])
        users = []
        for i in range(4):
            _, tok = register_and_login(srv.port, f"chaos{i}@x.io")
            users.append({"token": tok, "accounts": []})
        ch.customers = []
        for i in range(3):
            r = srv.req("POST", "/api/v1/customers", token=users[0]["token"],
                        body={"name": f"Chaos {i}", "email": f"chaos.cust{i}@x.io"})
            assert r.status == 201, r
            ch.customers.append(r.json()["id"])
        ch.accounts = []
        for u in users:
            for j in range(3):
                r = srv.req("POST", "/api/v1/bank-accounts", token=u["token"],
                            body={"name": f"acc {j}", "balance": "100.00"})
                assert r.status == 201, r
                u["accounts"].append(r.json()["id"])
                ch.accounts.append(r.json()["id"])
        bank_before = psql1(db_url, "SELECT sum(balance_cents) FROM bank_accounts")
        assert bank_before == str(100_00 * len(ch.accounts))

        threads = [threading.Thread(target=chaos_client,
                                    args=(ch, users[i % len(users)], random.Random(i)))
                   for i in range(8)]
        for t in threads:
            t.start()

        # the killer
        seen = {}
        kills = 0
        t_end = time.monotonic() + 180          # outer bound only: the loop ends at 30 kills
        while kills < 30 and time.monotonic() < t_end:
            now = time.monotonic()
            pids = srv.worker_pids()
            for p in pids:
                seen.setdefault(p, now)
            old = [p for p in pids if now - seen[p] >= 1.3]
            if old:
                try:
                    os.kill(random.choice(old), signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.25)
        # every kind of work got through the kills (bounded wait, not a rate)
        wait_until(lambda: all(ch.ok[k] >= 20 for k in ("order", "transfer", "read")),
                   "20 successful orders, transfers and reads", timeout=120)
        ch.retry_deadline = time.monotonic() + 60
        ch.stop.set()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads), "a client hung"

        print(f"\nchaos: {kills} workers killed; ok={ch.ok} "
              f"conn_errors={ch.conn_errors} 503s={ch.unavailable} bad={len(ch.bad)}")
        assert srv.proc.poll() is None, srv.log()[-3000:]
        assert "giving up" not in srv.log()
        srv.wait_workers(4)
        assert kills >= 30, kills
        assert not ch.bad, ch.bad[:10]
        assert ch.ok["order"] >= 20 and ch.ok["transfer"] >= 20 and ch.ok["read"] >= 20, ch.ok

        # no half orders: every order has items, and total = sum of its items
        half = psql1(db_url, """
            SELECT count(*) FROM (
              SELECT o.id FROM orders o LEFT JOIN order_items i ON i.order_id = o.id
              GROUP BY o.id, o.total_cents
              HAVING count(i.id) = 0
                  OR o.total_cents <> coalesce(sum(i.quantity * i.unit_price_cents), 0)) x""")
        assert half == "0", half
        # exactly one order per key (the key is in notes), and one per 201 key
        dup = psql1(db_url, "SELECT count(*) FROM (SELECT notes FROM orders GROUP BY notes "
                            "HAVING count(*) > 1) x")
        assert dup == "0"
        made = {k for k, st in ch.order_keys.items() if st == 201}
        rows = set(run_psql(db_url, "SELECT notes FROM orders WHERE notes IS NOT NULL").split())
        assert rows == made, (len(rows), len(made))
        # transfers: one row per key that got a 201, and no money made or lost
        n_transfers = int(psql1(db_url, "SELECT count(*) FROM transfers"))
        assert n_transfers == sum(1 for st in ch.transfer_keys.values() if st == 201)
        assert psql1(db_url, "SELECT sum(balance_cents) FROM bank_accounts") == bank_before
        assert psql1(db_url, "SELECT count(*) FROM bank_accounts WHERE balance_cents < 0") == "0"
        # every product create landed once
        assert int(psql1(db_url, "SELECT count(*) FROM products WHERE name LIKE 'chaos %'")) \
            == 12 + ch.ok["product"]
        assert srv.req("GET", "/health").status == 200
    finally:
        srv.stop()


# ---------------------------------------------------------------------------
# (b) PostgreSQL stopped and started again mid-load (a private cluster)
# ---------------------------------------------------------------------------

def test_postgres_restart_mid_load(private_pg):
    url = private_pg.create_db()
    make_admin(url, *ADMIN)
    workers, pool = 2, 4
    srv = Server(db_url=url, workers=workers, extra_cfg=NO_LIMITS + pool_cfg(size=pool))
    srv.start()
    try:
        worker_pids = srv.worker_pids()
        admin = token_for(srv.port, *ADMIN)
        r = srv.req("POST", "/api/v1/products", token=admin, body={"name": "pg lamp", "price": "2"})
        assert r.status == 201
        pid = r.json()["id"]
        log, lock, stop = [], threading.Lock(), threading.Event()

        def client(i):
            rnd = random.Random(i)
            while not stop.is_set():
                if rnd.random() < 0.7:
                    o = attempt(srv.port, "GET", f"/api/v1/products/{pid}", timeout=10)
                else:
                    o = attempt(srv.port, "POST", "/api/v1/products", token=admin, timeout=10,
                                body={"name": "pg " + uuid.uuid4().hex, "price": "1.00"})
                with lock:
                    log.append(o)
                time.sleep(0.01)

        ts = [threading.Thread(target=client, args=(i,)) for i in range(6)]
        for t in ts:
            t.start()
        wait_until(lambda: sum(o.status in (200, 201) for o in list(log)) >= 20, "20 successes")
        t_down = time.monotonic()
        private_pg.stop_server()
        wait_until(lambda: any(o.status == 503 and o.t0 >= t_down for o in list(log)),
                   "a 503 while PostgreSQL is down", timeout=60)
        # while it is down (from tests/e2e/test_pool.py): every worker's /ready
        # says so, /health stays 200, a data route answers 503 + Retry-After
        wait_until(lambda: all(srv.req("GET", "/ready").status == 503 for _ in range(6)),
                   "/ready 503 from every worker", timeout=60)
        assert srv.req("GET", "/ready").json() == {"status": "unavailable", "database": "down"}
        assert srv.req("GET", "/health").status == 200
        r = srv.req("GET", f"/api/v1/products/{pid}", timeout=30)
        assert r.status == 503, r
        assert r.json() == {"detail": "Service unavailable"}
        assert r.header("Retry-After") is not None
        private_pg.start_server()
        t_up = time.monotonic()

        def recovered_at():
            """t0 of the first of 50 successes in a row, all started after the restart."""
            run = []
            for o in sorted((o for o in list(log) if o.t0 >= t_up), key=lambda o: o.t0):
                run = run + [o] if o.status in (200, 201) else []
                if len(run) >= 50:
                    return run[0].t0
            return None

        wait_until(lambda: recovered_at() is not None, "recovery (50 successes in a row)", timeout=60)
        t_rec = recovered_at()
        n_rec = len(log)
        wait_until(lambda: len(log) >= n_rec + 100, "100 more requests after recovery", timeout=60)
        stop.set()
        for t in ts:
            t.join(30)

        before = [o for o in log if o.t1 < t_down]
        during = [o for o in log if o.t1 >= t_down and o.t0 < t_rec]
        after = [o for o in log if o.t0 >= t_rec]
        print(f"\npg restart: {len(before)} before, {len(during)} during "
              f"({sum(o.status == 503 for o in during)} x 503), {len(after)} after")
        assert before and after and during
        assert all(o.status in (200, 201) for o in before), [o for o in before if o.status
                                                             not in (200, 201)][:5]
        assert all(o.status in (200, 201, 503) for o in during), \
            [o for o in during if o.status not in (200, 201, 503)][:5]
        assert any(o.status == 503 for o in during)
        assert all(o.status in (200, 201) for o in after), \
            [o for o in after if o.status not in (200, 201)][:5]
        print(f"pg restart: recovered {t_rec - t_up:.2f} s after PostgreSQL was back (not asserted)")

        # no leaked or stuck connections once the load stops (every client joined)
        db = dbname(url)
        n = private_pg.backends(url)     # the workers' pools (not cache/jobs)
        assert n <= workers * pool, n
        stuck = private_pg.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                f"'{db}' AND state <> 'idle' AND pid <> pg_backend_pid()")
        assert stuck == "0", private_pg.psql(
            f"SELECT pid, state, query FROM pg_stat_activity WHERE datname = '{db}'")
        assert srv.proc.poll() is None
        assert srv.worker_pids() == worker_pids      # recovered without a restart
    finally:
        srv.stop()
        private_pg.drop_db(url)


# ---------------------------------------------------------------------------
# (c) HUP, TTIN and TTOU under load: zero failed requests
# ---------------------------------------------------------------------------

def test_hup_ttin_ttou_under_load_zero_failures(db_url):
    srv = Server(db_url=db_url, workers=2, extra_cfg=NO_LIMITS + pool_cfg(size=2))
    srv.start()
    try:
        pid = int(psql1(db_url, "INSERT INTO products (name, price_cents) VALUES "
                                "('hup lamp', 100) RETURNING id").split()[0])
        log, lock, stop = [], threading.Lock(), threading.Event()

        def client(i):
            # /ready too: a new worker takes traffic only once its pool has
            # reached PostgreSQL, so readiness must not flap during reloads
            paths = ["/health", "/ready", "/api/v1/products?page_size=5", f"/api/v1/products/{pid}"]
            n = 0
            while not stop.is_set():
                o = attempt(srv.port, "GET", paths[(i + n) % len(paths)], timeout=10)
                n += 1
                with lock:
                    log.append(o)

        ts = [threading.Thread(target=client, args=(i,)) for i in range(6)]
        for t in ts:
            t.start()
        steps = [signal.SIGHUP, signal.SIGTTIN, signal.SIGTTIN, signal.SIGHUP, signal.SIGTTOU,
                 signal.SIGTTIN, signal.SIGHUP, signal.SIGTTOU, signal.SIGTTIN]
        done = {signal.SIGHUP: "reload done:", signal.SIGTTIN: "TTIN:", signal.SIGTTOU: "TTOU:"}
        served = []

        def master_count(prefix):
            return sum(1 for l in srv.log_lines()
                       if l.get("role") == "master" and l.get("msg", "").startswith(prefix))

        for sig in steps:
            # requests are served between steps, and each step is done before the next
            n = len(log)
            wait_until(lambda: len(log) >= n + 20, "20 requests between steps")
            before_n = master_count(done[sig])
            srv.signal(sig)
            wait_until(lambda: master_count(done[sig]) > before_n, f"the master to log {done[sig]}",
                       timeout=60)
            served.append(len(log) - n)
        n = len(log)
        wait_until(lambda: len(log) >= n + 50, "50 requests after the last step")
        stop.set()
        for t in ts:
            t.join(30)
        bad = [o for o in log if o.status != 200]
        print(f"\nHUP/TTIN/TTOU: {len(log)} requests, {len(bad)} failed")
        assert all(k >= 20 for k in served), served
        assert not bad, bad[:10]
        assert srv.proc.poll() is None and srv.worker_pids()
        assert srv.req("GET", "/health").status == 200
    finally:
        srv.stop()


# ---------------------------------------------------------------------------
# (d) slow clients; a client that vanishes mid-request
# ---------------------------------------------------------------------------

def test_slow_header_tricklers_do_not_starve_normal_clients(db_url):
    # header_timeout 10 s: generous, so the tricklers hang while the normal clients
    # are served, then all of them are cut off long before their header ends
    srv = Server(db_url=db_url, workers=2, extra_cfg=NO_LIMITS, server_cfg="header_timeout = 10;")
    srv.start()
    slow = []
    try:
        pids = srv.worker_pids()
        head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4000
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.setblocking(False)
            slow.append(s)
        stop = threading.Event()
        sent = [0]

        def trickle():
            i = 0
            while not stop.is_set() and i < len(head):
                for s in slow:
                    try:
                        s.send(head[i:i + 1])
                    except OSError:
                        pass
                i += 1
                sent[0] = i
                time.sleep(0.05)

        def n_cut():
            cut = 0
            for s in slow:
                try:
                    cut += s.recv(1) == b""
                except BlockingIOError:
                    pass                 # still open
                except OSError:
                    cut += 1
            return cut

        tr = threading.Thread(target=trickle)
        tr.start()
        wait_until(lambda: sent[0] >= 2, "the tricklers to start")
        # every normal client gets its answer while the tricklers hang: 100 requests
        # one at a time, each answered, and the tricklers still open after the last
        for _ in range(100):
            r = request(srv.port, "GET", "/health", timeout=30)
            assert r.status == 200
        still_open = len(slow) - n_cut()
        print(f"\nslow clients: 300 tricklers ({sent[0]} bytes each so far), 100 normal requests "
              f"answered, {still_open} tricklers still open after them")
        assert still_open > 0
        assert sent[0] < len(head)              # no trickler ever completed its header
        wait_until(lambda: n_cut() == len(slow), "header_timeout to cut every trickler", timeout=60)
        stop.set()
        tr.join(10)
        for s in slow:
            s.close()
        slow = []
        assert srv.req("GET", "/health").status == 200
        assert srv.worker_pids() == pids
    finally:
        for s in slow:
            s.close()
        srv.stop()


def test_disconnect_mid_request_returns_the_pool_connection(db_url, pg):
    srv = Server(db_url=db_url, workers=1, extra_cfg=NO_LIMITS + pool_cfg(size=1, queue_ms=5000))
    srv.start()
    try:
        if srv.req("GET", "/__test/sleep_db?ms=1").status == 404:
            pytest.fail("binary built without OF_TEST_ROUTES (scripts/test.sh builds with -DOF_TEST_ROUTES=ON)")
        for round_ in range(5):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            held = sum(l.get("msg") == "test sleep_db: pg_sleep of 500 ms queued" for l in srv.log_lines())
            s.sendall(b"GET /__test/sleep_db?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_until(lambda: sum(l.get("msg") == "test sleep_db: pg_sleep of 500 ms queued"
                                   for l in srv.log_lines()) > held, "the worker to send the pg_sleep")
            s.close()                    # gone while the statement runs
            # the one pool connection comes back: the next statement runs (queue_ms 5000
            # would answer 503 if the connection stayed lost)
            r = srv.req("GET", "/__test/sleep_db?ms=10", timeout=30)
            assert r.status == 200, (round_, r)
        # several at once, all vanishing, then the one connection still works
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(b"GET /__test/sleep_db?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n")
            s.close()
        r = srv.req("GET", "/__test/sleep_db?ms=10", timeout=10)
        assert r.status == 200
        assert pg.backends(db_url) <= 1
        assert srv.proc.poll() is None
    finally:
        srv.stop()
