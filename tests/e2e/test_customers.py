"""Customers, per API.md's Customers section, against the real binary and
PostgreSQL: every route, field rule, filter, status and error body, and
delete-or-deactivate (with its audit row) once the customer has orders."""
import uuid

import pytest

from conftest import run_psql
from ofclient import Server, make_admin, register_and_login, token_for

BASE = "/api/v1/customers"


@pytest.fixture(scope="module")
def srv(db_url):
    s = Server(db_url=db_url, workers=2, extra_cfg="rate_limit: { login_per_minute = 0; };")
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(srv, db_url):
    email, pw = make_admin(db_url, "cust-admin@x.io")
    return token_for(srv.port, email, pw)


@pytest.fixture(scope="module")
def user(srv):
    return register_and_login(srv.port, "cust-user@x.io")[1]


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


# ---- create ----

def test_create_201_shape_defaults_trim_and_lowercase(srv, user):
    u = uniq()
    r = srv.req("POST", BASE, body={"name": f"  Ada {u}  ", "email": f"  Ada.{u}@Example.COM "},
                token=user)
    assert r.status == 201, r
    c = r.json()
    assert set(c) == {"id", "name", "email", "tier", "is_active", "created_at"}
    assert c["name"] == f"Ada {u}"
    assert c["email"] == f"ada.{u}@example.com"
    assert c["tier"] == "free"
    assert c["is_active"] is True
    assert isinstance(c["id"], int) and c["id"] > 0
    assert c["created_at"].endswith("Z") and "T" in c["created_at"]


@pytest.mark.parametrize("tier", ["free", "pro", "enterprise"])
def test_create_each_tier(srv, user, tier):
    c = create(srv, user, name="T", email=f"t.{uniq()}@x.io", tier=tier)
    assert c["tier"] == tier


def test_create_requires_auth_401(srv):
    r = srv.req("POST", BASE, body={"name": "A", "email": f"a{uniq()}@x.io"})
    assert r.status == 401
    assert r.header("WWW-Authenticate") == "Bearer"
    assert r.json() == {"detail": "Could not validate credentials"}


def test_create_duplicate_email_case_insensitive_409(srv, user, admin):
    u = uniq()
    create(srv, user, name="One", email=f"dup.{u}@x.io")
    r = srv.req("POST", BASE, body={"name": "Two", "email": f" DUP.{u}@X.IO"}, token=admin)
    assert r.status == 409
    assert r.json() == {"detail": "Customer email already exists"}


def test_create_missing_fields_422(srv, user):
    assert errors(srv.req("POST", BASE, body={}, token=user)) == {
        (("body", "name"), "missing"), (("body", "email"), "missing")}


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "\u00e9" * 201])
def test_create_bad_name_422(srv, user, name):
    r = srv.req("POST", BASE, body={"name": name, "email": f"n{uniq()}@x.io"}, token=user)
    assert errors(r) == {(("body", "name"), "value_error")}


@pytest.mark.parametrize("name", ["x", "x" * 200, "\u00e9" * 200, "  " + "y" * 200 + "  "])
def test_create_name_bounds_ok(srv, user, name):
    c = create(srv, user, name=name, email=f"n{uniq()}@x.io")
    assert c["name"] == name.strip()


@pytest.mark.parametrize("email", [
    "plain", "a@b", "@x.io", "a@@x.io", "a@b@x.io", "a b@x.io", "a@.io", "a@io.",
    "x" * 250 + "@x.io",
])
def test_create_bad_email_422(srv, user, email):
    r = srv.req("POST", BASE, body={"name": "E", "email": email}, token=user)
    assert errors(r) == {(("body", "email"), "value_error")}


def test_create_bad_tier_422(srv, user):
    for tier in ["gold", "Free", ""]:
        r = srv.req("POST", BASE, body={"name": "E", "email": f"e{uniq()}@x.io", "tier": tier},
                    token=user)
        assert errors(r) == {(("body", "tier"), "value_error")}


def test_create_type_errors_and_null_422(srv, user):
    r = srv.req("POST", BASE, body={"name": 5, "email": None, "tier": 1, "is_active": "yes"},
                token=user)
    assert errors(r) == {(("body", "name"), "type_error"), (("body", "email"), "type_error"),
                         (("body", "tier"), "type_error"), (("body", "is_active"), "type_error")}


def test_create_reports_every_problem(srv, user):
    r = srv.req("POST", BASE, body={"name": "", "email": "nope", "tier": "gold"}, token=user)
    assert errors(r) == {(("body", "name"), "value_error"), (("body", "email"), "value_error"),
                         (("body", "tier"), "value_error")}


def test_create_unknown_fields_ignored(srv, user):
    c = create(srv, user, name="U", email=f"u{uniq()}@x.io", id=999999, color="red")
    assert c["id"] != 999999


def test_create_malformed_json_422(srv, user):
    r = srv.req("POST", BASE, body='{"name": "x",', token=user,
                headers={"Content-Type": "application/json"})
    assert r.status == 422
    assert [e["type"] for e in r.json()["errors"]] == ["json_invalid"]


def test_create_form_body_415(srv, user):
    r = srv.req("POST", BASE, body="name=x&email=x%40x.io", token=user,
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 415
    assert r.json() == {"detail": "Unsupported media type"}


# ---- read ----

def test_get_200_and_404(srv, user):
    c = create(srv, user, name="G", email=f"g{uniq()}@x.io")
    r = srv.req("GET", f"{BASE}/{c['id']}", token=user)
    assert r.status == 200 and r.json() == c
    r = srv.req("GET", f"{BASE}/987654321", token=user)
    assert r.status == 404
    assert r.json() == {"detail": "Customer 987654321 not found"}


def test_get_requires_auth(srv):
    assert srv.req("GET", f"{BASE}/1").status == 401
    assert srv.req("GET", BASE).status == 401


@pytest.mark.parametrize("bad", ["abc", "0", "-1", "9223372036854775808"])
def test_bad_ids_404_not_found(srv, user, bad):
    r = srv.req("GET", f"{BASE}/{bad}", token=user)
    assert r.status == 404
    assert r.json() == {"detail": "Not Found"}


# ---- list ----

@pytest.fixture(scope="module")
def listing(srv, user):
    """A set of customers tagged with one token, so list checks see only them."""
    tag = "L" + uniq()
    specs = [("Carol", "free", True), ("alice", "pro", True), ("Bob", "enterprise", True),
             ("dave", "pro", False), ("Eve", "free", False)]
    made = []
    for name, tier, active in specs:
        made.append(create(srv, user, name=f"{name} {tag}", email=f"{name.lower()}.{tag}@list.io",
                           tier=tier, is_active=active))
    return tag, made


def list_(srv, tok, **q):
    from urllib.parse import urlencode
    r = srv.req("GET", BASE + "?" + urlencode(q), token=tok)
    assert r.status == 200, r
    return r.json()


def test_list_envelope_and_filters(srv, user, listing):
    tag, made = listing
    page = list_(srv, user, q=tag)
    assert set(page) == {"items", "page", "page_size", "total", "total_pages"}
    assert page["total"] == 5 and page["total_pages"] == 1
    assert page["page"] == 1 and page["page_size"] == 20
    assert [c["id"] for c in page["items"]] == sorted(c["id"] for c in made)
    assert {c["name"].split()[0] for c in list_(srv, user, q=tag, tier="pro")["items"]} == {"alice", "dave"}
    assert {c["name"].split()[0] for c in list_(srv, user, q=tag, is_active="false")["items"]} == {"dave", "Eve"}
    assert list_(srv, user, q=tag, is_active="no")["total"] == 2
    assert list_(srv, user, q=tag, is_active="1")["total"] == 3
    both = list_(srv, user, q=tag, tier="free", is_active="true")
    assert [c["name"].split()[0] for c in both["items"]] == ["Carol"]


def test_list_q_matches_name_or_email_case_insensitive(srv, user, listing):
    tag, _ = listing
    assert [c["name"] for c in list_(srv, user, q=f"ALICE {tag}")["items"]] == [f"alice {tag}"]
    # the email domain is only in the email
    assert list_(srv, user, q=f"{tag.upper()}@LIST.IO")["total"] == 5
    assert list_(srv, user, q=f"bob.{tag}@")["total"] == 1


def test_list_q_is_literal(srv, user):
    tag = uniq()
    create(srv, user, name=f"50% {tag}", email=f"p.{tag}@x.io")
    create(srv, user, name=f"500 {tag}", email=f"q.{tag}@x.io")
    create(srv, user, name=f"a_b {tag}", email=f"r.{tag}@x.io")
    create(srv, user, name=f"axb {tag}", email=f"s.{tag}@x.io")
    assert [c["name"] for c in list_(srv, user, q=f"50% {tag}")["items"]] == [f"50% {tag}"]
    assert [c["name"] for c in list_(srv, user, q=f"a_b {tag}")["items"]] == [f"a_b {tag}"]
    for c in list_(srv, user, q="%", page_size=100)["items"]:
        assert "%" in c["name"] or "%" in c["email"]
    for c in list_(srv, user, q="_", page_size=100)["items"]:
        assert "_" in c["name"] or "_" in c["email"]


def test_list_sorts(srv, user, listing):
    tag, made = listing
    ids = sorted(c["id"] for c in made)
    assert [c["id"] for c in list_(srv, user, q=tag, sort="id")["items"]] == ids
    assert [c["id"] for c in list_(srv, user, q=tag, sort="-id")["items"]] == ids[::-1]
    names = [c["name"] for c in list_(srv, user, q=tag, sort="name")["items"]]
    assert names == sorted(names, key=lambda n: n.encode())   # byte order (C collation)
    rnames = [c["name"] for c in list_(srv, user, q=tag, sort="-name")["items"]]
    assert rnames == names[::-1]


@pytest.mark.parametrize("q,loc", [
    ("sort=email", "sort"), ("sort=created_at", "sort"), ("sort=", "sort"),
    ("tier=gold", "tier"), ("is_active=maybe", "is_active"),
    ("page=0", "page"), ("page=-1", "page"), ("page=abc", "page"),
    ("page_size=0", "page_size"), ("page_size=101", "page_size"), ("page_size=x", "page_size"),
])
def test_list_bad_query_422(srv, user, q, loc):
    r = srv.req("GET", f"{BASE}?{q}", token=user)
    assert r.status == 422, r
    assert [e["loc"] for e in r.json()["errors"]] == [["query", loc]]


def test_list_paging_totals_across_pages(srv, user):
    tag = "P" + uniq()
    ids = [create(srv, user, name=f"p{i} {tag}", email=f"p{i}.{tag}@x.io")["id"] for i in range(7)]
    seen = []
    for page in (1, 2, 3):
        p = list_(srv, user, q=tag, page=page, page_size=3)
        assert p["total"] == 7 and p["total_pages"] == 3
        assert p["page"] == page and p["page_size"] == 3
        seen += [c["id"] for c in p["items"]]
    assert seen == ids
    past = list_(srv, user, q=tag, page=9, page_size=3)
    assert past["items"] == [] and past["total"] == 7 and past["total_pages"] == 3
    none = list_(srv, user, q="no-such-customer-" + tag)
    assert none == {"items": [], "page": 1, "page_size": 20, "total": 0, "total_pages": 0}
    assert len(list_(srv, user, page_size=100)["items"]) <= 100


# ---- patch ----

def test_patch_subset_200(srv, user):
    c = create(srv, user, name="Pat", email=f"pat{uniq()}@x.io")
    r = srv.req("PATCH", f"{BASE}/{c['id']}", body={"tier": "enterprise", "name": "  Patty "},
                token=user)
    assert r.status == 200, r
    got = r.json()
    assert got == dict(c, tier="enterprise", name="Patty")
    r = srv.req("PATCH", f"{BASE}/{c['id']}", body={"email": " NEW.Pat@X.io", "is_active": False},
                token=user)
    assert r.status == 200
    assert r.json()["email"] == "new.pat@x.io" and r.json()["is_active"] is False
    r = srv.req("GET", f"{BASE}/{c['id']}", token=user)
    assert r.json()["email"] == "new.pat@x.io"


def test_patch_empty_body_unchanged(srv, user):
    c = create(srv, user, name="Same", email=f"same{uniq()}@x.io")
    r = srv.req("PATCH", f"{BASE}/{c['id']}", body={}, token=user)
    assert r.status == 200 and r.json() == c


@pytest.mark.parametrize("field", ["name", "email", "tier", "is_active"])
def test_patch_null_422(srv, user, field):
    c = create(srv, user, name="Nul", email=f"nul{uniq()}@x.io")
    r = srv.req("PATCH", f"{BASE}/{c['id']}", body={field: None}, token=user)
    assert errors(r) == {(("body", field), "type_error")}
    assert srv.req("GET", f"{BASE}/{c['id']}", token=user).json() == c


def test_patch_rules_422(srv, user):
    c = create(srv, user, name="Rul", email=f"rul{uniq()}@x.io")
    r = srv.req("PATCH", f"{BASE}/{c['id']}", body={"name": " ", "email": "x@y", "tier": "PRO"},
                token=user)
    assert errors(r) == {(("body", "name"), "value_error"), (("body", "email"), "value_error"),
                         (("body", "tier"), "value_error")}


def test_patch_duplicate_email_409(srv, user):
    u = uniq()
    create(srv, user, name="A", email=f"a.{u}@x.io")
    b = create(srv, user, name="B", email=f"b.{u}@x.io")
    r = srv.req("PATCH", f"{BASE}/{b['id']}", body={"email": f"A.{u}@X.IO"}, token=user)
    assert r.status == 409
    assert r.json() == {"detail": "Customer email already exists"}
    # its own email, differently cased, is not a conflict
    r = srv.req("PATCH", f"{BASE}/{b['id']}", body={"email": f"B.{u}@x.io"}, token=user)
    assert r.status == 200


def test_patch_unknown_404(srv, user):
    r = srv.req("PATCH", f"{BASE}/987654321", body={"name": "x"}, token=user)
    assert r.status == 404
    assert r.json() == {"detail": "Customer 987654321 not found"}


def test_patch_415_and_json_invalid(srv, user):
    c = create(srv, user, name="Ct", email=f"ct{uniq()}@x.io")
    r = srv.req("PATCH", f"{BASE}/{c['id']}", body="name=x", token=user,
                headers={"Content-Type": "text/plain"})
    assert r.status == 415
    r = srv.req("PATCH", f"{BASE}/{c['id']}", body="{nope", token=user,
                headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status == 422 and r.json()["errors"][0]["type"] == "json_invalid"


# ---- delete ----

def audit_rows(db_url, cid):
    out = run_psql(db_url, "SELECT action || '|' || details::text || '|' || coalesce(request_id, '') "
                           f"FROM audit_log WHERE entity = 'customer' AND entity_id = {int(cid)} "
                           "ORDER BY id")
    return [line.split("|") for line in out.splitlines() if line]


def test_delete_user_403_admin_204(srv, user, admin, db_url):
    c = create(srv, user, name="Del", email=f"del{uniq()}@x.io")
    r = srv.req("DELETE", f"{BASE}/{c['id']}", token=user)
    assert r.status == 403
    assert r.json() == {"detail": "Insufficient permissions"}
    assert audit_rows(db_url, c["id"]) == []
    rid = "del-" + uniq()
    r = srv.req("DELETE", f"{BASE}/{c['id']}", token=admin, headers={"X-Request-ID": rid})
    assert r.status == 204 and r.body == b""
    assert srv.req("GET", f"{BASE}/{c['id']}", token=user).status == 404
    rows = audit_rows(db_url, c["id"])
    assert len(rows) == 1 and rows[0][0] == "delete" and rows[0][2] == rid
    r = srv.req("DELETE", f"{BASE}/{c['id']}", token=admin)
    assert r.status == 404
    assert r.json() == {"detail": f"Customer {c['id']} not found"}
    assert len(audit_rows(db_url, c["id"])) == 1


def test_delete_requires_auth_401(srv):
    r = srv.req("DELETE", f"{BASE}/1")
    assert r.status == 401 and r.header("WWW-Authenticate") == "Bearer"


def test_delete_with_orders_deactivates(srv, user, admin, db_url):
    c = create(srv, user, name="Has Orders", email=f"ord{uniq()}@x.io")
    run_psql(db_url, f"INSERT INTO orders (customer_id, status, total_cents) VALUES ({c['id']}, 'pending', 0)")
    rid = "deact-" + uniq()
    r = srv.req("DELETE", f"{BASE}/{c['id']}", token=admin, headers={"X-Request-ID": rid})
    assert r.status == 204, r
    got = srv.req("GET", f"{BASE}/{c['id']}", token=user)
    assert got.status == 200
    assert got.json() == dict(c, is_active=False)
    rows = audit_rows(db_url, c["id"])
    assert len(rows) == 1
    assert rows[0][0] == "delete" and rows[0][2] == rid
    import json
    assert json.loads(rows[0][1]) == {"deactivated": True}
    # the order is still there
    assert run_psql(db_url, f"SELECT count(*) FROM orders WHERE customer_id = {c['id']}") == "1"
    assert run_psql(db_url, f"SELECT actor_id IS NOT NULL FROM audit_log WHERE entity = 'customer' "
                            f"AND entity_id = {c['id']}") == "t"
    # deactivated customers are filtered by is_active
    inactive = list_(srv, user, q=c["email"], is_active="false")
    assert [x["id"] for x in inactive["items"]] == [c["id"]]
    assert list_(srv, user, q=c["email"], is_active="true")["total"] == 0


def test_customers_are_shared_between_users(srv, user):
    other = register_and_login(srv.port, f"other{uniq()}@x.io")[1]
    c = create(srv, user, name="Shared", email=f"shared{uniq()}@x.io")
    r = srv.req("GET", f"{BASE}/{c['id']}", token=other)
    assert r.status == 200 and r.json() == c
    r = srv.req("PATCH", f"{BASE}/{c['id']}", body={"tier": "pro"}, token=other)
    assert r.status == 200


def test_method_not_allowed_405(srv, user):
    r = srv.req("PUT", f"{BASE}/1", body={}, token=user)
    assert r.status == 405
    assert r.json() == {"detail": "Method Not Allowed"}
    allow = {m.strip() for m in r.header("Allow").split(",")}
    assert {"GET", "PATCH", "DELETE"} <= allow


def test_delete_racing_order_creation_never_half_done(srv, user, admin, db_url):
    """DELETE of a customer while orders for it are being created: every
    answer is clean (no 500), and the end state is consistent -- a customer
    that has an order still exists (deactivated), one without is gone."""
    from concurrent.futures import ThreadPoolExecutor
    prod = srv.req("POST", "/api/v1/products", body={"name": f"Race {uniq()}", "price": "1.00"},
                   token=admin).json()
    for _ in range(8):
        c = create(srv, user, name="Racer", email=f"race{uniq()}@x.io")
        order = {"customer_id": c["id"], "items": [{"product_id": prod["id"], "quantity": 1}]}
        with ThreadPoolExecutor(4) as ex:
            orders = [ex.submit(srv.req, "POST", "/api/v1/orders", body=order, token=user)
                      for _ in range(3)]
            deleted = ex.submit(srv.req, "DELETE", f"{BASE}/{c['id']}", token=admin)
            statuses = [o.result().status for o in orders]
            assert deleted.result().status == 204, deleted.result()
        assert all(s in (201, 409, 422) for s in statuses), statuses
        n_orders = int(run_psql(db_url, f"SELECT count(*) FROM orders WHERE customer_id = {c['id']}"))
        assert n_orders == statuses.count(201)
        got = srv.req("GET", f"{BASE}/{c['id']}", token=user)
        if n_orders:
            assert got.status == 200, (statuses, got)
        else:
            assert got.status == 404, (statuses, got)
        assert len(audit_rows(db_url, c["id"])) == 1
