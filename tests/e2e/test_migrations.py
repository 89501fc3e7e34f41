"""`orderflow migrate up | down [N] | status` against a real PostgreSQL:
up, status, down, up again restoring exactly the same schema, concurrent runs
applying each migration once, and the schema's invariants as constraints.
"""
import subprocess
import os

import pytest

from conftest import migrate, run_psql, BIN, SRC


def schema_dump(url):
    r = subprocess.run(["pg_dump", "--schema-only", "--no-owner", "--no-privileges", "-d", url],
                       capture_output=True, text=True, check=True)
    # schema_migrations is the runner's own table: same before and after.
    # \restrict / \unrestrict carry a random key per dump (pg_dump >= 15.14).
    return "\n".join(l for l in r.stdout.splitlines()
                     if not l.startswith(("--", "\\restrict", "\\unrestrict")))


def tables(url):
    return run_psql(url, "SELECT string_agg(tablename, ',' ORDER BY tablename) "
                         "FROM pg_tables WHERE schemaname = 'public'")


def test_up_status_down_up_restores_schema(new_db):
    url = new_db(migrate_up=False)

    r = migrate(url, "status")
    assert r.returncode == 0, r.stderr
    assert "pending  0001_init" in r.stdout
    assert "0 applied, 1 pending" in r.stdout

    r = migrate(url, "up")
    assert r.returncode == 0, r.stderr
    assert "applied  0001_init" in r.stdout
    first = schema_dump(url)
    assert "CREATE TABLE public.orders" in first

    r = migrate(url, "status")
    assert r.returncode == 0
    assert "applied  0001_init" in r.stdout and "1 applied, 0 pending" in r.stdout

    r = migrate(url, "up")
    assert r.returncode == 0
    assert "up to date" in r.stdout

    r = migrate(url, "down")
    assert r.returncode == 0, r.stderr
    assert "reverted 0001_init" in r.stdout
    assert tables(url) == "schema_migrations"
    assert "pending  0001_init" in migrate(url, "status").stdout

    r = migrate(url, "up")
    assert r.returncode == 0, r.stderr
    assert schema_dump(url) == first


def test_down_n_and_up_n(new_db):
    url = new_db(migrate_up=False)
    assert migrate(url, "up", "1").returncode == 0
    assert run_psql(url, "SELECT count(*) FROM schema_migrations") == "1"
    r = migrate(url, "down", "5")       # more than applied: reverts what there is
    assert r.returncode == 0, r.stderr
    assert run_psql(url, "SELECT count(*) FROM schema_migrations") == "0"
    assert "nothing to revert" in migrate(url, "down").stdout


def test_concurrent_up_applies_once(new_db):
    url = new_db(migrate_up=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env["ORDERFLOW_DATABASE_URL"] = url
    env["ORDERFLOW_MIGRATIONS_DIR"] = os.path.join(SRC, "migrations")
    procs = [subprocess.Popen([BIN, "migrate", "up"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    applied = sum(o[0].count("applied  0001_init") for o in outs)
    assert applied == 1, outs
    assert run_psql(url, "SELECT count(*) FROM schema_migrations") == "1"


def test_usage_and_missing_database():
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    r = subprocess.run([BIN, "migrate", "up"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "ORDERFLOW_DATABASE_URL" in r.stderr
    for bad in (["sideways"], ["down", "x"], ["down", "0"], ["status", "1"], []):
        r = subprocess.run([BIN, "migrate", *bad], env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, (bad, r.stdout, r.stderr)


def test_unreachable_database_fails_cleanly():
    r = migrate("postgresql:///nope?host=/nonexistent&port=1", "up")
    assert r.returncode == 1
    assert "cannot connect" in r.stderr


@pytest.mark.parametrize("sql, state", [
    # users: lower(email) unique, role check
    ("INSERT INTO users (email, password_hash) VALUES ('a@b.co', 'h'), ('A@B.CO', 'h')", "23505"),
    ("INSERT INTO users (email, role, password_hash) VALUES ('r@b.co', 'root', 'h')", "23514"),
    # products: unique lower(name), price >= 0
    ("INSERT INTO products (name, price_cents) VALUES ('Lamp', 1), ('lamp', 2)", "23505"),
    ("INSERT INTO products (name, price_cents) VALUES ('Neg', -1)", "23514"),
    # customers: tier check
    ("INSERT INTO customers (name, email, tier) VALUES ('C', 'c@d.co', 'gold')", "23514"),
    # orders: status check, customer must exist
    ("INSERT INTO orders (customer_id, status) VALUES (999999, 'pending')", "23503"),
    # order_items: quantity > 0
    ("WITH c AS (INSERT INTO customers (name, email) VALUES ('Q', 'q@d.co') RETURNING id), "
     "o AS (INSERT INTO orders (customer_id) SELECT id FROM c RETURNING id) "
     "INSERT INTO order_items (order_id, product_name, quantity, unit_price_cents) "
     "SELECT id, 'x', 0, 1 FROM o", "23514"),
    # bank accounts: balance >= 0; transfers: amount > 0, from <> to
    ("INSERT INTO bank_accounts (name, balance_cents) VALUES ('n', -5)", "23514"),
    ("WITH a AS (INSERT INTO bank_accounts (name, balance_cents) VALUES ('a', 5) RETURNING id) "
     "INSERT INTO transfers (from_account_id, to_account_id, amount_cents) SELECT id, id, 1 FROM a", "23514"),
    ("WITH a AS (INSERT INTO bank_accounts (name, balance_cents) VALUES ('a', 5), ('b', 5) RETURNING id) "
     "INSERT INTO transfers (from_account_id, to_account_id, amount_cents) "
     "SELECT min(id), max(id), 0 FROM a", "23514"),
    # audit_log: action and entity checks
    ("INSERT INTO audit_log (action, entity, entity_id) VALUES ('create', 'planet', 1)", "23514"),
    ("INSERT INTO audit_log (action, entity, entity_id) VALUES ('explode', 'order', 1)", "23514"),
])
def test_schema_invariants_are_constraints(db_url, sql, state):
    r = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-d", db_url],
                       input="\\set VERBOSITY verbose\n" + sql + ";\n", capture_output=True, text=True)
    assert r.returncode != 0
    assert state in r.stderr, r.stderr


def test_delete_keeps_history(db_url):
    """Deleting a product keeps past items (product_id -> NULL); deleting a user
    keeps their orders and accounts (created_by/owner_id -> NULL)."""
    out = run_psql(db_url, """
        WITH u AS (INSERT INTO users (email, password_hash) VALUES ('del@x.co', 'h') RETURNING id),
             c AS (INSERT INTO customers (name, email) VALUES ('Del', 'del@x.co') RETURNING id),
             p AS (INSERT INTO products (name, price_cents) VALUES ('DelLamp', 1999) RETURNING id),
             o AS (INSERT INTO orders (customer_id, created_by, total_cents)
                   SELECT c.id, u.id, 1999 FROM c, u RETURNING id),
             i AS (INSERT INTO order_items (order_id, product_id, product_name, quantity, unit_price_cents)
                   SELECT o.id, p.id, 'DelLamp', 1, 1999 FROM o, p RETURNING id),
             a AS (INSERT INTO bank_accounts (owner_id, name, balance_cents) SELECT id, 'acc', 100 FROM u RETURNING id)
        SELECT (SELECT id FROM o)""")
    oid = out.splitlines()[-1]
    run_psql(db_url, "DELETE FROM products WHERE name = 'DelLamp'; DELETE FROM users WHERE email = 'del@x.co'")
    row = run_psql(db_url, f"SELECT coalesce(i.product_id::text, 'null'), i.product_name, "
                           f"coalesce(o.created_by::text, 'null') FROM orders o JOIN order_items i "
                           f"ON i.order_id = o.id WHERE o.id = {oid}")
    assert row == "null|DelLamp|null"
    assert run_psql(db_url, "SELECT count(*) FROM bank_accounts WHERE name = 'acc' AND owner_id IS NULL") == "1"
