"""Auth, per API.md's Auth section, against the real binary and PostgreSQL:
register/login/me, the 401/403/409/415/422 answers, tokens (expired, forged,
alg none, garbage, deleted user), user administration, roles read fresh on
every request, registration switched off, and login rate limits."""
import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest

from conftest import run_psql
from ofclient import TEST_SECRET, Server, login, make_admin, register_and_login, request, token_for

REG = "/api/v1/auth/register"
ME = "/api/v1/auth/me"
USERS = "/api/v1/users"
CREDS = {"detail": "Could not validate credentials"}
BAD_LOGIN = {"detail": "Incorrect email or password"}


@pytest.fixture(scope="module")
def srv(db_url):
    s = Server(db_url=db_url, workers=2, extra_cfg="rate_limit: { login_per_minute = 0; };")
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(srv, db_url):
    email, pw = make_admin(db_url, "auth-admin@x.io")
    return token_for(srv.port, email, pw)


def uniq():
    return uuid.uuid4().hex[:10]


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims, secret=TEST_SECRET, alg="HS256", header=None):
    h = header or {"alg": alg, "typ": "JWT"}
    signing = b64(json.dumps(h).encode()) + "." + b64(json.dumps(claims).encode())
    if alg == "none":
        return signing + "."
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    sig = hmac.new(secret.encode(), signing.encode(), digest).digest()
    return signing + "." + b64(sig)


def assert_401_creds(r):
    assert r.status == 401, r
    assert r.json() == CREDS
    assert r.header("WWW-Authenticate") == "Bearer"


# ---- register, login, me ----

def test_register_login_me(srv):
    email = f"Reg.{uniq()}@Example.com"
    r = srv.req("POST", REG, body={"email": "  " + email + " ", "password": "correct-horse"})
    assert r.status == 201, r
    u = r.json()
    assert set(u) == {"id", "email", "role", "created_at"}
    assert u["email"] == email.lower() and u["role"] == "user"
    assert "password" not in r.body.decode() and "hash" not in r.body.decode()
    r = login(srv.port, " " + email.upper(), "correct-horse")
    assert r.status == 200, r
    tok = r.json()
    assert set(tok) == {"access_token", "token_type", "expires_in"}
    assert tok["token_type"] == "bearer" and tok["expires_in"] == 3600
    # the token carries sub (as a string), role, iat, exp
    claims = json.loads(base64.urlsafe_b64decode(tok["access_token"].split(".")[1] + "=="))
    assert claims["sub"] == str(u["id"]) and claims["role"] == "user"
    assert claims["exp"] - claims["iat"] == 3600
    hdr = json.loads(base64.urlsafe_b64decode(tok["access_token"].split(".")[0] + "=="))
    assert hdr["alg"] == "HS256"
    r = srv.req("GET", ME, token=tok["access_token"])
    assert r.status == 200 and r.json() == u


def test_password_stored_as_argon2id(srv, db_url):
    email = f"hash.{uniq()}@x.io"
    assert srv.req("POST", REG, body={"email": email, "password": "secret-pass"}).status == 201
    h = run_psql(db_url, f"SELECT password_hash FROM users WHERE email = '{email}'")
    assert h.startswith("$argon2id$") and "secret-pass" not in h


def test_register_duplicate_email_409(srv):
    email = f"dup.{uniq()}@x.io"
    assert srv.req("POST", REG, body={"email": email, "password": "password1"}).status == 201
    for again in (email, email.upper(), f"  {email}  "):
        r = srv.req("POST", REG, body={"email": again, "password": "password2"})
        assert r.status == 409 and r.json() == {"detail": "Email already registered"}


@pytest.mark.parametrize("pw,ok", [
    ("x" * 7, False), ("x" * 8, True), ("x" * 128, True), ("x" * 129, False),
    ("\u00e9" * 8, True), ("\u00e9" * 7, False), ("\u00e9" * 128, True), ("\u00e9" * 129, False),
    ("  short ", True),
])
def test_register_password_length(srv, pw, ok):
    r = srv.req("POST", REG, body={"email": f"pw.{uniq()}@x.io", "password": pw})
    if ok:
        assert r.status == 201, r
    else:
        assert r.status == 422, r
        assert [e["loc"] for e in r.json()["errors"]] == [["body", "password"]]


@pytest.mark.parametrize("email", [
    "plain", "a@b", "@x.io", "a@", "a@@x.io", "a@b@x.io", "a@.io", "a@io.", "a b@x.io", "",
    "   ", "x" * 250 + "@x.io",
])
def test_register_bad_email_422(srv, email):
    r = srv.req("POST", REG, body={"email": email, "password": "password1"})
    assert r.status == 422, r
    assert [e["loc"] for e in r.json()["errors"]] == [["body", "email"]]


def test_register_email_254_ok(srv):
    email = "e" * (254 - len("@x.io") - 10) + uniq() + "@x.io"
    assert len(email) == 254
    assert srv.req("POST", REG, body={"email": email, "password": "password1"}).status == 201


def test_register_missing_and_types_422(srv):
    r = srv.req("POST", REG, body={})
    assert r.status == 422
    assert {(tuple(e["loc"]), e["type"]) for e in r.json()["errors"]} == {
        (("body", "email"), "missing"), (("body", "password"), "missing")}
    r = srv.req("POST", REG, body={"email": None, "password": 12345678})
    assert {e["type"] for e in r.json()["errors"]} == {"type_error"}


def test_register_json_only(srv):
    r = srv.req("POST", REG, body="email=a%40x.io&password=password1",
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 415


def test_bad_password_401_same_as_unknown_email(srv):
    email = f"login.{uniq()}@x.io"
    register_and_login(srv.port, email, "right-password")
    wrong = login(srv.port, email, "wrong-password")
    unknown = login(srv.port, f"nobody.{uniq()}@x.io", "right-password")
    for r in (wrong, unknown):
        assert r.status == 401
        assert r.json() == BAD_LOGIN
        assert r.header("WWW-Authenticate") == "Bearer"
    assert wrong.body == unknown.body


def test_unknown_email_pays_the_same_argon2id_verify_as_a_wrong_password(db_url):
    """API.md: wrong email or password, "same answer, similar time". Not a
    stopwatch: the server's own trace (OTLP, to a receiver here) shows what
    each login did -- one "password verify" span (argon2id against the user's
    hash, or against the dummy hash for an unknown email), child of the
    request's span, for both."""
    from test_tracing import Receiver      # the OTLP/HTTP receiver of test_tracing
    rec = Receiver()
    cfg = (f'tracing: {{ otlp_endpoint = "http://127.0.0.1:{rec.port}"; sample_ratio = 1.0; }};\n'
           "rate_limit: { login_per_minute = 0; };")
    try:
        with Server(db_url=db_url, workers=1, extra_cfg=cfg) as s:
            email = f"timing.{uniq()}@x.io"
            register_and_login(s.port, email, "right-password")
            cases = {"known": (email, "1" * 32), "unknown": (f"ghost.{uniq()}@x.io", "2" * 32),
                     "no-email": ("not-an-email", "3" * 32)}
            for user, tid in cases.values():
                r = login(s.port, user, "wrong-password", headers={"traceparent": f"00-{tid}-{'c' * 16}-01"})
                assert r.status == 401 and r.json() == BAD_LOGIN, r
            for name, (_, tid) in cases.items():
                deadline = time.time() + 30
                while time.time() < deadline:
                    spans = rec.trace(tid)
                    if any(x["kind"] == 2 for x in spans) and any(x["name"].startswith("password") for x in spans):
                        break
                    time.sleep(0.05)
                server = [x for x in spans if x["kind"] == 2]
                hashing = [x["name"] for x in spans if x["name"].startswith("password")]
                assert len(server) == 1, (name, spans)
                assert hashing == ["password verify"], (name, spans)
                assert [x["parentSpanId"] for x in spans if x["name"] == "password verify"] == \
                    [server[0]["spanId"]], (name, spans)
    finally:
        rec.close()


def test_login_json_body_415(srv):
    r = srv.req("POST", "/api/v1/auth/login", body={"username": "a@x.io", "password": "password1"})
    assert r.status == 415 and r.json() == {"detail": "Unsupported media type"}


def test_login_missing_fields_422(srv):
    r = srv.req("POST", "/api/v1/auth/login", body="username=a%40x.io",
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 422
    assert [e["loc"] for e in r.json()["errors"]] == [["body", "password"]]


# ---- tokens ----

def test_no_token_401_with_header(srv):
    assert_401_creds(srv.req("GET", ME))
    assert_401_creds(srv.req("GET", ME, headers={"Authorization": "Basic Zm9vOmJhcg=="}))
    assert_401_creds(srv.req("GET", ME, headers={"Authorization": "Bearer"}))


@pytest.mark.parametrize("tok", ["garbage", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9..", "x" * 2000])
def test_garbage_token_401(srv, tok):
    assert_401_creds(srv.req("GET", ME, token=tok))


def test_forged_expired_and_alg_tokens_401(srv):
    u, good = register_and_login(srv.port, f"tok.{uniq()}@x.io")
    now = int(time.time())
    base = {"sub": str(u["id"]), "role": "user", "iat": now, "exp": now + 600}
    assert srv.req("GET", ME, token=jwt(base)).status == 200          # the crafting is right
    assert_401_creds(srv.req("GET", ME, token=jwt(dict(base, iat=now - 7200, exp=now - 3600))))
    assert_401_creds(srv.req("GET", ME, token=jwt(base, secret="another-secret-0123456789abcdef-xx")))
    assert_401_creds(srv.req("GET", ME, token=jwt(base, alg="none")))
    assert_401_creds(srv.req("GET", ME, token=jwt(base, alg="HS512")))
    assert_401_creds(srv.req("GET", ME, token=jwt({k: v for k, v in base.items() if k != "sub"})))
    assert_401_creds(srv.req("GET", ME, token=jwt(dict(base, sub="987654321"))))
    # a tampered payload with the old signature
    h, p, s = good.split(".")
    forged = json.loads(base64.urlsafe_b64decode(p + "=="))
    forged["role"] = "admin"
    assert_401_creds(srv.req("GET", ME, token=f"{h}.{b64(json.dumps(forged).encode())}.{s}"))


def test_user_token_on_admin_route_403(srv):
    _, tok = register_and_login(srv.port, f"plain.{uniq()}@x.io")
    r = srv.req("GET", USERS, token=tok)
    assert r.status == 403 and r.json() == {"detail": "Insufficient permissions"}
    # a role claim in the token means nothing: the database says "user"
    u = srv.req("GET", ME, token=tok).json()
    now = int(time.time())
    fake = jwt({"sub": str(u["id"]), "role": "admin", "iat": now, "exp": now + 600})
    assert srv.req("GET", USERS, token=fake).status == 403


# ---- user administration ----

def test_admin_lists_users_paged(srv, admin):
    for i in range(3):
        srv.req("POST", REG, body={"email": f"list{i}.{uniq()}@x.io", "password": "password1"})
    r = srv.req("GET", USERS + "?page=1&page_size=2", token=admin)
    assert r.status == 200, r
    p = r.json()
    assert p["page"] == 1 and p["page_size"] == 2 and len(p["items"]) == 2
    total = p["total"]
    assert total >= 4 and p["total_pages"] == (total + 1) // 2
    ids = []
    for page in range(1, p["total_pages"] + 1):
        ids += [u["id"] for u in srv.req("GET", f"{USERS}?page={page}&page_size=2", token=admin).json()["items"]]
    assert len(ids) == total and ids == sorted(ids)
    assert set(p["items"][0]) == {"id", "email", "role", "created_at"}
    assert srv.req("GET", USERS + "?page_size=101", token=admin).status == 422
    assert srv.req("GET", USERS + "?page=0", token=admin).status == 422


def test_patch_role(srv, admin):
    u, _ = register_and_login(srv.port, f"role.{uniq()}@x.io")
    r = srv.req("PATCH", f"{USERS}/{u['id']}", body={"role": "admin"}, token=admin)
    assert r.status == 200 and r.json() == dict(u, role="admin")
    for bad in ({"role": "root"}, {"role": None}, {}, {"role": "Admin"}):
        assert srv.req("PATCH", f"{USERS}/{u['id']}", body=bad, token=admin).status == 422
    r = srv.req("PATCH", f"{USERS}/987654321", body={"role": "user"}, token=admin)
    assert r.status == 404 and r.json() == {"detail": "User 987654321 not found"}


def test_admin_cannot_change_own_role_or_delete_self_409(srv, admin):
    me = srv.req("GET", ME, token=admin).json()
    r = srv.req("PATCH", f"{USERS}/{me['id']}", body={"role": "user"}, token=admin)
    assert r.status == 409 and "detail" in r.json()
    r = srv.req("DELETE", f"{USERS}/{me['id']}", token=admin)
    assert r.status == 409
    assert srv.req("GET", ME, token=admin).json()["role"] == "admin"


def test_delete_user_then_token_401(srv, admin, db_url):
    u, tok = register_and_login(srv.port, f"bye.{uniq()}@x.io")
    assert srv.req("GET", ME, token=tok).status == 200
    rid = "del-user-" + uniq()
    r = srv.req("DELETE", f"{USERS}/{u['id']}", token=admin, headers={"X-Request-ID": rid})
    assert r.status == 204 and r.body == b""
    assert_401_creds(srv.req("GET", ME, token=tok))
    r = srv.req("DELETE", f"{USERS}/{u['id']}", token=admin)
    assert r.status == 404 and r.json() == {"detail": f"User {u['id']} not found"}
    assert run_psql(db_url, "SELECT action || ' ' || entity || ' ' || entity_id FROM audit_log "
                            f"WHERE request_id = '{rid}'") == f"delete user {u['id']}"
    # the login is gone too
    assert login(srv.port, u["email"], "user-pass-123").status == 401


def test_demoted_admin_loses_admin_at_once(srv, admin):
    u, tok = register_and_login(srv.port, f"promo.{uniq()}@x.io")
    assert srv.req("GET", USERS, token=tok).status == 403
    assert srv.req("PATCH", f"{USERS}/{u['id']}", body={"role": "admin"}, token=admin).status == 200
    # the same token (issued with role "user") is now an admin's: the role is read per request
    assert srv.req("GET", USERS, token=tok).status == 200
    assert srv.req("PATCH", f"{USERS}/{u['id']}", body={"role": "user"}, token=admin).status == 200
    r = srv.req("GET", USERS, token=tok)
    assert r.status == 403 and r.json() == {"detail": "Insufficient permissions"}
    assert srv.req("GET", ME, token=tok).json()["role"] == "user"


def test_role_change_is_audited(srv, admin, db_url):
    u, _ = register_and_login(srv.port, f"aud.{uniq()}@x.io")
    rid = "role-" + uniq()
    srv.req("PATCH", f"{USERS}/{u['id']}", body={"role": "admin"}, token=admin,
            headers={"X-Request-ID": rid})
    out = run_psql(db_url, "SELECT action || '|' || entity || '|' || entity_id || '|' || details::text "
                           f"FROM audit_log WHERE request_id = '{rid}'")
    action, entity, eid, details = out.split("|")
    assert (action, entity, int(eid)) == ("update", "user", u["id"])
    assert "admin" in details


def test_user_create_cli_duplicate_and_validation(db_url):
    from ofclient import create_user
    email = f"cli.{uniq()}@x.io"
    r = create_user(db_url, "  " + email.upper(), "cli-password", "user")
    assert r.returncode == 0, r.stderr
    assert run_psql(db_url, f"SELECT role FROM users WHERE email = '{email}'") == "user"
    r = create_user(db_url, email, "cli-password", "admin")
    assert r.returncode == 1 and b"already exists" in r.stderr
    assert create_user(db_url, f"x.{uniq()}@x.io", "short", "user").returncode == 1
    assert create_user(db_url, "not-an-email", "cli-password", "user").returncode == 1
    assert create_user(db_url, f"y.{uniq()}@x.io", "cli-password", "root").returncode == 2


# ---- configuration-dependent ----

def test_registration_disabled_404(db_url):
    with Server(db_url=db_url, workers=1, extra_cfg="auth: { allow_registration = false; };") as s:
        r = s.req("POST", REG, body={"email": f"no.{uniq()}@x.io", "password": "password1"})
        assert r.status == 404 and r.json() == {"detail": "Not Found"}
        # login still works for existing users
        email, pw = make_admin(db_url, f"noreg.{uniq()}@x.io")
        assert login(s.port, email, pw).status == 200


def test_login_rate_limit_per_ip_429(db_url):
    with Server(db_url=db_url, workers=2, extra_cfg="rate_limit: { login_per_minute = 3; };") as s:
        statuses = [login(s.port, f"rl{i}.{uniq()}@x.io", "whatever-pw").status for i in range(3)]
        assert statuses == [401, 401, 401]
        r = login(s.port, f"rl.{uniq()}@x.io", "whatever-pw")
        assert r.status == 429, r
        assert r.json() == {"detail": "Too many requests"}
        ra = r.header("Retry-After")
        assert ra is not None and ra.isdigit() and 1 <= int(ra) <= 60
        # another client IP (through the trusted local proxy) is not limited
        other = login(s.port, f"rl.{uniq()}@x.io", "whatever-pw",
                      headers={"X-Forwarded-For": "203.0.113.9"})
        assert other.status == 401
        # other routes are not login-limited
        assert s.req("GET", "/health").status == 200


def test_login_rate_limit_per_username_429(db_url):
    with Server(db_url=db_url, workers=2, extra_cfg="rate_limit: { login_per_minute = 3; };") as s:
        user = f"target.{uniq()}@x.io"
        got = [login(s.port, user, "guess-pw", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status
               for i in range(3)]
        assert got == [401, 401, 401]
        # a fourth IP, the same username (spelled differently): still limited
        r = login(s.port, " " + user.upper(), "guess-pw", headers={"X-Forwarded-For": "198.51.100.99"})
        assert r.status == 429, r
        assert r.header("Retry-After") is not None
