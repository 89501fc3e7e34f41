"""Products (the catalog), per API.md, against the real binary and PostgreSQL:
public reads, admin writes, every 201/200/204/404/409/422, money rules,
filters, sort allowlist, paging, content types, and the audit log of admin
writes (exactly one row with the request's id; none for a failed write)."""
import json
import uuid
from urllib.parse import urlencode

import pytest

from conftest import run_psql
from ofclient import Server, make_admin, register_and_login, token_for

BASE = "/api/v1/products"


@pytest.fixture(scope="module")
def srv(db_url):
    s = Server(db_url=db_url, workers=2, extra_cfg="rate_limit: { login_per_minute = 0; };")
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(srv, db_url):
    email, pw = make_admin(db_url, "prod-admin@x.io")
    return token_for(srv.port, email, pw)


@pytest.fixture(scope="module")
def user(srv):
    return register_and_login(srv.port, "prod-user@x.io")[1]


def uniq():
    return uuid.uuid4().hex[:10]


def create(srv, tok, **body):
    r = srv.req("POST", BASE, body=body, token=tok)
    assert r.status == 201, r
    return r.json()


def errors(r):
    assert r.status == 422, r
    body = r.json()
    assert body["detail"] == "Validation error"
    return {(tuple(e["loc"]), e["type"]) for e in body["errors"]}


def list_(srv, **q):
    r = srv.req("GET", BASE + "?" + urlencode(q))
    assert r.status == 200, r
    return r.json()


# ---- create ----

def test_create_201_shape_trim_default_in_stock(srv, admin):
    u = uniq()
    r = srv.req("POST", BASE, body={"name": f"  Lamp {u}\t", "price": "19.99"}, token=admin)
    assert r.status == 201, r
    p = r.json()
    assert set(p) == {"id", "name", "price", "in_stock", "created_at", "updated_at"}
    assert p["name"] == f"Lamp {u}"
    assert p["price"] == "19.99"
    assert p["in_stock"] is True
    assert p["created_at"].endswith("Z") and p["updated_at"].endswith("Z")


@pytest.mark.parametrize("price,want", [
    ("19.99", "19.99"), (19.99, "19.99"), ("0.10", "0.10"), (0.1, "0.10"), (1e2, "100.00"),
    (100, "100.00"), ("5", "5.00"), ("5.5", "5.50"), (0, "0.00"), ("0", "0.00"),
    ("99999999.99", "99999999.99"), (99999999.99, "99999999.99"),
])
def test_create_price_accepted(srv, admin, price, want):
    p = create(srv, admin, name=f"Price {uniq()}", price=price)
    assert p["price"] == want


@pytest.mark.parametrize("price", [
    "1.234", "19.990", -0.01, "-0.01", -1, "100000000.00", 100000000, 1e9, "abc", "", "1.", ".5",
    "1e2", " 1.00", 1.234,
])
def test_create_price_refused_422(srv, admin, price):
    r = srv.req("POST", BASE, body={"name": f"Bad {uniq()}", "price": price}, token=admin)
    assert errors(r) == {(("body", "price"), "value_error")}


@pytest.mark.parametrize("price", [True, None, [], {}])
def test_create_price_wrong_type_422(srv, admin, price):
    r = srv.req("POST", BASE, body={"name": f"Bad {uniq()}", "price": price}, token=admin)
    assert errors(r) == {(("body", "price"), "type_error")}


def test_create_in_stock_false_and_type(srv, admin):
    assert create(srv, admin, name=f"Out {uniq()}", price=1, in_stock=False)["in_stock"] is False
    r = srv.req("POST", BASE, body={"name": f"X {uniq()}", "price": 1, "in_stock": "no"}, token=admin)
    assert errors(r) == {(("body", "in_stock"), "type_error")}


def test_create_missing_fields_422(srv, admin):
    assert errors(srv.req("POST", BASE, body={}, token=admin)) == {
        (("body", "name"), "missing"), (("body", "price"), "missing")}
    assert errors(srv.req("POST", BASE, body={"name": "only name"}, token=admin)) == {
        (("body", "price"), "missing")}


@pytest.mark.parametrize("name", ["", "  ", "x" * 201, "\u00e9" * 201])
def test_create_bad_name_422(srv, admin, name):
    assert errors(srv.req("POST", BASE, body={"name": name, "price": 1}, token=admin)) == {
        (("body", "name"), "value_error")}


@pytest.mark.parametrize("n", [1, 200])
def test_create_name_bounds_ok(srv, admin, n):
    name = (uniq() + "\u00e9" * 200)[:n]
    assert create(srv, admin, name=name, price=1)["name"] == name


def test_create_duplicate_name_case_insensitive_409(srv, admin):
    u = uniq()
    create(srv, admin, name=f"Desk {u}", price=10)
    for name in (f"Desk {u}", f"DESK {u}", f"  desk {u}  "):
        r = srv.req("POST", BASE, body={"name": name, "price": 10}, token=admin)
        assert r.status == 409, r
        assert r.json() == {"detail": "Product already exists"}


def test_create_needs_admin(srv, user):
    r = srv.req("POST", BASE, body={"name": "x", "price": 1}, token=user)
    assert r.status == 403 and r.json() == {"detail": "Insufficient permissions"}
    r = srv.req("POST", BASE, body={"name": "x", "price": 1})
    assert r.status == 401 and r.header("WWW-Authenticate") == "Bearer"


def test_malformed_json_422_json_invalid(srv, admin):
    r = srv.req("POST", BASE, body='{"name": "x", "price": ', token=admin,
                headers={"Content-Type": "application/json"})
    assert r.status == 422
    errs = r.json()["errors"]
    assert len(errs) == 1 and errs[0]["type"] == "json_invalid" and errs[0]["loc"][0] == "body"


def test_non_object_body_422(srv, admin):
    r = srv.req("POST", BASE, body="[1,2]", token=admin, headers={"Content-Type": "application/json"})
    assert r.status == 422


@pytest.mark.parametrize("ctype", ["application/x-www-form-urlencoded", "text/plain", None])
def test_wrong_content_type_415(srv, admin, ctype):
    headers = {"Content-Type": ctype} if ctype else {}
    r = srv.req("POST", BASE, body=b"name=x&price=1", token=admin, headers=headers)
    assert r.status == 415
    assert r.json() == {"detail": "Unsupported media type"}


def test_json_with_charset_ok(srv, admin):
    r = srv.req("POST", BASE, body=json.dumps({"name": f"Cs {uniq()}", "price": 1}), token=admin,
                headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status == 201


# ---- read (public) ----

def test_get_public_200_and_404(srv, admin):
    p = create(srv, admin, name=f"Get {uniq()}", price="3.50")
    r = srv.req("GET", f"{BASE}/{p['id']}")
    assert r.status == 200 and r.json() == p
    r = srv.req("GET", f"{BASE}/987654321")
    assert r.status == 404 and r.json() == {"detail": "Product 987654321 not found"}


@pytest.mark.parametrize("bad", ["abc", "0", "-1", "9223372036854775808", "1.5"])
def test_bad_id_404(srv, bad):
    r = srv.req("GET", f"{BASE}/{bad}")
    assert r.status == 404 and r.json() == {"detail": "Not Found"}


@pytest.fixture(scope="module")
def catalog(srv, admin):
    tag = "C" + uniq()
    specs = [("banana", "3.00", True), ("Apple", "1.50", False), ("cherry", "10.00", True),
             ("date", "0.99", True), ("Elder", "3.00", False)]
    made = [create(srv, admin, name=f"{n} {tag}", price=pr, in_stock=st) for n, pr, st in specs]
    return tag, made


def test_list_public_envelope(srv, catalog):
    tag, made = catalog
    page = list_(srv, q=tag)
    assert page["total"] == 5 and page["total_pages"] == 1 and page["page"] == 1
    assert page["page_size"] == 20
    assert [p["id"] for p in page["items"]] == sorted(p["id"] for p in made)


def test_list_in_stock_filter(srv, catalog):
    tag, _ = catalog
    assert {p["name"].split()[0] for p in list_(srv, q=tag, in_stock="false")["items"]} == {"Apple", "Elder"}
    assert list_(srv, q=tag, in_stock="true")["total"] == 3
    # FastAPI's other boolean spellings
    for yes in ("1", "yes", "on", "True", "t"):
        assert list_(srv, q=tag, in_stock=yes)["total"] == 3
    for no in ("0", "no", "off", "FALSE", "f"):
        assert list_(srv, q=tag, in_stock=no)["total"] == 2
    r = srv.req("GET", f"{BASE}?in_stock=perhaps")
    assert errors(r) == {(("query", "in_stock"), "type_error")} or r.status == 422


def test_list_q_case_insensitive(srv, catalog):
    tag, _ = catalog
    assert [p["name"] for p in list_(srv, q=f"CHERRY {tag.lower()}")["items"]] == [f"cherry {tag}"]


def test_list_q_percent_and_underscore_literal(srv, admin):
    u = uniq()
    create(srv, admin, name=f"50% off {u}", price=1)
    create(srv, admin, name=f"500 off {u}", price=1)
    create(srv, admin, name=f"a_b {u}", price=1)
    create(srv, admin, name=f"axb {u}", price=1)
    assert [p["name"] for p in list_(srv, q=f"50% off {u}")["items"]] == [f"50% off {u}"]
    assert [p["name"] for p in list_(srv, q=f"a_b {u}")["items"]] == [f"a_b {u}"]
    for p in list_(srv, q="%", page_size=100)["items"]:
        assert "%" in p["name"]
    for p in list_(srv, q="_", page_size=100)["items"]:
        assert "_" in p["name"]


def test_list_sorts(srv, catalog):
    tag, made = catalog
    ids = sorted(p["id"] for p in made)
    assert [p["id"] for p in list_(srv, q=tag, sort="id")["items"]] == ids
    assert [p["id"] for p in list_(srv, q=tag, sort="-id")["items"]] == ids[::-1]
    names = [p["name"] for p in list_(srv, q=tag, sort="name")["items"]]
    assert names == sorted(names, key=lambda n: n.encode())
    assert [p["name"] for p in list_(srv, q=tag, sort="-name")["items"]] == names[::-1]
    by_price = list_(srv, q=tag, sort="price")["items"]
    cents = [int(p["price"].replace(".", "")) for p in by_price]
    assert cents == sorted(cents)
    # ties (two at 3.00) broken by id, both directions
    ties = [p["id"] for p in by_price if p["price"] == "3.00"]
    assert ties == sorted(ties)
    rev = list_(srv, q=tag, sort="-price")["items"]
    assert [p["id"] for p in rev] == [p["id"] for p in by_price][::-1]


@pytest.mark.parametrize("q,loc", [
    ("sort=created_at", "sort"), ("sort=-updated_at", "sort"), ("sort=name;DROP", "sort"),
    ("sort=", "sort"), ("sort=ID", "sort"),
    ("page=0", "page"), ("page=-3", "page"), ("page=x", "page"),
    ("page_size=0", "page_size"), ("page_size=101", "page_size"), ("page_size=1.5", "page_size"),
])
def test_list_bad_query_422(srv, q, loc):
    r = srv.req("GET", f"{BASE}?{q}")
    assert r.status == 422, r
    assert [e["loc"] for e in r.json()["errors"]] == [["query", loc]]


def test_list_reports_every_query_problem(srv):
    r = srv.req("GET", f"{BASE}?page=0&page_size=500&sort=nope")
    assert r.status == 422
    assert sorted(e["loc"][1] for e in r.json()["errors"]) == ["page", "page_size", "sort"]


def test_list_paging_totals_across_pages(srv, admin):
    tag = "P" + uniq()
    ids = [create(srv, admin, name=f"pg{i:02d} {tag}", price=i)["id"] for i in range(11)]
    seen = []
    for page in range(1, 5):
        p = list_(srv, q=tag, page=page, page_size=3)
        assert p["total"] == 11 and p["total_pages"] == 4 and p["page"] == page
        seen += [x["id"] for x in p["items"]]
    assert seen == ids
    past = list_(srv, q=tag, page=5, page_size=3)
    assert past["items"] == [] and past["total"] == 11 and past["total_pages"] == 4
    one = list_(srv, q=tag, page_size=100)
    assert len(one["items"]) == 11 and one["total_pages"] == 1
    assert list_(srv, q="nothing-" + tag) == {"items": [], "page": 1, "page_size": 20,
                                              "total": 0, "total_pages": 0}


# ---- patch ----

def test_patch_subset_200(srv, admin):
    p = create(srv, admin, name=f"Patch {uniq()}", price="5.00")
    r = srv.req("PATCH", f"{BASE}/{p['id']}", body={"price": 7.25}, token=admin)
    assert r.status == 200, r
    got = r.json()
    assert got["price"] == "7.25" and got["name"] == p["name"] and got["in_stock"] is True
    assert got["created_at"] == p["created_at"]
    r = srv.req("PATCH", f"{BASE}/{p['id']}", body={"in_stock": False, "name": "  Renamed " + p["name"]},
                token=admin)
    assert r.status == 200
    assert r.json()["in_stock"] is False and r.json()["name"] == "Renamed " + p["name"]


def test_patch_empty_unchanged(srv, admin):
    p = create(srv, admin, name=f"Empty {uniq()}", price=1)
    r = srv.req("PATCH", f"{BASE}/{p['id']}", body={}, token=admin)
    assert r.status == 200 and r.json() == p


@pytest.mark.parametrize("field", ["name", "price", "in_stock"])
def test_patch_null_422(srv, admin, field):
    p = create(srv, admin, name=f"Null {uniq()}", price=1)
    r = srv.req("PATCH", f"{BASE}/{p['id']}", body={field: None}, token=admin)
    assert errors(r) == {(("body", field), "type_error")}
    assert srv.req("GET", f"{BASE}/{p['id']}").json() == p


def test_patch_rules_422(srv, admin):
    p = create(srv, admin, name=f"Rules {uniq()}", price=1)
    r = srv.req("PATCH", f"{BASE}/{p['id']}", body={"name": "", "price": "-0.01"}, token=admin)
    assert errors(r) == {(("body", "name"), "value_error"), (("body", "price"), "value_error")}


def test_patch_duplicate_409_and_unknown_404(srv, admin):
    u = uniq()
    create(srv, admin, name=f"Taken {u}", price=1)
    p = create(srv, admin, name=f"Other {u}", price=1)
    r = srv.req("PATCH", f"{BASE}/{p['id']}", body={"name": f"TAKEN {u}"}, token=admin)
    assert r.status == 409 and r.json() == {"detail": "Product already exists"}
    r = srv.req("PATCH", f"{BASE}/{p['id']}", body={"name": f"OTHER {u}"}, token=admin)
    assert r.status == 200 and r.json()["name"] == f"OTHER {u}"
    r = srv.req("PATCH", f"{BASE}/987654321", body={"price": 1}, token=admin)
    assert r.status == 404 and r.json() == {"detail": "Product 987654321 not found"}


def test_patch_needs_admin(srv, admin, user):
    p = create(srv, admin, name=f"Adm {uniq()}", price=1)
    assert srv.req("PATCH", f"{BASE}/{p['id']}", body={"price": 2}, token=user).status == 403
    assert srv.req("PATCH", f"{BASE}/{p['id']}", body={"price": 2}).status == 401


# ---- delete ----

def test_delete_204_then_404(srv, admin, user):
    p = create(srv, admin, name=f"Gone {uniq()}", price=1)
    assert srv.req("DELETE", f"{BASE}/{p['id']}", token=user).status == 403
    r = srv.req("DELETE", f"{BASE}/{p['id']}", token=admin)
    assert r.status == 204 and r.body == b""
    assert srv.req("GET", f"{BASE}/{p['id']}").status == 404
    r = srv.req("DELETE", f"{BASE}/{p['id']}", token=admin)
    assert r.status == 404 and r.json() == {"detail": f"Product {p['id']} not found"}


def test_delete_keeps_order_items(srv, admin, db_url):
    p = create(srv, admin, name=f"Sold {uniq()}", price="2.50")
    run_psql(db_url, f"""
        WITH c AS (INSERT INTO customers (name, email) VALUES ('Buyer', 'buyer.{p['id']}@x.io') RETURNING id),
             o AS (INSERT INTO orders (customer_id, total_cents) SELECT id, 250 FROM c RETURNING id)
        INSERT INTO order_items (order_id, product_id, product_name, quantity, unit_price_cents)
        SELECT id, {p['id']}, '{p['name']}', 1, 250 FROM o""")
    assert srv.req("DELETE", f"{BASE}/{p['id']}", token=admin).status == 204
    row = run_psql(db_url, f"SELECT coalesce(product_id::text, 'null') || ' ' || product_name || ' ' "
                           f"|| unit_price_cents FROM order_items WHERE product_name = '{p['name']}'")
    assert row == f"null {p['name']} 250"


# ---- audit ----

def audit(db_url, pid):
    out = run_psql(db_url, "SELECT action, request_id, actor_id, details::text FROM audit_log "
                           f"WHERE entity = 'product' AND entity_id = {int(pid)} ORDER BY id")
    return [line.split("|") for line in out.splitlines() if line]


def test_admin_update_writes_one_audit_row_with_request_id(srv, admin, db_url):
    p = create(srv, admin, name=f"Aud {uniq()}", price=1)
    before = audit(db_url, p["id"])
    assert [r[0] for r in before] == ["create"]
    rid = "req-" + uniq()
    r = srv.req("PATCH", f"{BASE}/{p['id']}", body={"price": "2.00"}, token=admin,
                headers={"X-Request-ID": rid})
    assert r.status == 200 and r.header("X-Request-ID") == rid
    rows = audit(db_url, p["id"])
    assert len(rows) == 2
    action, req_id, actor, details = rows[1]
    assert action == "update" and req_id == rid and actor.isdigit()
    assert json.loads(details).get("price") == "2.00"


def test_failed_update_writes_no_audit_row(srv, admin, db_url):
    u = uniq()
    create(srv, admin, name=f"First {u}", price=1)
    p = create(srv, admin, name=f"Second {u}", price=1)
    n = len(audit(db_url, p["id"]))
    r = srv.req("PATCH", f"{BASE}/{p['id']}", body={"name": f"first {u}"}, token=admin,
                headers={"X-Request-ID": "fail-" + u})
    assert r.status == 409
    assert len(audit(db_url, p["id"])) == n
    assert run_psql(db_url, f"SELECT count(*) FROM audit_log WHERE request_id = 'fail-{u}'") == "0"
    # a 422 writes nothing either
    r = srv.req("PATCH", f"{BASE}/{p['id']}", body={"price": "1.234"}, token=admin,
                headers={"X-Request-ID": "bad-" + u})
    assert r.status == 422
    assert run_psql(db_url, f"SELECT count(*) FROM audit_log WHERE request_id = 'bad-{u}'") == "0"


def test_create_and_delete_audited(srv, admin, db_url):
    rid_c, rid_d = "c-" + uniq(), "d-" + uniq()
    r = srv.req("POST", BASE, body={"name": f"Au {uniq()}", "price": 1}, token=admin,
                headers={"X-Request-ID": rid_c})
    assert r.status == 201
    pid = r.json()["id"]
    assert srv.req("DELETE", f"{BASE}/{pid}", token=admin, headers={"X-Request-ID": rid_d}).status == 204
    rows = audit(db_url, pid)
    assert [(a, q) for a, q, _, _ in rows] == [("create", rid_c), ("delete", rid_d)]
