-- sql/analytics.sql: spend_by_user, spend_by_model, top_users, daily_spend and aggregate_stats (issue 5,
-- Analytics) over a ledger written row by row with known times: half-open UTC windows, refunds net of
-- the refunded debit's user and model in the window they were made, every kind of entry, an entry whose
-- id runs ahead of its created_at, then real charges; bad arguments, privileges and catalog entries.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS ducto;
CREATE EXTENSION ducto;
RESET client_min_messages;
\pset null '(null)'

-- try(sql): the first column of a one-row statement as text, or 'SQLSTATE: message' when it fails.
CREATE OR REPLACE FUNCTION try(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  result text;
BEGIN
  EXECUTE sql INTO result;
  RETURN result;
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- ---- a ledger with known times -----------------------------------------------------------------------
-- Written directly (as the superuser) so that times are fixed. uuid7(at, n): the UUIDv7 the ledger would
-- give an entry made at `at` (48 bits of Unix milliseconds, version 7, then bits from n).
CREATE OR REPLACE FUNCTION uuid7(at timestamptz, n integer) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
  SELECT (lpad(to_hex(floor(extract(epoch FROM at) * 1000)::bigint), 12, '0') || '7000-8000-'
          || lpad(n::text, 12, '0'))::uuid
$$;
INSERT INTO ducto.accounts (user_id, kind) VALUES ('alice', 'user'), ('bob', 'user'), ('carol', 'user'),
                                                    ('acme', 'team');
CREATE TEMP TABLE entries (n integer, user_id text, kind text, amount numeric, at timestamptz, model text,
                           refunds integer, id_at timestamptz);
INSERT INTO entries VALUES
  (1,  'alice', 'grant',  100,       '2025-03-01 10:00:00+00', NULL,     NULL, NULL),
  (2,  'alice', 'charge', -2.5,      '2025-03-01 11:00:00+00', 'gpt',    NULL, NULL),
  (3,  'bob',   'grant',  20,        '2025-03-01 12:00:00+00', NULL,     NULL, NULL),
  -- the last microsecond of March 1st (UTC)
  (4,  'bob',   'charge', -1,        '2025-03-01 23:59:59.999999+00', 'claude', NULL, NULL),
  -- made at 23:50 but its id says 00:20: it had waited for its account's lock (March 1st all the same)
  (5,  'carol', 'charge', -0.25,     '2025-03-01 23:50:00+00', 'claude', NULL, '2025-03-02 00:20:00+00'),
  (6,  'bob',   'deduct', -4,        '2025-03-02 00:00:00+00', NULL,     NULL, NULL),
  -- alice's refund of her March 1st charge counts on March 2nd, for gpt
  (7,  'alice', 'refund', 1,         '2025-03-02 08:00:00+00', NULL,     2,    NULL),
  (8,  'carol', 'charge', -0.000001, '2025-03-02 09:00:00+00', 'gpt',    NULL, NULL),
  -- a zero-cost charge: counted, spends nothing
  (9,  'carol', 'charge', 0,         '2025-03-02 10:00:00+00', 'gpt',    NULL, NULL),
  (10, 'acme',  'grant',  50,        '2025-03-02 11:00:00+00', NULL,     NULL, NULL),
  -- bob's refund of half his deduction: no model
  (11, 'bob',   'refund', 2,         '2025-03-03 00:00:00+00', NULL,     6,    NULL),
  (12, 'alice', 'expiry', -10,       '2025-03-03 01:00:00+00', NULL,     NULL, NULL),
  -- a team's charge counts for the team's id
  (13, 'acme',  'charge', -3,        '2025-03-03 02:00:00+00', 'claude', NULL, NULL),
  (14, 'bob',   'charge', -7.125,    '2025-03-03 23:00:00+00', 'gpt',    NULL, NULL),
  -- equal spend on March 5th
  (15, 'alice', 'charge', -1,        '2025-03-05 12:00:00+00', 'gpt',    NULL, NULL),
  (16, 'acme',  'charge', -1,        '2025-03-05 13:00:00+00', 'claude', NULL, NULL);
INSERT INTO ducto.ledger (id, account_id, kind, amount, balance_after, created_at, model, original_id)
SELECT uuid7(coalesce(e.id_at, e.at), e.n), a.id, e.kind, (e.amount * 1000000)::bigint, 0, e.at, e.model,
       (SELECT uuid7(coalesce(o.id_at, o.at), o.n) FROM entries AS o WHERE o.n = e.refunds)
FROM entries AS e JOIN ducto.accounts AS a USING (user_id);

-- ---- spend_by_user -----------------------------------------------------------------------------------

-- March 1st: alice's and bob's charges, carol's late-id charge; grants are not spend.
SELECT * FROM ducto.spend_by_user('2025-03-01 00:00+00', '2025-03-02 00:00+00');
-- March 2nd: alice only refunded (negative spend), carol's charges, bob's deduction.
SELECT * FROM ducto.spend_by_user('2025-03-02 00:00+00', '2025-03-03 00:00+00');
-- Half-open: the window ending at 23:59:59.999999 leaves out bob's charge made at that microsecond.
SELECT user_id, spend FROM ducto.spend_by_user('2025-03-01 00:00+00', '2025-03-01 23:59:59.999999+00');
SELECT user_id, spend FROM ducto.spend_by_user('2025-03-01 23:59:59.999999+00', '2025-03-02 00:00+00');
-- The whole ledger, any time zone: windows are instants.
SET TimeZone = 'America/New_York';
SELECT * FROM ducto.spend_by_user(to_ts => 'infinity', from_ts => '-infinity');
RESET TimeZone;
-- A window without entries.
SELECT count(*) AS users FROM ducto.spend_by_user('2024-01-01 00:00+00', '2025-01-01 00:00+00');

-- ---- spend_by_model ----------------------------------------------------------------------------------

SELECT * FROM ducto.spend_by_model('2025-03-01 00:00+00', '2025-03-04 00:00+00');
-- The refund of alice's gpt charge is gpt's, on the day it was made.
SELECT * FROM ducto.spend_by_model('2025-03-02 00:00+00', '2025-03-03 00:00+00');

-- ---- top_users ---------------------------------------------------------------------------------------

SELECT * FROM ducto.top_users(10, '-infinity', 'infinity');
SELECT user_id, spend FROM ducto.top_users(2, '-infinity', 'infinity');
-- Equal spend: by user_id (byte order).
SELECT user_id, spend FROM ducto.top_users(max_rows => 1, from_ts => '2025-03-05 00:00+00', to_ts => '2025-03-06 00:00+00');
SELECT user_id, spend FROM ducto.top_users(2, '2025-03-05 00:00+00', '2025-03-06 00:00+00');

-- ---- daily_spend -------------------------------------------------------------------------------------

-- UTC days, whatever the session's time zone; days without spend are left out.
SET TimeZone = 'Asia/Tokyo';
SELECT * FROM ducto.daily_spend('2025-02-01 00:00+00', '2025-04-01 00:00+00');
RESET TimeZone;
-- A window cut mid-day keeps only that part of the day.
SELECT * FROM ducto.daily_spend('2025-03-02 08:30+00', '2025-03-03 01:30+00');

-- ---- aggregate_stats ---------------------------------------------------------------------------------

SELECT * FROM ducto.aggregate_stats('-infinity', 'infinity');
SELECT * FROM ducto.aggregate_stats('2025-03-02 00:00+00', '2025-03-03 00:00+00');
-- Always one row, zeros when nothing happened.
SELECT * FROM ducto.aggregate_stats('2020-01-01 00:00+00', '2020-01-02 00:00+00');

-- ---- real operations ---------------------------------------------------------------------------------

SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 0.5", "mini": "input_tokens * 0.001"}}') AS version;
SELECT amount FROM ducto.add_credits('dave', 10);
SELECT amount, error FROM ducto.charge('dave', '{"model": "mini", "input_tokens": 1500}');
SELECT amount, error FROM ducto.charge('dave', '{"input_tokens": 3}');
SELECT amount, error FROM ducto.deduct_credits('dave', NULL, 0.25);
SELECT amount, error
FROM ducto.refund_credits((SELECT transaction_id FROM ducto.transactions('dave') WHERE model = 'mini'), 0.5);
CREATE TEMP TABLE recent AS
SELECT pg_catalog.clock_timestamp() - interval '1 hour' AS from_ts, pg_catalog.clock_timestamp() + interval '1 hour' AS to_ts;
SELECT s.* FROM recent, ducto.spend_by_user(recent.from_ts, recent.to_ts) AS s;
SELECT s.* FROM recent, ducto.spend_by_model(recent.from_ts, recent.to_ts) AS s;
SELECT s.total_spend, s.charges, s.deductions, s.refunds, s.active_users, s.models, s.credits_added
FROM recent, ducto.aggregate_stats(recent.from_ts, recent.to_ts) AS s;
SELECT s.spend, s.charges FROM recent, ducto.daily_spend(recent.from_ts, recent.to_ts) AS s;
SELECT count(*) AS problems FROM ducto.verify() WHERE user_id = 'dave';

-- ---- bad arguments -----------------------------------------------------------------------------------

SELECT label, try(sql) AS result
FROM (VALUES
  ('NULL from_ts', $$SELECT count(*) FROM ducto.spend_by_user(NULL, '2025-01-01')$$),
  ('NULL to_ts', $$SELECT count(*) FROM ducto.spend_by_user('2025-01-01', NULL)$$),
  ('empty window', $$SELECT count(*) FROM ducto.spend_by_user('2025-01-01', '2025-01-01')$$),
  ('reversed window', $$SELECT count(*) FROM ducto.spend_by_user('2025-01-02', '2025-01-01')$$),
  ('infinite, reversed', $$SELECT count(*) FROM ducto.spend_by_user('infinity', '-infinity')$$),
  ('model NULL from_ts', $$SELECT count(*) FROM ducto.spend_by_model(NULL, '2025-01-01')$$),
  ('model empty window', $$SELECT count(*) FROM ducto.spend_by_model('2025-01-01', '2025-01-01')$$),
  ('daily NULL to_ts', $$SELECT count(*) FROM ducto.daily_spend('2025-01-01', NULL)$$),
  ('daily reversed', $$SELECT count(*) FROM ducto.daily_spend('2025-01-02', '2025-01-01')$$),
  ('stats NULL from_ts', $$SELECT count(*) FROM ducto.aggregate_stats(NULL, '2025-01-01')$$),
  ('stats reversed', $$SELECT count(*) FROM ducto.aggregate_stats('infinity', 'infinity')$$),
  ('top NULL max_rows', $$SELECT count(*) FROM ducto.top_users(NULL, '2025-01-01', '2025-01-02')$$),
  ('top 0 rows', $$SELECT count(*) FROM ducto.top_users(0, '2025-01-01', '2025-01-02')$$),
  ('top 10001 rows', $$SELECT count(*) FROM ducto.top_users(10001, '2025-01-01', '2025-01-02')$$),
  ('top NULL to_ts', $$SELECT count(*) FROM ducto.top_users(5, '2025-01-01', NULL)$$),
  ('top reversed', $$SELECT count(*) FROM ducto.top_users(5, '2025-01-02', '2025-01-01')$$),
  ('top 10000 rows', $$SELECT count(*) FROM ducto.top_users(10000, '2025-01-01', '2025-01-02')$$)
) AS t(label, sql);
-- The earliest and latest timestamps are fine.
SELECT total_spend FROM ducto.aggregate_stats('4713-01-01 00:00+00 BC', '294276-12-31 23:59:59+00');

-- ---- privileges and catalog --------------------------------------------------------------------------

CREATE ROLE regress_analytics;
-- A schema whose >= on uuid is always false, for the search_path check below.
CREATE SCHEMA regress_hijack;
CREATE FUNCTION regress_hijack.never(uuid, uuid) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE OPERATOR regress_hijack.>= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = regress_hijack.never);
GRANT USAGE ON SCHEMA regress_hijack TO regress_analytics;
SET ROLE regress_analytics;
SELECT try($$SELECT count(*) FROM ducto.spend_by_user('-infinity', 'infinity')$$) AS without_grant;
RESET ROLE;
-- EXECUTE is enough: the reports read the ledger as the extension owner.
GRANT EXECUTE ON FUNCTION ducto.spend_by_user(timestamptz, timestamptz) TO regress_analytics;
SET ROLE regress_analytics;
SELECT user_id, spend FROM ducto.spend_by_user('2025-03-01 00:00+00', '2025-03-02 00:00+00');
SELECT try($$SELECT count(*) FROM ducto.ledger$$) AS read_ledger,
       try($$SELECT count(*) FROM ducto.spend_by_model('-infinity', 'infinity')$$) AS other_report;
-- The caller's search_path cannot redirect the reports' statements.
SET search_path = regress_hijack, pg_catalog;
SELECT '00000000-0000-0000-0000-000000000000'::uuid >= '00000000-0000-0000-0000-000000000000'::uuid AS hijacked;
SELECT count(*) AS users FROM ducto.spend_by_user('-infinity', 'infinity');
RESET search_path;
RESET ROLE;
DROP OPERATOR regress_hijack.>= (uuid, uuid);
DROP FUNCTION regress_hijack.never(uuid, uuid);
DROP SCHEMA regress_hijack;
DROP OWNED BY regress_analytics;
DROP ROLE regress_analytics;

SELECT p.proname, pg_get_function_arguments(p.oid) AS arguments, pg_get_function_result(p.oid) AS result
FROM pg_proc AS p
WHERE p.pronamespace = 'ducto'::regnamespace
  AND p.proname IN ('spend_by_user', 'spend_by_model', 'top_users', 'daily_spend', 'aggregate_stats')
ORDER BY p.proname;
SELECT p.proname,
       CASE p.provolatile WHEN 'v' THEN 'volatile' WHEN 's' THEN 'stable' ELSE 'immutable' END AS volatility,
       p.prosecdef AS security_definer, p.proisstrict AS strict,
       obj_description(p.oid, 'pg_proc') IS NOT NULL AS has_comment,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
FROM pg_proc AS p
WHERE p.pronamespace = 'ducto'::regnamespace
  AND p.proname IN ('spend_by_user', 'spend_by_model', 'top_users', 'daily_spend', 'aggregate_stats')
ORDER BY p.proname;
