"""The worker's PostgreSQL pool, seen from outside: the real binary (built with
OF_TEST_ROUTES for GET /__test/sleep_db?ms=N, which holds one pool connection
for N ms) against a real PostgreSQL.

- pool_size 2 and many concurrent requests: all succeed (they queue);
- a full pool past database.queue_timeout_ms: 503 + Retry-After;
- PostgreSQL stopped under a running server: /ready 503, data routes 503
  quickly, /health 200; started again: recovery without a restart;
- clients that vanish mid-request leak no connection.
The stop/start test uses a private cluster, never the shared one.
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


def ready_when_up(srv, timeout=10):
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
        assert r.json() == {"status": "ready", "database": "ok"}


def test_pool_size_2_many_concurrent_requests_all_succeed(db_url, product_id, pg):
    with Server(db_url=db_url, workers=1, extra_cfg=pool_cfg(size=2, queue_ms=10000)) as srv:
        assert ready_when_up(srv)
        res = parallel(40, lambda i: srv.req("GET", f"/api/v1/products/{product_id}", timeout=20))
        assert [getattr(r, "status", r) for r in res] == [200] * 40
        assert all(r.json()["name"] == "Pool Lamp" for r in res)
        if sleep_route_available(srv):
            # 12 x 100 ms on 2 connections: they must queue, and all succeed.
            t0 = time.time()
            res = parallel(12, lambda i: srv.req("GET", "/__test/sleep_db?ms=100", timeout=20))
            assert [getattr(r, "status", r) for r in res] == [200] * 12
            assert time.time() - t0 >= 0.55
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
        holders = [threading.Thread(target=srv.req, args=("GET", "/__test/sleep_db?ms=3000"),
                                    kwargs={"timeout": 10}) for _ in range(2)]
        for t in holders:
            t.start()
        # both connections really busy before the probe
        assert wait_for(lambda: sleeping_backends(pg, db_url) == 2, 5)
        t0 = time.time()
        r = srv.req("GET", "/__test/sleep_db?ms=1", timeout=10)
        waited = time.time() - t0
        assert r.status == 503
        assert r.json() == {"detail": "Service unavailable"}
        assert r.header("Retry-After") is not None
        assert 0.25 <= waited < 2.0, waited
        for t in holders:
            t.join()
        # and the pool is fine afterwards
        assert srv.req("GET", "/__test/sleep_db?ms=1").status == 200


def test_postgres_stopped_then_started_recovers_without_restart(private_pg):
    url = private_pg.create_db()
    pid = int(private_pg.psql("INSERT INTO products (name, price_cents) VALUES ('Down Lamp', 1) RETURNING id",
                              db=url.split("/")[3].split("?")[0]).splitlines()[0])
    with Server(db_url=url, workers=2, extra_cfg=pool_cfg(size=2, queue_ms=2000)) as srv:
        assert ready_when_up(srv)
        workers = srv.worker_pids()
        assert srv.req("GET", f"/api/v1/products/{pid}").status == 200

        private_pg.stop_server()
        try:
            # every worker notices (each answers for its own pool)
            assert wait_for(lambda: all(srv.req("GET", "/ready").status == 503 for _ in range(6)), 10)
            r = srv.req("GET", "/ready")
            assert r.status == 503
            assert r.json() == {"status": "unavailable", "database": "down"}
            assert srv.req("GET", "/health").status == 200
            for _ in range(6):
                t0 = time.time()
                r = srv.req("GET", f"/api/v1/products/{pid}", timeout=10)
                assert r.status == 503, r
                assert r.json() == {"detail": "Service unavailable"}
                assert r.header("Retry-After") is not None
                assert time.time() - t0 < 1.5    # fails fast, not after queue_timeout
        finally:
            private_pg.start_server()

        # back without restarting anything: reconnect backoff is capped at 5 s
        assert wait_for(lambda: all(srv.req("GET", "/ready").status == 200 for _ in range(6)), 15)
        assert wait_for(lambda: srv.req("GET", f"/api/v1/products/{pid}").status == 200, 5)
        assert srv.worker_pids() == workers
        assert srv.proc.poll() is None
    private_pg.drop_db(url)


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
        t0 = time.time()
        res = parallel(2, lambda i: srv.req("GET", "/__test/sleep_db?ms=1000", timeout=10))
        assert [r.status for r in res] == [200, 200]
        assert time.time() - t0 < 1.9      # side by side (one after the other is >= 2 s)
        assert pg.backends(db_url) <= 2
        active = pg.psql("SELECT count(*) FROM pg_stat_activity WHERE state <> 'idle' "
                         f"AND datname = '{db_url.split('/')[3].split('?')[0]}' "
                         "AND pid <> pg_backend_pid()")
        assert active == "0"
        assert srv.proc.poll() is None
