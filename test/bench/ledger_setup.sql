-- test/bench/ledger_setup.sql: the data of the ledger and events benchmarks (run by bench.py with
-- psql -v nusers=N). Three systems with the same users, each user holding a balance large enough that
-- no charge of the run is ever refused:
--   ducto        the extension (variants (a) charge, (b) reserve + deduct, and the events benchmark);
--   bench.pl_*   a PL/pgSQL charge with the same contract, variant (c);
--   bench.floor_* the least plain SQL a charge needs, variant (d).
-- User ids are 'user-1' .. 'user-N'; the hot-user setting sends every client to 'user-1'.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE EXTENSION IF NOT EXISTS ducto;
-- A production install runs the background worker, which creates the outbox's day partitions ahead of
-- time; do the same before the first event, so events land in today's partition, not the default one.
SELECT ducto.create_event_partitions() AS day_partitions;
-- Variant (a) prices {"input_tokens": 100} with this config: 0.1 credits, the amount the others move.
SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 0.001 + output_tokens * 0.003"}}', 'bench');

-- bench.py checks afterwards that every user can afford the run.
SELECT count(*) AS ducto_accounts
FROM pg_catalog.generate_series(1, :nusers) AS g, LATERAL ducto.add_credits('user-' || g, 1000000000) AS r;

DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;

-- (c) The PL/pgSQL comparison: what a careful hand-written RPC does. Floor check under the account's
-- row lock, idempotency key unique per account, one ledger row, the balance update. Priced with the
-- same linear formula written inline (the formula is fixed here, where ducto reads it from a config).
CREATE TABLE bench.pl_accounts (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id text COLLATE "C" NOT NULL UNIQUE,
    balance numeric NOT NULL
) WITH (fillfactor = 80);
CREATE TABLE bench.pl_ledger (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      bigint NOT NULL,
    amount          numeric NOT NULL,
    balance_after   numeric NOT NULL,
    idempotency_key text,
    metrics         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
-- NULL keys never collide, so calls without a key still pay for this index insertion.
CREATE UNIQUE INDEX pl_ledger_idempotency ON bench.pl_ledger (account_id, idempotency_key);

CREATE FUNCTION bench.pl_charge(p_user_id text, p_metrics jsonb, p_idempotency_key text DEFAULT NULL,
                                OUT transaction_id bigint, OUT balance_after numeric,
                                OUT idempotent boolean, OUT error text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_account bigint;
    v_balance numeric;
    v_amount  numeric;
BEGIN
    v_amount := round(coalesce((p_metrics ->> 'input_tokens')::numeric, 0) * 0.001
                      + coalesce((p_metrics ->> 'output_tokens')::numeric, 0) * 0.003, 6);
    SELECT a.id, a.balance INTO v_account, v_balance
    FROM bench.pl_accounts AS a WHERE a.user_id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        error := 'insufficient_credits';
        RETURN;
    END IF;
    IF p_idempotency_key IS NOT NULL THEN
        SELECT l.id, l.balance_after INTO transaction_id, balance_after
        FROM bench.pl_ledger AS l WHERE l.account_id = v_account AND l.idempotency_key = p_idempotency_key;
        IF FOUND THEN
            idempotent := true;
            RETURN;
        END IF;
    END IF;
    IF v_balance - v_amount < 0 THEN  -- the floor: min_balance 0
        error := 'insufficient_credits';
        RETURN;
    END IF;
    UPDATE bench.pl_accounts SET balance = balance - v_amount WHERE id = v_account
    RETURNING balance INTO balance_after;
    INSERT INTO bench.pl_ledger (account_id, amount, balance_after, idempotency_key, metrics)
    VALUES (v_account, -v_amount, balance_after, p_idempotency_key, p_metrics)
    RETURNING id INTO transaction_id;
    idempotent := false;
END
$$;

-- (d) The floor: an account row and a ledger row, nothing else (no idempotency, no metadata, no
-- secondary index). pgbench/floor.sql debits it with one guarded UPDATE + INSERT statement.
CREATE TABLE bench.floor_accounts (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id text COLLATE "C" NOT NULL UNIQUE,
    balance numeric NOT NULL
) WITH (fillfactor = 80);
CREATE TABLE bench.floor_ledger (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    bigint NOT NULL,
    amount        numeric NOT NULL,
    balance_after numeric NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT pg_catalog.now()
);

INSERT INTO bench.pl_accounts (user_id, balance)
SELECT 'user-' || g, 1000000000 FROM pg_catalog.generate_series(1, :nusers) AS g;
INSERT INTO bench.floor_accounts (user_id, balance)
SELECT 'user-' || g, 1000000000 FROM pg_catalog.generate_series(1, :nusers) AS g;

VACUUM ANALYZE;
