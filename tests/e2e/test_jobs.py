"""The jobs process (issue 12): outbox fan-out and webhook delivery.

Real parts only: the real binary (master + workers + of-jobs), a throwaway
PostgreSQL, and a real HTTP receiver (http.server in a thread) that checks
every Standard Webhooks signature with its own HMAC code. Events are
inserted by SQL with a NOTIFY, as a writer's transaction does.
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import random
import signal
import string
import threading
import time

import pytest

from conftest import run_psql
from ofclient import Server, proc_comm

SECRET_KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(SECRET_KEY).decode()
BASE_CFG = ("webhooks: { allow_http = true; allow_private = true; retry_schedule = [1, 1]; "
            "timeout = 5; };\n")


def verify(headers, body):
    """Standard Webhooks 1.0, independently of the server's code."""
    msg_id, ts = headers["webhook-id"], headers["webhook-timestamp"]
    mac = hmac.new(SECRET_KEY, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    want = "v1," + base64.b64encode(mac).decode()
    return any(hmac.compare_digest(want, s) for s in headers["webhook-signature"].split(" "))


class Receiver:
    """A real HTTP server on loopback. behave(n, headers, body) -> status
    (n counts requests per webhook-id, from 1)."""

    def __init__(self, behave=lambda n, h, b: 200):
        self.behave = behave
        self.got = []          # (headers dict lowercased, body bytes, status answered)
        self.per_id = {}
        self.lock = threading.Lock()
        rcv = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                with rcv.lock:
                    k = hdrs.get("webhook-id")
                    rcv.per_id[k] = rcv.per_id.get(k, 0) + 1
                    cnt = rcv.per_id[k]
                status = rcv.behave(cnt, hdrs, body)
                extra = []
                if isinstance(status, tuple):
                    status, extra = status
                with rcv.lock:
                    rcv.got.append((hdrs, body, status))
                self.send_response(status)
                for k2, v2 in extra:
                    self.send_header(k2, v2)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *a):
        self.httpd.shutdown()
        self.httpd.server_close()

    def ids(self):
        with self.lock:
            return [h.get("webhook-id") for h, _, s in self.got]


def evt_id():
    return "evt_" + "".join(random.choice(string.ascii_letters + string.digits) for _ in range(26))


def add_webhook(url, hook_url, events=("order.created",)):
    arr = "{" + ",".join(events) + "}"
    return int(run_psql(url, f"INSERT INTO webhooks (url, events, secret) VALUES "
                             f"('{hook_url}', '{arr}', '{SECRET}') RETURNING id"))


def add_events(url, n, traceparent=None):
    """n order.created events in one transaction with a NOTIFY; their ids."""
    ids = [evt_id() for _ in range(n)]
    tp = f"'{traceparent}'" if traceparent else "NULL"
    rows = ",".join(
        f"('{i}', 'order.created', '{{\"id\":\"{i}\",\"type\":\"order.created\","
        f"\"timestamp\":\"2024-01-01T00:00:00Z\",\"data\":{{\"id\":{k + 1}}}}}', {tp})"
        for k, i in enumerate(ids))
    run_psql(url, f"BEGIN; INSERT INTO events (id, type, payload, traceparent) VALUES {rows}; "
                  f"NOTIFY of_events; COMMIT;")
    return ids


def wait_for(cond, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def delivery_rows(url):
    out = run_psql(url, "SELECT e.id, d.status, d.attempts, coalesce(d.last_status_code, 0), "
                        "coalesce(d.last_error, ''), d.lease_until IS NOT NULL FROM deliveries d "
                        "JOIN events e ON e.seq = d.event_seq ORDER BY d.id")
    return [line.split("|") for line in out.splitlines() if line]


def jobs_server(db, extra="", workers=1, **kw):
    return Server(db_url=db, workers=workers, extra_cfg=BASE_CFG + extra, **kw)


def test_jobs_process_named_and_delivers_signed(new_db):
    db = new_db()
    with Receiver() as r:
        add_webhook(db, r.url)
        with jobs_server(db) as s:
            jp = wait_for(s.jobs_pids, 15, "an of-jobs process")
            assert len(jp) == 1 and proc_comm(jp[0]) == "of-jobs"
            assert all(proc_comm(p) == "of-worker" for p in s.worker_pids())
            tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            (eid,) = add_events(db, 1, traceparent=tp)
            wait_for(lambda: r.got, 30, "the webhook")
            hdrs, body, _ = r.got[0]
            assert hdrs["webhook-id"] == eid
            assert hdrs["content-type"] == "application/json"
            assert abs(int(hdrs["webhook-timestamp"]) - time.time()) < 120
            assert hdrs["webhook-signature"].startswith("v1,")
            assert verify(hdrs, body)
            assert hdrs.get("traceparent") == tp
            ev = json.loads(body)
            assert ev["id"] == eid and ev["type"] == "order.created" and ev["data"] == {"id": 1}
            wait_for(lambda: delivery_rows(db) and delivery_rows(db)[0][1] == "succeeded", 30)
            row = delivery_rows(db)[0]
            assert row[2] == "1" and row[3] == "200" and row[5] == "f"
            assert run_psql(db, "SELECT count(*) FROM events WHERE dispatched_at IS NULL") == "0"
            m = s.req("GET", "/metrics").body.decode()
            assert 'orderflow_delivery_attempts_total{kind="webhook",outcome="succeeded"} 1' in m


def test_retries_same_id_then_success(new_db):
    db = new_db()
    with Receiver(lambda n, h, b: 500 if n <= 2 else 204) as r:
        add_webhook(db, r.url)
        with jobs_server(db):
            (eid,) = add_events(db, 1)
            wait_for(lambda: delivery_rows(db) and delivery_rows(db)[0][1] == "succeeded", 60)
            row = delivery_rows(db)[0]
            assert row[2] == "3" and row[3] == "204", row
            assert r.ids() == [eid, eid, eid]
            assert all(verify(h, b) for h, b, _ in r.got)


def test_dead_after_schedule(new_db):
    db = new_db()
    with Receiver(lambda n, h, b: 503) as r:
        add_webhook(db, r.url)
        with jobs_server(db):
            add_events(db, 1)
            wait_for(lambda: delivery_rows(db) and delivery_rows(db)[0][1] == "dead", 60)
            row = delivery_rows(db)[0]
            assert row[2] == "3" and row[3] == "503" and row[4].startswith("HTTP 503"), row
            time.sleep(2.5)                 # nothing more after dead
            assert len(r.got) == 3


def test_ssrf_loopback_refused(new_db):
    db = new_db()
    with Receiver() as r:
        add_webhook(db, r.url)
        cfg = "webhooks: { allow_http = true; allow_private = false; retry_schedule = [1, 1]; };\n"
        with Server(db_url=db, workers=1, extra_cfg=cfg):
            add_events(db, 1)
            wait_for(lambda: delivery_rows(db) and delivery_rows(db)[0][2] != "0", 30)
            row = delivery_rows(db)[0]
            assert row[4] == "refused: non-public address", row
            assert r.got == []


def test_http_refused_unless_allowed(new_db):
    db = new_db()
    with Receiver() as r:
        add_webhook(db, r.url)
        cfg = "webhooks: { allow_http = false; allow_private = true; };\n"
        with Server(db_url=db, workers=1, extra_cfg=cfg):
            add_events(db, 1)
            wait_for(lambda: delivery_rows(db) and delivery_rows(db)[0][1] == "dead", 30)
            assert "http:// not allowed" in delivery_rows(db)[0][4]
            assert r.got == []


def test_redirect_not_followed(new_db):
    db = new_db()
    with Receiver(lambda n, h, b: 200) as target, \
            Receiver(lambda n, h, b: (302, [("Location", target.url)])) as r:
        add_webhook(db, r.url)
        with jobs_server(db):
            add_events(db, 1)
            wait_for(lambda: delivery_rows(db) and delivery_rows(db)[0][2] != "0", 30)
            row = delivery_rows(db)[0]
            assert row[3] == "302" and "redirect not followed" in row[4], row
            assert target.got == []


def test_jobs_disabled_runs_none(new_db):
    db = new_db()
    with jobs_server(db, extra="jobs: { enabled = false; };") as s:
        s.wait_workers(1)
        time.sleep(1.0)
        assert s.jobs_pids() == []


def test_kill9_every_250ms_every_event_delivered(new_db):
    db = new_db()
    with Receiver() as r:
        add_webhook(db, r.url)
        with jobs_server(db, extra="jobs: { lease = 5; };") as s:
            ids, kills = [], 0
            for _ in range(20):                   # 5 s of chaos
                ids += add_events(db, 5)
                for p in s.jobs_pids():
                    os.kill(p, signal.SIGKILL)
                    kills += 1
                time.sleep(0.25)
            assert kills > 0
            want = set(ids)
            wait_for(lambda: want <= set(r.ids()), 120, "every event delivered")
            wait_for(lambda: all(row[1] == "succeeded" for row in delivery_rows(db)), 60)
            got = r.ids()
            dups = len(got) - len(set(got))
            print(f"kill -9 x{kills}: {len(ids)} events, {len(got)} deliveries, {dups} duplicates")
            assert all(verify(h, b) for h, b, _ in r.got)
            # a duplicate needs a crash between the POST and the write of its result
            assert dups <= kills * 16


def test_two_instances_share_the_queue(new_db):
    db = new_db()
    with Receiver() as r:
        add_webhook(db, r.url)
        with jobs_server(db) as a, jobs_server(db) as b:
            wait_for(lambda: a.jobs_pids() and b.jobs_pids(), 15)
            ids = []
            for _ in range(10):
                ids += add_events(db, 20)
            wait_for(lambda: set(ids) <= set(r.ids()), 90, "every event delivered")
            wait_for(lambda: all(row[1] == "succeeded" for row in delivery_rows(db)), 60)
            got = r.ids()
            assert sorted(got) == sorted(ids), "an event delivered twice or not at all"


def test_term_with_deliveries_in_flight_leaves_no_lease(new_db):
    db = new_db()
    started = threading.Event()

    def slow(n, h, b):
        started.set()
        time.sleep(2)
        return 200

    with Receiver(slow) as r:
        add_webhook(db, r.url)
        s = jobs_server(db, extra="jobs: { concurrency = 4; };").start()
        try:
            add_events(db, 12)
            assert started.wait(30)
            assert s.stop(signal.SIGTERM, timeout=30) == 0
        finally:
            s.stop(signal.SIGKILL)
        rows = delivery_rows(db)
        assert rows and not any(row[5] == "t" for row in rows), rows
        assert any(row[1] == "succeeded" for row in rows)


def test_postgres_restart_mid_queue(private_pg):
    db = private_pg.create_db()
    with Receiver(lambda n, h, b: (time.sleep(0.05), 200)[1]) as r:
        add_webhook(db, r.url)
        with jobs_server(db, extra="jobs: { lease = 5; concurrency = 2; };"):
            ids = add_events(db, 60)
            wait_for(lambda: len(r.got) > 0, 30)
            private_pg.stop_server()
            assert len(set(r.ids())) < len(ids)     # the queue was not drained yet
            time.sleep(1.0)
            private_pg.start_server()
            ids += add_events(db, 50)
            wait_for(lambda: set(ids) <= set(r.ids()), 120, "every event delivered")
            wait_for(lambda: all(row[1] == "succeeded" for row in delivery_rows(db)), 60)


def test_hup_replaces_the_jobs_process(new_db):
    db = new_db()
    with Receiver() as r:
        add_webhook(db, r.url)
        with jobs_server(db) as s:
            (old,) = wait_for(s.jobs_pids, 15, "an of-jobs process")
            s.signal(signal.SIGHUP)
            new = wait_for(lambda: [p for p in s.jobs_pids() if p != old] if old not in s.jobs_pids()
                           else None, 30, "the old of-jobs replaced")
            assert len(new) == 1
            ids = add_events(db, 3)
            wait_for(lambda: set(ids) <= set(r.ids()), 30, "delivery by the new jobs process")
