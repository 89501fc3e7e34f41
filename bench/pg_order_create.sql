-- pg_order_create.sql -- reference for POST /api/v1/orders (2 items, a new
-- Idempotency-Key): the statements the server runs for one such request, in
-- the same round trips. pgbench -M prepared.
--   user_get                       the auth middleware's "is the user still there"
--   BEGIN + idem_claim             one round trip (the pool sends BEGIN lazily)
--   order_refs                     customer + products FOR SHARE
--   order_insert                   order + items + its event in one CTE
--   idem_store + COMMIT            one round trip (pool_tx_query_commit)
--   event_wake                     the jobs process's NOTIFY after the commit
--                                  (the server coalesces these: at most one
--                                  in flight per worker; here one per order)
-- The $n array parameters become ARRAY[...] of pgbench variables (pgbench has no
-- strings to build '{1,2}' from). -D uid route fp body nproducts ncustomers.
\set cust random(1, :ncustomers)
\set p1 random(1, :nproducts)
\set p2 1 + (:p1 + random(0, :nproducts - 2)) % :nproducts
\set pr1 random(100, 99999)
\set pr2 random(100, 99999)
\set total :pr1 + 2 * :pr2
\set key random(1, 9000000000000000000)
{{user_get(:uid)}};
\startpipeline
BEGIN;
{{idem_claim(:uid, :route, :key, :fp)}};
\endpipeline
{{order_refs(:cust, ARRAY[:p1,:p2])}};
{{order_insert(:cust, :total, :notes, :uid, ARRAY[:p1,:p2], ARRAY[1,2], ARRAY[:pr1,:pr2], 'evt_' || lpad((:key)::text, 26, '0'), NULL)}};
\startpipeline
{{idem_store(:uid, :route, :key, :status, :body)}};
COMMIT;
\endpipeline
{{event_wake}};
