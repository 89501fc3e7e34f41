-- pg_product_list.sql -- reference for GET /api/v1/products?page=N&page_size=20
-- (N uniform over full pages): NOT the server's statement but the best SQL a
-- careful engineer writes for the same answer -- the page as a keyset range
-- on the primary key (the seed's ids are dense 1..N, so `id > off` is the
-- same 20 rows as `OFFSET off`; a prepared OFFSET $1 gets a generic plan that
-- sorts the table, ~10x slower: not a fair reference), the timestamps
-- formatted as the API sends them, and the cheapest exact total there is, the
-- trigger-kept product_counts (migrations/0004_lists), in the same statement.
-- Hand-written, so pgbench -M prepared; colons in literals are E'\x3a'
-- (pgbench would take ':MI' for a variable). -D nproducts=N.
\set off random(0, :nproducts / 20 - 1) * 20
SELECT id, name, price_cents, in_stock,
       to_char(created_at AT TIME ZONE 'UTC', E'YYYY-MM-DD"T"HH24\x3aMI\x3aSS.US"Z"'),
       to_char(updated_at AT TIME ZONE 'UTC', E'YYYY-MM-DD"T"HH24\x3aMI\x3aSS.US"Z"'),
       (SELECT sum(n) FROM product_counts)
FROM products WHERE id > :off ORDER BY id LIMIT 20;
