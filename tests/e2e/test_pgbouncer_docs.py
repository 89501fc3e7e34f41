"""One source for the PgBouncer settings: docs/operations.md section 7 names
deploy/pgbouncer/pgbouncer.ini, test_pgbouncer.py builds its ini from that
file (replacing only the site keys and default_pool_size), and the
orderflow.cfg settings the docs and the file name are the ones
test_pgbouncer.py runs the server with. No PostgreSQL needed."""
import os
import re

import test_pgbouncer as tp
from conftest import SRC


def ops():
    with open(os.path.join(SRC, "docs", "operations.md")) as f:
        return f.read()


def test_docs_cite_the_file_and_repeat_its_values():
    doc = ops()
    assert "`deploy/pgbouncer/pgbouncer.ini`" in doc
    ini = tp.deploy_ini()
    assert ini["pool_mode"] == "transaction"
    for k in ("default_pool_size", "max_client_conn"):
        assert f"`{k} = {ini[k]}`" in doc, k
    # no second, inline copy of the settings that could drift
    assert not re.search(r"^pool_mode\s*=", doc, re.M)


def test_the_test_overrides_only_site_keys_and_pool_size(tmp_path):
    class FakePg:
        host, port = "/nonexistent", "5432"
    b = tp.PgBouncer(FakePg(), "x")
    try:
        with open(b.ini) as f:
            written = dict(re.findall(r"^(\w+) = (.*)$", f.read().split("[pgbouncer]")[1], re.M))
    finally:
        b.cleanup()
    ini = tp.deploy_ini()
    changed = {k for k in ini if written.get(k) != ini[k]}
    assert changed <= tp.SITE_KEYS | {"default_pool_size"}, changed
    assert set(written) == set(ini)


def test_orderflow_cfg_settings_agree():
    cfg = tp.server_cfg(False)
    doc = ops()
    with open(tp.DEPLOY_INI) as f:
        ini_text = f.read()
    pool = re.search(r"pool_size = (\d+);", cfg).group(1)
    assert "prepared_statements = false;" in cfg and "cache: { enabled = false; }" in cfg
    for text in (doc, ini_text):
        assert f"prepared_statements = false; pool_size = {pool}; }};" in text
        assert "cache: { enabled = false; }" in text
