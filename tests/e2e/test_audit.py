"""GET /api/v1/audit (admin), per API.md's Audit log section, against the real
binary and PostgreSQL: rows written by admin writes in the same transaction
(with the request id), none for a failed write; paging, newest first; the
entity and actor_id filters and their 422s; 401/403."""
import re
import uuid

import pytest

from conftest import run_psql
from ofclient import Server, make_admin, register_and_login, token_for

AUDIT = "/api/v1/audit"
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture(scope="module")
def srv(db_url):
    s = Server(db_url=db_url, workers=2,
               extra_cfg="rate_limit: { login_per_minute = 0; writes_per_minute = 0; };")
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(srv, db_url):
    email, pw = make_admin(db_url, "audit-admin@x.io")
    tok = token_for(srv.port, email, pw)
    me = srv.req("GET", "/api/v1/auth/me", token=tok).json()
    return me["id"], tok


@pytest.fixture(scope="module")
def user(srv):
    return register_and_login(srv.port, f"audit-{uuid.uuid4().hex[:8]}@x.io")


def uniq():
    return uuid.uuid4().hex[:10]


def audit(srv, tok, query=""):
    r = srv.req("GET", AUDIT + ("?" + query if query else ""), token=tok)
    return r


def test_admin_write_appends_one_row_with_request_id(srv, admin, db_url):
    aid, tok = admin
    rid = "audit-req-" + uniq()
    name = "Audited " + uniq()
    r = srv.req("POST", "/api/v1/products", body={"name": name, "price": "1.50"}, token=tok,
                headers={"X-Request-ID": rid})
    assert r.status == 201, r
    pid = r.json()["id"]
    r = audit(srv, tok, "entity=product&page_size=100")
    assert r.status == 200, r
    rows = [e for e in r.json()["items"] if e["request_id"] == rid]
    assert len(rows) == 1
    e = rows[0]
    assert set(e) == {"id", "actor_id", "action", "entity", "entity_id", "request_id", "at", "details"}
    assert (e["actor_id"], e["action"], e["entity"], e["entity_id"]) == (aid, "create", "product", pid)
    assert isinstance(e["details"], dict) and e["details"].get("name") == name
    assert TS.match(e["at"])
    # an update: exactly one more row, with its own request id
    rid2 = "audit-upd-" + uniq()
    r = srv.req("PATCH", f"/api/v1/products/{pid}", body={"price": "2.00"}, token=tok,
                headers={"X-Request-ID": rid2})
    assert r.status == 200, r
    n = run_psql(db_url, f"SELECT count(*) FROM audit_log WHERE request_id = '{rid2}'")
    assert n == "1"
    top = audit(srv, tok, "page_size=1").json()["items"][0]
    assert (top["action"], top["entity_id"], top["request_id"]) == ("update", pid, rid2)


def test_failed_write_appends_nothing(srv, admin, db_url):
    aid, tok = admin
    name = "Dup " + uniq()
    assert srv.req("POST", "/api/v1/products", body={"name": name, "price": "1"}, token=tok).status == 201
    before = run_psql(db_url, "SELECT count(*) FROM audit_log")
    rid = "audit-fail-" + uniq()
    r = srv.req("POST", "/api/v1/products", body={"name": name.upper(), "price": "1"}, token=tok,
                headers={"X-Request-ID": rid})
    assert r.status == 409
    r = srv.req("PATCH", "/api/v1/products/987654321", body={"price": "1"}, token=tok,
                headers={"X-Request-ID": rid})
    assert r.status == 404
    assert run_psql(db_url, "SELECT count(*) FROM audit_log") == before
    assert run_psql(db_url, f"SELECT count(*) FROM audit_log WHERE request_id = '{rid}'") == "0"


def test_paging_newest_first(srv, admin, db_url):
    aid, tok = admin
    for i in range(3):
        r = srv.req("POST", "/api/v1/products", body={"name": f"Page {uniq()}", "price": "1"}, token=tok)
        assert r.status == 201
    total = int(run_psql(db_url, "SELECT count(*) FROM audit_log"))
    r = audit(srv, tok)
    assert r.status == 200
    body = r.json()
    assert body["page"] == 1 and body["page_size"] == 20 and body["total"] == total
    assert body["total_pages"] == (total + 19) // 20
    ids = [e["id"] for e in body["items"]]
    assert ids == sorted(ids, reverse=True)
    assert ids[0] == int(run_psql(db_url, "SELECT max(id) FROM audit_log"))
    p2 = audit(srv, tok, "page=2&page_size=2").json()
    p1 = audit(srv, tok, "page=1&page_size=2").json()
    assert p2["items"][0]["id"] < p1["items"][-1]["id"]
    assert p2["total_pages"] == (total + 1) // 2
    past = audit(srv, tok, f"page={total + 5}&page_size=1").json()
    assert past["items"] == [] and past["total"] == total


def test_filters(srv, admin, db_url):
    aid, tok = admin
    # rows of every entity, one with no actor, with details of every shape
    run_psql(db_url, "INSERT INTO audit_log (actor_id, action, entity, entity_id, request_id, details) VALUES "
                     f"({aid}, 'transition', 'order', 5, 'r-o', '{{\"from\":\"pending\",\"to\":\"processing\"}}'), "
                     f"({aid}, 'delete', 'customer', 6, 'r-c', '{{\"deactivated\":true}}'), "
                     f"(NULL, 'update', 'user', 7, NULL, '{{\"role\":\"admin\"}}')")
    for ent in ("product", "customer", "order", "user"):
        r = audit(srv, tok, f"entity={ent}&page_size=100")
        assert r.status == 200, r
        items = r.json()["items"]
        assert items and all(e["entity"] == ent for e in items)
        want = int(run_psql(db_url, f"SELECT count(*) FROM audit_log WHERE entity = '{ent}'"))
        assert r.json()["total"] == want
    order = audit(srv, tok, "entity=order").json()["items"][0]
    assert order["details"] == {"from": "pending", "to": "processing"}
    assert order["action"] == "transition"
    cust = audit(srv, tok, "entity=customer").json()["items"][0]
    assert cust["details"] == {"deactivated": True}
    u = audit(srv, tok, "entity=user").json()["items"][0]
    assert u["actor_id"] is None and u["request_id"] is None
    # actor_id
    r = audit(srv, tok, f"actor_id={aid}&page_size=100")
    assert r.status == 200
    assert all(e["actor_id"] == aid for e in r.json()["items"])
    assert r.json()["total"] == int(run_psql(db_url, f"SELECT count(*) FROM audit_log WHERE actor_id = {aid}"))
    r = audit(srv, tok, f"actor_id={aid}&entity=customer")
    assert [e["entity"] for e in r.json()["items"]] == ["customer"] * r.json()["total"]
    r = audit(srv, tok, "actor_id=987654321")
    assert r.status == 200 and r.json()["total"] == 0 and r.json()["total_pages"] == 0


@pytest.mark.parametrize("query, loc", [
    ("entity=bank", ["query", "entity"]),
    ("entity=Product", ["query", "entity"]),
    ("entity=", ["query", "entity"]),
    ("actor_id=abc", ["query", "actor_id"]),
    ("actor_id=0", ["query", "actor_id"]),
    ("actor_id=-3", ["query", "actor_id"]),
    ("page=0", ["query", "page"]),
    ("page_size=101", ["query", "page_size"]),
])
def test_bad_query_422(srv, admin, query, loc):
    r = audit(srv, admin[1], query)
    assert r.status == 422, r
    body = r.json()
    assert body["detail"] == "Validation error"
    assert [e["loc"] for e in body["errors"]] == [loc]


def test_admin_only(srv, user):
    r = audit(srv, user[1])
    assert r.status == 403
    assert r.json() == {"detail": "Insufficient permissions"}
    r = srv.req("GET", AUDIT)
    assert r.status == 401
    assert r.header("WWW-Authenticate") == "Bearer"
    r = srv.req("POST", AUDIT, body={}, token=user[1])
    assert r.status == 405
