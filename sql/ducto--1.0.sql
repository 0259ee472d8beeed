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
    xid           xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id()
) PARTITION BY RANGE (created_at);
ALTER SEQUENCE ducto.events_id_seq OWNED BY ducto.events.id;
-- The only index every event pays for: the read protocol's order. No primary key on purpose: ids come
-- from the sequence, and a partitioned table's key would have to be (id, created_at), an index no read
-- needs that cost charges 7% of their throughput (test/bench events); ack_events finds an id through
-- this index, within the consumer's delivered window.
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
    error text, allowance_used numeric);
CREATE TYPE ducto.balance_result AS (user_id text, balance numeric, reserved numeric, available numeric,
    allowance_remaining numeric);

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
    -- the account's previous entry (NULL for its first): an account's entries are a chain from
    -- accounts.last_entry_id, walked through the primary key, so no index on account_id costs the hot
    -- path its random-page writes
    prev_id         uuid,
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
    'A user''s balance, reserved credits (active holds), available credits (balance - reserved) and what is left of the plan''s free allowance this month, as of now; zeros for an unknown user.';

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
    'Prices one usage record with the active pricing config and debits it in one call (call it as SELECT * FROM ducto.charge(...)); no active config: 55000; a team account: 22023; errors: unknown_model, insufficient_credits, cap_reached, idempotency_conflict. A plan''s free allowance pays first (allowance_used).';

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

-- ==== teams and analytics ====
-- Teams (issue 5): a team is an account of kind 'team' (ducto.accounts.user_id is the team's id) with a
-- row in ducto.teams; its members, their roles and monthly spend caps are in ducto.team_members, which
-- charge_team reads under the team's account lock. Only the C functions below write these tables
-- (src/pg/teams.cpp). Analytics (src/pg/analytics.cpp): read-only reports over the ledger.

CREATE TABLE ducto.teams (
    account_id bigint PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL
);
COMMENT ON TABLE ducto.teams IS
    'One row per team (ducto.create_team); account_id is the team''s ducto.accounts row (kind ''team'').';

CREATE TABLE ducto.team_members (
    -- the team's ducto.accounts.id
    team_id   bigint NOT NULL,
    user_id   text COLLATE "C" NOT NULL,
    -- 'member', 'admin' or 'owner'
    role      text NOT NULL,
    -- micro-credits a member may spend through charge_team per calendar month (UTC); NULL: no cap
    spend_cap bigint,
    added_at  timestamptz NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
-- "Is this user a member of any team?" (create_team refuses such an id) and a user's teams.
CREATE INDEX team_members_user ON ducto.team_members (user_id);
COMMENT ON TABLE ducto.team_members IS
    'Team members (ducto.add_team_member): role and monthly spend cap (micro-credits, NULL: none) per (team account, user).';

SELECT pg_catalog.pg_extension_config_dump('ducto.teams', '');
SELECT pg_catalog.pg_extension_config_dump('ducto.team_members', '');
REVOKE ALL ON TABLE ducto.teams, ducto.team_members FROM PUBLIC;

CREATE FUNCTION ducto.create_team(team_id text, name text)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_create_team';
COMMENT ON FUNCTION ducto.create_team(text, text) IS
    'Creates a team: an account of kind team with a zero balance (add_credits funds it) named name (1-255 characters). An id that already has an account (team or personal) or is a team member: 22023.';

CREATE FUNCTION ducto.add_team_member(team_id text, user_id text, role text DEFAULT 'member',
                                      spend_cap numeric DEFAULT NULL)
RETURNS boolean
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_add_team_member';
COMMENT ON FUNCTION ducto.add_team_member(text, text, text, numeric) IS
    'Adds a member to a team, or updates an existing member''s role (member, admin or owner; NULL: member) and spend_cap (credits per calendar month UTC through charge_team; NULL: no cap); true when added, false when updated. Unknown team, a team as member, bad values: 22023.';

CREATE FUNCTION ducto.remove_team_member(team_id text, user_id text)
RETURNS boolean
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_remove_team_member';
COMMENT ON FUNCTION ducto.remove_team_member(text, text) IS
    'Removes a member from a team; false when the user was not a member. Unknown team: 22023.';

CREATE FUNCTION ducto.team_members(team_id text)
RETURNS TABLE (user_id text, role text, spend_cap numeric, added_at timestamptz)
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'ducto_team_members';
COMMENT ON FUNCTION ducto.team_members(text) IS
    'A team''s members by user_id, with role, monthly spend cap (NULL: none) and when they were added. Unknown team: 22023.';

-- Analytics. Every report covers the half-open window [from_ts, to_ts) of the ledger entries' created_at
-- (NULL bound: 22004, from_ts >= to_ts: 22023; infinite bounds are fine). Spend is what charges and
-- deductions debited in the window, net of the refunds made in the window (a refund counts against the
-- user and model of the debit it refunds), positive; it is negative when the window's refunds exceed
-- its debits. Amounts are numeric with 6 places. A team's charges count for the team's id.
-- C functions: they read the ledger as the extension owner, so a role needs EXECUTE only. Windows are
-- found through the ledger's primary key (UUIDv7 ids follow created_at; src/pg/analytics.cpp): no index
-- on created_at, which would cost every charge an index insertion.

-- The number of UTC days, for daily_spend's grouping: without it the planner expects one group per row
-- and sorts the window instead of hashing it (twice as slow on a month of a million rows). Only ANALYZE
-- maintains it.
CREATE STATISTICS ducto.ledger_utc_day ON ((created_at AT TIME ZONE 'UTC')::date) FROM ducto.ledger;

CREATE FUNCTION ducto.spend_by_user(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (user_id text, spend numeric, debited numeric, refunded numeric, charges bigint,
               deductions bigint, refunds bigint)
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'ducto_spend_by_user';
COMMENT ON FUNCTION ducto.spend_by_user(timestamptz, timestamptz) IS
    'Per user (or team) with a charge, deduction or refund in [from_ts, to_ts), by user_id: spend (debited - refunded), debited (charges and deductions), refunded, and the number of charges, deductions and refunds.';

CREATE FUNCTION ducto.spend_by_model(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (model text, spend numeric, debited numeric, refunded numeric, charges bigint,
               deductions bigint, refunds bigint)
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'ducto_spend_by_model';
COMMENT ON FUNCTION ducto.spend_by_model(timestamptz, timestamptz) IS
    'Per model charged in [from_ts, to_ts), by model (deductions, which have no model, last under model NULL): spend, debited, refunded (refunds count for the refunded charge''s model), and the number of charges, deductions and refunds.';

CREATE FUNCTION ducto.top_users(max_rows integer, from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (user_id text, spend numeric, debited numeric, refunded numeric, charges bigint,
               deductions bigint, refunds bigint)
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'ducto_top_users';
COMMENT ON FUNCTION ducto.top_users(integer, timestamptz, timestamptz) IS
    'The max_rows (1-10000) users (or teams) that spent most in [from_ts, to_ts), by spend descending then user_id; columns as spend_by_user.';

CREATE FUNCTION ducto.daily_spend(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (day date, spend numeric, debited numeric, refunded numeric, charges bigint,
               deductions bigint, refunds bigint)
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'ducto_daily_spend';
COMMENT ON FUNCTION ducto.daily_spend(timestamptz, timestamptz) IS
    'One row per UTC day with a charge, deduction or refund in [from_ts, to_ts), by day: spend, debited, refunded, and the number of charges, deductions and refunds.';

CREATE FUNCTION ducto.aggregate_stats(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (total_spend numeric, debited numeric, refunded numeric, charges bigint, deductions bigint,
               refunds bigint, active_users bigint, models bigint, credits_added numeric,
               credits_expired numeric)
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'ducto_aggregate_stats';
COMMENT ON FUNCTION ducto.aggregate_stats(timestamptz, timestamptz) IS
    'One row for [from_ts, to_ts): total_spend, debited, refunded, the number of charges, deductions and refunds, active_users (with a charge or deduction), models (distinct models charged), credits_added (grants) and credits_expired (expiry, positive).';

-- Team administration and ledger analytics are for roles granted them.
REVOKE EXECUTE ON FUNCTION
    ducto.create_team(text, text),
    ducto.add_team_member(text, text, text, numeric),
    ducto.remove_team_member(text, text),
    ducto.team_members(text),
    ducto.spend_by_user(timestamptz, timestamptz),
    ducto.spend_by_model(timestamptz, timestamptz),
    ducto.top_users(integer, timestamptz, timestamptz),
    ducto.daily_spend(timestamptz, timestamptz),
    ducto.aggregate_stats(timestamptz, timestamptz)
FROM PUBLIC;
-- ==== end teams and analytics ====

-- ==== policies ====
-- Plans and allowances, spend caps, low-balance alerts and features (issue 5; src/pg/policies.cpp).
-- Enforced by charge, deduct_credits and charge_team under the account lock, in the debit's
-- transaction. An account without a plan, caps or own thresholds (accounts.policies false) costs the
-- hot path nothing: its policy rows are never read.

-- Set when the account has a row in account_policies or a cap: the charge path reads policy rows only then.
ALTER TABLE ducto.accounts ADD COLUMN policies boolean NOT NULL DEFAULT false;

-- What a charge took from the free allowance (micro-credits; NULL: none) and, for charge_team, the
-- member the team's debit is attributed to.
ALTER TABLE ducto.ledger ADD COLUMN allowance_used bigint, ADD COLUMN member_user_id text COLLATE "C";

-- Per account: its plan (a key of the active config's plans), the allowance used in the month that
-- starts at allowance_month (UTC), and its own low-balance thresholds (NULL: the config's).
CREATE TABLE ducto.account_policies (
    account_id             bigint PRIMARY KEY,
    plan                   text COLLATE "C",
    allowance_month        timestamptz,
    allowance_used         bigint NOT NULL DEFAULT 0,
    low_balance_thresholds bigint[]
);
COMMENT ON TABLE ducto.account_policies IS
    'Each account''s plan, free allowance used this month and low-balance thresholds; amounts in micro-credits.';

-- Spend caps with their counters for the current window (window_start): spent is what debits took in
-- the window net of refunds made in it; warned / exceeded say the window's warnings were emitted.
CREATE TABLE ducto.caps (
    id           bigserial PRIMARY KEY,
    account_id   bigint NOT NULL,
    period       text NOT NULL CHECK (period IN ('daily', 'monthly')),
    -- NULL: every model (and deductions)
    model        text COLLATE "C",
    cap          bigint NOT NULL CHECK (cap > 0),
    action       text NOT NULL CHECK (action IN ('deny', 'warn', 'notify')),
    -- warn_at in parts per million
    warn_ppm     integer NOT NULL CHECK (warn_ppm > 0 AND warn_ppm <= 1000000),
    window_start timestamptz NOT NULL,
    spent        bigint NOT NULL DEFAULT 0,
    warned       boolean NOT NULL DEFAULT false,
    exceeded     boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
CREATE UNIQUE INDEX caps_key ON ducto.caps (account_id, period, model) NULLS NOT DISTINCT;
COMMENT ON TABLE ducto.caps IS
    'Spend caps (ducto.set_spend_cap) and their spend in the current UTC window; amounts in micro-credits.';

-- What each team member spent from the team's balance in the month starting at month (UTC), net of
-- refunds made in it: the member's spend cap (team_members.spend_cap) is checked against it.
CREATE TABLE ducto.member_spend (
    team_id bigint NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    month   timestamptz NOT NULL,
    spent   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (team_id, user_id)
);
COMMENT ON TABLE ducto.member_spend IS
    'Each team member''s spend from the team balance in the current UTC month (charge_team); micro-credits.';

SELECT pg_catalog.pg_extension_config_dump('ducto.account_policies', '');
SELECT pg_catalog.pg_extension_config_dump('ducto.caps', '');
SELECT pg_catalog.pg_extension_config_dump('ducto.caps_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ducto.member_spend', '');
REVOKE ALL ON TABLE ducto.account_policies, ducto.caps, ducto.member_spend FROM PUBLIC;
REVOKE ALL ON SEQUENCE ducto.caps_id_seq FROM PUBLIC;

CREATE FUNCTION ducto.set_user_plan(user_id text, plan text)
RETURNS jsonb
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_set_user_plan';
COMMENT ON FUNCTION ducto.set_user_plan(text, text) IS
    'Puts a user on a plan of the active pricing config (NULL: no plan), creating the account if needed; writes credits.plan_changed and returns get_user_plan. Unknown plan or no active config: 22023.';

CREATE FUNCTION ducto.get_user_plan(user_id text)
RETURNS jsonb
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'ducto_get_user_plan';
COMMENT ON FUNCTION ducto.get_user_plan(text) IS
    'A user''s plan: {plan, name, allowance, used, remaining, window_start, window_end, features} for the current UTC month; plan null and zeros without one.';

CREATE FUNCTION ducto.check_feature(user_id text, feature text)
RETURNS jsonb
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'ducto_check_feature';
COMMENT ON FUNCTION ducto.check_feature(text, text) IS
    'The value of a feature in the user''s plan (0, false and "" are values); NULL when the plan lacks it or the user has no plan.';

CREATE FUNCTION ducto.set_spend_cap(user_id text, period text, cap numeric, action text DEFAULT 'deny',
                                    model text DEFAULT NULL, warn_at numeric DEFAULT 0.8)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_set_spend_cap';
COMMENT ON FUNCTION ducto.set_spend_cap(text, text, numeric, text, text, numeric) IS
    'Sets (or replaces) the user''s spend cap for a period (daily, monthly: UTC windows) and a model (NULL: all); action deny, warn or notify; warn_at in (0, 1]. Bad values: 22023.';

CREATE FUNCTION ducto.remove_spend_cap(user_id text, period text, model text DEFAULT NULL)
RETURNS boolean
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_remove_spend_cap';
COMMENT ON FUNCTION ducto.remove_spend_cap(text, text, text) IS
    'Removes the user''s spend cap for the period and model (NULL: the all-models cap); false when there was none.';

CREATE FUNCTION ducto.spend_caps(user_id text)
RETURNS TABLE (period text, model text, cap numeric, action text, warn_at numeric, spent numeric,
               window_start timestamptz, window_end timestamptz)
LANGUAGE C STABLE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'ducto_spend_caps';
COMMENT ON FUNCTION ducto.spend_caps(text) IS
    'The user''s spend caps with what was spent in the current UTC window (debits net of refunds).';

CREATE FUNCTION ducto.set_low_balance_thresholds(user_id text, thresholds numeric[])
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_set_low_balance_thresholds';
COMMENT ON FUNCTION ducto.set_low_balance_thresholds(text, numeric[]) IS
    'The user''s own low-balance thresholds (non-negative amounts); NULL goes back to the config''s low_balance_thresholds.';

CREATE FUNCTION ducto.charge_team(team_id text, user_id text, metrics jsonb, idempotency_key text DEFAULT NULL,
                                  metadata jsonb DEFAULT '{}')
RETURNS ducto.charge_result
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'ducto_charge_team';
COMMENT ON FUNCTION ducto.charge_team(text, text, jsonb, text, jsonb) IS
    'Charges one usage record of a team member to the team''s balance (call it as SELECT * FROM ducto.charge_team(...)), attributing it to the member; unknown team: 22023; errors: not_a_member, member_cap_reached, cap_reached, unknown_model, insufficient_credits, idempotency_conflict.';

REVOKE EXECUTE ON FUNCTION
    ducto.charge_team(text, text, jsonb, text, jsonb),
    ducto.set_user_plan(text, text),
    ducto.get_user_plan(text),
    ducto.check_feature(text, text),
    ducto.set_spend_cap(text, text, numeric, text, text, numeric),
    ducto.remove_spend_cap(text, text, text),
    ducto.spend_caps(text),
    ducto.set_low_balance_thresholds(text, numeric[])
FROM PUBLIC;
-- ==== end policies ====
