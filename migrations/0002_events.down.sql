-- 0002_events down: drops everything 0002_events.up.sql created.
DROP TABLE IF EXISTS deliveries;
DROP TABLE IF EXISTS webhooks;
DROP TABLE IF EXISTS events;
