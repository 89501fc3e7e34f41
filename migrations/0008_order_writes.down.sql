-- 0008_order_writes down: restores the index 0008_order_writes.up.sql dropped.
CREATE INDEX IF NOT EXISTS orders_customer_id_idx ON orders (customer_id);
