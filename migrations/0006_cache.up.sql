-- 0006_cache: every committed change to products is announced on the
-- channel of_products (API.md "Caching and conditional requests"), so that
-- every worker of every host drops what it cached of it. A statement-level
-- trigger, so it also covers writes made outside the server (psql, imports):
-- the payload is the product id when the statement changed one row, '*'
-- when it changed several (the listeners then drop everything), nothing
-- when it changed none. NOTIFY is delivered at commit, never on rollback.
-- Runs inside the migration transaction (no BEGIN here).

CREATE FUNCTION of_products_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n   bigint;
    one bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT count(*), min(id) INTO n, one FROM changed_old;
    ELSE
        SELECT count(*), min(id) INTO n, one FROM changed_new;
    END IF;
    IF n = 1 THEN
        PERFORM pg_notify('of_products', one::text);
    ELSIF n > 1 THEN
        PERFORM pg_notify('of_products', '*');
    END IF;
    RETURN NULL;
END
$$;

-- One trigger per event: a transition table belongs to a single-event trigger.
CREATE TRIGGER products_notify_insert AFTER INSERT ON products
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION of_products_notify();
CREATE TRIGGER products_notify_update AFTER UPDATE ON products
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION of_products_notify();
CREATE TRIGGER products_notify_delete AFTER DELETE ON products
    REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION of_products_notify();
