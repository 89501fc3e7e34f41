-- pg_product_list.sql -- reference for GET /api/v1/products?page=N&page_size=20:
-- the server's product_list_id with in_stock and q NULL (no filters), limit 20,
-- a random page. pgbench -M prepared cannot bind a NULL, so this runs with
-- -M simple: each client PREPAREs the statement once (-D prepared=0) and then
-- EXECUTEs it with NULLs, so PostgreSQL plans it as it does the server's named
-- statement (custom plans for the NULLs). -D nproducts=N.
\if :prepared = 0
PREPARE product_list_id AS {{product_list_id}};
\set prepared 1
\endif
\set off random(0, :nproducts / 20 - 1) * 20
EXECUTE product_list_id(NULL, NULL, 20, :off);
