"""scripts/devdb.sh, the embedded development database: with
ORDERFLOW_DATABASE_URL set it only echoes it; otherwise it creates a private
cluster (kept between runs), reuses it, and survives stop/start with its data.
"""
import os
import shutil
import subprocess
import tempfile

from conftest import SRC, run_psql

DEVDB = os.path.join(SRC, "scripts", "devdb.sh")


def devdb(dir, *args, url=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env["ORDERFLOW_DEVDB_DIR"] = dir
    if url:
        env["ORDERFLOW_DATABASE_URL"] = url
    return subprocess.run([DEVDB, *args], capture_output=True, text=True, env=env, timeout=120)


def test_devdb_uses_given_url_and_starts_nothing():
    d = tempfile.mkdtemp(prefix="of-devdb-")
    try:
        r = devdb(os.path.join(d, "pg"), url="postgresql:///x?host=/nowhere")
        assert r.returncode == 0
        assert r.stdout.strip() == "postgresql:///x?host=/nowhere"
        assert not os.path.exists(os.path.join(d, "pg"))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_devdb_private_cluster_kept_between_runs():
    d = tempfile.mkdtemp(prefix="of-devdb-")
    os.chmod(d, 0o755)
    pgdir = os.path.join(d, "pg")
    try:
        r = devdb(pgdir)
        assert r.returncode == 0, r.stderr
        url = r.stdout.strip()
        assert url.startswith("postgresql:///orderflow?host=")
        run_psql(url, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
        assert devdb(pgdir).stdout.strip() == url          # reuse, running
        assert devdb(pgdir, "stop").returncode == 0
        assert devdb(pgdir, "status").returncode == 3
        assert devdb(pgdir).stdout.strip() == url          # restart, same data
        assert run_psql(url, "SELECT x FROM kept") == "42"
        assert devdb(pgdir, "status").returncode == 0
    finally:
        devdb(pgdir, "stop")
        shutil.rmtree(d, ignore_errors=True)
