"""Rate limits (API.md, Settings): writes per user and logins per IP/username
come from token buckets in the master's shared memory, so they hold across
all workers; over the limit → 429 {"detail":"Too many requests"} + Retry-After."""
import pytest

from ofclient import Server, make_admin, register_and_login, token_for

WRITES = 5


@pytest.fixture(scope="module")
def srv(db_url):
    make_admin(db_url, "rl-admin@x.io", "admin-pass-123")
    s = Server(db_url=db_url, workers=2,
               extra_cfg=f"rate_limit: {{ writes_per_minute = {WRITES}; login_per_minute = 100; }};")
    s.start()
    yield s
    s.stop()


def test_writes_per_user_429_across_workers(srv, db_url):
    """Exactly WRITES writes pass per user, then 429, whichever worker takes
    each request. That proves the bucket is shared only when both workers took
    some of one user's writes; which worker accepts a new connection is the
    kernel's choice, so run the scenario for fresh users (fresh buckets) until
    one run spans both workers -- every run must show the exact counts."""
    spanned = False
    for attempt in range(8):
        email = f"rl-admin-{attempt}@x.io"
        make_admin(db_url, email, "admin-pass-123")
        token = token_for(srv.port, email, "admin-pass-123")
        mark = len(srv.log_lines())
        statuses = []
        for i in range(WRITES + 3):
            r = srv.req("POST", "/api/v1/products", body={"name": f"rl product {attempt}-{i}", "price": "1.00"},
                        token=token)
            statuses.append(r.status)
            if r.status == 429:
                assert r.json() == {"detail": "Too many requests"}
                assert int(r.header("Retry-After")) >= 1
                assert [k for k, _ in r.headers if k.lower() == "retry-after"] == ["Retry-After"]
        assert statuses[:WRITES] == [201] * WRITES, statuses
        assert statuses[WRITES:] == [429] * 3, statuses
        pids = {line["pid"] for line in srv.log_lines()[mark:]
                if line.get("msg") == "access" and line.get("route") == "/api/v1/products"}
        if len(pids) == 2:
            spanned = True
            break
    assert spanned, "no run had its writes served by both workers"


def test_reads_are_not_write_limited(srv):
    token = token_for(srv.port, "rl-admin@x.io", "admin-pass-123")
    for _ in range(WRITES + 3):
        assert srv.req("GET", "/api/v1/products", token=token).status == 200


def test_write_limit_is_per_user(srv):
    _, token = register_and_login(srv.port, "rl-user@x.io")
    r = srv.req("POST", "/api/v1/customers", body={"name": "Ada", "email": "ada-rl@x.io"},
                token=token)
    assert r.status == 201, r


# ---- issue 11 (2): register is no unmetered argon2id sink ----

def test_register_limited_per_ip_with_its_own_bucket(db_url):
    s = Server(db_url=db_url, workers=2, extra_cfg="rate_limit: { login_per_minute = 3; };")
    s.start()
    try:
        statuses = []
        for i in range(5):
            r = s.req("POST", "/api/v1/auth/register",
                      body={"email": f"reg-rl{i}@x.io", "password": "user-pass-123"})
            statuses.append(r.status)
            if r.status == 429:
                assert r.json() == {"detail": "Too many requests"}
                assert int(r.header("Retry-After")) >= 1
        assert statuses == [201, 201, 201, 429, 429], statuses
        # an existing email counts too (it would still cost a hash)
        # and the registrations did not use up the login budget
        r = s.req("POST", "/api/v1/auth/login", body=b"username=reg-rl0%40x.io&password=user-pass-123",
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status == 200, r
    finally:
        s.stop()


@pytest.mark.parametrize("path,ctype", [("/api/v1/auth/register", "application/json"),
                                        ("/api/v1/auth/login", "application/x-www-form-urlencoded")])
def test_auth_routes_take_small_bodies_only(srv, path, ctype):
    if ctype == "application/json":
        big = ('{"email":"big@x.io","password":"' + "p" * 5000 + '"}').encode()
        ok = b'{"email":"small-body@x.io","password":"' + b"p" * 3000 + b'"}'
    else:
        big = b"username=big%40x.io&password=" + b"p" * 5000
        ok = b"username=nobody%40x.io&password=" + b"p" * 3000
    r = srv.req("POST", path, body=big, headers={"Content-Type": ctype})
    assert r.status == 413, r
    assert r.json() == {"detail": "Request body too large"}
    r = srv.req("POST", path, body=ok, headers={"Content-Type": ctype})
    assert r.status in (201, 401, 422), r     # under the cap: handled as usual
