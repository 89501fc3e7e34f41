"""pytest fixtures for a real PostgreSQL.

- ``pg`` (session): the shared throwaway cluster. ctest starts it (fixture
  ``pg`` -> tests/pg/testpg.sh) and passes its directory in
  ORDERFLOW_TEST_PGDIR; a plain local ``pytest`` run starts one itself and
  stops it at the end.
- ``db_url`` (module): a fresh database ``t_<random>`` in that cluster,
  migrated with the real binary (``$ORDERFLOW_BIN migrate up``, once per
  cluster into a template the databases are copied from); its libpq URL.
- ``new_db`` (function): a factory for more databases, migrated or not.
- ``psql`` (fixture) / ``run_psql(url, sql)``: run SQL with the psql client,
  return the unaligned, tuples-only output.
- ``private_pg`` (module): a separate cluster of the test module's own, for
  tests that stop and start PostgreSQL (never stop the shared one).

Servers are started with ofclient.Server(db_url=...).

Marker ``static``: a test that runs no orderflow binary (a file check, a
linter) in a module whose other tests do; scripts/test.sh's ASan pass
deselects these (``-m "not static"``), as nothing of them is sanitized.

Skips are counted: with OF_SKIP_LOG set (scripts/test.sh does), every skip
appends one line ``SKIP <test id>: <reason>`` to that file, and the summary
prints them. A skip is allowed only for a documented platform reason (README,
"Testing"); a missing tool is a failure (scripts/deps.sh test installs it).
"""
import fcntl
import hashlib
import os
import shutil
import sys
import subprocess
import tempfile
import urllib.parse
import uuid

import pytest

from ofclient import BIN, PSQL

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("OF_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "../..")))
TESTPG = os.path.join(SRC, "tests", "pg", "testpg.sh")


def run_psql(url, sql, check=True, timeout=30):
    """Run sql (one or more statements) against url; stdout, stripped."""
    r = subprocess.run([PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                       capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"psql failed ({r.returncode}): {sql}\n{r.stderr}")
    return r.stdout.strip() if check else r


def migrate(url, *args, timeout=60):
    """Run `orderflow migrate ARGS` against url; the CompletedProcess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env["ORDERFLOW_DATABASE_URL"] = url
    env["ORDERFLOW_MIGRATIONS_DIR"] = os.path.join(SRC, "migrations")
    return subprocess.run([BIN, "migrate", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


class Cluster:
    """A throwaway cluster made by testpg.sh in `dir`."""

    def __init__(self, dir, owned):
        self.dir = dir
        self.owned = owned
        with open(os.path.join(dir, "url")) as f:
            self.url = f.read().strip()
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.url).query)
        self.host = q["host"][0]
        self.port = q["port"][0]

    def url_for(self, dbname):
        return f"postgresql:///{dbname}?host={self.host}&port={self.port}&user=postgres"

    def psql(self, sql, db="postgres", **kw):
        return run_psql(self.url_for(db), sql, **kw)

    def create_db(self, migrate_up=True):
        """A new database t_<random>; migrated: a copy of this cluster's
        template that `orderflow migrate up` made once (of_tmpl_<hash of
        migrations/ and the binary>), so each test module does not pay for
        the migrations again -- `migrate up` on the copy is a no-op."""
        name = "t_" + uuid.uuid4().hex[:12]
        if migrate_up:
            self.psql(f"CREATE DATABASE {name} TEMPLATE {self._template()}")
        else:
            self.psql(f"CREATE DATABASE {name}")
        return self.url_for(name)

    def _template(self):
        h = hashlib.sha256()
        mdir = os.path.join(SRC, "migrations")
        for f in sorted(os.listdir(mdir)):
            h.update(f.encode())
            with open(os.path.join(mdir, f), "rb") as fh:
                h.update(fh.read())
        st = os.stat(BIN)
        h.update(f"{os.path.realpath(BIN)}:{st.st_size}:{st.st_mtime_ns}".encode())
        name = "of_tmpl_" + h.hexdigest()[:16]
        with open(os.path.join(self.dir, ".template.lock"), "a") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX)       # parallel modules: one makes it
            if self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}' "
                         "AND datistemplate") != "1":
                self.psql(f"DROP DATABASE IF EXISTS {name}")
                self.psql(f"CREATE DATABASE {name}")
                r = migrate(self.url_for(name), "up")
                assert r.returncode == 0, f"migrate up failed:\n{r.stdout}\n{r.stderr}"
                self.psql(f"ALTER DATABASE {name} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
        return name

    def drop_db(self, url):
        name = urllib.parse.urlsplit(url).path.lstrip("/")
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", check=False)

    def stop_server(self):
        """Stop PostgreSQL but keep the cluster (pgstop)."""
        subprocess.run([TESTPG, "pgstop", self.dir], check=True, timeout=90)

    def start_server(self):
        subprocess.run([TESTPG, "pgstart", self.dir], check=True, timeout=90)

    def backends(self, db):
        """Client backends connected to database db (by name or URL): the
        request workers' pools, not the product cache's LISTEN connection (one
        per worker, application_name orderflow-cache) nor the jobs process's
        (orderflow-jobs)."""
        if "/" in db:
            db = urllib.parse.urlsplit(db).path.lstrip("/")
        return int(self.psql("SELECT count(*) FROM pg_stat_activity "
                             f"WHERE datname = '{db}' AND backend_type = 'client backend' "
                             "AND application_name IS DISTINCT FROM 'orderflow-cache' "
                             "AND application_name IS DISTINCT FROM 'orderflow-jobs' "
                             "AND pid <> pg_backend_pid()"))


def _start_cluster(dir):
    # As root the cluster runs as `postgres`, which must reach dir.
    os.chmod(os.path.dirname(dir), 0o755)
    subprocess.run([TESTPG, "start", dir], check=True, timeout=120, stdout=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def pg():
    d = os.environ.get("ORDERFLOW_TEST_PGDIR")
    owned = None
    if not d:
        owned = tempfile.mkdtemp(prefix="of-pg-")
        d = os.path.join(owned, "pg")
    _start_cluster(d)   # idempotent: a no-op when ctest already started it
    c = Cluster(d, owned is not None)
    yield c
    if owned:
        subprocess.run([TESTPG, "stop", d], timeout=120)
        shutil.rmtree(owned, ignore_errors=True)


# Databases are not dropped after their tests: the cluster is thrown away
# whole at the end of the run (ctest's pg.stop, or the session fixture), and
# on PostgreSQL 15 every DROP DATABASE forces a checkpoint.
@pytest.fixture(scope="module")
def db_url(pg):
    return pg.create_db(migrate_up=True)


@pytest.fixture
def new_db(pg):
    return lambda migrate_up=True: pg.create_db(migrate_up=migrate_up)


@pytest.fixture(scope="session")
def psql():
    return run_psql


@pytest.fixture(scope="module")
def private_pg():
    """A cluster only this module uses: safe to stop and start."""
    owned = tempfile.mkdtemp(prefix="of-pgp-")
    d = os.path.join(owned, "pg")
    _start_cluster(d)
    c = Cluster(d, True)
    yield c
    subprocess.run([TESTPG, "stop", d], timeout=120)
    shutil.rmtree(owned, ignore_errors=True)


def pytest_configure(config):
    config.addinivalue_line("markers", "static: runs no orderflow binary (not repeated under ASan)")


def _skip_reason(rep):
    lr = rep.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        return str(lr[2]).removeprefix("Skipped: ")
    return str(lr)


def pytest_terminal_summary(terminalreporter):
    """test_openapi's explicit list of API.md routes not built yet, printed
    on every run of that module, pass or fail; and every skip, to
    OF_SKIP_LOG when set."""
    mod = sys.modules.get("test_openapi")
    if mod is not None:
        terminalreporter.write_line(mod.not_built_yet_line())
    skipped = terminalreporter.stats.get("skipped", [])
    path = os.environ.get("OF_SKIP_LOG")
    if path and skipped:
        lines = "".join(f"SKIP {r.nodeid}: {_skip_reason(r)}\n" for r in skipped)
        with open(path, "a") as f:           # O_APPEND: parallel modules do not mix lines
            f.write(lines)
