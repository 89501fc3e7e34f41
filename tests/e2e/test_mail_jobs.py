"""Customer mail through the running server (API.md "Events: confirmation
mail and webhooks"): the real binary with `mail` set, its jobs process, a
real SMTP server (Debian's aiosmtpd, the Recorder of test_mail_smtp.py) and a
real HTTP receiver (test_jobs.py's, checking every Standard Webhooks
signature independently).

Checks: an order placed through the API gets exactly one confirmation mail
with API.md's headers (From mail.from, To the customer, Subject, Message-ID
<evt_...@orderflow> of the order.created event), its items and total;
shipped and cancelled get their status mails, other transitions none; an
inactive customer gets none. Then SIGKILL of of-jobs every 250 ms while
orders are created: every order still gets its mail and its webhook;
duplicates (a repeated Message-ID / webhook-id) come only from the crash
window, are counted, and none is missing."""
import base64
import hashlib
import hmac
import json
import os
import signal
import time
import uuid

import pytest
from aiosmtpd.controller import Controller

from conftest import run_psql
from ofclient import Server, free_port, make_admin, register_and_login, token_for
from test_jobs import Receiver, wait_for
from test_mail_smtp import Recorder, parsed

FROM = "OrderFlow Shop <orders@shop.example>"


def uniq():
    return uuid.uuid4().hex[:10]


@pytest.fixture
def smtp():
    rec = Recorder()
    port = free_port()
    ctl = Controller(rec, hostname="127.0.0.1", port=port)
    ctl.start()
    yield rec, port
    ctl.stop()


def start(db, smtp_port, extra="", retry="[1, 1, 1]"):
    s = Server(db_url=db, workers=2, extra_cfg=(
        "rate_limit: { login_per_minute = 0; writes_per_minute = 0; };\n"
        f'mail: {{ smtp_url = "smtp://127.0.0.1:{smtp_port}"; from = "{FROM}"; }};\n'
        f"webhooks: {{ allow_http = true; allow_private = true; retry_schedule = {retry}; "
        "timeout = 5; };\n" + extra))
    return s


class Shop:
    """An admin, a user, a customer of the user's and two products."""

    def __init__(self, srv, db, name="Zo\u00eb \u00c4rger"):
        self.srv = srv
        email, pw = make_admin(db, f"mail-admin-{uniq()}@x.io")
        self.admin = token_for(srv.port, email, pw)
        self.user = register_and_login(srv.port, f"mail-user-{uniq()}@x.io")[1]
        self.email = f"zoe.{uniq()}@example.com"
        self.cust = self.post("/api/v1/customers", self.user, {"name": name, "email": self.email})
        self.p1 = self.post("/api/v1/products", self.admin,
                            {"name": "Caf\u00e9 cr\u00e8me", "price": "19.99", "in_stock": True})
        self.p2 = self.post("/api/v1/products", self.admin,
                            {"name": "Tea", "price": "9.99", "in_stock": True})

    def post(self, path, tok, body, status=201):
        r = self.srv.req("POST", path, token=tok, body=body)
        assert r.status == status, r
        return r.json()

    def order(self, cust=None):
        return self.post("/api/v1/orders", self.user, {
            "customer_id": (cust or self.cust)["id"],
            "items": [{"product_id": self.p1["id"], "quantity": 2},
                      {"product_id": self.p2["id"], "quantity": 1}]})

    def status(self, oid, to):
        r = self.srv.req("PATCH", f"/api/v1/orders/{oid}/status", token=self.admin,
                         body={"status": to})
        assert r.status == 200, r
        return r.json()


def event_id(db, order_id, type_="order.created", to=None):
    cond = f" AND payload->'data'->>'to' = '{to}'" if to else ""
    key = "payload->'data'->>'id'" if type_ == "order.created" else "payload->'data'->'order'->>'id'"
    return run_psql(db, f"SELECT id FROM events WHERE type = '{type_}' AND {key} = '{order_id}'"
                        f"{cond}")


def mails(rec):
    return [parsed(m) for m in list(rec.messages)]


def by_message_id(rec, eid):
    return [m for m in mails(rec) if m["Message-ID"] == f"<{eid}@orderflow>"]


def test_order_confirmation_and_status_mails(new_db, smtp):
    rec, port = smtp
    db = new_db()
    with start(db, port) as srv:
        shop = Shop(srv, db)
        o = shop.order()
        eid = event_id(db, o["id"])
        assert eid.startswith("evt_")
        (m,) = wait_for(lambda: by_message_id(rec, eid), 60, "the confirmation mail")
        raw = [x for x in rec.messages if parsed(x)["Message-ID"] == f"<{eid}@orderflow>"][0]
        assert raw["mail_from"] == "orders@shop.example"
        assert raw["rcpt_tos"] == [shop.email]
        assert m["Subject"] == f"Order #{o['id']} confirmed"
        assert m["From"].addresses[0].display_name == "OrderFlow Shop"
        assert m["From"].addresses[0].addr_spec == "orders@shop.example"
        assert m["To"].addresses[0].display_name == "Zo\u00eb \u00c4rger"
        assert m["To"].addresses[0].addr_spec == shop.email
        assert m["Date"] is not None and m["Date"].datetime is not None
        assert m.get_content_type() == "text/plain" and m.get_content_charset() == "utf-8"
        body = m.get_content().replace("\r\n", "\n")
        assert "Hello Zo\u00eb \u00c4rger," in body
        assert "\nCaf\u00e9 cr\u00e8me\n    Quantity: 2, unit price: 19.99\n" in body
        assert "\nTea\n    Quantity: 1, unit price: 9.99\n" in body
        assert o["total"] == "49.97" and "Total: 49.97" in body
        assert not m.defects

        # processing: no mail; shipped: one; delivered: none
        shop.status(o["id"], "processing")
        shop.status(o["id"], "shipped")
        shipped = event_id(db, o["id"], "order.status_changed", "shipped")
        (s,) = wait_for(lambda: by_message_id(rec, shipped), 60, "the shipped mail")
        assert s["Subject"] == f"Order #{o['id']} shipped"
        assert "Status: shipped" in s.get_content() and "Total: 49.97" in s.get_content()
        # a cancelled one
        o2 = shop.order()
        shop.status(o2["id"], "cancelled")
        cancelled = event_id(db, o2["id"], "order.status_changed", "cancelled")
        (c,) = wait_for(lambda: by_message_id(rec, cancelled), 60, "the cancelled mail")
        assert c["Subject"] == f"Order #{o2['id']} cancelled"
        assert "Status: cancelled" in c.get_content()
        # every mail delivery row is settled: exactly confirmation x2, shipped, cancelled
        wait_for(lambda: run_psql(db, "SELECT count(*) FROM deliveries WHERE kind = 'mail' "
                                      "AND status <> 'succeeded'") == "0", 60, "settled mail rows")
        assert run_psql(db, "SELECT count(*) FROM deliveries WHERE kind = 'mail'") == "4"
        ids = sorted(x["Message-ID"] for x in mails(rec))
        assert ids == sorted(f"<{e}@orderflow>" for e in
                             (eid, shipped, cancelled, event_id(db, o2["id"])))


def test_inactive_customer_gets_no_mail(new_db, smtp):
    rec, port = smtp
    db = new_db()
    with start(db, port) as srv:
        shop = Shop(srv, db)
        quiet = shop.post("/api/v1/customers", shop.user,
                          {"name": "Quiet", "email": f"q.{uniq()}@example.com"})
        # the jobs process is stopped while the order is placed and its
        # customer deactivated, so the mail is looked at only afterwards
        (jp,) = wait_for(srv.jobs_pids, 15, "the jobs process")
        os.kill(jp, signal.SIGSTOP)
        try:
            o = shop.order(quiet)
            r = srv.req("PATCH", f"/api/v1/customers/{quiet['id']}", token=shop.user,
                        body={"is_active": False})
            assert r.status == 200, r
        finally:
            os.kill(jp, signal.SIGCONT)
        loud = shop.order()          # after the quiet one: its mail is the marker
        eid = event_id(db, loud["id"])
        wait_for(lambda: by_message_id(rec, eid), 60, "the active customer's mail")
        wait_for(lambda: run_psql(db, "SELECT count(*) FROM deliveries WHERE kind = 'mail' "
                                      "AND status = 'pending'") == "0", 60, "settled mail rows")
        assert by_message_id(rec, event_id(db, o["id"])) == []
        assert all(x["rcpt_tos"] != [quiet["email"]] for x in rec.messages)


def test_kill9_every_250ms_every_order_gets_mail_and_webhook(new_db, smtp):
    rec, port = smtp
    db = new_db()
    # retries enough that a slow attempt on a loaded machine (an ASan build
    # beside it) is retried rather than given up: the claim is "every order",
    # and a delivery that goes dead is named below, with its last error
    with Receiver() as hook, start(db, port, "jobs: { lease = 5; };\n",
                                   retry="[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]") as srv:
        shop = Shop(srv, db)
        r = srv.req("POST", "/api/v1/webhooks", token=shop.admin,
                    body={"url": hook.url, "events": ["order.created"]})
        assert r.status == 201, r
        secret = r.json()["secret"]
        orders, kills = [], 0
        for _ in range(24):                     # about 6 s of chaos
            orders += [shop.order()["id"] for _ in range(3)]
            for p in srv.jobs_pids():
                os.kill(p, signal.SIGKILL)
                kills += 1
            time.sleep(0.25)
        assert kills > 0
        want = {event_id(db, oid) for oid in orders}
        assert len(want) == len(orders) and all(e.startswith("evt_") for e in want)

        def mail_ids():
            return [x["Message-ID"][1:].split("@")[0] for x in mails(rec)]

        try:
            wait_for(lambda: want <= set(mail_ids()), 180, "every order's mail")
        except AssertionError:
            raise AssertionError("not every order's mail arrived; deliveries not succeeded: " +
                                 run_psql(db, "SELECT kind, status, attempts, last_error "
                                              "FROM deliveries WHERE status <> 'succeeded'"))
        wait_for(lambda: want <= set(hook.ids()), 180, "every order's webhook")
        wait_for(lambda: run_psql(db, "SELECT count(*) FROM deliveries "
                                      "WHERE status <> 'succeeded'") == "0", 120, "settled rows")
        got_mail, got_hook = mail_ids(), hook.ids()
        mail_dups = len(got_mail) - len(set(got_mail))
        hook_dups = len(got_hook) - len(set(got_hook))
        print(f"kill -9 x{kills}: {len(orders)} orders; mails {len(got_mail)} "
              f"({mail_dups} duplicates), webhooks {len(got_hook)} ({hook_dups} duplicates)")
        assert set(got_mail) == want and set(got_hook) == want     # nothing else, none missing
        assert run_psql(db, "SELECT count(*) FROM deliveries") == str(2 * len(orders))
        # the server's secret signs every one (Standard Webhooks, computed here)
        key = base64.b64decode(secret[len("whsec_"):])
        for h, b, _ in hook.got:
            mac = hmac.new(key, f"{h['webhook-id']}.{h['webhook-timestamp']}.".encode() + b,
                           hashlib.sha256).digest()
            assert "v1," + base64.b64encode(mac).decode() in h["webhook-signature"].split(" ")
            assert json.loads(b)["id"] == h["webhook-id"]
        # a duplicate needs a crash between the send and the write of its result:
        # at most the deliveries in flight per kill (jobs.concurrency = 16)
        assert mail_dups + hook_dups <= kills * 16
