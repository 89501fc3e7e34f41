"""pytest plugin: run e2e tests with every server behind a real PgBouncer.

    cd tests/e2e && ORDERFLOW_BIN=... ORDERFLOW_TEST_PGDIR=... \\
        /usr/bin/python3 -m pytest -p pgbouncer_mode test_orders.py ...

One PgBouncer (test_pgbouncer.PgBouncer, transaction mode, a wildcard
database entry so every t_<random> database goes through it, default_pool_size
3) is started for the session in front of the shared cluster. Every
ofclient.Server whose database URL names the shared cluster is pointed at
PgBouncer instead and gets `database.prepared_statements = false`. Direct
psql checks, migrations and `orderflow user create` still go straight to
PostgreSQL; servers on a private cluster (stop/start tests) are left alone.

Expected to disagree, by design (last run: every other test of test_products,
customers, orders, bank, audit, auth, pool, metrics, http, hostile, openapi,
supervision, nginx, config_cli, migrations, chaos and systemd passed):
- tests counting the server's backends in pg_stat_activity see PgBouncer's
  server connections (test_chaos::test_disconnect_mid_request_...);
- test_cache: the product cache needs a LISTEN session, so behind
  PgBouncer it is off (cache.enabled = false is written into every config);
- tests relying on database.statement_timeout: PgBouncer 1.18 refuses the
  `options` startup parameter, so it is not set (it must come from the role,
  docs/operations.md) (test_orders::test_key_held_by_a_running_transaction_...).
"""
import re
import urllib.parse

import pytest

import ofclient
from test_pgbouncer import PgBouncer

_state = {}


def _rewrite(url):
    b = _state.get("bouncer")
    if b is None or url is None:
        return url, False
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    if q.get("host", [None])[0] != b.pg.host or q.get("port", [None])[0] != b.pg.port:
        return url, False
    db = urllib.parse.urlsplit(url).path.lstrip("/")
    return f"postgresql://postgres@127.0.0.1:{b.port}/{db}", True


def _patch():
    orig_init = ofclient.Server.__init__
    orig_write = ofclient.Server.write_config

    def init(self, db_url=None, *a, **kw):
        new, via = _rewrite(db_url)
        self._via_pgbouncer = via
        if via and kw.get("env") and "ORDERFLOW_DATABASE_URL" in kw["env"]:
            kw["env"] = dict(kw["env"], ORDERFLOW_DATABASE_URL=_rewrite(kw["env"]["ORDERFLOW_DATABASE_URL"])[0])
        orig_init(self, new, *a, **kw)

    def write_config(self, *a, **kw):
        orig_write(self, *a, **kw)
        if not getattr(self, "_via_pgbouncer", False):
            return
        with open(self.cfg_path) as f:
            text = f.read()
        if "prepared_statements" in text:
            return
        text, n = re.subn(r"database\s*:\s*\{", "database: { prepared_statements = false; ", text, count=1)
        if n == 0:
            text += "\ndatabase: { prepared_statements = false; };\n"
        # LISTEN needs a session, which transaction pooling does not give:
        # the product cache is off behind PgBouncer (docs/operations.md)
        if not re.search(r"cache\s*:\s*\{[^}]*enabled", text):
            text, n = re.subn(r"cache\s*:\s*\{", "cache: { enabled = false; ", text, count=1)
            if n == 0:
                text += "\ncache: { enabled = false; };\n"
        with open(self.cfg_path, "w") as f:
            f.write(text)

    ofclient.Server.__init__ = init
    ofclient.Server.write_config = write_config


@pytest.fixture(scope="session", autouse=True)
def _pgbouncer_in_front(pg):
    b = PgBouncer(pg, "*", pool_size=3)
    b.start()
    _state["bouncer"] = b
    yield b
    _state.pop("bouncer", None)
    b.cleanup()


_patch()
