"""Expired Idempotency-Keys are purged after a HUP too (issue 11, item 4).

The purge ran only in the worker in scoreboard slot 0, and after a reload no
worker sits there. Now every worker runs it and a transaction-scoped advisory
lock lets one at a time delete. Rows are inserted expired (expires_at in the
past); the first purge of a worker runs about 5 s after its start.
"""
import signal
import time

from conftest import run_psql
from ofclient import Server, make_admin


def expired_rows(db_url, tag):
    return int(run_psql(db_url, f"SELECT count(*) FROM idempotency_keys WHERE key LIKE '{tag}%'"))


def insert_expired(db_url, uid, tag, n=3):
    run_psql(db_url, "INSERT INTO idempotency_keys (user_id, route, key, fingerprint, expires_at) "
                     f"SELECT {uid}, 'POST /api/v1/orders', '{tag}' || g, 'fp', "
                     f"now() - interval '1 hour' FROM generate_series(1, {n}) g")


def wait_gone(db_url, tag, srv, deadline_s=40):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if expired_rows(db_url, tag) == 0:
            return
        time.sleep(0.25)
    raise AssertionError(f"expired keys {tag}* still there\n{srv.log()[-3000:]}")


def test_expired_keys_are_still_purged_after_hup(db_url):
    make_admin(db_url, "purge-admin@x.io", "admin-pass-123")
    uid = run_psql(db_url, "SELECT id FROM users WHERE email = 'purge-admin@x.io'")
    srv = Server(db_url=db_url, workers=2)
    srv.start()
    try:
        old = srv.wait_workers(2)
        # the first generation's first purge (then it waits 10 minutes)
        insert_expired(db_url, uid, "before-hup-")
        wait_gone(db_url, "before-hup-", srv)
        insert_expired(db_url, uid, "after-hup-")
        srv.signal(signal.SIGHUP)
        srv.wait_workers(2, timeout=30, exclude=old)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and set(srv.worker_pids()) & set(old):
            time.sleep(0.1)
        assert not set(srv.worker_pids()) & set(old), "old generation still running"
        wait_gone(db_url, "after-hup-", srv)
        # an unexpired key stays
        run_psql(db_url, "INSERT INTO idempotency_keys (user_id, route, key, fingerprint) "
                         f"VALUES ({uid}, 'POST /api/v1/orders', 'live-1', 'fp')")
        assert expired_rows(db_url, "live-") == 1
    finally:
        assert srv.stop() == 0
