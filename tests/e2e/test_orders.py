"""Orders, per API.md's Orders section, against the real binary (2 workers)
and PostgreSQL: create (every 422/409 path, copied names and prices, exact
totals), Idempotency-Key (replay, mismatch, non-stored outcomes, 20 parallel
identical requests -> one order), list/get visibility, filters, sort,
transitions (table, 403/404/409, racing transitions -> one winner, audit
rows), delete."""
import json
import os
import signal
import subprocess
import threading
import time
import uuid

import pytest

from conftest import run_psql
from ofclient import PSQL, Server, make_admin, register_and_login, token_for

BASE = "/api/v1/orders"


@pytest.fixture(scope="module")
def srv(db_url):
    s = Server(db_url=db_url, workers=2,
               extra_cfg="rate_limit: { login_per_minute = 0; writes_per_minute = 0; };")
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(srv, db_url):
    email, pw = make_admin(db_url, "ord-admin@x.io")
    return token_for(srv.port, email, pw)


@pytest.fixture(scope="module")
def user(srv):
    return register_and_login(srv.port, "ord-user@x.io")


@pytest.fixture(scope="module")
def other(srv):
    return register_and_login(srv.port, "ord-other@x.io")


def uniq():
    return uuid.uuid4().hex[:10]


def product(srv, admin, price="19.99", in_stock=True, name=None):
    r = srv.req("POST", "/api/v1/products", token=admin,
                body={"name": name or f"P {uniq()}", "price": price, "in_stock": in_stock})
    assert r.status == 201, r
    return r.json()


def customer(srv, tok, name=None):
    r = srv.req("POST", "/api/v1/customers", token=tok,
                body={"name": name or f"C {uniq()}", "email": f"c.{uniq()}@x.io"})
    assert r.status == 201, r
    return r.json()


@pytest.fixture(scope="module")
def cust(srv, user):
    return customer(srv, user[1], name="Ada")


@pytest.fixture(scope="module")
def lamp(srv, admin):
    return product(srv, admin, price="19.99", name=f"Lamp {uniq()}")


def post(srv, tok, body, key=None, raw=None):
    h = {}
    if key is not None:
        h["Idempotency-Key"] = key
    if raw is not None:
        return srv.req("POST", BASE, body=raw, token=tok,
                       headers=dict(h, **{"Content-Type": "application/json"}))
    return srv.req("POST", BASE, body=body, token=tok, headers=h)


def create(srv, tok, cust_id, items, **extra):
    r = post(srv, tok, dict(customer_id=cust_id, items=items, **extra))
    assert r.status == 201, r
    return r.json()


def errs(r):
    assert r.status == 422, r
    b = r.json()
    assert b["detail"] == "Validation error", b
    return [(tuple(e["loc"]), e["msg"], e["type"]) for e in b["errors"]]


def locs(r):
    return {e[0] for e in errs(r)}


# ---- create ----

def test_create_201_pending_shape_copied_price_and_total(srv, user, cust, lamp, admin):
    p2 = product(srv, admin, price="0.10")
    r = post(srv, user[1], {"customer_id": cust["id"],
                            "items": [{"product_id": lamp["id"], "quantity": 2},
                                      {"product_id": p2["id"], "quantity": 3}]})
    assert r.status == 201, r
    o = r.json()
    assert list(o) == ["id", "customer_id", "customer_name", "status", "total", "notes",
                       "created_by", "items", "created_at", "updated_at"]
    assert o["status"] == "pending"
    assert o["customer_id"] == cust["id"] and o["customer_name"] == "Ada"
    assert o["total"] == "40.28"
    assert o["notes"] is None
    assert o["created_by"] == user[0]["id"]
    assert o["created_at"].endswith("Z") and o["updated_at"].endswith("Z")
    assert [(i["product_id"], i["product_name"], i["quantity"], i["unit_price"]) for i in o["items"]] == [
        (lamp["id"], lamp["name"], 2, "19.99"), (p2["id"], p2["name"], 3, "0.10")]
    assert all(isinstance(i["id"], int) for i in o["items"])
    assert r.header("Idempotent-Replayed") is None
    # GET gives the same document
    g = srv.req("GET", f"{BASE}/{o['id']}", token=user[1])
    assert g.status == 200 and g.json() == o


def test_price_and_name_are_copied_at_order_time(srv, user, cust, admin):
    p = product(srv, admin, price="5.00")
    o = create(srv, user[1], cust["id"], [{"product_id": p["id"], "quantity": 1}], notes="hi")
    assert o["notes"] == "hi"
    r = srv.req("PATCH", f"/api/v1/products/{p['id']}", token=admin,
                body={"price": "7.00", "name": f"Renamed {uniq()}"})
    assert r.status == 200
    g = srv.req("GET", f"{BASE}/{o['id']}", token=user[1]).json()
    assert g["items"][0]["unit_price"] == "5.00" and g["items"][0]["product_name"] == p["name"]
    assert g["total"] == "5.00"
    # deleting the product keeps the item, with product_id null
    assert srv.req("DELETE", f"/api/v1/products/{p['id']}", token=admin).status == 204
    g = srv.req("GET", f"{BASE}/{o['id']}", token=user[1]).json()
    assert g["items"][0]["product_id"] is None
    assert g["items"][0]["product_name"] == p["name"] and g["items"][0]["unit_price"] == "5.00"


def test_total_exact_at_the_money_bound(srv, user, cust, admin):
    p = product(srv, admin, price="99999999.99")
    o = create(srv, user[1], cust["id"], [{"product_id": p["id"], "quantity": 20}])
    assert o["total"] == "1999999999.80"


def test_create_requires_auth(srv, cust, lamp):
    r = srv.req("POST", BASE, body={"customer_id": cust["id"],
                                    "items": [{"product_id": lamp["id"], "quantity": 1}]})
    assert r.status == 401


def test_create_415_and_malformed_json(srv, user):
    r = srv.req("POST", BASE, body="{}", token=user[1], headers={"Content-Type": "text/plain"})
    assert r.status == 415
    r = post(srv, user[1], None, raw="{nope")
    assert r.status == 422 and r.json()["errors"][0]["type"] == "json_invalid"


def test_items_missing_and_empty(srv, user, cust):
    r = post(srv, user[1], {"customer_id": cust["id"]})
    assert errs(r) == [(("body", "items"), "Field required", "missing")]
    r = post(srv, user[1], {"customer_id": cust["id"], "items": []})
    e = errs(r)
    assert [x[0] for x in e] == [("body", "items")] and e[0][2] == "value_error"


def test_all_shape_problems_in_one_422(srv, user, cust, lamp):
    r = post(srv, user[1], {"items": [{"product_id": lamp["id"], "quantity": 0},
                                      {"product_id": lamp["id"], "quantity": -1},
                                      {"quantity": "x"}],
                            "notes": "n" * 501}, key="")
    got = errs(r)
    L = {e[0] for e in got}
    assert ("header", "Idempotency-Key") in L
    assert ("body", "customer_id") in L
    assert ("body", "items", 0, "quantity") in L and ("body", "items", 1, "quantity") in L
    assert ("body", "items", 1, "product_id") in L          # the repeat
    assert ("body", "items", 2, "product_id") in L          # missing
    assert ("body", "items", 2, "quantity") in L            # wrong type
    assert ("body", "notes") in L
    msgs = {e[0]: e[1] for e in got}
    assert msgs[("body", "items", 0, "quantity")] == "Quantity must be positive"
    types = {e[0]: e[2] for e in got}
    assert types[("body", "customer_id")] == "missing"
    assert types[("body", "items", 2, "product_id")] == "missing"
    assert types[("body", "items", 2, "quantity")] == "type_error"


def test_item_limit(srv, user, cust, lamp, admin):
    p2 = product(srv, admin)
    r = post(srv, user[1], {"customer_id": cust["id"],
                            "items": [{"product_id": lamp["id"], "quantity": 15},
                                      {"product_id": p2["id"], "quantity": 6}]})
    assert errs(r) == [(("body", "items"), "Order item limit exceeded", "value_error")]
    # exactly 20 is fine
    o = create(srv, user[1], cust["id"], [{"product_id": lamp["id"], "quantity": 14},
                                         {"product_id": p2["id"], "quantity": 6}])
    assert sum(i["quantity"] for i in o["items"]) == 20


def test_duplicate_product_loc_at_repeat(srv, user, cust, lamp, admin):
    p2 = product(srv, admin)
    r = post(srv, user[1], {"customer_id": cust["id"],
                            "items": [{"product_id": lamp["id"], "quantity": 1},
                                      {"product_id": p2["id"], "quantity": 1},
                                      {"product_id": lamp["id"], "quantity": 1}]})
    assert locs(r) == {("body", "items", 2, "product_id")}


def test_notes_limits(srv, user, cust, lamp):
    o = create(srv, user[1], cust["id"], [{"product_id": lamp["id"], "quantity": 1}], notes="é" * 500)
    assert o["notes"] == "é" * 500
    r = post(srv, user[1], {"customer_id": cust["id"], "notes": "é" * 501,
                            "items": [{"product_id": lamp["id"], "quantity": 1}]})
    assert locs(r) == {("body", "notes")}
    r = post(srv, user[1], {"customer_id": cust["id"], "notes": 5,
                            "items": [{"product_id": lamp["id"], "quantity": 1}]})
    assert errs(r) == [(("body", "notes"), "Input should be a valid string", "type_error")]
    o = create(srv, user[1], cust["id"], [{"product_id": lamp["id"], "quantity": 1}], notes=None)
    assert o["notes"] is None


def test_type_errors(srv, user, cust):
    r = post(srv, user[1], {"customer_id": "abc", "items": "x"})
    assert locs(r) == {("body", "customer_id"), ("body", "items")}
    r = post(srv, user[1], {"customer_id": None, "items": [5]})
    assert locs(r) == {("body", "customer_id"), ("body", "items", 0)}


def test_unknown_customer_and_products_in_one_422(srv, user, lamp):
    r = post(srv, user[1], {"customer_id": 999999,
                            "items": [{"product_id": lamp["id"], "quantity": 1},
                                      {"product_id": 888888, "quantity": 1}]})
    got = errs(r)
    assert {e[0] for e in got} == {("body", "customer_id"), ("body", "items", 1, "product_id")}
    assert all(e[2] == "value_error" for e in got)


def test_inactive_customer_422(srv, user, admin, lamp, db_url):
    c = customer(srv, user[1])
    run_psql(db_url, f"UPDATE customers SET is_active = false WHERE id = {c['id']}")
    r = post(srv, user[1], {"customer_id": c["id"], "items": [{"product_id": lamp["id"], "quantity": 1}]})
    assert locs(r) == {("body", "customer_id")}


def test_out_of_stock_409(srv, user, cust, lamp, admin):
    p = product(srv, admin, in_stock=False)
    r = post(srv, user[1], {"customer_id": cust["id"],
                            "items": [{"product_id": lamp["id"], "quantity": 1},
                                      {"product_id": p["id"], "quantity": 1}]})
    assert r.status == 409
    assert r.json() == {"detail": f"Product {p['id']} is out of stock"}


def test_nothing_written_on_failure(srv, user, cust, lamp, admin, db_url):
    before = run_psql(db_url, "SELECT count(*) FROM orders") + run_psql(db_url, "SELECT count(*) FROM order_items")
    p = product(srv, admin, in_stock=False)
    post(srv, user[1], {"customer_id": cust["id"], "items": [{"product_id": lamp["id"], "quantity": 1},
                                                            {"product_id": p["id"], "quantity": 1}]})
    post(srv, user[1], {"customer_id": cust["id"], "items": [{"product_id": 777777, "quantity": 1}]})
    after = run_psql(db_url, "SELECT count(*) FROM orders") + run_psql(db_url, "SELECT count(*) FROM order_items")
    assert before == after


def test_reused_plans_any_item_count_and_parallel_orders_on_shared_rows(srv, user, cust, admin, db_url):
    # order_refs/order_insert switch to their generic plans after five runs on a
    # connection: 30 orders with 1..4 items each copy every item exactly, 12
    # parallel orders on the same customer and products (row locks FOR NO KEY
    # UPDATE) all succeed whole, and a product out of stock is still a 409.
    ps = [product(srv, admin, price=f"{i + 1}.25") for i in range(4)]
    for k in range(30):
        n = 1 + k % 4
        o = create(srv, user[1], cust["id"],
                   [{"product_id": p["id"], "quantity": q + 1} for q, p in enumerate(ps[:n])])
        assert [(i["product_id"], i["quantity"], i["unit_price"]) for i in o["items"]] == \
            [(p["id"], q + 1, p["price"]) for q, p in enumerate(ps[:n])]
        cents = sum((q + 1) * (q + 1) * 100 + (q + 1) * 25 for q in range(n))
        assert o["total"] == f"{cents // 100}.{cents % 100:02d}"
    got = []

    def go(i):
        got.append(post(srv, user[1], {"customer_id": cust["id"],
                                       "items": [{"product_id": ps[0]["id"], "quantity": 1},
                                                 {"product_id": ps[1]["id"], "quantity": 2}]},
                        key=f"par-{uniq()}-{i}"))
    ts = [threading.Thread(target=go, args=(i,)) for i in range(12)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert [r.status for r in got] == [201] * 12, got
    ids = [str(r.json()["id"]) for r in got]
    assert run_psql(db_url, "SELECT count(*) FROM order_items WHERE order_id IN (%s)" % ",".join(ids)) == "24"
    r = srv.req("PATCH", f"/api/v1/products/{ps[2]['id']}", token=admin, body={"in_stock": False})
    assert r.status == 200, r
    r = post(srv, user[1], {"customer_id": cust["id"],
                            "items": [{"product_id": ps[0]["id"], "quantity": 1},
                                      {"product_id": ps[2]["id"], "quantity": 1}]})
    assert r.status == 409, r
    assert r.json() == {"detail": f"Product {ps[2]['id']} is out of stock"}


# ---- idempotency ----

def test_idempotent_replay_same_value_other_key_order(srv, user, cust, lamp, db_url):
    key = "k-" + uniq()
    body1 = json.dumps({"customer_id": cust["id"], "items": [{"product_id": lamp["id"], "quantity": 2}],
                        "notes": "x"})
    body2 = '{ "notes" : "x", "items":[{"quantity":2,"product_id":%d}], "customer_id": %d }' % (
        lamp["id"], cust["id"])
    r1 = post(srv, user[1], None, key=key, raw=body1)
    assert r1.status == 201 and r1.header("Idempotent-Replayed") is None
    r2 = post(srv, user[1], None, key=key, raw=body2)
    assert r2.status == 201
    assert r2.header("Idempotent-Replayed") == "true"
    assert r2.json() == r1.json()
    n = run_psql(db_url, f"SELECT count(*) FROM orders WHERE notes = 'x' AND id = {r1.json()['id']}")
    assert n == "1"
    assert run_psql(db_url, "SELECT count(*) FROM idempotency_keys WHERE key = '%s'" % key) == "1"


def test_idempotency_different_body_422(srv, user, cust, lamp):
    key = "k-" + uniq()
    r1 = post(srv, user[1], {"customer_id": cust["id"], "items": [{"product_id": lamp["id"], "quantity": 1}]}, key=key)
    assert r1.status == 201
    r2 = post(srv, user[1], {"customer_id": cust["id"], "items": [{"product_id": lamp["id"], "quantity": 2}]}, key=key)
    assert r2.status == 422
    assert r2.json() == {"detail": "Idempotency-Key reused with a different request"}


def test_idempotency_scoped_to_user(srv, user, other, cust, lamp):
    key = "k-" + uniq()
    body = {"customer_id": cust["id"], "items": [{"product_id": lamp["id"], "quantity": 1}]}
    r1 = post(srv, user[1], body, key=key)
    r2 = post(srv, other[1], body, key=key)
    assert r1.status == 201 and r2.status == 201
    assert r2.header("Idempotent-Replayed") is None
    assert r1.json()["id"] != r2.json()["id"]


def test_idempotency_409_out_of_stock_is_replayed(srv, user, cust, admin):
    p = product(srv, admin, in_stock=False)
    key = "k-" + uniq()
    body = {"customer_id": cust["id"], "items": [{"product_id": p["id"], "quantity": 1}]}
    r1 = post(srv, user[1], body, key=key)
    assert r1.status == 409
    # back in stock: the stored 409 is still what this key answers
    assert srv.req("PATCH", f"/api/v1/products/{p['id']}", token=admin, body={"in_stock": True}).status == 200
    r2 = post(srv, user[1], body, key=key)
    assert r2.status == 409 and r2.header("Idempotent-Replayed") == "true"
    assert r2.json() == r1.json()


def test_idempotency_422_is_not_stored(srv, user, cust, lamp, db_url):
    key = "k-" + uniq()
    bad = {"customer_id": 999999, "items": [{"product_id": lamp["id"], "quantity": 1}]}
    r1 = post(srv, user[1], bad, key=key)
    assert r1.status == 422
    assert run_psql(db_url, f"SELECT count(*) FROM idempotency_keys WHERE key = '{key}'") == "0"
    # a corrected retry with the same key runs afresh
    good = {"customer_id": cust["id"], "items": [{"product_id": lamp["id"], "quantity": 1}]}
    r2 = post(srv, user[1], good, key=key)
    assert r2.status == 201 and r2.header("Idempotent-Replayed") is None
    # and an invalid shape with a key stores nothing either
    key2 = "k-" + uniq()
    r3 = post(srv, user[1], {"customer_id": cust["id"], "items": []}, key=key2)
    assert r3.status == 422
    assert run_psql(db_url, f"SELECT count(*) FROM idempotency_keys WHERE key = '{key2}'") == "0"


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_idempotency_key_header_invalid_422(srv, user, cust, lamp, key):
    r = post(srv, user[1], {"customer_id": cust["id"], "items": [{"product_id": lamp["id"], "quantity": 1}]},
             key=key.encode("utf-8").decode("latin-1"))
    assert locs(r) == {("header", "Idempotency-Key")}


def test_idempotency_key_255_ok(srv, user, cust, lamp):
    r = post(srv, user[1], {"customer_id": cust["id"], "items": [{"product_id": lamp["id"], "quantity": 1}]},
             key="~" * 255)
    assert r.status == 201


def test_expired_key_runs_afresh(srv, user, cust, lamp, db_url):
    key = "k-" + uniq()
    body = {"customer_id": cust["id"], "items": [{"product_id": lamp["id"], "quantity": 1}]}
    r1 = post(srv, user[1], body, key=key)
    assert r1.status == 201
    run_psql(db_url, f"UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = '{key}'")
    r2 = post(srv, user[1], {"customer_id": cust["id"], "items": [{"product_id": lamp["id"], "quantity": 3}]},
              key=key)
    assert r2.status == 201 and r2.header("Idempotent-Replayed") is None
    assert r2.json()["id"] != r1.json()["id"]


def test_20_parallel_identical_requests_one_order(srv, user, cust, lamp, db_url):
    key = "par-" + uniq()
    note = "parallel " + key
    body = {"customer_id": cust["id"], "items": [{"product_id": lamp["id"], "quantity": 1}], "notes": note}
    results = [None] * 20
    barrier = threading.Barrier(20)

    def go(i):
        barrier.wait()
        results[i] = post(srv, user[1], body, key=key)

    ts = [threading.Thread(target=go, args=(i,)) for i in range(20)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    ok = [r for r in results if r.status == 201]
    assert all(r.status in (201, 409) for r in results), [r.status for r in results]
    for r in results:
        if r.status == 409:
            assert r.json() == {"detail": "A request with this Idempotency-Key is in progress"}
    assert ok
    assert len({r.body for r in ok}) == 1
    assert sum(1 for r in ok if r.header("Idempotent-Replayed") is None) == 1
    assert run_psql(db_url, f"SELECT count(*) FROM orders WHERE notes = '{note}'") == "1"


# ---- reads ----

def test_get_unknown_404(srv, user):
    r = srv.req("GET", f"{BASE}/99999", token=user[1])
    assert r.status == 404 and r.json() == {"detail": "Order 99999 not found"}


def test_get_someone_elses_404_admin_sees(srv, user, other, cust, lamp, admin):
    o = create(srv, user[1], cust["id"], [{"product_id": lamp["id"], "quantity": 1}])
    r = srv.req("GET", f"{BASE}/{o['id']}", token=other[1])
    assert r.status == 404 and r.json() == {"detail": f"Order {o['id']} not found"}
    assert srv.req("GET", f"{BASE}/{o['id']}", token=admin).status == 200


def test_bad_ids_404(srv, user):
    for bad in ["abc", "0", "-1", "9223372036854775808"]:
        assert srv.req("GET", f"{BASE}/{bad}", token=user[1]).status == 404


def test_list_visibility_filters_sort_paging(srv, admin, cust, lamp):
    u, tok = register_and_login(srv.port, f"lister.{uniq()}@x.io")
    c2 = customer(srv, tok)
    made = []
    for q, c in [(1, cust), (3, c2), (2, cust)]:
        made.append(create(srv, tok, c["id"], [{"product_id": lamp["id"], "quantity": q}]))
    r = srv.req("GET", BASE, token=tok)
    assert r.status == 200
    b = r.json()
    assert b["total"] == 3 and b["page"] == 1 and b["page_size"] == 20 and b["total_pages"] == 1
    assert [o["id"] for o in b["items"]] == [o["id"] for o in reversed(made)]   # -created_at
    assert all(o["created_by"] == u["id"] for o in b["items"])
    b = srv.req("GET", BASE + "?sort=total", token=tok).json()
    assert [o["total"] for o in b["items"]] == ["19.99", "39.98", "59.97"]
    b = srv.req("GET", BASE + "?sort=-total", token=tok).json()
    assert [o["total"] for o in b["items"]] == ["59.97", "39.98", "19.99"]
    b = srv.req("GET", BASE + "?sort=id", token=tok).json()
    assert [o["id"] for o in b["items"]] == sorted(o["id"] for o in made)
    b = srv.req("GET", BASE + "?sort=-id&page=2&page_size=2", token=tok).json()
    assert b["total"] == 3 and b["total_pages"] == 2 and [o["id"] for o in b["items"]] == [made[0]["id"]]
    assert srv.req("GET", BASE + "?page=9", token=tok).json()["items"] == []
    b = srv.req("GET", BASE + f"?customer_id={c2['id']}", token=tok).json()
    assert [o["id"] for o in b["items"]] == [made[1]["id"]]
    assert srv.req("PATCH", f"{BASE}/{made[0]['id']}/status", token=tok,
                   body={"status": "cancelled"}).status == 200
    b = srv.req("GET", BASE + "?status=cancelled", token=tok).json()
    assert [o["id"] for o in b["items"]] == [made[0]["id"]]
    # admin sees everyone's
    b = srv.req("GET", BASE + "?page_size=100", token=admin).json()
    assert b["total"] > 3
    assert len({o["created_by"] for o in b["items"]}) > 1
    for q in ["sort=name", "status=bogus", "customer_id=abc", "customer_id=0", "page=0", "page_size=101"]:
        assert srv.req("GET", BASE + "?" + q, token=tok).status == 422, q
    assert srv.req("GET", BASE).status == 401


# ---- transitions ----

def patch_status(srv, tok, oid, status):
    return srv.req("PATCH", f"{BASE}/{oid}/status", token=tok, body={"status": status})


def test_admin_transition_chain_and_audit(srv, user, cust, lamp, admin, db_url):
    o = create(srv, user[1], cust["id"], [{"product_id": lamp["id"], "quantity": 1}])
    rid = "req-" + uniq()
    r = srv.req("PATCH", f"{BASE}/{o['id']}/status", token=admin, body={"status": "processing"},
                headers={"X-Request-ID": rid})
    assert r.status == 200 and r.json()["status"] == "processing"
    assert r.json()["items"] == o["items"]
    row = run_psql(db_url, f"SELECT action, entity, request_id, details::text FROM audit_log "
                           f"WHERE entity = 'order' AND entity_id = {o['id']}")
    assert row.split("|")[:3] == ["transition", "order", rid]
    assert json.loads(row.split("|")[3]) == {"from": "pending", "to": "processing"}
    assert patch_status(srv, admin, o["id"], "shipped").status == 200
    r = patch_status(srv, admin, o["id"], "pending")
    assert r.status == 409 and r.json() == {"detail": "Invalid transition: shipped -> pending"}
    assert patch_status(srv, admin, o["id"], "delivered").status == 200
    r = patch_status(srv, admin, o["id"], "delivered")
    assert r.status == 409 and r.json() == {"detail": "Invalid transition: delivered -> delivered"}
    n = run_psql(db_url, f"SELECT count(*) FROM audit_log WHERE entity = 'order' AND entity_id = {o['id']}")
    assert n == "3"   # failed transitions write no audit row


ALLOWED = {("pending", "processing"), ("pending", "cancelled"), ("processing", "shipped"),
           ("processing", "cancelled"), ("shipped", "delivered")}
STATUSES = ["pending", "processing", "shipped", "delivered", "cancelled"]


@pytest.mark.parametrize("frm", STATUSES)
def test_transition_table_every_pair(srv, user, cust, lamp, admin, db_url, frm):
    for to in STATUSES:
        o = create(srv, user[1], cust["id"], [{"product_id": lamp["id"], "quantity": 1}])
        run_psql(db_url, f"UPDATE orders SET status = '{frm}' WHERE id = {o['id']}")
        r = patch_status(srv, admin, o["id"], to)
        if (frm, to) in ALLOWED:
            assert r.status == 200 and r.json()["status"] == to, (frm, to, r)
        else:
            assert r.status == 409 and r.json() == {"detail": f"Invalid transition: {frm} -> {to}"}, (frm, to, r)


def test_user_may_only_cancel_own_pending(srv, user, other, cust, lamp, db_url):
    o = create(srv, user[1], cust["id"], [{"product_id": lamp["id"], "quantity": 1}])
    r = patch_status(srv, user[1], o["id"], "processing")
    assert r.status == 403 and r.json() == {"detail": "Insufficient permissions"}
    r = patch_status(srv, other[1], o["id"], "cancelled")
    assert r.status == 404 and r.json() == {"detail": f"Order {o['id']} not found"}
    r = patch_status(srv, user[1], o["id"], "cancelled")
    assert r.status == 200 and r.json()["status"] == "cancelled"
    # users' cancels are not admin writes: no audit row
    assert run_psql(db_url, f"SELECT count(*) FROM audit_log WHERE entity = 'order' AND entity_id = {o['id']}") == "0"
    r = patch_status(srv, user[1], o["id"], "cancelled")
    assert r.status == 409 and r.json() == {"detail": "Invalid transition: cancelled -> cancelled"}
    o2 = create(srv, user[1], cust["id"], [{"product_id": lamp["id"], "quantity": 1}])
    run_psql(db_url, f"UPDATE orders SET status = 'processing' WHERE id = {o2['id']}")
    r = patch_status(srv, user[1], o2["id"], "cancelled")
    assert r.status == 409 and r.json() == {"detail": "Invalid transition: processing -> cancelled"}


def test_transition_422_404(srv, user, admin, cust, lamp):
    o = create(srv, user[1], cust["id"], [{"product_id": lamp["id"], "quantity": 1}])
    r = patch_status(srv, admin, o["id"], "bogus")
    assert locs(r) == {("body", "status")}
    r = srv.req("PATCH", f"{BASE}/{o['id']}/status", token=admin, body={})
    assert errs(r) == [(("body", "status"), "Field required", "missing")]
    r = patch_status(srv, admin, 99999, "processing")
    assert r.status == 404 and r.json() == {"detail": "Order 99999 not found"}


def test_racing_transitions_one_winner(srv, user, cust, lamp, admin):
    for _ in range(5):
        o = create(srv, user[1], cust["id"], [{"product_id": lamp["id"], "quantity": 1}])
        res = [None, None]
        barrier = threading.Barrier(2)

        def go(i):
            barrier.wait()
            res[i] = patch_status(srv, admin, o["id"], "processing")

        ts = [threading.Thread(target=go, args=(i,)) for i in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert sorted(r.status for r in res) == [200, 409], res
        loser = [r for r in res if r.status == 409][0]
        assert loser.json() == {"detail": "Invalid transition: processing -> processing"}


# ---- delete ----

def test_delete_admin_204_with_audit(srv, user, cust, lamp, admin, db_url):
    o = create(srv, user[1], cust["id"], [{"product_id": lamp["id"], "quantity": 1}])
    assert srv.req("DELETE", f"{BASE}/{o['id']}", token=user[1]).status == 403
    r = srv.req("DELETE", f"{BASE}/{o['id']}", token=admin, headers={"X-Request-ID": "del-" + o["created_at"][-8:-1]})
    assert r.status == 204
    assert srv.req("GET", f"{BASE}/{o['id']}", token=admin).status == 404
    assert run_psql(db_url, f"SELECT count(*) FROM order_items WHERE order_id = {o['id']}") == "0"
    assert run_psql(db_url, f"SELECT action FROM audit_log WHERE entity = 'order' AND entity_id = {o['id']}") == "delete"
    r = srv.req("DELETE", f"{BASE}/{o['id']}", token=admin)
    assert r.status == 404 and r.json() == {"detail": f"Order {o['id']} not found"}


# ---- key life cycle: purge, crash mid-run ----

def test_expired_keys_are_purged_by_one_job(db_url, user):
    uid = user[0]["id"]
    old, fresh = "old-" + uniq(), "fresh-" + uniq()
    run_psql(db_url, "INSERT INTO idempotency_keys (user_id, route, key, fingerprint, status, response_body, "
                     "expires_at) VALUES "
                     f"({uid}, 'POST /api/v1/orders', '{old}', 'x', 201, '{{}}', now() - interval '1 hour'), "
                     f"({uid}, 'POST /api/v1/orders', '{fresh}', 'x', 201, '{{}}', now() + interval '1 hour')")
    s = Server(db_url=db_url, workers=2)
    s.start()
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            if run_psql(db_url, f"SELECT count(*) FROM idempotency_keys WHERE key = '{old}'") == "0":
                break
            time.sleep(0.5)
        assert run_psql(db_url, f"SELECT count(*) FROM idempotency_keys WHERE key = '{old}'") == "0"
        assert run_psql(db_url, f"SELECT count(*) FROM idempotency_keys WHERE key = '{fresh}'") == "1"
    finally:
        s.stop()


def wait_sql(db_url, sql, what, timeout=60):
    """Poll sql until it prints something other than 0/empty; that output."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = run_psql(db_url, sql)
        if out not in ("", "0"):
            return out
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def start_holder(db_url, tag, sql):
    """psql running sql then a long pg_sleep, tagged by application_name;
    returns (process, backend pid) once the pg_sleep runs (the locks are held)."""
    holder = subprocess.Popen([PSQL, "-X", "-q", "-d", db_url, "-c",
                               f"SET application_name = '{tag}'; BEGIN; {sql}; SELECT pg_sleep(120); ROLLBACK;"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bpid = wait_sql(db_url, "SELECT pid FROM pg_stat_activity WHERE application_name = "
                            f"'{tag}' AND query LIKE '%pg_sleep(120)%' AND wait_event = 'PgSleep'",
                    "the holder to hold its locks")
    return holder, bpid


def release_holder(db_url, holder, bpid):
    run_psql(db_url, f"SELECT pg_terminate_backend({bpid})")
    holder.wait(30)


def test_worker_killed_mid_run_leaves_no_half_order_and_no_stuck_key(db_url, admin, user, cust):
    s = Server(db_url=db_url, workers=1,
               extra_cfg="rate_limit: { login_per_minute = 0; writes_per_minute = 0; };")
    s.start()
    try:
        p = product(s, admin)
        key = "crash-" + uniq()
        note = "crash " + key
        # hold the product so the run blocks after claiming its key
        holder, bpid = start_holder(db_url, "hold-" + key,
                                    f"SELECT id FROM products WHERE id = {p['id']} FOR UPDATE")
        body = {"customer_id": cust["id"], "items": [{"product_id": p["id"], "quantity": 1}], "notes": note}
        out = {}

        def go():
            try:
                out["r"] = post(s, user[1], body, key=key)
            except OSError as e:
                out["e"] = e

        t = threading.Thread(target=go)
        t.start()
        # kill only once the run is in flight: its key claimed (uncommitted) and
        # its transaction waiting on the holder's row lock
        wait_sql(db_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                         f"AND wait_event_type = 'Lock' AND pid <> {bpid}",
                 "the order's transaction to wait on the product lock")
        for pid in s.worker_pids():
            os.kill(pid, signal.SIGKILL)
        t.join(30)
        release_holder(db_url, holder, bpid)
        assert "r" not in out or out["r"].status >= 500, out
        deadline = time.time() + 10
        while time.time() < deadline:
            if run_psql(db_url, f"SELECT count(*) FROM idempotency_keys WHERE key = '{key}'") == "0":
                break
            time.sleep(0.2)
        assert run_psql(db_url, f"SELECT count(*) FROM idempotency_keys WHERE key = '{key}'") == "0"
        assert run_psql(db_url, f"SELECT count(*) FROM orders WHERE notes = '{note}'") == "0"
        s.wait_workers(1)
        s.wait_healthy()
        deadline = time.time() + 10
        r = None
        while time.time() < deadline:
            r = post(s, user[1], body, key=key)
            if r.status != 503:
                break
            time.sleep(0.2)
        assert r.status == 201 and r.header("Idempotent-Replayed") is None, r
        assert run_psql(db_url, f"SELECT count(*) FROM orders WHERE notes = '{note}'") == "1"
    finally:
        s.stop()


def test_key_held_by_a_running_transaction_409_in_progress(db_url, user, cust, lamp):
    """A key whose first request is still running: the repeat waits on the key
    row; when it gives up (statement_timeout), it answers 409 in progress."""
    s = Server(db_url=db_url, workers=1,
               extra_cfg="rate_limit: { login_per_minute = 0; writes_per_minute = 0; };\n"
                         "database: { statement_timeout = 1000; };")
    s.start()
    try:
        key = "held-" + uniq()
        body = {"customer_id": cust["id"], "items": [{"product_id": lamp["id"], "quantity": 1}]}
        holder, bpid = start_holder(
            db_url, "hold-" + key,
            "INSERT INTO idempotency_keys (user_id, route, key, fingerprint) VALUES "
            f"({user[0]['id']}, 'POST /api/v1/orders', '{key}', 'whatever')")
        r = post(s, user[1], body, key=key)
        assert r.status == 409, r
        assert r.json() == {"detail": "A request with this Idempotency-Key is in progress"}
        # it gave up while the holder still held the key (not after it let go)
        assert run_psql(db_url, f"SELECT count(*) FROM pg_stat_activity WHERE pid = {bpid}") == "1"
        release_holder(db_url, holder, bpid)
        # the holder rolled back: the key is free and the request runs
        r = post(s, user[1], body, key=key)
        assert r.status == 201 and r.header("Idempotent-Replayed") is None, r
    finally:
        s.stop()
