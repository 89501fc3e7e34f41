-- 0008_order_writes: one index fewer to maintain on every order insert.
-- orders_customer_id_idx (customer_id) is a prefix of
-- orders_customer_created_idx (customer_id, created_at, id) from 0004_lists,
-- which serves every lookup it served: the customer filter of the order
-- lists and the RESTRICT check when a customer is deleted.
DROP INDEX IF EXISTS orders_customer_id_idx;
