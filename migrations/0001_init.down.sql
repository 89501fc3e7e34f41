-- 0001_init down: drops everything 0001_init.up.sql created.
DROP TABLE IF EXISTS audit_log;
DROP TABLE IF EXISTS transfers;
DROP TABLE IF EXISTS bank_accounts;
DROP TABLE IF EXISTS idempotency_keys;
DROP TABLE IF EXISTS order_items;
DROP TABLE IF EXISTS orders;
DROP TABLE IF EXISTS customers;
DROP TABLE IF EXISTS products;
DROP TABLE IF EXISTS users;
