# ctest-labels: ha
"""Read replicas (issue 14) against a real streaming standby: a throwaway
primary (private_pg), a standby made from it with pg_basebackup -c fast -R
on its own port and socket dir, and OrderFlow with database.replica_url.

Proves: catalog reads are served by the replica (its pool's query counter
moves, its application_name is on the standby); a user's own order is read
from the primary (with the standby's replay paused it would be missing
there); a replica past replica_max_lag is not used; replica stopped ->
catalog reads answer from the primary without an error; primary stopped
(-m immediate) -> catalog reads still answer from the replica, writes get
503 + Retry-After, and none of them was acknowledged then lost."""
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
import urllib.parse

import pytest

from conftest import run_psql
from ofclient import Server, make_admin, register_and_login, token_for

from ofclient import PGBIN
DEADLINE = 60


def as_pg(args, **kw):
    if os.getuid() == 0:
        args = ["runuser", "-u", "postgres", "--"] + args
    return subprocess.run(args, cwd="/", check=True, timeout=120, capture_output=True, text=True, **kw)


def wait_for(what, fn, deadline=DEADLINE):
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Standby:
    def __init__(self, primary):
        self.top = tempfile.mkdtemp(prefix="ofrep-", dir="/tmp")
        os.chmod(self.top, 0o755)
        self.data = os.path.join(self.top, "data")
        self.sock = self.top
        self.port = str(int(primary.port) + 1 if int(primary.port) < 65000 else 21001)
        if os.getuid() == 0:
            shutil.chown(self.top, "postgres")
        as_pg([f"{PGBIN}/pg_basebackup", "-D", self.data, "-c", "fast", "-R", "-X", "stream",
               "-h", primary.host, "-p", primary.port, "-U", "postgres"])
        self.start()

    def pg_ctl(self, *args):
        return as_pg([f"{PGBIN}/pg_ctl", "-D", self.data, *args])

    def start(self):
        self.pg_ctl("-l", os.path.join(self.top, "log"), "-w", "-t", "60",
                    "-o", f"-p {self.port} -k {self.sock} -c listen_addresses=''", "start")

    def stop(self, mode="fast"):
        self.pg_ctl("-m", mode, "-w", "stop")

    def url_for(self, db):
        return f"postgresql:///{db}?host={self.sock}&port={self.port}&user=postgres"

    def remove(self):
        subprocess.run([f"{PGBIN}/pg_ctl", "-D", self.data, "-m", "immediate", "stop"]
                       if os.getuid() != 0 else
                       ["runuser", "-u", "postgres", "--", f"{PGBIN}/pg_ctl", "-D", self.data,
                        "-m", "immediate", "stop"], cwd="/", capture_output=True, timeout=60)
        shutil.rmtree(self.top, ignore_errors=True)


@pytest.fixture(scope="module")
def ha(private_pg):
    url = private_pg.create_db(migrate_up=True)
    db = urllib.parse.urlsplit(url).path.lstrip("/")
    sb = Standby(private_pg)
    rurl = sb.url_for(db)
    wait_for("the database on the standby",
             lambda: run_psql(rurl, "SELECT count(*) FROM products", check=False).returncode == 0)
    srv = Server(db_url=url, workers=2,
                 extra_cfg=f'database: {{ replica_url = "{rurl}"; replica_max_lag = 1.0; }};\n'
                           'rate_limit: { login_per_minute = 0; };')
    srv.start()
    email, pw = make_admin(url, f"ha-{uuid.uuid4().hex[:6]}@x.io")
    yield {"srv": srv, "url": url, "rurl": rurl, "sb": sb, "pg": private_pg,
           "admin": token_for(srv.port, email, pw)}
    srv.stop()
    sb.remove()


def metric(srv, name, labels=""):
    r = srv.req("GET", "/metrics")
    assert r.status == 200, r
    m = re.search(rf"^{re.escape(name + labels)} (\S+)$", r.body.decode(), re.M)
    return float(m.group(1)) if m else None


def serving(srv, n):
    return metric(srv, "db_replica_serving") == n


def new_product(h):
    r = h["srv"].req("POST", "/api/v1/products", token=h["admin"],
                     body={"name": f"R {uuid.uuid4().hex[:10]}", "price": "3.50"})
    assert r.status == 201, r
    return r.json()


def test_catalog_reads_are_served_by_the_replica(ha):
    srv = ha["srv"]
    p = new_product(ha)
    wait_for("both workers routing to the replica", lambda: serving(srv, 2))
    wait_for("the product replayed on the standby",
             lambda: run_psql(ha["rurl"], f"SELECT count(*) FROM products WHERE id = {p['id']}") == "1")
    before = metric(srv, "db_pool_queries_total", '{pool="replica"}')
    for _ in range(20):
        assert srv.req("GET", f"/api/v1/products/{p['id']}").status == 200
        assert srv.req("GET", "/api/v1/products?q=R&limit=5").status == 200
    after = wait_for("the heartbeat's counters",
                     lambda: (v := metric(srv, "db_pool_queries_total", '{pool="replica"}')) >= before + 40 and v)
    assert after >= before + 40
    apps = run_psql(ha["rurl"], "SELECT count(*) FROM pg_stat_activity "
                                "WHERE application_name LIKE 'orderflow/%-replica'")
    assert int(apps) >= 2
    ready = srv.req("GET", "/ready").json()
    assert ready["role"] == "primary" and ready["replica"] == "ok"


def test_own_order_reads_the_primary_and_a_lagging_replica_is_skipped(ha):
    srv = ha["srv"]
    run_psql(ha["rurl"], "SELECT pg_wal_replay_pause()")
    try:
        user, tok = register_and_login(srv.port, f"ha-u-{uuid.uuid4().hex[:6]}@x.io")
        p = new_product(ha)
        r = srv.req("POST", "/api/v1/customers", token=tok,
                    body={"name": "Ada", "email": f"c.{uuid.uuid4().hex[:6]}@x.io"})
        assert r.status == 201, r
        r = srv.req("POST", "/api/v1/orders", token=tok,
                    body={"customer_id": r.json()["id"], "items": [{"product_id": p["id"], "quantity": 1}]})
        assert r.status == 201, r
        oid = r.json()["id"]
        # Not on the standby (replay paused), yet readable at once: the primary.
        assert run_psql(ha["rurl"], f"SELECT count(*) FROM orders WHERE id = {oid}") == "0"
        assert srv.req("GET", f"/api/v1/orders/{oid}", token=tok).status == 200
        # Past replica_max_lag the catalog reads the primary: the new product is there.
        wait_for("both workers off the lagging replica", lambda: serving(srv, 0))
        assert metric(srv, "db_replica_lag_seconds") > 1.0
        assert srv.req("GET", f"/api/v1/products/{p['id']}").status == 200
        assert srv.req("GET", "/ready").json()["replica"] == "lagging"
    finally:
        run_psql(ha["rurl"], "SELECT pg_wal_replay_resume()")
    wait_for("the replica caught up and serving again", lambda: serving(srv, 2))


def test_replica_stopped_catalog_reads_fall_back_without_error(ha):
    srv = ha["srv"]
    p = new_product(ha)
    ha["sb"].stop("fast")
    try:
        for _ in range(30):
            r = srv.req("GET", f"/api/v1/products/{p['id']}")
            assert r.status == 200, r
            assert srv.req("GET", "/api/v1/products?limit=3").status == 200
        wait_for("both workers off the stopped replica", lambda: serving(srv, 0))
        assert srv.req("GET", "/ready").json()["replica"] == "down"
    finally:
        ha["sb"].start()
    wait_for("the replica back and serving", lambda: serving(srv, 2))


def test_standby_as_primary_url_reports_role_and_25006_is_503(ha):
    """database.url reaching a standby (no target_session_attrs): /ready says
    so, and a write refused with 25006 is 503 + Retry-After (the connection
    redials: the log says why), never a 500."""
    admin_email, pw = make_admin(ha["url"], f"ha-s-{uuid.uuid4().hex[:6]}@x.io")
    wait_for("the admin replayed on the standby",
             lambda: run_psql(ha["rurl"], f"SELECT count(*) FROM users WHERE email = '{admin_email}'") == "1")
    s = Server(db_url=ha["rurl"], workers=1, extra_cfg="rate_limit: { login_per_minute = 0; };")
    s.start()
    try:
        assert s.req("GET", "/ready").json()["role"] == "standby"
        tok = token_for(s.port, admin_email, pw)
        for _ in range(3):
            w = s.req("POST", "/api/v1/products", token=tok,
                      body={"name": f"RO {uuid.uuid4().hex[:8]}", "price": "1.00"})
            assert w.status == 503, w
            assert w.header("Retry-After") is not None
        wait_for("the redial logged", lambda: "read-only now (25006)" in open(s.log_path).read())
    finally:
        s.stop()


def test_primary_stopped_catalog_from_replica_writes_503(ha):
    srv = ha["srv"]
    p = new_product(ha)
    wait_for("the product replayed on the standby",
             lambda: run_psql(ha["rurl"], f"SELECT count(*) FROM products WHERE id = {p['id']}") == "1")
    wait_for("both workers on the replica", lambda: serving(srv, 2))
    note = f"outage {uuid.uuid4().hex[:8]}"
    as_pg([f"{PGBIN}/pg_ctl", "-D", os.path.join(ha["pg"].dir, "data"), "-m", "immediate", "-w", "stop"])
    acked = 0
    try:
        wait_for("a worker noticing the primary is gone",
                 lambda: srv.req("GET", "/ready").status == 503)
        for i in range(20):
            r = srv.req("GET", f"/api/v1/products/{p['id']}")
            assert r.status == 200, r
            assert srv.req("GET", "/api/v1/products?limit=3").status == 200
            w = srv.req("POST", "/api/v1/products", token=ha["admin"],
                        body={"name": f"{note} {i}", "price": "1.00"})
            assert w.status in (201, 503), w
            if w.status == 503:
                assert w.header("Retry-After") is not None
                assert w.json() == {"detail": "Service unavailable"}
            acked += w.status == 201
    finally:
        ha["pg"].start_server()
    wait_for("the primary back", lambda: srv.req("GET", "/ready").status == 200)
    # Whatever was acknowledged exists; nothing else does.
    assert run_psql(ha["url"], f"SELECT count(*) FROM products WHERE name LIKE '{note}%'") == str(acked)
    assert acked == 0
