-- pg_product_get.sql -- reference for GET /api/v1/products/{id}: the server's
-- product_get statement with a random id, pgbench -M prepared (a named prepared
-- statement, as the server's pool uses). -D nproducts=N.
\set id random(1, :nproducts)
{{product_get(:id)}};
