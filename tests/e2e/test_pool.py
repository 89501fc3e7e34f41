"""The worker's PostgreSQL pool, seen from outside: the real binary (built with
OF_TEST_ROUTES for GET /__test/sleep_db?ms=N, which holds one pool connection
for N ms) against a real PostgreSQL.

- pool_size 2 and many concurrent requests: all succeed (they queue), and
  PostgreSQL never sees more than 2 of them at once;
- a full pool past database.queue_timeout_ms: 503 + Retry-After while both
  holders are still running;
- clients that vanish mid-request leak no connection: afterwards two requests
  run side by side again.
Every check waits on what PostgreSQL or the server reports (pg_stat_activity,
statuses), with a generous outer deadline; nothing is timed. PostgreSQL
stopped and started under a running server (/ready, /health, 503 +
Retry-After, recovery without a restart) is test_chaos's
test_postgres_restart_mid_load (one private cluster for that, not two).
"""
import socket
import threading
import time

import pytest

from ofclient import Server, request


def pool_cfg(size=2, queue_ms=2000, stmt_ms=5000):
    return (f"database: {{ pool_size = {size}; queue_timeout = {queue_ms}; "
            f"statement_timeout = {stmt_ms}; connect_timeout = 2; }};\n"
            "jobs: { enabled = false; };")   # backends counted here are the workers' pools


def wait_for(pred, timeout, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def parallel(n, fn):
    out = [None] * n

    def run(i):
        try:
            out[i] = fn(i)
        except Exception as e:       # surfaced by the asserts below
            out[i] = e

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return out


def ready_when_up(srv, timeout=30):
    return wait_for(lambda: srv.req("GET", "/ready", timeout=3).status == 200, timeout)


def sleep_route_available(srv):
    return srv.req("GET", "/__test/sleep_db?ms=1").status != 404


@pytest.fixture(scope="module")
def product_id(db_url, psql):
    return int(psql(db_url, "INSERT INTO products (name, price_cents) VALUES ('Pool Lamp', 1999) RETURNING id")
               .splitlines()[0])


def test_ready_200_when_database_up(db_url):
    with Server(db_url=db_url, workers=1, extra_cfg=pool_cfg()) as srv:
        assert ready_when_up(srv)
        r = srv.req("GET", "/ready")
        assert r.status == 200
        assert r.json() == {"status": "ready", "database": "ok", "role": "primary"}


def test_pool_size_2_many_concurrent_requests_all_succeed(db_url, product_id, pg):
    with Server(db_url=db_url, workers=1, extra_cfg=pool_cfg(size=2, queue_ms=10000)) as srv:
        assert ready_when_up(srv)
        res = parallel(40, lambda i: srv.req("GET", f"/api/v1/products/{product_id}", timeout=20))
        assert [getattr(r, "status", r) for r in res] == [200] * 40
        assert all(r.json()["name"] == "Pool Lamp" for r in res)
        if not sleep_route_available(srv):
            pytest.fail("binary built without OF_TEST_ROUTES (scripts/test.sh builds with -DOF_TEST_ROUTES=ON)")
        # 12 x 200 ms on 2 connections: they must queue, and all succeed;
        # PostgreSQL, sampled meanwhile, never sees more than 2 at once.
        seen, done = [], threading.Event()

        def sample():
            while not done.is_set():
                seen.append(sleeping_backends(pg, db_url))

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            res = parallel(12, lambda i: srv.req("GET", "/__test/sleep_db?ms=200", timeout=30))
        finally:
            done.set()
            sampler.join(30)
        assert [getattr(r, "status", r) for r in res] == [200] * 12
        assert seen and max(seen) <= 2, seen
        # never more connections than workers x pool_size
        assert pg.backends(db_url) <= 2


def sleeping_backends(pg, db_url):
    db = db_url.split("/")[3].split("?")[0]
    return int(pg.psql("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                       f"AND datname = '{db}' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()"))


def test_queue_timeout_503_with_retry_after(db_url, pg):
    with Server(db_url=db_url, workers=1, extra_cfg=pool_cfg(size=2, queue_ms=300)) as srv:
        assert ready_when_up(srv)
        if not sleep_route_available(srv):
            pytest.fail("binary built without OF_TEST_ROUTES (scripts/test.sh builds with -DOF_TEST_ROUTES=ON)")
        holders = [threading.Thread(target=srv.req, args=("GET", "/__test/sleep_db?ms=4000"),
                                    kwargs={"timeout": 60}) for _ in range(2)]
        for t in holders:
            t.start()
        # both connections really busy before the probe
        assert wait_for(lambda: sleeping_backends(pg, db_url) == 2, 30)
        # queue_timeout 300 ms, holders 4 s: the probe's 503 comes while both
        # connections are still held (it gave up in the queue, it was not served)
        r = srv.req("GET", "/__test/sleep_db?ms=1", timeout=15)
        assert r.status == 503
        assert r.json() == {"detail": "Service unavailable"}
        assert r.header("Retry-After") is not None
        assert all(t.is_alive() for t in holders)
        assert sleeping_backends(pg, db_url) == 2
        for t in holders:
            t.join(60)
        # and the pool is fine afterwards
        assert srv.req("GET", "/__test/sleep_db?ms=1").status == 200


def _send_and_vanish(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    time.sleep(0.05)
    s.close()


def test_client_disconnect_mid_request_leaks_no_connection(db_url, pg):
    with Server(db_url=db_url, workers=1, extra_cfg=pool_cfg(size=2, queue_ms=5000)) as srv:
        assert ready_when_up(srv)
        if not sleep_route_available(srv):
            pytest.fail("binary built without OF_TEST_ROUTES (scripts/test.sh builds with -DOF_TEST_ROUTES=ON)")
        for _ in range(10):
            _send_and_vanish(srv.port, "/__test/sleep_db?ms=300")
        # 10 x 300 ms on 2 connections drain in ~1.5 s; then both must be free again.
        assert wait_for(lambda: pg.psql("SELECT count(*) FROM pg_stat_activity WHERE state <> 'idle' "
                                        f"AND datname = '{db_url.split('/')[3].split('?')[0]}' "
                                        "AND pid <> pg_backend_pid()") == "0", 10)
        # both connections came back: two requests run side by side
        # (PostgreSQL shows both sleeping at once)
        both = []
        sampler = threading.Thread(target=lambda: both.append(
            wait_for(lambda: sleeping_backends(pg, db_url) == 2, 30)))
        sampler.start()
        res = parallel(2, lambda i: srv.req("GET", "/__test/sleep_db?ms=3000", timeout=30))
        sampler.join(60)
        assert [r.status for r in res] == [200, 200]
        assert both == [True]
        assert pg.backends(db_url) <= 2
        active = pg.psql("SELECT count(*) FROM pg_stat_activity WHERE state <> 'idle' "
                         f"AND datname = '{db_url.split('/')[3].split('?')[0]}' "
                         "AND pid <> pg_backend_pid()")
        assert active == "0"
        assert srv.proc.poll() is None
