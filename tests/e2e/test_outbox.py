"""The transactional outbox (API.md, Events), against the real binary and
PostgreSQL: an order creation, a status change and a transfer each write
exactly one event row whose payload is {"id","type","timestamp","data"} with
data equal to the HTTP answer; an idempotent replay writes none; a write that
fails (409 out of stock, 409 insufficient funds, 409 invalid transition, 422)
writes none; N concurrent identical keyed orders write exactly one; the
traceparent column holds the request's traceparent; the wake-up NOTIFY (sent after the
commit, store/event_wake.c) follows every kind of event write and reaches a
listener on channel of_events only after the commit. The jobs process is
off, so the rows stay as written."""
import json
import os
import re
import select
import subprocess
import threading
import time
import uuid

import pytest

from conftest import run_psql
from ofclient import PSQL, Server, make_admin, register_and_login, token_for

EVT_ID = re.compile(r"^evt_[0-9A-HJKMNP-TV-Z]{26}$")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture(scope="module")
def srv(db_url):
    s = Server(db_url=db_url, workers=2,
               extra_cfg="rate_limit: { login_per_minute = 0; writes_per_minute = 0; };\n"
                         "jobs: { enabled = false; };")
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(srv, db_url):
    email, pw = make_admin(db_url, "outbox-admin@x.io")
    return token_for(srv.port, email, pw)


@pytest.fixture(scope="module")
def user(srv):
    return register_and_login(srv.port, "outbox-user@x.io")


def uniq():
    return uuid.uuid4().hex[:10]


def events(db_url, where="true"):
    """Every event row matching where, oldest first: (id, type, payload, traceparent)."""
    out = run_psql(db_url, "SELECT coalesce(json_agg(json_build_object('id', id, 'type', type, "
                           "'payload', payload, 'traceparent', traceparent) ORDER BY seq), '[]') "
                           f"FROM events WHERE {where}")
    return json.loads(out)


def max_seq(db_url):
    return int(run_psql(db_url, "SELECT coalesce(max(seq), 0) FROM events"))


def since(db_url, seq):
    return events(db_url, f"seq > {int(seq)}")


@pytest.fixture(scope="module")
def cust(srv, user):
    r = srv.req("POST", "/api/v1/customers", token=user[1],
                body={"name": "Zoë Ünïcode", "email": f"c.{uniq()}@x.io"})
    assert r.status == 201, r
    return r.json()


def product(srv, admin, price="19.99", in_stock=True):
    r = srv.req("POST", "/api/v1/products", token=admin,
                body={"name": f"P {uniq()}", "price": price, "in_stock": in_stock})
    assert r.status == 201, r
    return r.json()


def order(srv, tok, cust_id, items, key=None, **extra):
    h = {"Idempotency-Key": key} if key else {}
    return srv.req("POST", "/api/v1/orders", token=tok, headers=h,
                   body=dict(customer_id=cust_id, items=items, **extra))


def check_envelope(ev, type_, answer):
    p = ev["payload"]
    assert ev["type"] == type_
    assert list(sorted(p)) == ["data", "id", "timestamp", "type"]
    assert p["id"] == ev["id"] and EVT_ID.match(p["id"]), p["id"]
    assert p["type"] == type_
    assert TS.match(p["timestamp"]), p["timestamp"]
    # the event keeps the request's trace context: the traceparent the
    # server answered with (its own span of that request's trace)
    assert ev["traceparent"] is not None
    assert ev["traceparent"] == answer.header("traceparent"), (ev["traceparent"], answer.header("traceparent"))


def test_order_created_writes_one_event_equal_to_the_answer(srv, db_url, user, admin, cust):
    a, b = product(srv, admin, "19.99"), product(srv, admin, "0.10")
    s0 = max_seq(db_url)
    r = order(srv, user[1], cust["id"], [{"product_id": a["id"], "quantity": 2},
                                         {"product_id": b["id"], "quantity": 3}], notes="ring twice")
    assert r.status == 201, r
    evs = since(db_url, s0)
    assert len(evs) == 1, evs
    check_envelope(evs[0], "order.created", r)
    assert evs[0]["payload"]["data"] == r.json()
    g = srv.req("GET", f"/api/v1/orders/{r.json()['id']}", token=user[1])
    assert evs[0]["payload"]["data"] == g.json()


def test_status_change_writes_one_event_with_order_from_to(srv, db_url, user, admin, cust):
    p = product(srv, admin, "5.00")
    o = order(srv, user[1], cust["id"], [{"product_id": p["id"], "quantity": 1}]).json()
    s0 = max_seq(db_url)
    r = srv.req("PATCH", f"/api/v1/orders/{o['id']}/status", token=admin, body={"status": "processing"})
    assert r.status == 200, r
    evs = since(db_url, s0)
    assert len(evs) == 1, evs
    check_envelope(evs[0], "order.status_changed", r)
    assert evs[0]["payload"]["data"] == {"order": r.json(), "from": "pending", "to": "processing"}
    # a user's cancel is an event too
    o2 = order(srv, user[1], cust["id"], [{"product_id": p["id"], "quantity": 1}]).json()
    s1 = max_seq(db_url)
    r = srv.req("PATCH", f"/api/v1/orders/{o2['id']}/status", token=user[1], body={"status": "cancelled"})
    assert r.status == 200, r
    evs = since(db_url, s1)
    assert [e["payload"]["data"] for e in evs] == [{"order": r.json(), "from": "pending",
                                                    "to": "cancelled"}]


def test_invalid_transition_409_writes_no_event(srv, db_url, user, admin, cust):
    p = product(srv, admin)
    o = order(srv, user[1], cust["id"], [{"product_id": p["id"], "quantity": 1}]).json()
    s0 = max_seq(db_url)
    r = srv.req("PATCH", f"/api/v1/orders/{o['id']}/status", token=admin, body={"status": "delivered"})
    assert r.status == 409, r
    r = srv.req("PATCH", f"/api/v1/orders/{o['id']}/status", token=admin, body={"status": "pending"})
    assert r.status == 409, r
    r = srv.req("PATCH", f"/api/v1/orders/{o['id']}/status", token=admin, body={"status": "bogus"})
    assert r.status == 422, r
    r = srv.req("PATCH", "/api/v1/orders/999999999/status", token=admin, body={"status": "processing"})
    assert r.status == 404, r
    assert since(db_url, s0) == []


def test_failed_creates_write_no_event(srv, db_url, user, admin, cust):
    out = product(srv, admin, in_stock=False)
    ok = product(srv, admin)
    s0 = max_seq(db_url)
    r = order(srv, user[1], cust["id"], [{"product_id": out["id"], "quantity": 1}])
    assert r.status == 409, r
    r = order(srv, user[1], cust["id"], [{"product_id": ok["id"], "quantity": 0}])
    assert r.status == 422, r
    r = order(srv, user[1], 999999999, [{"product_id": ok["id"], "quantity": 1}])
    assert r.status == 422, r
    r = order(srv, user[1], cust["id"], [{"product_id": 999999999, "quantity": 1}])
    assert r.status == 422, r
    assert since(db_url, s0) == []


def test_idempotent_replay_writes_no_second_event(srv, db_url, user, admin, cust):
    p = product(srv, admin)
    key = uniq()
    s0 = max_seq(db_url)
    items = [{"product_id": p["id"], "quantity": 1}]
    r1 = order(srv, user[1], cust["id"], items, key=key)
    r2 = order(srv, user[1], cust["id"], items, key=key)
    assert r1.status == 201 and r2.status == 201
    assert r2.header("Idempotent-Replayed") == "true"
    evs = since(db_url, s0)
    assert len(evs) == 1 and evs[0]["payload"]["data"] == r1.json()


def test_concurrent_identical_keyed_orders_write_one_event(srv, db_url, user, admin, cust):
    p = product(srv, admin)
    key = uniq()
    s0 = max_seq(db_url)
    items = [{"product_id": p["id"], "quantity": 2}]
    res = []

    def go():
        res.append(order(srv, user[1], cust["id"], items, key=key))

    ts = [threading.Thread(target=go) for _ in range(12)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    created = {r.json()["id"] for r in res if r.status == 201}
    assert len(created) == 1, [r.status for r in res]
    assert all(r.status in (201, 409) for r in res), [r.status for r in res]
    evs = since(db_url, s0)
    assert len(evs) == 1 and evs[0]["payload"]["data"]["id"] in created


def account(srv, tok, balance):
    r = srv.req("POST", "/api/v1/bank-accounts", token=tok, body={"name": f"A {uniq()}", "balance": balance})
    assert r.status == 201, r
    return r.json()


def test_transfer_writes_one_event_equal_to_the_answer(srv, db_url, user):
    a, b = account(srv, user[1], "100.00"), account(srv, user[1], "0.00")
    s0 = max_seq(db_url)
    r = srv.req("POST", "/api/v1/transfers", token=user[1],
                body={"from_account_id": a["id"], "to_account_id": b["id"], "amount": "12.34"})
    assert r.status == 201, r
    evs = since(db_url, s0)
    assert len(evs) == 1, evs
    check_envelope(evs[0], "transfer.created", r)
    assert evs[0]["payload"]["data"] == r.json()
    # with a key: one event, a replay none
    s1 = max_seq(db_url)
    key = uniq()
    body = {"from_account_id": a["id"], "to_account_id": b["id"], "amount": "0.01"}
    r1 = srv.req("POST", "/api/v1/transfers", token=user[1], body=body, headers={"Idempotency-Key": key})
    r2 = srv.req("POST", "/api/v1/transfers", token=user[1], body=body, headers={"Idempotency-Key": key})
    assert r1.status == 201 and r2.header("Idempotent-Replayed") == "true"
    evs = since(db_url, s1)
    assert len(evs) == 1 and evs[0]["payload"]["data"] == r1.json()


def test_failed_transfers_write_no_event(srv, db_url, user):
    a, b = account(srv, user[1], "1.00"), account(srv, user[1], "0.00")
    s0 = max_seq(db_url)
    body = {"from_account_id": a["id"], "to_account_id": b["id"], "amount": "5.00"}
    r = srv.req("POST", "/api/v1/transfers", token=user[1], body=body)
    assert r.status == 409 and r.json() == {"detail": "Insufficient funds"}
    r = srv.req("POST", "/api/v1/transfers", token=user[1], headers={"Idempotency-Key": uniq()}, body=body)
    assert r.status == 409
    r = srv.req("POST", "/api/v1/transfers", token=user[1],
                body={"from_account_id": a["id"], "to_account_id": 999999999, "amount": "0.01"})
    assert r.status == 422
    r = srv.req("POST", "/api/v1/transfers", token=user[1],
                body={"from_account_id": a["id"], "to_account_id": b["id"], "amount": "0"})
    assert r.status == 422
    assert since(db_url, s0) == []


def _read_until(proc, needle, deadline_s=30):
    """Raw reads from proc's stdout until needle shows up (bounded)."""
    buf = b""
    end = time.monotonic() + deadline_s
    while needle.encode() not in buf and time.monotonic() < end:
        r, _, _ = select.select([proc.stdout], [], [], 1)
        if r:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
        else:
            proc.stdin.write(b"SELECT 'poll';\n")   # psql prints notifications after a command
            proc.stdin.flush()
    return buf.decode(errors="replace")


def test_notify_of_events_arrives_after_commit(srv, db_url, user, admin, cust):
    """A psql session LISTENing on of_events is notified by an order creation
    (the jobs process's wake-up)."""
    p = product(srv, admin)
    lis = subprocess.Popen(["stdbuf", "-oL", PSQL, "-X", "-q", "-A", "-t", "-d", db_url],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        lis.stdin.write(b"LISTEN of_events;\nSELECT 'ready';\n")
        lis.stdin.flush()
        assert "ready" in _read_until(lis, "ready")
        quiet = _read_until(lis, "Asynchronous notification", deadline_s=2)
        assert "Asynchronous notification" not in quiet, quiet
        r = order(srv, user[1], cust["id"], [{"product_id": p["id"], "quantity": 1}])
        assert r.status == 201
        got = _read_until(lis, 'Asynchronous notification "of_events"')
        assert 'Asynchronous notification "of_events"' in got, got
    finally:
        lis.stdin.close()
        lis.wait(10)


def _notifications(text, channel):
    """The payloads of the notifications on channel in psql's output."""
    return re.findall(r'Asynchronous notification "' + channel + r'"(?: with payload "([^"]*)")? '
                      r'received', text)


def test_every_event_writer_wakes_after_commit_and_orders_touch_no_product_channel(
        srv, db_url, user, admin, cust):
    """Each kind of event write (order create with and without a key, status
    change, transfer with and without a key) is followed by an of_events
    notification, sent after its commit (store/event_wake.c). An order's
    transaction sends nothing on of_products (migration 0006's triggers fire
    on product writes only; an order reads its products FOR SHARE): the first
    of_products notification after the orders is the marker product's PATCH."""
    p, marker = product(srv, admin), product(srv, admin)
    a, b = account(srv, user[1], "10.00"), account(srv, user[1], "0.00")
    lis = subprocess.Popen(["stdbuf", "-oL", PSQL, "-X", "-q", "-A", "-t", "-d", db_url],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    xfer = {"from_account_id": a["id"], "to_account_id": b["id"], "amount": "0.01"}
    writes = [
        lambda: order(srv, user[1], cust["id"], [{"product_id": p["id"], "quantity": 2}]),
        lambda: order(srv, user[1], cust["id"], [{"product_id": p["id"], "quantity": 1}], key=uniq()),
        lambda: srv.req("PATCH", f"/api/v1/orders/{first_id[0]}/status", token=admin,
                        body={"status": "processing"}),
        lambda: srv.req("POST", "/api/v1/transfers", token=user[1], body=xfer),
        lambda: srv.req("POST", "/api/v1/transfers", token=user[1], body=xfer,
                        headers={"Idempotency-Key": uniq()}),
    ]
    first_id = []
    try:
        lis.stdin.write(b"LISTEN of_events;\nLISTEN of_products;\nSELECT 'ready';\n")
        lis.stdin.flush()
        seen = _read_until(lis, "ready")
        assert "ready" in seen
        for i, w in enumerate(writes):
            r = w()
            assert r.status in (200, 201), (i, r)
            if i == 0:
                first_id.append(r.json()["id"])
            got = _read_until(lis, 'Asynchronous notification "of_events"')
            assert _notifications(got, "of_events"), (i, got)
            seen += got
        r = srv.req("PATCH", f"/api/v1/products/{marker['id']}", token=admin, body={"price": "1.23"})
        assert r.status == 200, r
        seen += _read_until(lis, f'Asynchronous notification "of_products" with payload "{marker["id"]}"')
        assert _notifications(seen, "of_products") == [str(marker["id"])], seen
    finally:
        lis.stdin.close()
        lis.wait(10)
