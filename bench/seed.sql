-- seed.sql -- the benchmark's data set, loaded with psql by bench/run.sh into a
-- freshly migrated throwaway database.
--   psql -v products=10000 -v customers=1000 -v accounts=100 -v owner=ID -f seed.sql
-- products: ids 1..:products, all in stock (an order for one is a 201, not a 409).
-- customers: ids 1..:customers, all active.
-- bank accounts: :accounts, owned by the bench user :owner, balances large enough
-- that 1-cent transfers never run out; ids consecutive (fresh table).
\set ON_ERROR_STOP on
\pset tuples_only on
\pset format unaligned
\o /dev/null

BEGIN;
INSERT INTO products (id, name, price_cents, in_stock)
SELECT g, 'Bench product ' || g, 100 + (g * 7919) % 99900, true
FROM generate_series(1, :products) g;
SELECT setval(pg_get_serial_sequence('products', 'id'), :products);

INSERT INTO customers (id, name, email, tier)
SELECT g, 'Bench customer ' || g, 'customer' || g || '@bench.example',
       (ARRAY['free', 'pro', 'enterprise'])[1 + g % 3]
FROM generate_series(1, :customers) g;
SELECT setval(pg_get_serial_sequence('customers', 'id'), :customers);

INSERT INTO bank_accounts (owner_id, name, balance_cents)
SELECT :owner, 'Bench account ' || g, 100000000000
FROM generate_series(1, :accounts) g;
COMMIT;

ANALYZE;
