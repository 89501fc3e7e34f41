"""Bank accounts and transfers, per API.md, against the real binary (2 workers)
and PostgreSQL: every status of the section, visibility, history, the
Idempotency-Key on transfers, and the money invariants under 200 random
concurrent transfers (no negative balance, the sum unchanged, no deadlock,
no 500)."""
import random
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import run_psql
from ofclient import Server, make_admin, register_and_login, request, token_for

ACC = "/api/v1/bank-accounts"
XFER = "/api/v1/transfers"
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture(scope="module")
def srv(db_url):
    s = Server(db_url=db_url, workers=2,
               extra_cfg="rate_limit: { login_per_minute = 0; writes_per_minute = 0; };")
    s.start()
    yield s
    s.stop()


def uniq():
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def admin(srv, db_url):
    email, pw = make_admin(db_url, "bank-admin@x.io")
    return token_for(srv.port, email, pw)


def new_user(srv):
    u, tok = register_and_login(srv.port, f"bank-{uniq()}@x.io")
    return u, tok


@pytest.fixture(scope="module")
def alice(srv):
    return new_user(srv)


@pytest.fixture(scope="module")
def bob(srv):
    return new_user(srv)


def open_acc(srv, tok, balance="100.00", name=None):
    r = srv.req("POST", ACC, body={"name": name or f"acc {uniq()}", "balance": balance}, token=tok)
    assert r.status == 201, r
    return r.json()


def xfer(srv, tok, src, dst, amount, headers=None):
    return srv.req("POST", XFER, body={"from_account_id": src, "to_account_id": dst, "amount": amount},
                   token=tok, headers=headers)


def balance(srv, tok, acc_id):
    r = srv.req("GET", f"{ACC}/{acc_id}", token=tok)
    assert r.status == 200, r
    return r.json()["balance"]


def locs(r):
    assert r.status == 422, r
    body = r.json()
    assert body["detail"] == "Validation error"
    return [tuple(e["loc"]) for e in body["errors"]]


# ---- accounts ----

def test_create_account(srv, alice):
    u, tok = alice
    r = srv.req("POST", ACC, body={"name": "  Savings  ", "balance": "100.50"}, token=tok)
    assert r.status == 201, r
    a = r.json()
    assert set(a) == {"id", "name", "balance", "owner_id", "created_at"}
    assert a["name"] == "Savings"
    assert a["balance"] == "100.50"
    assert a["owner_id"] == u["id"]
    assert TS.match(a["created_at"])
    assert isinstance(a["id"], int) and a["id"] > 0


@pytest.mark.parametrize("bal, want", [(10, "10.00"), (0, "0.00"), ("0", "0.00"), (19.99, "19.99"),
                                       ("7.5", "7.50"), (1e2, "100.00")])
def test_create_account_money_forms(srv, alice, bal, want):
    r = srv.req("POST", ACC, body={"name": "m", "balance": bal}, token=alice[1])
    assert r.status == 201, r
    assert r.json()["balance"] == want


@pytest.mark.parametrize("bal", ["-0.01", "-5", -1, -100.5])
def test_negative_balance_is_400(srv, alice, bal):
    r = srv.req("POST", ACC, body={"name": "neg", "balance": bal}, token=alice[1])
    assert r.status == 400, r
    assert r.json() == {"detail": "Invalid balance"}


@pytest.mark.parametrize("body, want", [
    ({}, [("body", "name"), ("body", "balance")]),
    ({"name": "x"}, [("body", "balance")]),
    ({"balance": "1"}, [("body", "name")]),
    ({"name": "   ", "balance": "1"}, [("body", "name")]),
    ({"name": "x" * 201, "balance": "1"}, [("body", "name")]),
    ({"name": 5, "balance": "1"}, [("body", "name")]),
    ({"name": None, "balance": "1"}, [("body", "name")]),
    ({"name": "x", "balance": None}, [("body", "balance")]),
    ({"name": "x", "balance": "1.234"}, [("body", "balance")]),
    ({"name": "x", "balance": "abc"}, [("body", "balance")]),
    ({"name": "x", "balance": "100000000.00"}, [("body", "balance")]),
    ({"name": "x", "balance": True}, [("body", "balance")]),
    # a shape problem wins over the domain rule
    ({"name": "", "balance": "-1"}, [("body", "name")]),
])
def test_create_account_422(srv, alice, body, want):
    r = srv.req("POST", ACC, body=body, token=alice[1])
    assert sorted(locs(r)) == sorted(want)


def test_create_account_name_limits(srv, alice):
    r = srv.req("POST", ACC, body={"name": "é" * 200, "balance": "1"}, token=alice[1])
    assert r.status == 201, r
    assert r.json()["name"] == "é" * 200


def test_create_account_auth_and_media(srv, alice):
    r = srv.req("POST", ACC, body={"name": "x", "balance": "1"})
    assert r.status == 401
    assert r.json() == {"detail": "Could not validate credentials"}
    r = srv.req("POST", ACC, body='{"name":"x","balance":"1"}', token=alice[1],
                headers={"Content-Type": "text/plain"})
    assert r.status == 415
    r = srv.req("POST", ACC, body='{"name":', token=alice[1], headers={"Content-Type": "application/json"})
    assert r.status == 422
    assert r.json()["errors"][0]["type"] == "json_invalid"


def test_get_account_visibility(srv, alice, bob, admin):
    a = open_acc(srv, alice[1], "5.00")
    r = srv.req("GET", f"{ACC}/{a['id']}", token=alice[1])
    assert r.status == 200 and r.json() == a
    r = srv.req("GET", f"{ACC}/{a['id']}", token=bob[1])
    assert r.status == 404
    assert r.json() == {"detail": f"Bank account {a['id']} not found"}
    r = srv.req("GET", f"{ACC}/{a['id']}", token=admin)
    assert r.status == 200 and r.json() == a
    r = srv.req("GET", f"{ACC}/987654321", token=admin)
    assert r.status == 404
    assert r.json() == {"detail": "Bank account 987654321 not found"}
    assert srv.req("GET", f"{ACC}/abc", token=alice[1]).status == 404
    assert srv.req("GET", f"{ACC}/0", token=alice[1]).status == 404
    assert srv.req("GET", f"{ACC}/{a['id']}").status == 401


def test_list_accounts(srv, admin):
    u1, t1 = new_user(srv)
    u2, t2 = new_user(srv)
    mine = [open_acc(srv, t1, f"{i}.00") for i in range(3)]
    theirs = open_acc(srv, t2)
    r = srv.req("GET", ACC, token=t1)
    assert r.status == 200, r
    body = r.json()
    assert body == {"items": mine, "page": 1, "page_size": 20, "total": 3, "total_pages": 1}
    r = srv.req("GET", ACC + "?page=2&page_size=2", token=t1)
    assert r.json() == {"items": mine[2:], "page": 2, "page_size": 2, "total": 3, "total_pages": 2}
    r = srv.req("GET", ACC + "?page=9&page_size=2", token=t1)
    assert r.status == 200 and r.json()["items"] == [] and r.json()["total"] == 3
    # the admin sees everyone's
    r = srv.req("GET", ACC + "?page_size=100", token=admin)
    ids = [a["id"] for a in r.json()["items"]]
    total = r.json()["total"]
    assert total >= 4
    if total <= 100:
        assert {m["id"] for m in mine} | {theirs["id"]} <= set(ids)
    assert ids == sorted(ids)
    for q in ("page=0", "page_size=0", "page_size=101", "page=x"):
        r = srv.req("GET", ACC + "?" + q, token=t1)
        assert r.status == 422, (q, r)
        assert r.json()["errors"][0]["loc"][0] == "query"
    assert srv.req("GET", ACC).status == 401


def test_account_owner_null_after_user_deleted(srv, admin, db_url):
    u, t = new_user(srv)
    a = open_acc(srv, t, "3.00")
    r = srv.req("DELETE", f"/api/v1/users/{u['id']}", token=admin)
    assert r.status == 204, r
    r = srv.req("GET", f"{ACC}/{a['id']}", token=admin)
    assert r.status == 200
    assert r.json()["owner_id"] is None and r.json()["balance"] == "3.00"


# ---- transfers ----

def test_transfer_moves_money(srv, alice, bob):
    a = open_acc(srv, alice[1], "100.00")
    b = open_acc(srv, bob[1], "1.00")
    r = xfer(srv, alice[1], a["id"], b["id"], "30.25")
    assert r.status == 201, r
    t = r.json()
    assert set(t) == {"id", "from_account_id", "to_account_id", "amount", "created_at"}
    assert (t["from_account_id"], t["to_account_id"], t["amount"]) == (a["id"], b["id"], "30.25")
    assert TS.match(t["created_at"])
    assert balance(srv, alice[1], a["id"]) == "69.75"
    assert balance(srv, bob[1], b["id"]) == "31.25"
    # numbers work too, and the whole balance may go
    r = xfer(srv, alice[1], a["id"], b["id"], 69.75)
    assert r.status == 201, r
    assert balance(srv, alice[1], a["id"]) == "0.00"


def test_transfer_insufficient_funds(srv, alice, bob):
    a = open_acc(srv, alice[1], "10.00")
    b = open_acc(srv, bob[1], "0.00")
    r = xfer(srv, alice[1], a["id"], b["id"], "10.01")
    assert r.status == 409, r
    assert r.json() == {"detail": "Insufficient funds"}
    assert balance(srv, alice[1], a["id"]) == "10.00"
    assert balance(srv, bob[1], b["id"]) == "0.00"


def test_transfer_source_must_be_callers(srv, alice, bob, admin):
    a = open_acc(srv, alice[1], "10.00")
    b = open_acc(srv, bob[1], "10.00")
    r = xfer(srv, bob[1], a["id"], b["id"], "1")
    assert r.status == 404, r
    assert r.json() == {"detail": f"Bank account {a['id']} not found"}
    # admins too: the caller must own the source account
    r = xfer(srv, admin, a["id"], b["id"], "1")
    assert r.status == 404, r
    assert r.json() == {"detail": f"Bank account {a['id']} not found"}
    r = xfer(srv, alice[1], 987654321, b["id"], "1")
    assert r.status == 404
    assert r.json() == {"detail": "Bank account 987654321 not found"}
    assert balance(srv, alice[1], a["id"]) == "10.00"
    # the destination may be anyone's
    r = xfer(srv, alice[1], a["id"], b["id"], "1")
    assert r.status == 201


def test_transfer_unknown_destination(srv, alice):
    a = open_acc(srv, alice[1], "10.00")
    r = xfer(srv, alice[1], a["id"], 987654321, "1")
    assert locs(r) == [("body", "to_account_id")]
    assert balance(srv, alice[1], a["id"]) == "10.00"


@pytest.mark.parametrize("amount", [0, "0", "0.00", -1, "-5.00"])
def test_transfer_amount_must_be_positive(srv, alice, bob, amount):
    a = open_acc(srv, alice[1], "10.00")
    b = open_acc(srv, bob[1], "10.00")
    r = xfer(srv, alice[1], a["id"], b["id"], amount)
    assert locs(r) == [("body", "amount")]
    assert r.json()["errors"][0]["type"] == "value_error"


def test_transfer_same_account(srv, alice):
    a = open_acc(srv, alice[1], "10.00")
    r = xfer(srv, alice[1], a["id"], a["id"], "1")
    assert locs(r) == [("body", "to_account_id")]


@pytest.mark.parametrize("body, want", [
    ({}, [("body", "from_account_id"), ("body", "to_account_id"), ("body", "amount")]),
    ({"from_account_id": "x", "to_account_id": 1, "amount": "1"}, [("body", "from_account_id")]),
    ({"from_account_id": 1, "to_account_id": None, "amount": "1"}, [("body", "to_account_id")]),
    ({"from_account_id": 1, "to_account_id": 2, "amount": "1.234"}, [("body", "amount")]),
    ({"from_account_id": 1, "to_account_id": 2, "amount": None}, [("body", "amount")]),
    ({"from_account_id": 1, "to_account_id": 2, "amount": "100000000"}, [("body", "amount")]),
    ({"from_account_id": 1, "to_account_id": 1, "amount": 0},
     [("body", "amount"), ("body", "to_account_id")]),
])
def test_transfer_422(srv, alice, body, want):
    r = srv.req("POST", XFER, body=body, token=alice[1])
    assert sorted(locs(r)) == sorted(want)


def test_transfer_auth_and_media(srv, alice):
    assert srv.req("POST", XFER, body={"from_account_id": 1, "to_account_id": 2, "amount": "1"}).status == 401
    r = srv.req("POST", XFER, body="from=1", token=alice[1],
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 415


# ---- history ----

def test_history(srv, alice, bob, admin):
    a = open_acc(srv, alice[1], "100.00")
    b = open_acc(srv, bob[1], "100.00")
    c = open_acc(srv, alice[1], "0.00")
    made = []
    for src, dst, tok, amt in [(a, b, alice, "1.00"), (b, a, bob, "2.00"), (a, c, alice, "3.00"),
                               (b, c, bob, "4.00"), (a, b, alice, "5.00")]:
        r = xfer(srv, tok[1], src["id"], dst["id"], amt)
        assert r.status == 201, r
        made.append(r.json())
    of_a = [t for t in made if a["id"] in (t["from_account_id"], t["to_account_id"])][::-1]
    r = srv.req("GET", f"{ACC}/{a['id']}/transfers", token=alice[1])
    assert r.status == 200, r
    assert r.json() == {"items": of_a, "page": 1, "page_size": 20, "total": 4, "total_pages": 1}
    r = srv.req("GET", f"{ACC}/{a['id']}/transfers?page=2&page_size=3", token=alice[1])
    assert r.json() == {"items": of_a[3:], "page": 2, "page_size": 3, "total": 4, "total_pages": 2}
    r = srv.req("GET", f"{ACC}/{a['id']}/transfers?page=3&page_size=3", token=alice[1])
    assert r.status == 200 and r.json()["items"] == [] and r.json()["total"] == 4
    # someone else's account: 404; the admin sees it
    r = srv.req("GET", f"{ACC}/{a['id']}/transfers", token=bob[1])
    assert r.status == 404
    assert r.json() == {"detail": f"Bank account {a['id']} not found"}
    r = srv.req("GET", f"{ACC}/{a['id']}/transfers", token=admin)
    assert r.status == 200 and r.json()["items"] == of_a
    # an account with no transfers; an unknown one
    d = open_acc(srv, alice[1], "0.00")
    r = srv.req("GET", f"{ACC}/{d['id']}/transfers", token=alice[1])
    assert r.json() == {"items": [], "page": 1, "page_size": 20, "total": 0, "total_pages": 0}
    r = srv.req("GET", f"{ACC}/987654321/transfers", token=admin)
    assert r.status == 404
    r = srv.req("GET", f"{ACC}/{a['id']}/transfers?page_size=101", token=alice[1])
    assert r.status == 422
    assert balance(srv, alice[1], a["id"]) == "93.00"


# ---- Idempotency-Key ----

def test_idempotent_transfer_replay(srv, alice, bob, db_url):
    a = open_acc(srv, alice[1], "50.00")
    b = open_acc(srv, bob[1], "0.00")
    key = {"Idempotency-Key": "xfer-" + uniq()}
    r1 = xfer(srv, alice[1], a["id"], b["id"], "20.00", headers=key)
    assert r1.status == 201, r1
    assert r1.header("Idempotent-Replayed") is None
    # the same JSON value, other bytes: replayed
    body = '{ "amount": "20.00", "to_account_id": %d, "from_account_id": %d }' % (b["id"], a["id"])
    r2 = srv.req("POST", XFER, body=body, token=alice[1],
                 headers={**key, "Content-Type": "application/json"})
    assert r2.status == 201, r2
    assert r2.body == r1.body
    assert r2.header("Idempotent-Replayed") == "true"
    assert balance(srv, alice[1], a["id"]) == "30.00"
    n = run_psql(db_url, f"SELECT count(*) FROM transfers WHERE from_account_id = {a['id']}")
    assert n == "1"
    # the same key, another body
    r3 = xfer(srv, alice[1], a["id"], b["id"], "21.00", headers=key)
    assert r3.status == 422, r3
    assert r3.json() == {"detail": "Idempotency-Key reused with a different request"}
    # keys are per user: bob's same key is his own
    r4 = xfer(srv, bob[1], b["id"], a["id"], "1.00", headers=key)
    assert r4.status == 201, r4
    assert r4.header("Idempotent-Replayed") is None


def test_idempotent_409_is_stored_and_404_is_not(srv, alice, bob):
    a = open_acc(srv, alice[1], "1.00")
    b = open_acc(srv, bob[1], "0.00")
    key = {"Idempotency-Key": "poor-" + uniq()}
    r1 = xfer(srv, alice[1], a["id"], b["id"], "5.00", headers=key)
    assert r1.status == 409 and r1.json() == {"detail": "Insufficient funds"}
    # even with money now, the stored 409 replays
    r = srv.req("POST", XFER, body={"from_account_id": open_acc(srv, bob[1], "10.00")["id"],
                                    "to_account_id": a["id"], "amount": "10.00"}, token=bob[1])
    assert r.status == 201
    r2 = xfer(srv, alice[1], a["id"], b["id"], "5.00", headers=key)
    assert r2.status == 409 and r2.body == r1.body
    assert r2.header("Idempotent-Replayed") == "true"
    assert balance(srv, alice[1], a["id"]) == "11.00"
    # 404 and 422 store nothing: a corrected retry with the same key runs afresh
    key2 = {"Idempotency-Key": "nf-" + uniq()}
    r = xfer(srv, alice[1], 987654321, b["id"], "1.00", headers=key2)
    assert r.status == 404
    r = xfer(srv, alice[1], a["id"], 987654321, "1.00", headers=key2)
    assert r.status == 422 and r.json()["errors"][0]["loc"] == ["body", "to_account_id"]
    r = xfer(srv, alice[1], a["id"], b["id"], "1.00", headers=key2)
    assert r.status == 201, r
    assert r.header("Idempotent-Replayed") is None


def test_idempotency_key_header_rules(srv, alice, bob):
    a = open_acc(srv, alice[1], "1.00")
    b = open_acc(srv, bob[1], "0.00")
    r = xfer(srv, alice[1], a["id"], b["id"], "1.00", headers={"Idempotency-Key": "k" * 256})
    assert locs(r) == [("header", "Idempotency-Key")]
    r = xfer(srv, alice[1], a["id"], b["id"], "0", headers={"Idempotency-Key": "k" * 256})
    assert sorted(locs(r)) == sorted([("header", "Idempotency-Key"), ("body", "amount")])
    r = xfer(srv, alice[1], a["id"], b["id"], "1.00", headers={"Idempotency-Key": "k" * 255})
    assert r.status == 201, r


def test_idempotent_concurrent_identical(srv, alice, bob, db_url):
    a = open_acc(srv, alice[1], "100.00")
    b = open_acc(srv, bob[1], "0.00")
    key = {"Idempotency-Key": "race-" + uniq()}
    with ThreadPoolExecutor(max_workers=20) as ex:
        rs = list(ex.map(lambda _: xfer(srv, alice[1], a["id"], b["id"], "7.00", headers=key), range(20)))
    ok = [r for r in rs if r.status == 201]
    assert all(r.status in (201, 409) for r in rs), [r.status for r in rs]
    for r in rs:
        if r.status == 409:
            assert r.json() == {"detail": "A request with this Idempotency-Key is in progress"}
    assert ok and all(r.body == ok[0].body for r in ok)
    assert run_psql(db_url, f"SELECT count(*) FROM transfers WHERE from_account_id = {a['id']}") == "1"
    assert balance(srv, alice[1], a["id"]) == "93.00"


# ---- concurrency: the money invariants ----

@pytest.mark.parametrize("keyed", [False, True], ids=["autocommit", "idempotent"])
def test_random_concurrent_transfers_keep_the_money(srv, db_url, keyed):
    """keyed: every transfer carries its own Idempotency-Key, so it runs in
    the idempotent run's transaction instead of one autocommit statement."""
    owners = [new_user(srv) for _ in range(3)]
    accs = []
    for i in range(10):
        u, tok = owners[i % 3]
        accs.append((open_acc(srv, tok, f"{random.randint(0, 50)}.{random.randint(0, 99):02d}"), tok))
    ids = [a["id"] for a, _ in accs]
    idlist = ",".join(map(str, ids))

    def total():
        return run_psql(db_url, f"SELECT sum(balance_cents) FROM bank_accounts WHERE id IN ({idlist})")

    before = total()
    rnd = random.Random(42)
    jobs = []
    for _ in range(200):
        i, j = rnd.sample(range(10), 2)
        cents = rnd.randint(1, 2500)
        jobs.append((i, j, f"{cents // 100}.{cents % 100:02d}"))
    statuses = []
    lock = threading.Lock()

    def run(job):
        i, j, amt = job
        (src, tok), (dst, _) = accs[i], accs[j]
        hdrs = {"Idempotency-Key": "rnd-" + uuid.uuid4().hex} if keyed else None
        r = xfer(srv, tok, src["id"], dst["id"], amt, headers=hdrs)
        with lock:
            statuses.append((r.status, r.body))
        return r

    with ThreadPoolExecutor(max_workers=24) as ex:
        list(ex.map(run, jobs))
    codes = [s for s, _ in statuses]
    assert set(codes) <= {201, 409}, [s for s in statuses if s[0] not in (201, 409)][:5]
    assert codes.count(201) > 0
    for s, b in statuses:
        if s == 409:
            assert b == b'{"detail":"Insufficient funds"}'
    assert total() == before
    neg = run_psql(db_url, f"SELECT count(*) FROM bank_accounts WHERE id IN ({idlist}) AND balance_cents < 0")
    assert neg == "0"
    # the ledger agrees: each balance = opening + in - out
    n = run_psql(db_url, "SELECT count(*) FROM transfers WHERE from_account_id IN "
                         f"({idlist}) AND to_account_id IN ({idlist})")
    assert int(n) == codes.count(201)
    for (a, tok) in accs:
        got = balance(srv, tok, a["id"])
        flows = run_psql(db_url, "SELECT COALESCE(sum(CASE WHEN to_account_id = {0} THEN amount_cents "
                                 "ELSE -amount_cents END), 0) FROM transfers "
                                 "WHERE from_account_id = {0} OR to_account_id = {0}".format(a["id"]))
        opening = int(a["balance"].replace(".", ""))
        want = opening + int(flows)
        assert got == f"{want // 100}.{want % 100:02d}"
    assert "deadlock" not in srv.log().lower()

