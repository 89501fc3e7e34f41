"""`orderflow migrate up | down [N] | status` against a real PostgreSQL:
up, status, down, up again restoring exactly the same schema, concurrent runs
applying each migration once, and the schema's invariants as constraints.
"""
import subprocess
import os

import pytest

from conftest import migrate, run_psql, BIN, SRC
from ofclient import PSQL


def schema_dump(url):
    r = subprocess.run(["pg_dump", "--schema-only", "--no-owner", "--no-privileges", "-d", url],
                       capture_output=True, text=True, check=True)
    # schema_migrations is the runner's own table: same before and after.
    # \restrict / \unrestrict carry a random key per dump (pg_dump >= 15.14).
    return "\n".join(l for l in r.stdout.splitlines()
                     if not l.startswith(("--", "\\restrict", "\\unrestrict")))


MIGRATIONS = sorted(f[:-len(".up.sql")] for f in os.listdir(os.path.join(SRC, "migrations"))
                    if f.endswith(".up.sql"))
N = len(MIGRATIONS)


def tables(url):
    return run_psql(url, "SELECT string_agg(tablename, ',' ORDER BY tablename) "
                         "FROM pg_tables WHERE schemaname = 'public'")


def test_up_status_down_up_restores_schema(new_db):
    url = new_db(migrate_up=False)
    assert MIGRATIONS[0] == "0001_init" and N >= 2

    r = migrate(url, "status")
    assert r.returncode == 0, r.stderr
    for m in MIGRATIONS:
        assert f"pending  {m}" in r.stdout
    assert f"0 applied, {N} pending" in r.stdout

    r = migrate(url, "up")
    assert r.returncode == 0, r.stderr
    for m in MIGRATIONS:
        assert f"applied  {m}" in r.stdout
    first = schema_dump(url)
    assert "CREATE TABLE public.orders" in first
    assert "CREATE TABLE public.events" in first

    r = migrate(url, "status")
    assert r.returncode == 0
    assert f"{N} applied, 0 pending" in r.stdout

    r = migrate(url, "up")
    assert r.returncode == 0
    assert "up to date" in r.stdout

    # one step down reverts only the newest migration
    r = migrate(url, "down")
    assert r.returncode == 0, r.stderr
    assert f"reverted {MIGRATIONS[-1]}" in r.stdout
    assert f"pending  {MIGRATIONS[-1]}" in migrate(url, "status").stdout

    r = migrate(url, "down", str(N))
    assert r.returncode == 0, r.stderr
    assert "reverted 0001_init" in r.stdout
    assert tables(url) == "schema_migrations"
    assert "pending  0001_init" in migrate(url, "status").stdout

    r = migrate(url, "up")
    assert r.returncode == 0, r.stderr
    assert schema_dump(url) == first


def test_events_down_removes_only_its_tables(new_db):
    url = new_db(migrate_up=False)
    assert migrate(url, "up", "1").returncode == 0
    only_init = tables(url)
    assert "events" not in only_init
    assert migrate(url, "up").returncode == 0
    assert {"events", "webhooks", "deliveries"} <= set(tables(url).split(","))
    i = MIGRATIONS.index("0002_events")
    assert migrate(url, "down", str(N - i)).returncode == 0
    assert tables(url) == only_init


def test_down_n_and_up_n(new_db):
    url = new_db(migrate_up=False)
    assert migrate(url, "up", "1").returncode == 0
    assert run_psql(url, "SELECT count(*) FROM schema_migrations") == "1"
    r = migrate(url, "down", str(N + 3))  # more than applied: reverts what there is
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
    for m in MIGRATIONS:
        applied = sum(o[0].count(f"applied  {m}") for o in outs)
        assert applied == 1, (m, outs)
    assert run_psql(url, "SELECT count(*) FROM schema_migrations") == str(N)


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
    # events: id format, known types, JSON object payload, unique id
    ("INSERT INTO events (id, type, payload) VALUES ('evt_short', 'order.created', '{}')", "23514"),
    ("INSERT INTO events (id, type, payload) VALUES ('evt_0123456789ABCDEFGHJKMNPQRS', 'order.eaten', '{}')", "23514"),
    ("INSERT INTO events (id, type, payload) VALUES ('evt_0123456789ABCDEFGHJKMNPQRS', 'order.created', '[]')", "23514"),
    ("INSERT INTO events (id, type, payload) VALUES ('evt_0123456789ABCDEFGHJKMNPQRS', 'order.created', '{}'), "
     "('evt_0123456789ABCDEFGHJKMNPQRS', 'order.created', '{}')", "23505"),
    # webhooks: at least one event type
    ("INSERT INTO webhooks (url, events, secret) VALUES ('https://x.example/h', '{}', 's')", "23514"),
    # deliveries: a webhook delivery names its webhook, a mail delivery none; one per target
    ("WITH e AS (INSERT INTO events (id, type, payload) VALUES ('evt_0123456789ABCDEFGHJKMNPQRT', "
     "'order.created', '{}') RETURNING seq) INSERT INTO deliveries (event_seq, kind) SELECT seq, 'webhook' FROM e", "23514"),
    ("WITH e AS (INSERT INTO events (id, type, payload) VALUES ('evt_0123456789ABCDEFGHJKMNPQRV', "
     "'order.created', '{}') RETURNING seq) INSERT INTO deliveries (event_seq, kind) "
     "SELECT seq, 'mail' FROM e UNION ALL SELECT seq, 'mail' FROM e", "23505"),
    ("WITH e AS (INSERT INTO events (id, type, payload) VALUES ('evt_0123456789ABCDEFGHJKMNPQRW', "
     "'order.created', '{}') RETURNING seq) INSERT INTO deliveries (event_seq, kind, status) "
     "SELECT seq, 'mail', 'lost' FROM e", "23514"),
])
def test_schema_invariants_are_constraints(db_url, sql, state):
    r = subprocess.run([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose", "-d", db_url],
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
