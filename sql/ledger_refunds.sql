-- sql/ledger_refunds.sql: refund_credits: partial refunds that add up to at most the debit, credit back
-- into the lots the debit consumed (newest allocation first, with their expiry; an expired lot loses it
-- again at once), refunds of charges and of overdrafts, every refusal code, bad input and events.
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

CREATE OR REPLACE FUNCTION credits(micros bigint) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
  SELECT round(micros / 1000000.0, 6)
$$;

CREATE OR REPLACE FUNCTION lots_of(who text)
RETURNS TABLE (lot bigint, granted numeric, remaining numeric, earmarked numeric, expiry text)
LANGUAGE sql AS $$
  SELECT row_number() OVER (ORDER BY l.id), credits(l.granted), credits(l.remaining), credits(l.earmarked),
         CASE WHEN l.expires_at IS NULL THEN 'never'
              WHEN l.expires_at <= clock_timestamp() THEN 'expired' ELSE 'later' END
  FROM ducto.lots AS l JOIN ducto.accounts AS a ON a.id = l.account_id
  WHERE a.user_id = who ORDER BY l.id
$$;

-- Transaction ids by name.
CREATE TEMP TABLE entry (name text PRIMARY KEY, id uuid);
CREATE OR REPLACE FUNCTION entry(name text) RETURNS uuid LANGUAGE sql AS $$
  SELECT e.id FROM entry AS e WHERE e.name = entry.name
$$;

-- ---- partial refunds, newest allocation first --------------------------------------------------------

WITH c AS (SELECT * FROM ducto.add_credits('alice', 10, expires_at => clock_timestamp() + interval '1 day')),
     saved AS (INSERT INTO entry SELECT 'grant', transaction_id FROM c)
SELECT amount FROM c;
SELECT amount FROM ducto.add_credits('alice', 20);
WITH d AS (SELECT * FROM ducto.deduct_credits('alice', NULL, 25)),
     saved AS (INSERT INTO entry SELECT 'debit', transaction_id FROM d)
SELECT amount, balance_after FROM d;
SELECT * FROM lots_of('alice');

SELECT refund_transaction_id IS NOT NULL AS has_id, original_transaction_id = entry('debit') AS original,
       user_id, amount, balance_after, idempotent, error
FROM ducto.refund_credits(entry('debit'), 5, reason => 'partial outage');
SELECT * FROM lots_of('alice');
-- Named notation; 12 more: the rest of lot 2's part, then lot 1's.
SELECT user_id, amount, balance_after, error
FROM ducto.refund_credits(amount => 12, transaction_id => entry('debit'), metadata => '{"ticket": 3}');
SELECT * FROM lots_of('alice');
-- More than is left.
SELECT refund_transaction_id, original_transaction_id = entry('debit') AS original, user_id, amount,
       balance_after, idempotent, error
FROM ducto.refund_credits(entry('debit'), 8.000001);
-- NULL: all that is left.
SELECT amount, balance_after, error FROM ducto.refund_credits(entry('debit'));
SELECT * FROM lots_of('alice');
-- Nothing is left.
SELECT amount, balance_after, error FROM ducto.refund_credits(entry('debit'));
SELECT amount, balance_after, error FROM ducto.refund_credits(entry('debit'), 1);
SELECT * FROM ducto.get_balance('alice');
SELECT kind, credits(amount) AS amount, credits(balance_after) AS balance_after, reason, metadata,
       original_id = entry('debit') AS of_the_debit
FROM ducto.ledger WHERE account_id = (SELECT id FROM ducto.accounts WHERE user_id = 'alice') ORDER BY id;

-- ---- what is not refundable --------------------------------------------------------------------------

SELECT amount, balance_after, error FROM ducto.refund_credits(entry('grant'));
SELECT amount, balance_after, error
FROM ducto.refund_credits((SELECT id FROM ducto.ledger WHERE kind = 'refund' ORDER BY id LIMIT 1));
SELECT refund_transaction_id, original_transaction_id, user_id, amount, balance_after, idempotent, error
FROM ducto.refund_credits('00000000-0000-7000-8000-000000000000', 1);

-- Bad input.
SELECT label, try(sql) AS result
FROM (VALUES
  ('NULL transaction', $$SELECT error FROM ducto.refund_credits(NULL)$$),
  ('zero amount', format('SELECT error FROM ducto.refund_credits(%L, 0)', entry('debit'))),
  ('negative amount', format('SELECT error FROM ducto.refund_credits(%L, -1)', entry('debit'))),
  ('seven places', format('SELECT error FROM ducto.refund_credits(%L, 0.0000001)', entry('debit'))),
  ('infinite amount', format('SELECT error FROM ducto.refund_credits(%L, %L)', entry('debit'), 'Infinity')),
  ('long reason', format('SELECT error FROM ducto.refund_credits(%L, reason => %L)', entry('debit'), repeat('r', 1001))),
  ('empty key', format('SELECT error FROM ducto.refund_credits(%L, idempotency_key => %L)', entry('debit'), '')),
  ('array metadata', format('SELECT error FROM ducto.refund_credits(%L, metadata => %L)', entry('debit'), '[]'))
) AS t(label, sql);

-- ---- refunding a charge ------------------------------------------------------------------------------

SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 0.5"}}') AS version;
SELECT amount FROM ducto.add_credits('bob', 50);
WITH c AS (SELECT * FROM ducto.charge('bob', '{"input_tokens": 30}')),
     saved AS (INSERT INTO entry SELECT 'charge', transaction_id FROM c)
SELECT amount, balance_after FROM c;
SELECT amount, balance_after, error FROM ducto.refund_credits(entry('charge'), 5);
SELECT amount, balance_after, error FROM ducto.refund_credits(entry('charge'));
SELECT * FROM ducto.get_balance('bob');
-- A zero-cost charge has nothing to refund.
WITH c AS (SELECT * FROM ducto.charge('bob', '{"input_tokens": 0}')),
     saved AS (INSERT INTO entry SELECT 'free', transaction_id FROM c)
SELECT amount, balance_after FROM c;
SELECT amount, balance_after, error FROM ducto.refund_credits(entry('free'));

-- ---- refunds into lots that expired, and refunds of overdrafts ---------------------------------------

-- carol: 5 that expire in a second and 5 that never do; a debit of 8 takes 5 + 3.
SELECT amount FROM ducto.add_credits('carol', 5, expires_at => clock_timestamp() + interval '1 second');
SELECT amount FROM ducto.add_credits('carol', 5);
WITH d AS (SELECT * FROM ducto.deduct_credits('carol', NULL, 8)),
     saved AS (INSERT INTO entry SELECT 'carol', transaction_id FROM d)
SELECT amount, balance_after FROM d;
SELECT pg_sleep(1.1);
-- The refund puts 3 back into the lot that never expires and 5 into the expired lot: those 5 expire at once.
SELECT amount, balance_after, error FROM ducto.refund_credits(entry('carol'));
SELECT kind, credits(amount) AS amount, credits(balance_after) AS balance_after
FROM ducto.ledger WHERE account_id = (SELECT id FROM ducto.accounts WHERE user_id = 'carol') ORDER BY id;
SELECT * FROM lots_of('carol');
SELECT * FROM ducto.get_balance('carol');

-- dave, under a negative floor: a debit of 8 with 5 of credit leaves a debt of 3.
SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 1"}, "min_balance": -10}') AS version;
SELECT amount FROM ducto.add_credits('dave', 5);
WITH d AS (SELECT * FROM ducto.deduct_credits('dave', NULL, 8)),
     saved AS (INSERT INTO entry SELECT 'dave', transaction_id FROM d)
SELECT amount, balance_after FROM d;
-- The overdraft part is refunded first and pays the debt back.
SELECT amount, balance_after, error FROM ducto.refund_credits(entry('dave'), 2);
SELECT credits(balance) AS balance, credits(debt) AS debt FROM ducto.accounts WHERE user_id = 'dave';
-- A grant repays the rest of the debt; the overdraft part left to refund then comes back as a new lot.
SELECT amount, balance_after FROM ducto.add_credits('dave', 4);
SELECT amount, balance_after, error FROM ducto.refund_credits(entry('dave'));
SELECT credits(balance) AS balance, credits(debt) AS debt FROM ducto.accounts WHERE user_id = 'dave';
SELECT * FROM lots_of('dave');
SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 1"}}') AS version;

-- ---- events ------------------------------------------------------------------------------------------

SELECT type, user_id, amount, balance_after,
       data ? 'refund_transaction_id' AS has_refund_id, data ? 'original_transaction_id' AS has_original,
       data - 'refund_transaction_id' - 'original_transaction_id' AS data
FROM ducto.events WHERE type LIKE 'credits.refund%' ORDER BY id;

SELECT * FROM ducto.verify();
