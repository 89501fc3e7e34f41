-- 0004_lists down: drops everything 0004_lists.up.sql created (the pg_trgm
-- extension stays: other databases objects may use it, and it holds no data).
DROP TRIGGER IF EXISTS customer_counts_trunc ON customers;
DROP TRIGGER IF EXISTS customer_counts_upd ON customers;
DROP TRIGGER IF EXISTS customer_counts_del ON customers;
DROP TRIGGER IF EXISTS customer_counts_ins ON customers;
DROP FUNCTION IF EXISTS customer_counts_apply();
DROP TRIGGER IF EXISTS product_counts_trunc ON products;
DROP TRIGGER IF EXISTS product_counts_upd ON products;
DROP TRIGGER IF EXISTS product_counts_del ON products;
DROP TRIGGER IF EXISTS product_counts_ins ON products;
DROP FUNCTION IF EXISTS product_counts_apply();
DROP TABLE IF EXISTS customer_counts;
DROP TABLE IF EXISTS product_counts;
DROP INDEX IF EXISTS orders_customer_created_idx;
DROP INDEX IF EXISTS orders_created_by_id_idx;
DROP INDEX IF EXISTS orders_created_by_total_idx;
DROP INDEX IF EXISTS orders_total_idx;
DROP INDEX IF EXISTS customers_email_trgm_idx;
DROP INDEX IF EXISTS customers_name_trgm_idx;
DROP INDEX IF EXISTS customers_name_id_idx;
DROP INDEX IF EXISTS products_name_trgm_idx;
DROP INDEX IF EXISTS products_name_id_idx;
