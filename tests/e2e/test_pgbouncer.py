"""The real binary through a real PgBouncer (Debian 12: 1.18) in transaction
pooling mode, as ARCHITECTURE.md's "Growing past one machine" asks.

PgBouncer 1.18 in transaction mode hands each transaction (or each implicit
transaction ended by a Sync) to whichever server connection is free and does
not carry named prepared statements between them, so the server runs with
`database.prepared_statements = false` (unnamed extended-protocol statements).
PgBouncer also refuses the `options` startup parameter the pool uses for
statement_timeout; the pool then reconnects without it (one warning).

Layout: the module's fresh migrated database (conftest `db_url`, migrated
directly, never through PgBouncer: `migrate` holds a session advisory lock)
<- PgBouncer started here as a child process (as `postgres` when we are root:
it refuses root), its ini built from deploy/pgbouncer/pgbouncer.ini (the
settings docs/operations.md recommends) with only the site keys replaced:
127.0.0.1 on a free port, auth_type = trust, its own paths; and
default_pool_size = 2 <- the server, 2 workers x
pool_size 4 = 8 client connections multiplexed onto at most 2 server ones.

- a slice of the API end to end: register/login/me, products (create, list,
  get, patch), customers, orders with Idempotency-Key (replay), a status
  transition, bank accounts and transfers, audit list;
- concurrency: 50 parallel product GETs, 20 parallel order creates, 20
  parallel transfers (balances add up);
- PgBouncer really multiplexes (<= 2 server connections for 8 clients);
- the server log has no "prepared statement ... does not exist", no
  "unsupported startup parameter" other than the one-time fallback warning,
  and PgBouncer's log no warning/error but the refused `options` ones;
- statement_timeout set on the database (ALTER DATABASE ... SET) holds
  through PgBouncer, since the pool's own `options` cannot get through;
- with prepared_statements = true through a PgBouncer in transaction mode,
  the mistake is seen: failed requests or errors in the log (PgBouncer with
  one server connection, so it shows on every run).

pgbouncer_mode.py (a pytest plugin) runs any other e2e module through a
PgBouncer the same way: `pytest -p pgbouncer_mode test_orders.py ...`.
"""
import configparser
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid

import pytest

from conftest import run_psql
from ofclient import PSQL, Server, free_port, make_admin, register_and_login, token_for

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
POOL_SIZE_SERVER = 2       # PgBouncer default_pool_size (server connections)
WORKERS, POOL_SIZE = 2, 4  # the server's client connections: 8

assert os.path.exists(PGBOUNCER), "pgbouncer missing: scripts/deps.sh test installs it"


DEPLOY_INI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../deploy/pgbouncer/pgbouncer.ini")
SITE_KEYS = {"listen_addr", "listen_port", "unix_socket_dir", "auth_type", "auth_file",
             "admin_users", "logfile", "pidfile"}


def deploy_ini():
    """The [pgbouncer] settings of deploy/pgbouncer/pgbouncer.ini."""
    cp = configparser.ConfigParser(inline_comment_prefixes=(";",), comment_prefixes=(";", "#"))
    with open(DEPLOY_INI) as f:
        cp.read_file(f)
    return dict(cp["pgbouncer"])


class PgBouncer:
    """pgbouncer in the foreground, its own ini/log/port, stopped by PID."""

    def __init__(self, pg, dbname, pool_mode="transaction", pool_size=POOL_SIZE_SERVER):
        self.pg = pg
        self.dbname = dbname
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="of-pgb-")
        self.ini = os.path.join(self.dir, "pgbouncer.ini")
        self.log_path = os.path.join(self.dir, "pgbouncer.log")
        self.proc = None
        with open(os.path.join(self.dir, "userlist.txt"), "w") as f:
            f.write('"postgres" ""\n')
        # every [pgbouncer] setting of deploy/pgbouncer/pgbouncer.ini (the one
        # docs/operations.md recommends) but the site ones and the pool size
        ini = dict(deploy_ini(), listen_addr="127.0.0.1", listen_port=str(self.port),
                   unix_socket_dir="", auth_type="trust", auth_file=f"{self.dir}/userlist.txt",
                   admin_users="postgres", logfile=self.log_path, pidfile=f"{self.dir}/pgbouncer.pid",
                   default_pool_size=str(pool_size))
        assert ini["pool_mode"] == "transaction"
        ini["pool_mode"] = pool_mode
        with open(self.ini, "w") as f:
            f.write(
                "[databases]\n"
                + (f"* = host={pg.host} port={pg.port} user=postgres\n" if dbname == "*" else
                   f"{dbname} = host={pg.host} port={pg.port} dbname={dbname} user=postgres\n") +
                "[pgbouncer]\n" + "".join(f"{k} = {v}\n" for k, v in ini.items()))
        if os.getuid() == 0:   # pgbouncer refuses to run as root
            pw = pwd.getpwnam("postgres")
            for p in [self.dir] + [os.path.join(self.dir, n) for n in os.listdir(self.dir)]:
                os.chown(p, pw.pw_uid, pw.pw_gid)

    def url_for(self, dbname):
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    @property
    def url(self):
        return self.url_for(self.dbname)

    def start(self):
        kw = {}
        if os.getuid() == 0:
            kw = {"user": "postgres", "group": "postgres", "extra_groups": []}
        self.errf = open(os.path.join(self.dir, "stderr.log"), "ab")
        self.proc = subprocess.Popen([PGBOUNCER, "-q", self.ini], cwd=self.dir,
                                     stdout=self.errf, stderr=self.errf, **kw)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited with {self.proc.returncode}:\n{self.log()}")
            r = run_psql(self.url_for("postgres" if self.dbname == "*" else self.dbname),
                         "SELECT 1", check=False, timeout=5)
            if r.returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError("pgbouncer did not come up:\n" + self.log())

    def show(self, what):
        """SHOW <what> on the admin console: a list of dicts."""
        url = f"postgresql://postgres@127.0.0.1:{self.port}/pgbouncer"
        r = subprocess.run([PSQL, "-X", "-q", "-A", "-F", "\t", "-P", "footer=off",
                            "-d", url, "-c", f"SHOW {what}"],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.strip().splitlines()
        head = lines[0].split("\t")
        return [dict(zip(head, ln.split("\t"))) for ln in lines[1:]]

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()   # SIGTERM: immediate shutdown (1.18)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.errf.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def dbname_of(url):
    return urllib.parse.urlsplit(url).path.lstrip("/")


def server_cfg(prepared):
    return ("database: { pool_size = %d; queue_timeout = 10000; statement_timeout = 5000; "
            "connect_timeout = 2; prepared_statements = %s; };\n"
            "rate_limit: { login_per_minute = 0; writes_per_minute = 0; };\n"
            # LISTEN needs a session: through transaction pooling notifications
            # are lost, so the product cache is off (docs/operations.md)
            "cache: { enabled = false; };"
            "jobs: { enabled = false; };"   # connections counted here are the workers' pools
            % (POOL_SIZE, "true" if prepared else "false"))


def uniq():
    return uuid.uuid4().hex[:10]


def parallel(n, fn):
    out = [None] * n

    def run(i):
        try:
            out[i] = fn(i)
        except Exception as e:        # surfaced by the asserts
            out[i] = e

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(90)
    return out


def wait_for(pred, timeout, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


BAD_LOG_MARKS = ("does not exist", "already exists", "unsupported startup parameter",
                 "prepared statement", "lost (", "server conn crashed", "protocol")


def bad_log_lines(srv):
    """Server log lines that must not be there. The one expected line is the
    pool's fallback warning about the refused `options` startup parameter."""
    bad = []
    for ln in srv.log().splitlines():
        if "refused the options startup parameter" in ln:
            continue
        low = ln.lower()
        if any(m in low for m in BAD_LOG_MARKS) or '"level":"error"' in low.replace(" ", ""):
            bad.append(ln)
    return bad


# ---- fixtures ------------------------------------------------------------

@pytest.fixture(scope="module")
def bouncer(pg, db_url):
    b = PgBouncer(pg, dbname_of(db_url))
    b.start()
    yield b
    b.cleanup()


@pytest.fixture(scope="module")
def srv(bouncer):
    s = Server(db_url=bouncer.url, workers=WORKERS, extra_cfg=server_cfg(prepared=False))
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def admin(srv, bouncer):
    # The CLI goes through PgBouncer too.
    email, pw = make_admin(bouncer.url, f"pgb-admin-{uniq()}@x.io")
    return token_for(srv.port, email, pw)


@pytest.fixture(scope="module")
def user(srv):
    return register_and_login(srv.port, f"pgb-user-{uniq()}@x.io")


# ---- the prepared_statements = false path --------------------------------

def test_options_fallback_is_logged_once_per_worker(srv):
    """PgBouncer 1.18 refuses `options`: each worker's pool falls back once."""
    assert wait_for(lambda: srv.req("GET", "/ready").status == 200, 10)
    n = srv.log().count("refused the options startup parameter")
    assert 1 <= n <= WORKERS, srv.log()[-3000:]


def test_auth_register_login_me(srv, user):
    u, tok = user
    assert u["role"] == "user"
    r = srv.req("GET", "/api/v1/auth/me", token=tok)
    assert r.status == 200, r
    assert r.json()["email"] == u["email"]
    r = srv.req("POST", "/api/v1/auth/register", body={"email": u["email"], "password": "x" * 10})
    assert r.status == 409, r
    r = srv.req("POST", "/api/v1/auth/login", body=f"username={u['email']}&password=wrong-pass",
                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 401, r


def test_products(srv, admin):
    name = f"Lamp {uniq()}"
    r = srv.req("POST", "/api/v1/products", token=admin, body={"name": name, "price": "19.99"})
    assert r.status == 201, r
    p = r.json()
    assert p["price"] == "19.99" and p["in_stock"] is True
    r = srv.req("POST", "/api/v1/products", token=admin, body={"name": name.upper(), "price": "1"})
    assert r.status == 409, r
    r = srv.req("GET", f"/api/v1/products/{p['id']}")
    assert r.status == 200 and r.json()["name"] == name, r
    r = srv.req("PATCH", f"/api/v1/products/{p['id']}", token=admin, body={"price": "21.50"})
    assert r.status == 200 and r.json()["price"] == "21.50", r
    r = srv.req("GET", f"/api/v1/products?q={name[5:]}&sort=-price")
    assert r.status == 200, r
    body = r.json()
    assert body["total"] == 1 and body["items"][0]["id"] == p["id"], body
    r = srv.req("GET", "/api/v1/products/999999999")
    assert r.status == 404, r


def test_customers(srv, user):
    tok = user[1]
    r = srv.req("POST", "/api/v1/customers", token=tok,
                body={"name": "Ada", "email": f"ada.{uniq()}@x.io", "tier": "pro"})
    assert r.status == 201, r
    c = r.json()
    r = srv.req("PATCH", f"/api/v1/customers/{c['id']}", token=tok, body={"tier": "enterprise"})
    assert r.status == 200 and r.json()["tier"] == "enterprise", r
    r = srv.req("GET", f"/api/v1/customers/{c['id']}", token=tok)
    assert r.status == 200 and r.json()["email"] == c["email"], r
    r = srv.req("GET", "/api/v1/customers?tier=enterprise", token=tok)
    assert r.status == 200 and r.json()["total"] >= 1, r
    r = srv.req("POST", "/api/v1/customers", token=tok, body={"name": "Dup", "email": c["email"]})
    assert r.status == 409, r


@pytest.fixture(scope="module")
def shop(srv, admin, user):
    tok = user[1]
    c = srv.req("POST", "/api/v1/customers", token=tok,
                body={"name": "Grace", "email": f"g.{uniq()}@x.io"}).json()
    prods = []
    for i in range(3):
        r = srv.req("POST", "/api/v1/products", token=admin,
                    body={"name": f"Item {i} {uniq()}", "price": f"{i + 1}.25"})
        assert r.status == 201, r
        prods.append(r.json())
    return c, prods


def test_orders_idempotency_and_transition(srv, admin, user, shop, db_url):
    tok = user[1]
    c, prods = shop
    body = {"customer_id": c["id"], "items": [{"product_id": prods[0]["id"], "quantity": 2},
                                               {"product_id": prods[1]["id"], "quantity": 1}]}
    key = "k-" + uniq()
    r1 = srv.req("POST", "/api/v1/orders", token=tok, body=body, headers={"Idempotency-Key": key})
    assert r1.status == 201, r1
    o = r1.json()
    assert o["total"] == "4.75" and o["status"] == "pending" and len(o["items"]) == 2, o
    r2 = srv.req("POST", "/api/v1/orders", token=tok, body=body, headers={"Idempotency-Key": key})
    assert r2.status == 201 and r2.header("Idempotent-Replayed") == "true", r2
    assert r2.json() == o
    r3 = srv.req("POST", "/api/v1/orders", token=tok, headers={"Idempotency-Key": key},
                 body=dict(body, notes="different"))
    assert r3.status == 422, r3
    n = run_psql(db_url, f"SELECT count(*) FROM orders WHERE customer_id = {c['id']}")
    assert n == "1"

    r = srv.req("PATCH", f"/api/v1/orders/{o['id']}/status", token=admin, body={"status": "processing"})
    assert r.status == 200 and r.json()["status"] == "processing", r
    r = srv.req("PATCH", f"/api/v1/orders/{o['id']}/status", token=admin, body={"status": "processing"})
    assert r.status == 409, r
    r = srv.req("PATCH", f"/api/v1/orders/{o['id']}/status", token=tok, body={"status": "cancelled"})
    assert r.status == 409, r   # a user may cancel only from pending
    r = srv.req("GET", f"/api/v1/orders/{o['id']}", token=tok)
    assert r.status == 200 and r.json()["status"] == "processing", r
    r = srv.req("GET", f"/api/v1/orders?customer_id={c['id']}", token=tok)
    assert r.status == 200 and r.json()["total"] == 1, r


def test_bank_accounts_and_transfers(srv, user):
    tok = user[1]
    other = register_and_login(srv.port, f"pgb-other-{uniq()}@x.io")[1]
    a = srv.req("POST", "/api/v1/bank-accounts", token=tok, body={"name": "A", "balance": "100.00"})
    b = srv.req("POST", "/api/v1/bank-accounts", token=other, body={"name": "B", "balance": "5.00"})
    assert a.status == 201 and b.status == 201, (a, b)
    a, b = a.json(), b.json()
    key = "t-" + uniq()
    xfer = {"from_account_id": a["id"], "to_account_id": b["id"], "amount": "30.00"}
    r = srv.req("POST", "/api/v1/transfers", token=tok, body=xfer, headers={"Idempotency-Key": key})
    assert r.status == 201, r
    r2 = srv.req("POST", "/api/v1/transfers", token=tok, body=xfer, headers={"Idempotency-Key": key})
    assert r2.status == 201 and r2.header("Idempotent-Replayed") == "true", r2
    assert r2.json() == r.json()
    r = srv.req("POST", "/api/v1/transfers", token=tok, body=dict(xfer, amount="1000.00"))
    assert r.status == 409 and r.json()["detail"] == "Insufficient funds", r
    assert srv.req("GET", f"/api/v1/bank-accounts/{a['id']}", token=tok).json()["balance"] == "70.00"
    assert srv.req("GET", f"/api/v1/bank-accounts/{b['id']}", token=other).json()["balance"] == "35.00"
    r = srv.req("GET", f"/api/v1/bank-accounts/{a['id']}/transfers", token=tok)
    assert r.status == 200 and r.json()["total"] == 1, r

    # 20 concurrent transfers back and forth: money is conserved.
    def one(i):
        if i % 2 == 0:
            return srv.req("POST", "/api/v1/transfers", token=tok, timeout=30,
                           body={"from_account_id": a["id"], "to_account_id": b["id"], "amount": "1.00"})
        return srv.req("POST", "/api/v1/transfers", token=other, timeout=30,
                       body={"from_account_id": b["id"], "to_account_id": a["id"], "amount": "2.00"})
    res = parallel(20, one)
    assert all(not isinstance(x, Exception) and x.status == 201 for x in res), res
    ba = srv.req("GET", f"/api/v1/bank-accounts/{a['id']}", token=tok).json()["balance"]
    bb = srv.req("GET", f"/api/v1/bank-accounts/{b['id']}", token=other).json()["balance"]
    assert (ba, bb) == ("80.00", "25.00"), (ba, bb)


def test_audit_list(srv, admin, shop):
    r = srv.req("GET", "/api/v1/audit?entity=product", token=admin)
    assert r.status == 200, r
    body = r.json()
    assert body["total"] >= 3, body
    assert {it["action"] for it in body["items"]} >= {"create"}
    r = srv.req("GET", "/api/v1/audit?entity=order", token=admin)
    assert r.status == 200 and any(it["action"] == "transition" for it in r.json()["items"]), r


def test_concurrent_reads_and_order_creates(srv, user, shop, bouncer, pg, db_url):
    tok = user[1]
    c, prods = shop
    # more than one cursor page of products, so a page that ignores limit= shows
    for i in range(6 - len(prods)):
        run_psql(db_url, f"INSERT INTO products (name, price_cents) VALUES ('Filler {i} {uniq()}', 100)")
    newest = [int(x) for x in run_psql(db_url, "SELECT id FROM products "
                                               "ORDER BY id DESC LIMIT 5").split()]
    # (a worker's list cache may answer for API.md's 100 ms window first)
    assert wait_for(lambda: [it["id"] for it in srv.req("GET", "/api/v1/products?limit=5&sort=-id")
                             .json()["items"]] == newest, 10)
    gets = parallel(50, lambda i: srv.req("GET", f"/api/v1/products/{prods[i % 3]['id']}", timeout=30))
    lists = parallel(20, lambda i: srv.req("GET", "/api/v1/products?limit=5&sort=-id", timeout=30))
    key = "par-" + uniq()

    def order(i):
        h = {"Idempotency-Key": key} if i >= 15 else {}   # 5 identical -> one order
        return srv.req("POST", "/api/v1/orders", token=tok, timeout=30, headers=h,
                       body={"customer_id": c["id"],
                             "items": [{"product_id": prods[2]["id"], "quantity": 1}]})
    orders = parallel(20, order)
    assert all(not isinstance(x, Exception) and x.status == 200 for x in gets), gets
    assert all(x.json()["id"] == prods[i % 3]["id"] for i, x in enumerate(gets))
    assert all(not isinstance(x, Exception) and x.status == 200 for x in lists), lists
    # API.md's cursor paging: limit=5 gives the 5 newest and a cursor to go on
    for x in lists:
        body = x.json()
        assert [it["id"] for it in body["items"]] == newest, body
        assert isinstance(body["next_cursor"], str) and body["next_cursor"], body
    bad = [x for x in orders if isinstance(x, Exception) or x.status not in (201, 409)]
    assert not bad, bad
    # Parallel identical keyed requests: one creates, the rest replay or see 409 in progress.
    keyed = orders[15:]
    assert all(x.status == 201 for x in orders[:15]), orders[:15]
    ids = {x.json()["id"] for x in keyed if x.status == 201}
    assert len(ids) == 1, keyed
    n = run_psql(db_url, f"SELECT count(*) FROM orders o WHERE customer_id = {c['id']} AND EXISTS "
                         f"(SELECT 1 FROM order_items i WHERE i.order_id = o.id "
                         f"AND i.product_id = {prods[2]['id']})")
    assert n == "16", n
    # PgBouncer multiplexed the server's 8 client connections onto at most 2
    # server ones, and clients did wait for a server connection now and then.
    pool = [x for x in bouncer.show("POOLS") if x["database"] == bouncer.dbname][0]
    assert int(pool["cl_active"]) + int(pool["cl_waiting"]) == WORKERS * POOL_SIZE, pool
    servers = [x for x in bouncer.show("SERVERS") if x["database"] == bouncer.dbname]
    assert 1 <= len(servers) <= POOL_SIZE_SERVER, servers
    assert pg.backends(db_url) <= POOL_SIZE_SERVER
    stats = [x for x in bouncer.show("STATS") if x["database"] == bouncer.dbname][0]
    assert int(stats["total_wait_time"]) > 0, stats


def test_logs_are_clean(srv, bouncer):
    """No prepared-statement, protocol or connection errors on either side;
    the only complaints are about the refused `options` startup parameter."""
    bad = bad_log_lines(srv)
    assert not bad, "\n".join(bad[:20])
    odd = []
    for ln in bouncer.log().splitlines():
        if "unsupported startup parameter: options" in ln:
            continue
        if " WARNING " in ln or " ERROR " in ln or \
                ("closing because" in ln and "client close request" not in ln):
            odd.append(ln)
    assert not odd, "\n".join(odd[:20])


def test_statement_timeout_from_the_database(pg, new_db):
    """PgBouncer drops the pool's statement_timeout (options refused), so it
    must come from the role or database (docs/operations.md): set there, it
    holds through PgBouncer."""
    url = new_db()
    name = dbname_of(url)
    pg.psql(f"ALTER DATABASE {name} SET statement_timeout = '300ms'")
    b = PgBouncer(pg, name)
    try:
        b.start()
        with Server(db_url=b.url, workers=1, extra_cfg=server_cfg(prepared=False)) as s:
            r = s.req("GET", "/__test/sleep_db?ms=1")
            if r.status == 404:
                pytest.fail("built without OF_TEST_ROUTES (scripts/test.sh builds with -DOF_TEST_ROUTES=ON)")
            assert r.status == 200, r
            # 60 s asked, the client gives up after 30 s: an answer at all
            # means the database's 300 ms cut the sleep (the pool's own
            # statement_timeout cannot get through PgBouncer)
            r = s.req("GET", "/__test/sleep_db?ms=60000", timeout=30)
            assert r.status != 200, r
            assert s.req("GET", "/__test/sleep_db?ms=1").status == 200
    finally:
        b.cleanup()


# ---- prepared_statements = true: the misconfiguration is detected -------

def test_prepared_true_through_transaction_pooling_goes_wrong(pg, db_url):
    """Named statements prepared on whichever server connection PgBouncer
    lent at connect time are missing (26000) or duplicated (42P05) on the
    others, and the connect-time prepares (one sync each, in one flight) can
    be split across server connections: requests fail or the log says so.
    Its own PgBouncer, as this one may be left in a sorry state, with one
    server connection: every client connection after the first prepares the
    same names on it again (42P05), so the mistake shows on every run."""
    b = PgBouncer(pg, dbname_of(db_url), pool_size=1)
    try:
        b.start()
        cfg = server_cfg(prepared=True).replace("statement_timeout = 5000", "statement_timeout = 1000")
        with Server(db_url=b.url, workers=WORKERS, extra_cfg=cfg) as s2:
            time.sleep(0.5)
            res = parallel(40, lambda i: s2.req("GET", f"/api/v1/products?page={i + 1}&page_size=1", timeout=10))
            statuses = [x.status if not isinstance(x, Exception) else 0 for x in res]
            log = s2.log()
    finally:
        b.cleanup()
    failed = [st for st in statuses if st not in (200, 404)]
    noticed = any(m in log for m in ("does not exist", "already exists", "lost ("))
    assert failed or noticed, (statuses, log[-2000:])
