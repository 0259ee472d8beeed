-- sql/ledger_storage.sql: the hot path locks, reads and writes its rows without SQL statements
-- (src/pg/direct_rows.h), through the executor's single-row routines. What an operator adds to ducto's
-- tables still applies to those writes: row triggers fire in write order, a CHECK constraint or a unique
-- index that a write breaks raises its usual SQLSTATE and the call changes nothing, and an event goes
-- into its day partition when that exists.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS ducto;
CREATE EXTENSION ducto;
RESET client_min_messages;
\pset null '(null)'

CREATE OR REPLACE FUNCTION try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  result text;
BEGIN
  EXECUTE sql INTO result;
  RETURN result;
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 1"}}') AS version;
SELECT ducto.create_event_partitions(0) AS partitions_created;
SELECT amount, balance_after FROM ducto.add_credits('alice', 100);

-- ---- row triggers --------------------------------------------------------------------------------------

CREATE TABLE storage_audit (seq serial, tab text, op text, detail text);
-- (Through jsonb: OLD and NEW have a different row type on each table.)
CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  n jsonb := to_jsonb(NEW);
  o jsonb := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) END;
BEGIN
  INSERT INTO public.storage_audit (tab, op, detail) VALUES (
    CASE WHEN TG_TABLE_NAME LIKE 'events_p%' THEN 'events (day partition)' ELSE TG_TABLE_NAME END,
    TG_OP,
    CASE TG_TABLE_NAME
      WHEN 'accounts' THEN format('balance %s -> %s', o ->> 'balance', n ->> 'balance')
      WHEN 'lots' THEN format('remaining %s -> %s', o ->> 'remaining', n ->> 'remaining')
      WHEN 'ledger' THEN format('%s %s, balance_after %s', n ->> 'kind', n ->> 'amount', n ->> 'balance_after')
      ELSE format('%s %s', n ->> 'type', n ->> 'amount')
    END);
  RETURN NEW;
END $$;
CREATE TRIGGER audit AFTER UPDATE ON ducto.accounts FOR EACH ROW EXECUTE FUNCTION audit_row();
CREATE TRIGGER audit AFTER UPDATE ON ducto.lots FOR EACH ROW EXECUTE FUNCTION audit_row();
CREATE TRIGGER audit AFTER INSERT ON ducto.ledger FOR EACH ROW EXECUTE FUNCTION audit_row();
-- On the partitioned outbox: Postgres clones it onto every partition.
CREATE TRIGGER audit AFTER INSERT ON ducto.events FOR EACH ROW EXECUTE FUNCTION audit_row();

-- One charge: the lot, the ledger entry, the account, then the event (amounts in micro-credits).
SELECT amount, balance_after, error FROM ducto.charge('alice', '{"input_tokens": 7}');
SELECT tab, op, detail FROM storage_audit ORDER BY seq;
-- A direct debit writes the same rows.
TRUNCATE storage_audit;
SELECT amount, balance_after, error FROM ducto.deduct_credits('alice', NULL, 3);
SELECT tab, op, detail FROM storage_audit ORDER BY seq;
-- A refused charge writes only its failure event.
TRUNCATE storage_audit;
SELECT amount, balance_after, error FROM ducto.charge('alice', '{"input_tokens": 1000}');
SELECT tab, op, detail FROM storage_audit ORDER BY seq;
DROP TRIGGER audit ON ducto.accounts;
DROP TRIGGER audit ON ducto.lots;
DROP TRIGGER audit ON ducto.ledger;
DROP TRIGGER audit ON ducto.events;

-- ---- constraints ---------------------------------------------------------------------------------------

-- A CHECK constraint on the ledger refuses a charge above 50 credits: 23514, and nothing changes
-- (balance, lots, ledger and events as before).
ALTER TABLE ducto.ledger ADD CONSTRAINT regress_small_charges CHECK (kind <> 'charge' OR amount >= -50000000);
CREATE TEMP TABLE before AS
  SELECT (SELECT balance FROM ducto.get_balance('alice')) AS balance,
         (SELECT count(*) FROM ducto.ledger) AS entries,
         (SELECT count(*) FROM ducto.events) AS events,
         (SELECT sum(remaining) FROM ducto.lots) AS lots;
SELECT try($$SELECT error FROM ducto.charge('alice', '{"input_tokens": 60}')$$) AS big_charge;
SELECT (SELECT balance FROM ducto.get_balance('alice')) = b.balance AS same_balance,
       (SELECT count(*) FROM ducto.ledger) = b.entries AS same_entries,
       (SELECT count(*) FROM ducto.events) = b.events AS same_events,
       (SELECT sum(remaining) FROM ducto.lots) = b.lots AS same_lots
FROM before AS b;
SELECT amount, balance_after, error FROM ducto.charge('alice', '{"input_tokens": 50}');
ALTER TABLE ducto.ledger DROP CONSTRAINT regress_small_charges;

-- A unique partial index an operator adds is checked: one charge per model and account.
CREATE UNIQUE INDEX regress_one_charge_per_model ON ducto.ledger (account_id, model) WHERE kind = 'charge';
SELECT amount, balance_after, error FROM ducto.charge('alice', '{"model": "m1", "input_tokens": 1}');
SELECT try($$SELECT error FROM ducto.charge('alice', '{"model": "m1", "input_tokens": 2}')$$) AS second_m1;
SELECT balance FROM ducto.get_balance('alice');
-- The index holds every charge (read through it).
SET enable_seqscan = off;
SELECT model, amount FROM ducto.ledger WHERE kind = 'charge' AND model = 'm1';
RESET enable_seqscan;
DROP INDEX ducto.regress_one_charge_per_model;

-- ---- events --------------------------------------------------------------------------------------------

-- With today's partition made above, every event of this file is in a day partition; none in the default.
SELECT count(*) FILTER (WHERE e.tableoid::regclass::text LIKE 'ducto.events_p%') > 0 AS in_day_partition,
       count(*) FILTER (WHERE e.tableoid = 'ducto.events_default'::regclass) AS in_default
FROM ducto.events AS e;
-- Ids come from the outbox's sequence, in order of writing.
SELECT count(DISTINCT id) = count(*) AS ids_unique, max(id) = (SELECT last_value FROM ducto.events_id_seq) AS ids_from_sequence
FROM ducto.events;

-- ---- BEFORE row triggers --------------------------------------------------------------------------------

-- They run too, and what they change is what is stored: one tags each new ledger entry's metadata;
-- a BEFORE UPDATE trigger on accounts (which locks the row again) lets the update through.
CREATE FUNCTION tag_entry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.metadata := NEW.metadata || '{"tagged": true}';
  RETURN NEW;
END $$;
CREATE FUNCTION pass_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RETURN NEW;
END $$;
CREATE TRIGGER tag BEFORE INSERT ON ducto.ledger FOR EACH ROW EXECUTE FUNCTION tag_entry();
CREATE TRIGGER pass BEFORE UPDATE ON ducto.accounts FOR EACH ROW EXECUTE FUNCTION pass_account();
SELECT amount, balance_after, error FROM ducto.charge('alice', '{"input_tokens": 2}', metadata => '{"job": 7}');
SELECT kind, amount, metadata FROM ducto.transactions('alice', max_rows => 1);
SELECT balance FROM ducto.get_balance('alice');
DROP TRIGGER tag ON ducto.ledger;
DROP TRIGGER pass ON ducto.accounts;

SELECT count(*) AS problems FROM ducto.verify();
