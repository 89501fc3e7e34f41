"""Retention (API.md "Settings": jobs.retention_days; ARCHITECTURE.md "Jobs
process ... prunes old rows"): the jobs process deletes succeeded deliveries
delivered more than retention_days ago, and the dispatched events older than
that which have no delivery left; pending and dead deliveries stay, and so
do their events, however old.

Real parts: the real binary with its jobs process and a throwaway
PostgreSQL. Rows of every kind are written with SQL and back-dated; the test
then waits (bounded) for the prune that the jobs process runs at start and
every minute, never for a fixed time."""
import time

from conftest import run_psql
from ofclient import Server
from test_jobs import evt_id

DAYS = 7


def seed(db, created_days, deliveries):
    """One dispatched order.created event created created_days ago with the
    deliveries given as (status, delivered_days_ago or None); its seq and the
    deliveries' ids. Pending ones are due far in the future (never claimed)."""
    e = evt_id()
    seq = int(run_psql(db, f"""
        INSERT INTO events (id, type, payload, created_at, dispatched_at)
        VALUES ('{e}', 'order.created',
                '{{"id":"{e}","type":"order.created","timestamp":"t","data":{{}}}}',
                now() - interval '{created_days} days', now() - interval '{created_days} days')
        RETURNING seq"""))
    ids = []
    for k, (status, ago) in enumerate(deliveries):
        hook = int(run_psql(db, "INSERT INTO webhooks (url, events, secret) VALUES "
                                f"('https://h{k}.example.com/', '{{order.created}}', 'whsec_x') "
                                "RETURNING id"))
        delivered = f"now() - interval '{ago} days'" if ago is not None else "NULL"
        ids.append(int(run_psql(db, f"""
            INSERT INTO deliveries (event_seq, kind, webhook_id, status, attempts,
                                    next_attempt_at, delivered_at, created_at)
            VALUES ({seq}, 'webhook', {hook}, '{status}', 1, now() + interval '30 days',
                    {delivered}, now() - interval '{created_days} days')
            RETURNING id""")))
    return seq, ids


def exists(db, table, col, v):
    return run_psql(db, f"SELECT count(*) FROM {table} WHERE {col} = {v}") == "1"


def test_prune_keeps_what_is_pending_dead_or_recent(new_db):
    db = new_db()
    gone_ev, gone_d = seed(db, 10, [("succeeded", 9)])
    two_ev, two_d = seed(db, 10, [("succeeded", 9), ("succeeded", 8)])
    mixed_ev, (mixed_ok, mixed_pending) = seed(db, 10, [("succeeded", 9), ("pending", None)])
    dead_ev, dead_d = seed(db, 10, [("dead", None)])
    recent_ev, recent_d = seed(db, 10, [("succeeded", 2)])
    young_ev, young_d = seed(db, 1, [("succeeded", 1)])
    bare_ev, _ = seed(db, 10, [])              # nothing subscribed: no delivery at all
    bare_young_ev, _ = seed(db, 1, [])

    srv = Server(db_url=db, workers=1,
                 extra_cfg=f"jobs: {{ retention_days = {DAYS}; }};\n")
    srv.start()
    try:
        deadline = time.time() + 150            # the start prune, or the next one a minute on
        while time.time() < deadline and exists(db, "events", "seq", gone_ev):
            time.sleep(0.2)
        assert not exists(db, "events", "seq", gone_ev), "the jobs process never pruned"
        # the same statement removed every other prunable row
        for d in gone_d + two_d + [mixed_ok]:
            assert not exists(db, "deliveries", "id", d), d
        for ev in (two_ev, bare_ev):
            assert not exists(db, "events", "seq", ev), ev
        # and kept the rest
        for d in [mixed_pending] + dead_d + recent_d + young_d:
            assert exists(db, "deliveries", "id", d), d
        for ev in (mixed_ev, dead_ev, recent_ev, young_ev, bare_young_ev):
            assert exists(db, "events", "seq", ev), ev
        st = run_psql(db, f"SELECT status FROM deliveries WHERE id = {mixed_pending}")
        assert st == "pending"
    finally:
        srv.stop()
