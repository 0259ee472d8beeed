-- sql/ducto--1.0.sql: the ducto extension, version 1.0 (schema ducto, from ducto.control).
-- Pricing: versioned configs, formula evaluation and the price of one usage record.
-- Functions are SECURITY INVOKER; the C code reads and writes ducto's tables as the extension owner
-- (src/pg/spi_util.h), so no table needs a grant to PUBLIC.

\echo Use "CREATE EXTENSION ducto" to load this file. \quit

GRANT USAGE ON SCHEMA ducto TO PUBLIC;

-- ---- pricing configs ---------------------------------------------------------------------------------

CREATE TABLE ducto.pricing_configs (
    version    integer PRIMARY KEY CHECK (version > 0),
    label      text,
    config     jsonb NOT NULL,
    active     boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
-- Exactly one version is active at a time (set_pricing and activate_pricing keep it so).
CREATE UNIQUE INDEX pricing_configs_one_active ON ducto.pricing_configs (active) WHERE active;
COMMENT ON TABLE ducto.pricing_configs IS
    'Published pricing configs, one row per version; written only by ducto.set_pricing and ducto.activate_pricing.';
SELECT pg_catalog.pg_extension_config_dump('ducto.pricing_configs', '');
REVOKE ALL ON TABLE ducto.pricing_configs FROM PUBLIC;

-- ---- functions ---------------------------------------------------------------------------------------
-- Not STRICT: a NULL required argument raises 22004 instead of silently returning NULL.
-- eval, price and validate_pricing are STABLE, not IMMUTABLE: an expression index on them would go stale
-- after a fix of the engine.

CREATE FUNCTION ducto.eval(expression text, variables jsonb DEFAULT '{}')
RETURNS numeric
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ducto_eval';
COMMENT ON FUNCTION ducto.eval(text, jsonb) IS
    'Evaluates a pricing formula with the given numeric variables; the result is rounded to 6 places. Errors: 22023.';

CREATE FUNCTION ducto.validate_pricing(config jsonb)
RETURNS SETOF text
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ducto_validate_pricing';
COMMENT ON FUNCTION ducto.validate_pricing(jsonb) IS
    'Every problem of a pricing config, each naming its path; no rows when the config is valid.';

CREATE FUNCTION ducto.set_pricing(config jsonb, label text DEFAULT NULL)
RETURNS integer
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_set_pricing';
COMMENT ON FUNCTION ducto.set_pricing(jsonb, text) IS
    'Validates a pricing config (22023 listing the problems), stores it as the next version, makes it the active one and returns the version.';

CREATE FUNCTION ducto.activate_pricing(version integer)
RETURNS integer
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_activate_pricing';
COMMENT ON FUNCTION ducto.activate_pricing(integer) IS
    'Makes a stored pricing version the active one (roll back or forward) and returns it; unknown version: 22023.';

CREATE FUNCTION ducto.pricing_history()
RETURNS TABLE (version integer, label text, active boolean, created_at timestamptz)
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ducto_pricing_history';
COMMENT ON FUNCTION ducto.pricing_history() IS
    'Every stored pricing version, newest first.';

CREATE FUNCTION ducto.get_pricing(version integer DEFAULT NULL)
RETURNS jsonb
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ducto_get_pricing';
COMMENT ON FUNCTION ducto.get_pricing(integer) IS
    'The stored pricing config of a version, or of the active one when version is NULL (NULL when none is active); unknown version: 22023.';

CREATE FUNCTION ducto.price(metrics jsonb, config jsonb DEFAULT NULL, plan text DEFAULT NULL)
RETURNS jsonb
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'ducto_price';
COMMENT ON FUNCTION ducto.price(jsonb, jsonb, text) IS
    'The credit breakdown of one usage record (model, model_credits, tool_credits, search_credits, cache_credits, fixed_credits, total), priced with config or the active version.';

-- Publishing changes what every charge costs: not for PUBLIC (an application role gets one GRANT).
REVOKE EXECUTE ON FUNCTION ducto.set_pricing(jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ducto.activate_pricing(integer) FROM PUBLIC;

-- ==== events ====
-- The event outbox (design.md, Events; issue 4). Every credit operation inserts its events into
-- ducto.events in its own transaction (src/pg/events.cpp); readers see an event once no transaction
-- that could still commit an earlier one is running (xid below the snapshot's xmin), in (xid, id) order.
-- Wake-ups (NOTIFY) are hints only: src/pg/notify.cpp. Maintenance: src/pg/worker.cpp, run_maintenance.

-- Partitioned by day (UTC) on created_at so that pruning drops whole partitions instead of deleting
-- rows. Day partitions (events_pYYYYMMDD) are created ahead by ducto.create_event_partitions (the
-- worker, run_maintenance) and are not extension members, so pg_dump dumps them as ordinary tables;
-- events_default catches every row no day partition covers (and is the only one CREATE EXTENSION makes).
CREATE SEQUENCE ducto.events_id_seq AS bigint;
CREATE TABLE ducto.events (
    id            bigint NOT NULL DEFAULT pg_catalog.nextval('ducto.events_id_seq'::pg_catalog.regclass),
    event_id      uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    type          text NOT NULL,
    user_id       text COLLATE "C",
    amount        numeric,
    balance_after numeric,
    data          jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    -- The writer's top-level transaction: the read protocol orders and keeps cursors by (xid, id).
    xid           xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
ALTER SEQUENCE ducto.events_id_seq OWNED BY ducto.events.id;
CREATE INDEX events_xid_id ON ducto.events (xid, id);
CREATE TABLE ducto.events_default PARTITION OF ducto.events DEFAULT;
-- Only here: tells create_event_partitions which days the default partition already holds.
CREATE INDEX events_default_created_at ON ducto.events_default (created_at);
COMMENT ON TABLE ducto.events IS
    'The event outbox: one row per credit event, committed with the change that caused it. Read it with ducto.poll_events / ducto.ack_events.';
COMMENT ON COLUMN ducto.events.xid IS
    'The writing transaction (pg_current_xact_id()); delivery order is (xid, id): transaction order, not id order.';

-- Durable cursors. acked_* is the last acknowledged (xid, id); delivered_* the furthest position any
-- poll returned, the bound for ack_events.
CREATE TABLE ducto.event_consumers (
    consumer      text COLLATE "C" PRIMARY KEY,
    acked_xid     xid8 NOT NULL DEFAULT '0',
    acked_id      bigint NOT NULL DEFAULT 0,
    delivered_xid xid8 NOT NULL DEFAULT '0',
    delivered_id  bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    delivered_at  timestamptz,
    acked_at      timestamptz
);
COMMENT ON TABLE ducto.event_consumers IS
    'Event consumers and their cursors; created by the first ducto.poll_events, dropped by ducto.drop_consumer.';

-- The worker-mode relay's position (one row): the last (xid, id) a NOTIFY covered.
CREATE TABLE ducto.notify_relay (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    xid        xid8 NOT NULL,
    id         bigint NOT NULL,
    relayed_at timestamptz NOT NULL
);
COMMENT ON TABLE ducto.notify_relay IS
    'Position of the worker-mode NOTIFY relay (ducto.relay_events); transient, not dumped.';

-- Dumped: the sequence, and the events in the default partition (day partitions are dumped as ordinary
-- tables). Not dumped: consumers and relay position, which name transaction ids of this cluster
-- (after a restore every consumer starts again from the oldest event kept).
SELECT pg_catalog.pg_extension_config_dump('ducto.events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ducto.events_default', '');
REVOKE ALL ON TABLE ducto.events, ducto.events_default, ducto.event_consumers, ducto.notify_relay FROM PUBLIC;
REVOKE ALL ON SEQUENCE ducto.events_id_seq FROM PUBLIC;

CREATE FUNCTION ducto.poll_events(consumer text, max_events integer DEFAULT 100, types text[] DEFAULT NULL)
RETURNS SETOF ducto.events
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 100
AS 'MODULE_PATHNAME', 'ducto_poll_events';
COMMENT ON FUNCTION ducto.poll_events(text, integer, text[]) IS
    'Up to max_events (1-10000) committed events after the consumer''s cursor, oldest first in (xid, id) order, optionally only the given types; creates the consumer on first use. Does not move the cursor: ack_events does.';

CREATE FUNCTION ducto.ack_events(consumer text, up_to bigint)
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_ack_events';
COMMENT ON FUNCTION ducto.ack_events(text, bigint) IS
    'Moves the consumer''s cursor to the delivered event up_to and returns how many events that acknowledged (0 if already acknowledged). An event not yet delivered, or an unknown consumer: 22023.';

CREATE FUNCTION ducto.prune_events(keep interval DEFAULT '7 days')
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_prune_events';
COMMENT ON FUNCTION ducto.prune_events(interval) IS
    'Removes events older than keep that every consumer acknowledged, or older than ducto.max_event_retention even if not; day partitions go whole once their day is past keep. Returns the number removed.';

CREATE FUNCTION ducto.create_event_partitions(days_ahead integer DEFAULT 3)
RETURNS integer
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_create_event_partitions';
COMMENT ON FUNCTION ducto.create_event_partitions(integer) IS
    'Creates the missing day partitions of ducto.events from today to today + days_ahead (UTC), skipping days the default partition already holds; returns how many it created.';

CREATE FUNCTION ducto.relay_events()
RETURNS bigint
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_relay_events';
COMMENT ON FUNCTION ducto.relay_events() IS
    'Worker-mode wake-up: one NOTIFY (sent at commit) covering the events committed since the last relay; returns how many it covered. Does nothing when ducto.notify is off.';

-- Operators' views. They read the tables with the view owner's rights: grant SELECT on them, not on
-- the tables. pending_events counts events after the cursor (a scan: meant for monitoring).
CREATE VIEW ducto.consumer_lag AS
SELECT c.consumer,
       c.acked_id,
       c.delivered_id,
       (SELECT pg_catalog.count(*) FROM ducto.events AS e
         WHERE ROW(e.xid, e.id) > ROW(c.acked_xid, c.acked_id)) AS pending_events,
       oldest.created_at AS oldest_pending_at,
       pg_catalog.clock_timestamp() - oldest.created_at AS lag,
       c.created_at,
       c.delivered_at,
       c.acked_at
FROM ducto.event_consumers AS c
LEFT JOIN LATERAL (SELECT e.created_at FROM ducto.events AS e
                    WHERE ROW(e.xid, e.id) > ROW(c.acked_xid, c.acked_id)
                    ORDER BY e.xid, e.id LIMIT 1) AS oldest ON true;
COMMENT ON VIEW ducto.consumer_lag IS
    'Each consumer with its cursor, the number of events it has not acknowledged and the age of the oldest of them.';

CREATE VIEW ducto.outbox_backlog AS
WITH slowest AS (
    SELECT c.acked_xid, c.acked_id FROM ducto.event_consumers AS c ORDER BY c.acked_xid, c.acked_id LIMIT 1
)
SELECT pg_catalog.count(*) AS events,
       pg_catalog.count(*) FILTER (WHERE EXISTS (SELECT 1 FROM slowest AS s
                                                  WHERE ROW(e.xid, e.id) > ROW(s.acked_xid, s.acked_id)))
           AS unacknowledged,
       pg_catalog.min(e.created_at) AS oldest_at,
       pg_catalog.max(e.created_at) AS newest_at,
       (SELECT pg_catalog.count(*) FROM ducto.event_consumers) AS consumers,
       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_inherits AS i
         WHERE i.inhparent = 'ducto.events'::pg_catalog.regclass) AS partitions,
       (SELECT pg_catalog.sum(pg_catalog.pg_total_relation_size(i.inhrelid)) FROM pg_catalog.pg_inherits AS i
         WHERE i.inhparent = 'ducto.events'::pg_catalog.regclass)::bigint AS total_bytes
FROM ducto.events AS e;
COMMENT ON VIEW ducto.outbox_backlog IS
    'The outbox at a glance: events kept, those the slowest consumer has not acknowledged, oldest and newest, partitions and their size (scans the outbox).';
REVOKE ALL ON ducto.consumer_lag, ducto.outbox_backlog FROM PUBLIC;

CREATE FUNCTION ducto.consumers()
RETURNS TABLE (consumer text, acked_id bigint, delivered_id bigint, pending_events bigint,
               oldest_pending_at timestamptz, lag interval, created_at timestamptz,
               delivered_at timestamptz, acked_at timestamptz)
LANGUAGE C STABLE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_consumers';
COMMENT ON FUNCTION ducto.consumers() IS
    'Every event consumer with its lag (the rows of view ducto.consumer_lag), by name.';

CREATE FUNCTION ducto.drop_consumer(consumer text)
RETURNS boolean
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_drop_consumer';
COMMENT ON FUNCTION ducto.drop_consumer(text) IS
    'Forgets a consumer and its cursor (so it no longer holds back pruning); false if there was none.';

-- For installations without shared_preload_libraries (pg_cron, cron + psql): the background worker's
-- work in one call, committing after each step and each expiry batch. CALL it outside a transaction block.
CREATE PROCEDURE ducto.run_maintenance()
LANGUAGE plpgsql
AS $$
DECLARE
    batch   constant integer := 1000;
    expired bigint;
BEGIN
    PERFORM ducto.create_event_partitions();
    COMMIT;
    -- The ledger's sweep of due holds and lots, in batches of accounts.
    IF pg_catalog.to_regprocedure('ducto.expire_credits(integer)') IS NOT NULL THEN
        FOR round IN 1..100 LOOP
            EXECUTE 'SELECT pg_catalog.count(*) FROM ducto.expire_credits($1)' INTO expired USING batch;
            COMMIT;
            EXIT WHEN expired < batch;
        END LOOP;
    END IF;
    PERFORM ducto.prune_events(pg_catalog.current_setting('ducto.event_retention')::interval);
    COMMIT;
    PERFORM ducto.relay_events();
    COMMIT;
END
$$;
COMMENT ON PROCEDURE ducto.run_maintenance() IS
    'One round of the background worker''s work: create event partitions, expire due holds and lots, prune events (keep ducto.event_retention), relay a NOTIFY. CALL outside a transaction block.';

-- Nothing here for PUBLIC: an application role is granted poll_events/ack_events (README), an
-- operator the rest.
REVOKE EXECUTE ON FUNCTION ducto.poll_events(text, integer, text[]), ducto.ack_events(text, bigint),
    ducto.prune_events(interval), ducto.create_event_partitions(integer), ducto.relay_events(),
    ducto.consumers(), ducto.drop_consumer(text) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE ducto.run_maintenance() FROM PUBLIC;
-- ==== end events ====

-- ==== ledger ====
-- The credit ledger (design.md, Accounts, lots and holds; issue 3). Amounts are stored as bigint
-- micro-credits (10^-6 credit) and are numeric with 6 decimal places at the SQL edge, signed like the
-- ledger: credits positive, debits negative, a hold's amount positive. Only the C functions below write
-- these tables, as the extension owner (src/pg/ledger_*.cpp). The hot tables (accounts, lots, ledger)
-- have no foreign keys, triggers or CHECK constraints (every statement would parse and compile each
-- CHECK again: measurable on the charge path; ducto.verify() checks the invariants instead), and
-- accounts and lots keep free space for HOT updates.

CREATE TYPE ducto.credit_result AS (
    transaction_id uuid, user_id text, amount numeric, balance_after numeric, idempotent boolean, error text);
CREATE TYPE ducto.reservation_result AS (
    reservation_id uuid, user_id text, amount numeric, available_after numeric, expires_at timestamptz,
    idempotent boolean, error text);
CREATE TYPE ducto.refund_result AS (
    refund_transaction_id uuid, original_transaction_id uuid, user_id text, amount numeric, balance_after numeric,
    idempotent boolean, error text);
CREATE TYPE ducto.charge_result AS (
    transaction_id uuid, user_id text, amount numeric, balance_after numeric, breakdown jsonb, idempotent boolean,
    error text);
CREATE TYPE ducto.balance_result AS (user_id text, balance numeric, reserved numeric, available numeric);

-- One row per user (or team); every operation locks only its own account row.
CREATE TABLE ducto.accounts (
    id             bigserial PRIMARY KEY,
    user_id        text COLLATE "C" NOT NULL UNIQUE,
    -- 'user' or 'team' (teams: the policies issue)
    kind           text NOT NULL DEFAULT 'user',
    balance        bigint NOT NULL DEFAULT 0,
    -- the sum of the account's active holds
    reserved       bigint NOT NULL DEFAULT 0,
    -- debits beyond lot credit (only under a negative min_balance); grants repay it first
    debt           bigint NOT NULL DEFAULT 0,
    -- nothing of the account expires before this (active holds, lots with free credit); NULL: nothing
    next_expiry_at timestamptz,
    -- the newest ledger entry: a new entry's UUIDv7 sorts after it, so id order is the account's order
    last_entry_id  uuid,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
) WITH (fillfactor = 80);
CREATE INDEX accounts_next_expiry ON ducto.accounts (next_expiry_at) WHERE next_expiry_at IS NOT NULL;
COMMENT ON TABLE ducto.accounts IS
    'Credit accounts, one per user_id, created by the first credit; amounts in micro-credits (10^-6).';

-- Credit arrives as lots; debits consume usable lots by (expires_at NULLS LAST, created_at, id).
CREATE TABLE ducto.lots (
    id             bigserial PRIMARY KEY,
    account_id     bigint NOT NULL,
    granted        bigint NOT NULL,
    -- credit still in the lot, its earmarked part included
    remaining      bigint NOT NULL,
    -- the part active holds have earmarked (expiry never takes it)
    earmarked      bigint NOT NULL DEFAULT 0,
    expires_at     timestamptz,
    created_at     timestamptz NOT NULL,
    -- the grant (or refund) that created the lot
    transaction_id uuid NOT NULL
) WITH (fillfactor = 80);
-- The consumption order (expires_at ASC is NULLS LAST), and the expiry search.
CREATE INDEX lots_consumption ON ducto.lots (account_id, expires_at, created_at, id);
COMMENT ON TABLE ducto.lots IS
    'Credit lots: what each grant left, what holds earmarked, and when it expires; amounts in micro-credits.';

-- The ledger: append-only, one row per change of a balance (and per zero-cost charge).
CREATE TABLE ducto.ledger (
    id              uuid PRIMARY KEY,
    account_id      bigint NOT NULL,
    -- 'grant', 'deduct', 'charge', 'refund' or 'expiry'
    kind            text NOT NULL,
    amount          bigint NOT NULL,
    balance_after   bigint NOT NULL,
    created_at      timestamptz NOT NULL,
    -- flat (lot id, micro-credits) pairs in consumption (or restoration) order; lot 0 is the overdraft part
    allocations     bigint[] NOT NULL DEFAULT '{}',
    reservation_id  uuid,
    original_id     uuid,
    lot_id          bigint,
    source          text,
    reason          text,
    operation_type  text,
    model           text,
    metrics         jsonb,
    breakdown       jsonb,
    config_version  integer,
    idempotency_key text COLLATE "C",
    request_digest  bytea,
    metadata        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ledger_account ON ducto.ledger (account_id, id);
CREATE UNIQUE INDEX ledger_idempotency ON ducto.ledger (account_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX ledger_refunds ON ducto.ledger (original_id) WHERE original_id IS NOT NULL;
COMMENT ON TABLE ducto.ledger IS
    'Every change of a balance, append-only; amounts and balance_after in micro-credits. Read it with ducto.transactions.';

-- Holds (reservations): earmarked credit, settled at most once.
CREATE TABLE ducto.holds (
    id                       uuid PRIMARY KEY,
    account_id               bigint NOT NULL,
    amount                   bigint NOT NULL CHECK (amount > 0),
    -- flat (lot id, micro-credits) pairs earmarked; lot 0 is the overdraft part
    allocations              bigint[] NOT NULL,
    state                    text NOT NULL DEFAULT 'active'
                             CHECK (state IN ('active', 'settled', 'released', 'expired')),
    operation_type           text NOT NULL,
    expires_at               timestamptz NOT NULL,
    created_at               timestamptz NOT NULL,
    available_after          bigint NOT NULL,
    -- the deduction that settled it
    settled_by               uuid,
    finished_at              timestamptz,
    -- what release_reservation returned (replayed by a second release)
    finished_available_after bigint,
    idempotency_key          text COLLATE "C",
    request_digest           bytea,
    metadata                 jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX holds_active ON ducto.holds (account_id, expires_at) WHERE state = 'active';
CREATE UNIQUE INDEX holds_idempotency ON ducto.holds (account_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
COMMENT ON TABLE ducto.holds IS
    'Credit holds (reserve_credits): the lots they earmark, their state and expiry; amounts in micro-credits.';

SELECT pg_catalog.pg_extension_config_dump('ducto.accounts', '');
SELECT pg_catalog.pg_extension_config_dump('ducto.accounts_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ducto.lots', '');
SELECT pg_catalog.pg_extension_config_dump('ducto.lots_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ducto.ledger', '');
SELECT pg_catalog.pg_extension_config_dump('ducto.holds', '');
REVOKE ALL ON TABLE ducto.accounts, ducto.lots, ducto.ledger, ducto.holds FROM PUBLIC;
REVOKE ALL ON SEQUENCE ducto.accounts_id_seq, ducto.lots_id_seq FROM PUBLIC;

-- Functions: SECURITY INVOKER, not STRICT (a NULL where a value is required raises 22004). Bad input
-- raises 22023; business refusals come back in the result's error column.

CREATE FUNCTION ducto.add_credits(user_id text, amount numeric, source text DEFAULT 'adjustment',
                                  expires_at timestamptz DEFAULT NULL, idempotency_key text DEFAULT NULL,
                                  metadata jsonb DEFAULT '{}')
RETURNS ducto.credit_result
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_add_credits';
COMMENT ON FUNCTION ducto.add_credits(text, numeric, text, timestamptz, text, jsonb) IS
    'Adds a lot of credits (expiring at expires_at, or never) to a user, creating the account on its first credit; error: idempotency_conflict.';

CREATE FUNCTION ducto.get_balance(user_id text)
RETURNS ducto.balance_result
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'ducto_get_balance';
COMMENT ON FUNCTION ducto.get_balance(text) IS
    'A user''s balance, reserved credits (active holds) and available credits (balance - reserved), as of now; zeros for an unknown user.';

CREATE FUNCTION ducto.reserve_credits(user_id text, amount numeric, operation_type text DEFAULT 'usage',
                                      ttl interval DEFAULT '10 minutes', idempotency_key text DEFAULT NULL,
                                      metadata jsonb DEFAULT '{}')
RETURNS ducto.reservation_result
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_reserve_credits';
COMMENT ON FUNCTION ducto.reserve_credits(text, numeric, text, interval, text, jsonb) IS
    'Holds credits for ttl (at most 7 days): a later deduct_credits with the reservation up to its amount always succeeds; errors: insufficient_credits, idempotency_conflict.';

CREATE FUNCTION ducto.release_reservation(reservation_id uuid)
RETURNS ducto.reservation_result
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_release_reservation';
COMMENT ON FUNCTION ducto.release_reservation(uuid) IS
    'Ends a hold without spending it (a second release returns the first result, idempotent); errors: reservation_not_found, reservation_settled, reservation_expired.';

CREATE FUNCTION ducto.deduct_credits(user_id text, reservation_id uuid, amount numeric,
                                     idempotency_key text DEFAULT NULL, metadata jsonb DEFAULT '{}')
RETURNS ducto.credit_result
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_deduct_credits';
COMMENT ON FUNCTION ducto.deduct_credits(text, uuid, numeric, text, jsonb) IS
    'Debits credits, directly (reservation_id NULL) or by settling a hold (the unspent rest returns); errors: insufficient_credits, reservation_not_found, reservation_expired, reservation_settled, idempotency_conflict.';

CREATE FUNCTION ducto.refund_credits(transaction_id uuid, amount numeric DEFAULT NULL, reason text DEFAULT NULL,
                                     idempotency_key text DEFAULT NULL, metadata jsonb DEFAULT '{}')
RETURNS ducto.refund_result
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_refund_credits';
COMMENT ON FUNCTION ducto.refund_credits(uuid, numeric, text, text, jsonb) IS
    'Gives back (part of) a deduction or charge, into the lots it consumed (amount NULL: all still refundable); errors: transaction_not_found, not_refundable, nothing_to_refund, refund_exceeds_original, idempotency_conflict.';

CREATE FUNCTION ducto.charge(user_id text, metrics jsonb, idempotency_key text DEFAULT NULL,
                             metadata jsonb DEFAULT '{}')
RETURNS ducto.charge_result
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_charge';
COMMENT ON FUNCTION ducto.charge(text, jsonb, text, jsonb) IS
    'Prices one usage record with the active pricing config and debits it in one call (call it as SELECT * FROM ducto.charge(...)); no active config: 55000; errors: unknown_model, insufficient_credits, idempotency_conflict.';

CREATE FUNCTION ducto.transactions(user_id text, before_id uuid DEFAULT NULL, max_rows integer DEFAULT 100)
RETURNS TABLE (transaction_id uuid, kind text, amount numeric, balance_after numeric, created_at timestamptz,
               reservation_id uuid, original_transaction_id uuid, source text, reason text, model text,
               breakdown jsonb, idempotency_key text, metadata jsonb)
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'ducto_transactions';
COMMENT ON FUNCTION ducto.transactions(text, uuid, integer) IS
    'A user''s ledger entries, newest first: at most max_rows (1 to 1000) older than before_id (keyset pagination).';

CREATE FUNCTION ducto.expire_credits(max_users integer DEFAULT 1000)
RETURNS TABLE (user_id text, expired numeric)
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_expire_credits';
COMMENT ON FUNCTION ducto.expire_credits(integer) IS
    'The expiry sweep: for at most max_users accounts with something due (skipping locked ones), ends expired holds and posts lot expiry; returns each swept user with the credits that expired (negative).';

CREATE FUNCTION ducto.verify()
RETURNS TABLE (user_id text, problem text)
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'ducto_verify';
COMMENT ON FUNCTION ducto.verify() IS
    'Recomputes every invariant of the ledger (balances, lots, holds, refunds, allocations); no rows when all hold.';

-- Moving credits, and reading ledger data, is for roles granted it (README: one GRANT for the application).
REVOKE EXECUTE ON FUNCTION
    ducto.add_credits(text, numeric, text, timestamptz, text, jsonb),
    ducto.get_balance(text),
    ducto.reserve_credits(text, numeric, text, interval, text, jsonb),
    ducto.release_reservation(uuid),
    ducto.deduct_credits(text, uuid, numeric, text, jsonb),
    ducto.refund_credits(uuid, numeric, text, text, jsonb),
    ducto.charge(text, jsonb, text, jsonb),
    ducto.transactions(text, uuid, integer),
    ducto.expire_credits(integer),
    ducto.verify()
FROM PUBLIC;
-- ==== end ledger ====
