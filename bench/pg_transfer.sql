-- pg_transfer.sql -- reference for POST /api/v1/transfers (0.01 between two
-- distinct random accounts of the bench user, a new Idempotency-Key): the
-- statements the server runs for one such request, in the same round trips.
-- pgbench -M prepared.
--   user_get                       the auth middleware's "is the user still there"
--   BEGIN + idem_claim             one round trip (the pool sends BEGIN lazily)
--   bank_transfer                  lock both rows, move, record, event + NOTIFY (one CTE)
--   idem_store + COMMIT            one round trip (pool_tx_query_commit)
-- -D uid route fp body status acct_lo acct_hi.
\set from random(:acct_lo, :acct_hi)
\set to :acct_lo + (:from - :acct_lo + random(1, :acct_hi - :acct_lo)) % (:acct_hi - :acct_lo + 1)
\set amount 1
\set key random(1, 9000000000000000000)
{{user_get(:uid)}};
\startpipeline
BEGIN;
{{idem_claim(:uid, :route, :key, :fp)}};
\endpipeline
{{bank_transfer(:from, :to, :amount, :uid, 'evt_' || lpad((:key)::text, 26, '0'), NULL)}};
\startpipeline
{{idem_store(:uid, :route, :key, :status, :body)}};
COMMIT;
\endpipeline
