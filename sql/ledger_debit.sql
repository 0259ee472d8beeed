-- sql/ledger_debit.sql: direct debits (deduct_credits without a reservation), the floor (min_balance,
-- negative floors and debt), the order in which lots are consumed, and expiry: lazy (on the next
-- operation, even a refused one), by the sweep (expire_credits), and as get_balance sees the clock.
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

-- credits(micros): a stored amount in credits.
CREATE OR REPLACE FUNCTION credits(micros bigint) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
  SELECT round(micros / 1000000.0, 6)
$$;

-- lots_of(user): the user's lots in creation order, in credits.
CREATE OR REPLACE FUNCTION lots_of(who text)
RETURNS TABLE (lot bigint, granted numeric, remaining numeric, earmarked numeric, expiry text)
LANGUAGE sql AS $$
  SELECT row_number() OVER (ORDER BY l.id), credits(l.granted), credits(l.remaining), credits(l.earmarked),
         CASE WHEN l.expires_at IS NULL THEN 'never'
              WHEN l.expires_at <= clock_timestamp() THEN 'expired' ELSE 'later' END
  FROM ducto.lots AS l JOIN ducto.accounts AS a ON a.id = l.account_id
  WHERE a.user_id = who ORDER BY l.id
$$;

-- allocations_of(user): each ledger entry's allocations as (lot number, credits) pairs, oldest entry
-- first; lot 0 is the overdraft part.
CREATE OR REPLACE FUNCTION allocations_of(who text)
RETURNS TABLE (kind text, amount numeric, allocations text)
LANGUAGE sql AS $$
  WITH numbered AS (
    SELECT l.id, row_number() OVER (ORDER BY l.id) AS lot
    FROM ducto.lots AS l JOIN ducto.accounts AS a ON a.id = l.account_id WHERE a.user_id = who)
  SELECT e.kind, credits(e.amount),
         (SELECT string_agg(format('lot %s: %s', coalesce(n.lot, 0), credits(e.allocations[i + 1])), ', '
                            ORDER BY i)
          FROM generate_subscripts(e.allocations, 1) AS i LEFT JOIN numbered AS n ON n.id = e.allocations[i]
          WHERE i % 2 = 1)
  FROM ducto.ledger AS e JOIN ducto.accounts AS a ON a.id = e.account_id
  WHERE a.user_id = who ORDER BY e.id
$$;

-- ---- a direct debit ----------------------------------------------------------------------------------

SELECT amount, balance_after FROM ducto.add_credits('alice', 100);
SELECT transaction_id IS NOT NULL AS has_id, user_id, amount, balance_after, idempotent, error
FROM ducto.deduct_credits('alice', NULL, 30);
SELECT * FROM ducto.get_balance('alice');
-- Named notation.
SELECT user_id, amount, balance_after, error
FROM ducto.deduct_credits(amount => 0.000001, reservation_id => NULL, user_id => 'alice', metadata => '{"job": 1}');

-- More than available: refused, nothing changes, a failure event is written.
SELECT transaction_id, user_id, amount, balance_after, idempotent, error
FROM ducto.deduct_credits('alice', NULL, 70);
SELECT * FROM ducto.get_balance('alice');
SELECT type, user_id, amount, balance_after, data ? 'transaction_id' AS has_transaction_id,
       data - 'transaction_id' AS data
FROM ducto.events WHERE type <> 'credits.added' ORDER BY id;

-- An unknown user has no credit: refused, and no account is created.
SELECT transaction_id, user_id, amount, balance_after, idempotent, error
FROM ducto.deduct_credits('nobody', NULL, 1);
SELECT user_id, amount, balance_after, error
FROM ducto.deduct_credits('nobody', '00000000-0000-7000-8000-000000000000', 1);
SELECT count(*) AS accounts FROM ducto.accounts WHERE user_id = 'nobody';

-- Bad input raises before anything is locked or written.
SELECT try($$SELECT error FROM ducto.deduct_credits(NULL, NULL, 1)$$) AS null_user,
       try($$SELECT error FROM ducto.deduct_credits('alice', NULL, NULL)$$) AS null_amount,
       try($$SELECT error FROM ducto.deduct_credits('alice', NULL, 0)$$) AS zero,
       try($$SELECT error FROM ducto.deduct_credits('alice', NULL, -5)$$) AS negative;
SELECT try($$SELECT error FROM ducto.deduct_credits('alice', NULL, 1e12)$$) AS too_large,
       try($$SELECT error FROM ducto.deduct_credits('alice', NULL, 0.1234567)$$) AS seven_places,
       try($$SELECT error FROM ducto.deduct_credits('alice', NULL, 'NaN')$$) AS nan,
       try($$SELECT error FROM ducto.deduct_credits('alice', NULL, 1, metadata => '[]')$$) AS array_metadata;

-- ---- consumption order: soonest expiry first, then oldest; never-expiring lots last -------------------

SELECT amount FROM ducto.add_credits('lots', 10);
SELECT amount FROM ducto.add_credits('lots', 10, expires_at => clock_timestamp() + interval '2 days');
SELECT amount FROM ducto.add_credits('lots', 10, expires_at => clock_timestamp() + interval '1 day');
SELECT amount FROM ducto.add_credits('lots', 10);
SELECT amount, balance_after FROM ducto.deduct_credits('lots', NULL, 15);
SELECT * FROM lots_of('lots');
SELECT amount, balance_after FROM ducto.deduct_credits('lots', NULL, 10);
SELECT amount, balance_after FROM ducto.deduct_credits('lots', NULL, 12);
SELECT * FROM lots_of('lots');
SELECT * FROM allocations_of('lots');

-- ---- the floor: the active config's min_balance ------------------------------------------------------

-- A positive floor keeps credit back.
SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 1"}, "min_balance": 5}') AS version;
SELECT amount FROM ducto.add_credits('floor', 30);
SELECT amount, balance_after, error FROM ducto.deduct_credits('floor', NULL, 25.000001);
SELECT amount, balance_after, error FROM ducto.deduct_credits('floor', NULL, 25);
SELECT amount, balance_after, error FROM ducto.deduct_credits('floor', NULL, 0.000001);

-- A negative floor allows an overdraft: the part no lot covers is the account's debt.
SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 1"}, "min_balance": -10}') AS version;
SELECT amount, balance_after, error FROM ducto.deduct_credits('floor', NULL, 15);
SELECT amount, balance_after, error FROM ducto.deduct_credits('floor', NULL, 0.000001);
SELECT credits(balance) AS balance, credits(debt) AS debt FROM ducto.accounts WHERE user_id = 'floor';
SELECT * FROM lots_of('floor');
-- A grant first repays the debt; the rest stays in its lot.
SELECT amount, balance_after FROM ducto.add_credits('floor', 4);
SELECT amount, balance_after FROM ducto.add_credits('floor', 20);
SELECT credits(balance) AS balance, credits(debt) AS debt FROM ducto.accounts WHERE user_id = 'floor';
SELECT * FROM lots_of('floor');
SELECT * FROM allocations_of('floor');
-- With a negative floor, a debit may open an account in debt.
SELECT user_id, amount, balance_after, error FROM ducto.deduct_credits('newcomer', NULL, 3);
SELECT * FROM ducto.get_balance('newcomer');
SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 1"}}') AS version;

-- ---- expiry ------------------------------------------------------------------------------------------

-- Three users with 5 credits that expire in a second; two of them also hold 10 that never expire.
SELECT user_id, amount FROM ducto.add_credits('e1', 5, expires_at => clock_timestamp() + interval '1 second');
SELECT user_id, amount FROM ducto.add_credits('e1', 10);
SELECT user_id, amount FROM ducto.add_credits('e2', 5, expires_at => clock_timestamp() + interval '1 second');
SELECT user_id, amount FROM ducto.add_credits('e2', 10);
SELECT user_id, amount FROM ducto.add_credits('e3', 5, expires_at => clock_timestamp() + interval '1 second');
SELECT pg_sleep(1.1);

-- get_balance shows the clock's view although nothing was posted yet.
SELECT * FROM ducto.get_balance('e1');
SELECT credits(balance) AS stored_balance FROM ducto.accounts WHERE user_id = 'e1';

-- The sweep, one account at a time (the earliest due first).
SELECT * FROM ducto.expire_credits(1);
SELECT * FROM allocations_of('e1');
SELECT * FROM lots_of('e1');

-- Lazy expiry: e2's next debit posts the expiry first, then takes from the lot that never expires.
SELECT amount, balance_after, error FROM ducto.deduct_credits('e2', NULL, 3);
SELECT * FROM allocations_of('e2');
-- Due expiry is posted even when the call is then refused.
SELECT amount, balance_after, error FROM ducto.deduct_credits('e3', NULL, 1);
SELECT * FROM allocations_of('e3');
SELECT * FROM ducto.get_balance('e3');
-- Nothing is left to sweep.
SELECT * FROM ducto.expire_credits();
SELECT type, user_id, amount, balance_after, data ? 'transaction_id' AS has_transaction_id,
       data - 'transaction_id' AS data
FROM ducto.events WHERE type = 'credits.expired' ORDER BY id;

SELECT try($$SELECT count(*) FROM ducto.expire_credits(0)$$) AS zero_users,
       try($$SELECT count(*) FROM ducto.expire_credits(NULL)$$) AS null_users;

SELECT * FROM ducto.verify();
