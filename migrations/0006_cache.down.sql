-- 0006_cache down: drops the product change notifications 0006_cache.up.sql made.
DROP TRIGGER IF EXISTS products_notify_delete ON products;
DROP TRIGGER IF EXISTS products_notify_update ON products;
DROP TRIGGER IF EXISTS products_notify_insert ON products;
DROP FUNCTION IF EXISTS of_products_notify();
