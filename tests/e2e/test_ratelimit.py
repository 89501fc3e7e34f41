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


def test_writes_per_user_429_across_workers(srv):
    token = token_for(srv.port, "rl-admin@x.io", "admin-pass-123")
    statuses, pids = [], set()
    for i in range(WRITES + 3):
        r = srv.req("POST", "/api/v1/products", body={"name": f"rl product {i}", "price": "1.00"},
                    token=token)
        statuses.append(r.status)
        if r.status == 429:
            assert r.json() == {"detail": "Too many requests"}
            assert int(r.header("Retry-After")) >= 1
            assert [k for k, _ in r.headers if k.lower() == "retry-after"] == ["Retry-After"]
    # every request is a new connection, so both workers took some: the bucket
    # is shared, or more than WRITES would have passed
    for line in srv.log_lines():
        if line.get("msg") == "access" and line.get("route") == "/api/v1/products":
            pids.add(line["pid"])
    assert statuses[:WRITES] == [201] * WRITES, statuses
    assert statuses[WRITES:] == [429] * 3, statuses
    assert len(pids) == 2, pids


def test_reads_are_not_write_limited(srv):
    token = token_for(srv.port, "rl-admin@x.io", "admin-pass-123")
    for _ in range(WRITES + 3):
        assert srv.req("GET", "/api/v1/products", token=token).status == 200


def test_write_limit_is_per_user(srv):
    _, token = register_and_login(srv.port, "rl-user@x.io")
    r = srv.req("POST", "/api/v1/customers", body={"name": "Ada", "email": "ada-rl@x.io"},
                token=token)
    assert r.status == 201, r
