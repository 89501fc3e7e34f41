-- 0004_lists: fast lists at any depth (issue 13). Indexes matching every
-- allowed sort, so that a keyset (cursor) page costs the same at row 10 as at
-- row 10,000,000; pg_trgm GIN indexes serving `q` (literal substring,
-- case-insensitive: lower(col) LIKE lower('%' || escaped || '%')); and exact
-- counts kept by statement-level triggers, so the `total` of offset paging
-- is a lookup instead of a count(*) over the table.
-- Runs inside the migration transaction (no BEGIN here).

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- products: sort id (primary key), name, price (products_price_idx exists)
CREATE INDEX products_name_id_idx ON products (name, id);
CREATE INDEX products_name_trgm_idx ON products USING gin (lower(name) gin_trgm_ops);

-- customers: sort id, name; q on name or email (emails are stored lower-cased)
CREATE INDEX customers_name_id_idx ON customers (name, id);
CREATE INDEX customers_name_trgm_idx ON customers USING gin (lower(name) gin_trgm_ops);
CREATE INDEX customers_email_trgm_idx ON customers USING gin (email gin_trgm_ops);

-- orders: created_at (both directions: orders_created_at_idx and
-- orders_created_by_created_at_idx exist), total and id, per user and global
CREATE INDEX orders_total_idx ON orders (total_cents, id);
CREATE INDEX orders_created_by_total_idx ON orders (created_by, total_cents, id);
CREATE INDEX orders_created_by_id_idx ON orders (created_by, id);
CREATE INDEX orders_customer_created_idx ON orders (customer_id, created_at, id);

-- exact counts -------------------------------------------------------------

CREATE TABLE product_counts (
    in_stock boolean PRIMARY KEY,
    n        bigint NOT NULL
);
INSERT INTO product_counts (in_stock, n)
    SELECT b, (SELECT count(*) FROM products WHERE in_stock = b) FROM (VALUES (true), (false)) v (b);

CREATE TABLE customer_counts (
    tier      text NOT NULL,
    is_active boolean NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (tier, is_active)
);
INSERT INTO customer_counts (tier, is_active, n)
    SELECT t, a, (SELECT count(*) FROM customers WHERE tier = t AND is_active = a)
    FROM (VALUES ('free'), ('pro'), ('enterprise')) tv (t), (VALUES (true), (false)) av (a);

-- One UPDATE per statement with the net change per group: a PATCH that does
-- not move a row between groups touches no count row (no lock, no bloat).
CREATE FUNCTION product_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE product_counts c SET n = c.n + d.k
        FROM (SELECT in_stock, count(*) AS k FROM new_rows GROUP BY in_stock) d
        WHERE c.in_stock = d.in_stock;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE product_counts c SET n = c.n - d.k
        FROM (SELECT in_stock, count(*) AS k FROM old_rows GROUP BY in_stock) d
        WHERE c.in_stock = d.in_stock;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE product_counts c SET n = c.n + d.k
        FROM (SELECT in_stock, sum(k) AS k FROM (
                SELECT in_stock, 1 AS k FROM new_rows
                UNION ALL SELECT in_stock, -1 FROM old_rows) x
              GROUP BY in_stock HAVING sum(k) <> 0) d
        WHERE c.in_stock = d.in_stock;
    ELSE -- TRUNCATE
        UPDATE product_counts SET n = 0;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER product_counts_ins AFTER INSERT ON products
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION product_counts_apply();
CREATE TRIGGER product_counts_del AFTER DELETE ON products
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION product_counts_apply();
CREATE TRIGGER product_counts_upd AFTER UPDATE ON products
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION product_counts_apply();
CREATE TRIGGER product_counts_trunc AFTER TRUNCATE ON products
    FOR EACH STATEMENT EXECUTE FUNCTION product_counts_apply();

CREATE FUNCTION customer_counts_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE customer_counts c SET n = c.n + d.k
        FROM (SELECT tier, is_active, count(*) AS k FROM new_rows GROUP BY tier, is_active) d
        WHERE c.tier = d.tier AND c.is_active = d.is_active;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE customer_counts c SET n = c.n - d.k
        FROM (SELECT tier, is_active, count(*) AS k FROM old_rows GROUP BY tier, is_active) d
        WHERE c.tier = d.tier AND c.is_active = d.is_active;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE customer_counts c SET n = c.n + d.k
        FROM (SELECT tier, is_active, sum(k) AS k FROM (
                SELECT tier, is_active, 1 AS k FROM new_rows
                UNION ALL SELECT tier, is_active, -1 FROM old_rows) x
              GROUP BY tier, is_active HAVING sum(k) <> 0) d
        WHERE c.tier = d.tier AND c.is_active = d.is_active;
    ELSE -- TRUNCATE
        UPDATE customer_counts SET n = 0;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER customer_counts_ins AFTER INSERT ON customers
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_apply();
CREATE TRIGGER customer_counts_del AFTER DELETE ON customers
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_apply();
CREATE TRIGGER customer_counts_upd AFTER UPDATE ON customers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_apply();
CREATE TRIGGER customer_counts_trunc AFTER TRUNCATE ON customers
    FOR EACH STATEMENT EXECUTE FUNCTION customer_counts_apply();
