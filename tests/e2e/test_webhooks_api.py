"""The webhook admin API (API.md, Events: Webhooks) against the real binary
and PostgreSQL: create (secret whsec_ + base64 of 32 bytes, shown only in
the create's answer), list (paged by page and by cursor), get, patch, delete (its deliveries go
with it), every 422 rule, 404s, 401 without a token, 403 for a user; the
deliveries list (paged, newest first, API.md's fields) and the manual retry
of a dead delivery (rows inserted with SQL; the jobs process is off)."""
import base64
import json
import re
import uuid

import pytest

from conftest import run_psql
from ofclient import Server, make_admin, register_and_login, token_for

BASE = "/api/v1/webhooks"
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
FIELDS = ["id", "url", "events", "description", "is_active", "created_at"]


def start(db_url, allow_http):
    s = Server(db_url=db_url, workers=2,
               extra_cfg="rate_limit: { login_per_minute = 0; writes_per_minute = 0; };\n"
                         "jobs: { enabled = false; };\n"
                         f"webhooks: {{ allow_http = {'true' if allow_http else 'false'}; }};")
    s.start()
    return s


@pytest.fixture(scope="module")
def srv(db_url):
    s = start(db_url, False)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(srv, db_url):
    email, pw = make_admin(db_url, "wh-admin@x.io")
    return token_for(srv.port, email, pw)


@pytest.fixture(scope="module")
def user(srv):
    return register_and_login(srv.port, "wh-user@x.io")


def uniq():
    return uuid.uuid4().hex[:10]


def create(srv, admin, **kw):
    body = {"url": f"https://hooks.example.com/{uniq()}", "events": ["order.created"]}
    body.update(kw)
    r = srv.req("POST", BASE, token=admin, body=body)
    assert r.status == 201, r
    return r.json()


def errs(r):
    assert r.status == 422, r
    b = r.json()
    assert b["detail"] == "Validation error", b
    return [(tuple(e["loc"]), e["type"]) for e in b["errors"]]


# ---- create / read ----

def test_create_201_shape_and_secret_shown_once(srv, admin):
    r = srv.req("POST", BASE, token=admin,
                body={"url": "https://hooks.example.com/in", "events": ["order.created", "transfer.created"],
                      "description": "Ünïcode shop"})
    assert r.status == 201, r
    w = r.json()
    assert sorted(w) == sorted(FIELDS + ["secret"])
    assert w["url"] == "https://hooks.example.com/in"
    assert w["events"] == ["order.created", "transfer.created"]
    assert w["description"] == "Ünïcode shop" and w["is_active"] is True
    assert TS.match(w["created_at"])
    assert w["secret"].startswith("whsec_")
    raw = base64.b64decode(w["secret"][6:], validate=True)
    assert len(raw) == 32
    g = srv.req("GET", f"{BASE}/{w['id']}", token=admin)
    assert g.status == 200 and "secret" not in g.json()
    assert g.json() == {k: w[k] for k in FIELDS}
    lst = srv.req("GET", f"{BASE}?page_size=100", token=admin).json()
    assert all("secret" not in i for i in lst["items"])
    # two webhooks never share a secret
    assert create(srv, admin)["secret"] != w["secret"]


def test_create_defaults_and_is_active(srv, admin):
    w = create(srv, admin, is_active=False)
    assert w["is_active"] is False and w["description"] is None


def test_list_is_paged(srv, admin):
    for _ in range(3):
        create(srv, admin)
    r = srv.req("GET", f"{BASE}?page=1&page_size=2", token=admin)
    assert r.status == 200
    b = r.json()
    assert set(b) == {"items", "page", "page_size", "total", "total_pages"}
    assert b["page"] == 1 and b["page_size"] == 2 and len(b["items"]) == 2
    assert b["total"] >= 3 and b["total_pages"] == (b["total"] + 1) // 2
    ids = [i["id"] for i in b["items"]]
    assert ids == sorted(ids)
    past = srv.req("GET", f"{BASE}?page=9999&page_size=2", token=admin).json()
    assert past["items"] == [] and past["total"] == b["total"]
    assert errs(srv.req("GET", f"{BASE}?page=0", token=admin)) == [(("query", "page"), "value_error")]
    assert errs(srv.req("GET", f"{BASE}?page_size=101", token=admin))[0][0] == ("query", "page_size")



def walk(srv, admin, path, limit, bound=1000):
    """Every page of a cursor walk: the items in order and the pages' sizes."""
    items, sizes, url = [], [], f"{path}?limit={limit}"
    for _ in range(bound):
        r = srv.req("GET", url, token=admin)
        assert r.status == 200, r
        b = r.json()
        assert set(b) == {"items", "next_cursor"}
        items += b["items"]
        sizes.append(len(b["items"]))
        if b["next_cursor"] is None:
            return items, sizes
        assert re.fullmatch(r"[A-Za-z0-9_-]+", b["next_cursor"]), b["next_cursor"]
        url = f"{path}?limit={limit}&cursor={b['next_cursor']}"
    raise AssertionError("the walk did not end")


def test_list_by_cursor_every_row_once_in_id_order(srv, admin):
    for _ in range(5):
        create(srv, admin)
    by_page = srv.req("GET", f"{BASE}?page=1&page_size=100", token=admin).json()
    assert by_page["total"] <= 100   # one page holds them all here
    items, sizes = walk(srv, admin, BASE, 2)
    assert [w["id"] for w in items] == [w["id"] for w in by_page["items"]]
    assert items == by_page["items"]     # same rendering, no secret
    assert all(n == 2 for n in sizes[:-1]) and 1 <= sizes[-1] <= 2


def test_list_cursor_survives_inserts_and_deletes(srv, admin):
    first = srv.req("GET", f"{BASE}?limit=3", token=admin).json()
    assert len(first["items"]) == 3 and first["next_cursor"] is not None
    seen = {w["id"] for w in first["items"]}
    gone = create(srv, admin)          # after the cursor: appears on a later page
    assert srv.req("DELETE", f"{BASE}/{gone['id']}", token=admin).status == 204
    late = create(srv, admin)
    rest, url = [], f"{BASE}?limit=3&cursor={first['next_cursor']}"
    for _ in range(1000):
        b = srv.req("GET", url, token=admin).json()
        rest += [w["id"] for w in b["items"]]
        if b["next_cursor"] is None:
            break
        url = f"{BASE}?limit=3&cursor={b['next_cursor']}"
    assert not seen & set(rest) and late["id"] in rest and gone["id"] not in rest
    assert rest == sorted(rest) and min(rest) > max(seen)


def test_list_cursor_422s(srv, admin):
    for _ in range(3):
        create(srv, admin)
    cur = srv.req("GET", f"{BASE}?limit=1", token=admin).json()["next_cursor"]
    assert cur is not None
    forged = cur[:-2] + ("AA" if cur[-2:] != "AA" else "BB")
    for q in [f"cursor={forged}", "cursor=not-a-cursor", f"cursor={cur}x", "cursor=%00"]:
        assert errs(srv.req("GET", f"{BASE}?{q}", token=admin)) == \
            [(("query", "cursor"), "value_error")], q
    assert errs(srv.req("GET", f"{BASE}?limit=0", token=admin))[0][0] == ("query", "limit")
    assert errs(srv.req("GET", f"{BASE}?limit=101", token=admin))[0][0] == ("query", "limit")
    assert srv.req("GET", f"{BASE}?page=1&limit=2", token=admin).status == 422
    # a webhooks cursor is not a deliveries cursor (and the reverse)
    w = create(srv, admin)
    assert errs(srv.req("GET", f"{BASE}/{w['id']}/deliveries?cursor={cur}", token=admin)) == \
        [(("query", "cursor"), "value_error")]

def test_unknown_webhook_404(srv, admin):
    for m, path, body in [("GET", f"{BASE}/987654321", None), ("PATCH", f"{BASE}/987654321", {}),
                          ("DELETE", f"{BASE}/987654321", None),
                          ("GET", f"{BASE}/987654321/deliveries", None),
                          ("POST", f"{BASE}/987654321/deliveries/1/retry", None)]:
        r = srv.req(m, path, token=admin, body=body)
        assert r.status == 404 and r.json() == {"detail": "Webhook 987654321 not found"}, (m, path, r)
    assert srv.req("GET", f"{BASE}/abc", token=admin).status == 404


def test_auth_401_and_user_403(srv, user):
    for m, path in [("GET", BASE), ("POST", BASE), ("GET", f"{BASE}/1"), ("PATCH", f"{BASE}/1"),
                    ("DELETE", f"{BASE}/1"), ("GET", f"{BASE}/1/deliveries"),
                    ("POST", f"{BASE}/1/deliveries/1/retry")]:
        body = {} if m in ("POST", "PATCH") else None
        r = srv.req(m, path, body=body)
        assert r.status == 401 and r.header("WWW-Authenticate") == "Bearer", (m, path, r)
        r = srv.req(m, path, body=body, token=user[1])
        assert r.status == 403 and r.json() == {"detail": "Insufficient permissions"}, (m, path, r)


# ---- validation ----

URL_BAD = [
    "http://hooks.example.com/x",          # http:// not allowed by default
    "ftp://hooks.example.com/x",
    "hooks.example.com/x",                 # not absolute
    "/relative",
    "",
    "https://",                            # no host
    "https:///path",
    "https://user:pw@hooks.example.com/x",  # userinfo
    "https://user@hooks.example.com/x",
    "https://hooks.example.com:0/x",       # bad port
    "https://hooks.example.com:99999/x",
    "https://hooks.example.com:/x",
    "https://hooks example.com/x",         # space
    "https://hooks.example.com/\u00e9",   # not ASCII
    "https://hooks.example.com/" + "a" * 1975,   # 2001 characters
]


@pytest.mark.parametrize("url", URL_BAD)
def test_bad_url_422(srv, admin, url):
    r = srv.req("POST", BASE, token=admin, body={"url": url, "events": ["order.created"]})
    assert errs(r) == [(("body", "url"), "value_error")], url


def test_good_urls(srv, admin):
    for url in ["https://hooks.example.com", "HTTPS://Hooks.Example.com:8443/p?q=1#f",
                "https://[::1]:8443/x", "https://127.0.0.1/x",
                "https://hooks.example.com/" + "a" * 1974]:   # 2000 characters
        r = srv.req("POST", BASE, token=admin, body={"url": url, "events": ["order.created"]})
        assert r.status == 201, (url, r)
        assert r.json()["url"] == url


def test_events_422(srv, admin):
    u = "https://hooks.example.com/e"
    cases = [
        ({"url": u}, [(("body", "events"), "missing")]),
        ({"url": u, "events": []}, [(("body", "events"), "value_error")]),
        ({"url": u, "events": "order.created"}, [(("body", "events"), "type_error")]),
        ({"url": u, "events": None}, [(("body", "events"), "type_error")]),
        ({"url": u, "events": ["order.deleted"]}, [(("body", "events", 0), "value_error")]),
        ({"url": u, "events": ["order.created", 5]}, [(("body", "events", 1), "type_error")]),
        ({"url": u, "events": ["order.created", "transfer.created", "order.created"]},
         [(("body", "events", 2), "value_error")]),
        ({"events": ["order.created"]}, [(("body", "url"), "missing")]),
        ({"url": 5, "events": ["order.created"]}, [(("body", "url"), "type_error")]),
        ({"url": u, "events": ["order.created"], "description": "x" * 501},
         [(("body", "description"), "value_error")]),
        ({"url": u, "events": ["order.created"], "description": 7},
         [(("body", "description"), "type_error")]),
        ({"url": u, "events": ["order.created"], "is_active": "yes"},
         [(("body", "is_active"), "type_error")]),
        ({}, [(("body", "url"), "missing"), (("body", "events"), "missing")]),
        ({"url": "ftp://x", "events": ["nope"]},
         [(("body", "url"), "value_error"), (("body", "events", 0), "value_error")]),
    ]
    for body, want in cases:
        assert errs(srv.req("POST", BASE, token=admin, body=body)) == want, body
    ok = srv.req("POST", BASE, token=admin,
                 body={"url": u, "events": ["order.created"], "description": "é" * 500})
    assert ok.status == 201


def test_malformed_and_wrong_content_type(srv, admin):
    r = srv.req("POST", BASE, token=admin, body=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status == 422 and r.json()["errors"][0]["type"] == "json_invalid"
    r = srv.req("POST", BASE, token=admin, body=b"url=x", headers={"Content-Type": "text/plain"})
    assert r.status == 415


def test_allow_http_setting(db_url):
    s = start(db_url, True)
    try:
        email, pw = make_admin(db_url, "wh-admin2@x.io")
        tok = token_for(s.port, email, pw)
        r = s.req("POST", BASE, token=tok, body={"url": "http://hooks.example.com/x", "events": ["order.created"]})
        assert r.status == 201, r
        r = s.req("POST", BASE, token=tok, body={"url": "ftp://hooks.example.com/x", "events": ["order.created"]})
        assert errs(r) == [(("body", "url"), "value_error")]
    finally:
        s.stop()


# ---- patch / delete ----

def test_patch_each_field_and_empty(srv, admin):
    w = create(srv, admin, description="first")
    path = f"{BASE}/{w['id']}"
    r = srv.req("PATCH", path, token=admin, body={})
    assert r.status == 200 and r.json() == {k: w[k] for k in FIELDS}
    r = srv.req("PATCH", path, token=admin, body={"url": "https://other.example.com/h"})
    assert r.status == 200 and r.json()["url"] == "https://other.example.com/h"
    r = srv.req("PATCH", path, token=admin, body={"events": ["order.status_changed", "transfer.created"]})
    assert r.json()["events"] == ["order.status_changed", "transfer.created"]
    r = srv.req("PATCH", path, token=admin, body={"is_active": False})
    assert r.json()["is_active"] is False
    r = srv.req("PATCH", path, token=admin, body={"description": None})
    assert r.json()["description"] is None
    r = srv.req("PATCH", path, token=admin, body={"description": "again"})
    assert r.json()["description"] == "again" and "secret" not in r.json()
    g = srv.req("GET", path, token=admin).json()
    assert g == r.json()
    # the secret is unchanged by a patch
    assert run_psql(srv.db_url, f"SELECT secret FROM webhooks WHERE id = {w['id']}") == w["secret"]


def test_patch_422(srv, admin):
    w = create(srv, admin)
    path = f"{BASE}/{w['id']}"
    for body, want in [({"url": None}, [(("body", "url"), "type_error")]),
                       ({"url": "http://x.example.com"}, [(("body", "url"), "value_error")]),
                       ({"events": []}, [(("body", "events"), "value_error")]),
                       ({"events": None}, [(("body", "events"), "type_error")]),
                       ({"events": ["x"]}, [(("body", "events", 0), "value_error")]),
                       ({"is_active": None}, [(("body", "is_active"), "type_error")]),
                       ({"description": "d" * 501}, [(("body", "description"), "value_error")])]:
        assert errs(srv.req("PATCH", path, token=admin, body=body)) == want, body
    assert srv.req("GET", path, token=admin).json() == {k: w[k] for k in FIELDS}


def seed_deliveries(db_url, webhook_id, n, status="dead"):
    """n events with one delivery each for the webhook; the delivery ids, oldest first."""
    out = run_psql(db_url, f"""
        WITH e AS (
          INSERT INTO events (id, type, payload)
          SELECT 'evt_' || upper(substr(md5(random()::text || g), 1, 26)), 'order.created',
                 '{{"id":"x","type":"order.created","timestamp":"t","data":{{}}}}'::jsonb
          FROM generate_series(1, {n}) g RETURNING seq)
        INSERT INTO deliveries (event_seq, kind, webhook_id, status, attempts, last_status_code,
                                last_error, next_attempt_at)
        SELECT seq, 'webhook', {webhook_id}, '{status}', 7, 500, 'HTTP 500', now() + interval '1 day'
        FROM e ORDER BY seq RETURNING id""")
    return [int(x) for x in out.split()]


def test_delete_204_and_deliveries_go_with_it(srv, admin, db_url):
    w = create(srv, admin)
    seed_deliveries(db_url, w["id"], 2, status="pending")
    r = srv.req("DELETE", f"{BASE}/{w['id']}", token=admin)
    assert r.status == 204 and r.body == b""
    assert srv.req("GET", f"{BASE}/{w['id']}", token=admin).status == 404
    assert run_psql(db_url, f"SELECT count(*) FROM deliveries WHERE webhook_id = {w['id']}") == "0"
    assert srv.req("DELETE", f"{BASE}/{w['id']}", token=admin).status == 404


def test_webhook_writes_are_not_audited(srv, admin, db_url):
    before = run_psql(db_url, "SELECT count(*) FROM audit_log")
    w = create(srv, admin)
    srv.req("PATCH", f"{BASE}/{w['id']}", token=admin, body={"is_active": False})
    srv.req("DELETE", f"{BASE}/{w['id']}", token=admin)
    assert run_psql(db_url, "SELECT count(*) FROM audit_log") == before


# ---- deliveries ----

def test_deliveries_list_paged_newest_first(srv, admin, db_url):
    w = create(srv, admin)
    empty = srv.req("GET", f"{BASE}/{w['id']}/deliveries", token=admin)
    assert empty.status == 200 and empty.json() == {"items": [], "page": 1, "page_size": 20,
                                                    "total": 0, "total_pages": 0}
    ids = seed_deliveries(db_url, w["id"], 5)
    other = create(srv, admin)
    seed_deliveries(db_url, other["id"], 2)
    r = srv.req("GET", f"{BASE}/{w['id']}/deliveries?page=1&page_size=2", token=admin)
    assert r.status == 200, r
    b = r.json()
    assert b["total"] == 5 and b["total_pages"] == 3
    assert [d["id"] for d in b["items"]] == ids[::-1][:2]
    d = b["items"][0]
    assert sorted(d) == sorted(["id", "event_id", "event_type", "status", "attempts",
                                "last_status_code", "last_error", "next_attempt_at",
                                "created_at", "delivered_at"])
    assert d["event_type"] == "order.created" and d["event_id"].startswith("evt_")
    assert d["status"] == "dead" and d["attempts"] == 7 and d["last_status_code"] == 500
    assert d["last_error"] == "HTTP 500" and d["delivered_at"] is None
    assert TS.match(d["next_attempt_at"]) and TS.match(d["created_at"])
    p3 = srv.req("GET", f"{BASE}/{w['id']}/deliveries?page=3&page_size=2", token=admin).json()
    assert [x["id"] for x in p3["items"]] == [ids[0]]
    assert errs(srv.req("GET", f"{BASE}/{w['id']}/deliveries?page_size=0", token=admin))[0][0] == \
        ("query", "page_size")



def test_deliveries_by_cursor_newest_first_and_bound_to_the_webhook(srv, admin, db_url):
    w = create(srv, admin)
    assert srv.req("GET", f"{BASE}/{w['id']}/deliveries?limit=5", token=admin).json() == \
        {"items": [], "next_cursor": None}
    ids = seed_deliveries(db_url, w["id"], 7)
    other = create(srv, admin)
    seed_deliveries(db_url, other["id"], 3)
    items, sizes = walk(srv, admin, f"{BASE}/{w['id']}/deliveries", 3)
    assert [d["id"] for d in items] == ids[::-1] and sizes == [3, 3, 1]
    by_page = srv.req("GET", f"{BASE}/{w['id']}/deliveries?page_size=100", token=admin).json()
    assert items == by_page["items"]
    # a new delivery after the walk began is newer: not on the later pages
    cur = srv.req("GET", f"{BASE}/{w['id']}/deliveries?limit=3", token=admin).json()["next_cursor"]
    newer = seed_deliveries(db_url, w["id"], 1)
    nxt = srv.req("GET", f"{BASE}/{w['id']}/deliveries?limit=3&cursor={cur}", token=admin).json()
    assert [d["id"] for d in nxt["items"]] == ids[::-1][3:6]
    assert newer[0] not in [d["id"] for d in nxt["items"]]
    # the cursor names its webhook: another webhook's list refuses it
    assert errs(srv.req("GET", f"{BASE}/{other['id']}/deliveries?cursor={cur}", token=admin)) == \
        [(("query", "cursor"), "value_error")]
    assert srv.req("GET", f"{BASE}/987654321/deliveries?limit=2", token=admin).status == 404

def test_retry_dead_delivery_202_pending_again(srv, admin, db_url):
    w = create(srv, admin)
    (did,) = seed_deliveries(db_url, w["id"], 1, status="dead")
    r = srv.req("POST", f"{BASE}/{w['id']}/deliveries/{did}/retry", token=admin)
    assert r.status == 202, r
    d = r.json()
    assert d["id"] == did and d["status"] == "pending" and d["attempts"] == 7
    row = run_psql(db_url, f"SELECT status, attempts, next_attempt_at <= now(), lease_until IS NULL "
                           f"FROM deliveries WHERE id = {did}")
    assert row == "pending|7|t|t"
    # again: still pending, still 202
    r = srv.req("POST", f"{BASE}/{w['id']}/deliveries/{did}/retry", token=admin)
    assert r.status == 202 and r.json()["status"] == "pending"


def test_retry_404s_and_succeeded_409(srv, admin, db_url):
    w = create(srv, admin)
    other = create(srv, admin)
    (did,) = seed_deliveries(db_url, other["id"], 1)
    r = srv.req("POST", f"{BASE}/{w['id']}/deliveries/{did}/retry", token=admin)
    assert r.status == 404 and r.json() == {"detail": f"Delivery {did} not found"}
    r = srv.req("POST", f"{BASE}/{w['id']}/deliveries/987654321/retry", token=admin)
    assert r.status == 404 and r.json() == {"detail": "Delivery 987654321 not found"}
    (ok,) = seed_deliveries(db_url, w["id"], 1, status="succeeded")
    r = srv.req("POST", f"{BASE}/{w['id']}/deliveries/{ok}/retry", token=admin)
    assert r.status == 409 and r.json() == {"detail": f"Delivery {ok} already succeeded"}
    assert run_psql(db_url, f"SELECT status FROM deliveries WHERE id = {ok}") == "succeeded"
