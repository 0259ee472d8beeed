-- sql/ledger_holds.sql: holds (reserve_credits, release_reservation, deduct_credits with a reservation):
-- settling less, exactly and more than the hold, settled at most once, refusals (not found, another
-- user's, settled, released, expired), TTL checks, hold expiry by the clock (lazy and by the sweep),
-- earmarked credit that expiry never takes, and holds under a negative floor.
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

-- Reservation ids by name, so that later statements can use them.
CREATE TEMP TABLE held (name text PRIMARY KEY, id uuid);
CREATE OR REPLACE FUNCTION hold(name text) RETURNS uuid LANGUAGE sql AS $$
  SELECT h.id FROM held AS h WHERE h.name = hold.name
$$;

-- ---- reserve -----------------------------------------------------------------------------------------

SELECT amount FROM ducto.add_credits('alice', 100);
WITH r AS (SELECT * FROM ducto.reserve_credits('alice', 30)),
     saved AS (INSERT INTO held SELECT 'a1', reservation_id FROM r)
SELECT reservation_id IS NOT NULL AS has_id, user_id, amount, available_after,
       expires_at - clock_timestamp() BETWEEN interval '9 minutes' AND interval '10 minutes' AS ten_minutes,
       idempotent, error
FROM r;
SELECT * FROM ducto.get_balance('alice');
SELECT * FROM lots_of('alice');

-- Named notation, a TTL and an operation type.
WITH r AS (SELECT * FROM ducto.reserve_credits(ttl => '1 hour', amount => 5, user_id => 'alice',
                                                operation_type => 'image', metadata => '{"job": 9}')),
     saved AS (INSERT INTO held SELECT 'a2', reservation_id FROM r)
SELECT user_id, amount, available_after,
       expires_at - clock_timestamp() BETWEEN interval '59 minutes' AND interval '1 hour' AS one_hour, error
FROM r;
-- A NULL TTL is the default; a NULL operation type is 'usage'.
WITH r AS (SELECT * FROM ducto.reserve_credits('alice', 1, operation_type => NULL, ttl => NULL)),
     saved AS (INSERT INTO held SELECT 'a0', reservation_id FROM r)
SELECT expires_at - clock_timestamp() BETWEEN interval '9 minutes' AND interval '10 minutes' AS ten_minutes
FROM r;
SELECT operation_type, state FROM ducto.holds WHERE id = hold('a0');
SELECT * FROM ducto.get_balance('alice');

-- More than available (balance minus active holds): refused.
SELECT reservation_id, user_id, amount, available_after, expires_at, idempotent, error
FROM ducto.reserve_credits('alice', 64.000001);
SELECT amount, available_after, error FROM ducto.reserve_credits('alice', 64);
SELECT user_id, amount, available_after, error FROM ducto.reserve_credits('nobody', 1);
SELECT count(*) AS accounts FROM ducto.accounts WHERE user_id = 'nobody';

-- Bad input (ttl7 could afford the holds: the checks come first).
SELECT amount FROM ducto.add_credits('ttl7', 10);
SELECT label, try(sql) AS result
FROM (VALUES
  ('NULL user', $$SELECT error FROM ducto.reserve_credits(NULL, 1)$$),
  ('NULL amount', $$SELECT error FROM ducto.reserve_credits('ttl7', NULL)$$),
  ('zero amount', $$SELECT error FROM ducto.reserve_credits('ttl7', 0)$$),
  ('zero TTL', $$SELECT error FROM ducto.reserve_credits('ttl7', 1, ttl => '0')$$),
  ('negative TTL', $$SELECT error FROM ducto.reserve_credits('ttl7', 1, ttl => '-1 minute')$$),
  ('TTL over 7 days', $$SELECT error FROM ducto.reserve_credits('ttl7', 1, ttl => '7 days 1 second')$$),
  ('TTL of a month', $$SELECT error FROM ducto.reserve_credits('ttl7', 1, ttl => '1 month')$$),
  ('TTL of 7 days', $$SELECT error FROM ducto.reserve_credits('ttl7', 1, ttl => '7 days')$$),
  ('empty operation type', $$SELECT error FROM ducto.reserve_credits('ttl7', 1, operation_type => '')$$),
  ('object-less metadata', $$SELECT error FROM ducto.reserve_credits('ttl7', 1, metadata => '1')$$),
  ('NULL reservation to release', $$SELECT error FROM ducto.release_reservation(NULL)$$)
) AS t(label, sql);
SELECT * FROM ducto.get_balance('ttl7');

-- ---- settle: less, exactly, more ---------------------------------------------------------------------

-- Less than the hold: the rest returns, silently (one credits.deducted event with the reservation).
SELECT user_id, amount, balance_after, idempotent, error FROM ducto.deduct_credits('alice', hold('a1'), 20);
SELECT * FROM ducto.get_balance('alice');
SELECT h.state, credits(h.amount) AS amount, h.settled_by = e.id AS settled_by_entry, e.kind,
       credits(e.amount) AS entry_amount, e.operation_type
FROM ducto.holds AS h JOIN ducto.ledger AS e ON e.reservation_id = h.id WHERE h.id = hold('a1');
-- Settled at most once.
SELECT user_id, amount, balance_after, error FROM ducto.deduct_credits('alice', hold('a1'), 1);
SELECT reservation_id = hold('a1') AS same_id, user_id, amount, available_after, error
FROM ducto.release_reservation(hold('a1'));

-- Exactly the hold.
SELECT amount, balance_after, error FROM ducto.deduct_credits('alice', hold('a2'), 5);
-- More than the hold: the excess must fit in available credit without the hold.
SELECT amount FROM ducto.add_credits('bob', 20);
WITH r AS (SELECT * FROM ducto.reserve_credits('bob', 10)),
     saved AS (INSERT INTO held SELECT 'b1', reservation_id FROM r)
SELECT amount, available_after, error FROM r;
SELECT amount, balance_after, error FROM ducto.deduct_credits('bob', hold('b1'), 20.000001);
SELECT * FROM ducto.get_balance('bob');
SELECT amount, balance_after, error FROM ducto.deduct_credits('bob', hold('b1'), 20);
SELECT * FROM ducto.get_balance('bob');
-- Under a positive floor the excess must also leave the floor.
SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 1"}, "min_balance": 5}') AS version;
SELECT amount FROM ducto.add_credits('carol', 20);
WITH r AS (SELECT * FROM ducto.reserve_credits('carol', 10)),
     saved AS (INSERT INTO held SELECT 'c1', reservation_id FROM r)
SELECT amount, available_after, error FROM r;
SELECT amount, balance_after, error FROM ducto.deduct_credits('carol', hold('c1'), 15.000001);
SELECT amount, balance_after, error FROM ducto.deduct_credits('carol', hold('c1'), 15);
SELECT * FROM ducto.get_balance('carol');
SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 1"}}') AS version;

-- ---- release -----------------------------------------------------------------------------------------

WITH r AS (SELECT * FROM ducto.reserve_credits('alice', 10)),
     saved AS (INSERT INTO held SELECT 'a3', reservation_id FROM r)
SELECT amount, available_after FROM r;
SELECT reservation_id = hold('a3') AS same_id, user_id, amount, available_after,
       expires_at = (SELECT expires_at FROM ducto.holds WHERE id = hold('a3')) AS same_expiry, idempotent, error
FROM ducto.release_reservation(hold('a3'));
-- Released again: the first release's result, idempotent; nothing moves.
SELECT reservation_id = hold('a3') AS same_id, user_id, amount, available_after, idempotent, error
FROM ducto.release_reservation(hold('a3'));
SELECT * FROM ducto.get_balance('alice');
-- A released hold cannot be settled.
SELECT amount, balance_after, error FROM ducto.deduct_credits('alice', hold('a3'), 1);

-- Unknown reservations, and another user's.
SELECT reservation_id, user_id, amount, available_after, expires_at, idempotent, error
FROM ducto.release_reservation('00000000-0000-7000-8000-000000000000');
SELECT amount, balance_after, error FROM ducto.deduct_credits('alice', '00000000-0000-7000-8000-000000000000', 1);
WITH r AS (SELECT * FROM ducto.reserve_credits('alice', 10)),
     saved AS (INSERT INTO held SELECT 'a4', reservation_id FROM r)
SELECT amount, available_after FROM r;
SELECT user_id, amount, balance_after, error FROM ducto.deduct_credits('bob', hold('a4'), 1);
SELECT state FROM ducto.holds WHERE id = hold('a4');
SELECT * FROM ducto.get_balance('alice');

-- ---- holds and the clock -----------------------------------------------------------------------------

-- x1: a hold that expires in a second.
SELECT amount FROM ducto.add_credits('x1', 10);
WITH r AS (SELECT * FROM ducto.reserve_credits('x1', 4, ttl => '1 second')),
     saved AS (INSERT INTO held SELECT 'x1', reservation_id FROM r)
SELECT amount, available_after FROM r;
-- x2: a hold that expires in a second, on a lot that expires in a second.
SELECT amount FROM ducto.add_credits('x2', 10, expires_at => clock_timestamp() + interval '1 second');
SELECT amount, available_after FROM ducto.reserve_credits('x2', 4, ttl => '1 second');
-- x3, x4, x5: a lot of 10 that expires in a second and 5 that never expire; a hold of 10 for an hour
-- earmarks the expiring lot, which expiry then leaves alone.
SELECT user_id, amount FROM (VALUES ('x3'), ('x4'), ('x5')) AS u(id),
       LATERAL ducto.add_credits(u.id, 10, expires_at => clock_timestamp() + interval '1 second');
SELECT user_id, amount FROM (VALUES ('x3'), ('x4'), ('x5')) AS u(id), LATERAL ducto.add_credits(u.id, 5);
WITH r AS (SELECT u.id AS name, h.* FROM (VALUES ('x3'), ('x4'), ('x5')) AS u(id),
                LATERAL ducto.reserve_credits(u.id, 10, ttl => '1 hour') AS h),
     saved AS (INSERT INTO held SELECT name, reservation_id FROM r)
SELECT user_id, amount, available_after FROM r;
SELECT lot, granted, remaining, earmarked FROM lots_of('x3');
SELECT pg_sleep(1.1);

-- A hold's state follows the clock: x1's hold is no longer reserved, and can be neither settled nor released.
SELECT * FROM ducto.get_balance('x1');
SELECT state FROM ducto.holds WHERE id = hold('x1');
SELECT amount, balance_after, error FROM ducto.deduct_credits('x1', hold('x1'), 4);
SELECT amount, available_after, idempotent, error FROM ducto.release_reservation(hold('x1'));
SELECT state FROM ducto.holds WHERE id = hold('x1');
-- x3: settling part of the hold still works on the expired lot; the unspent rest expires at once.
SELECT amount, balance_after, error FROM ducto.deduct_credits('x3', hold('x3'), 4);
SELECT kind, credits(amount) AS amount, credits(balance_after) AS balance_after
FROM ducto.ledger WHERE account_id = (SELECT id FROM ducto.accounts WHERE user_id = 'x3') ORDER BY id;
SELECT * FROM lots_of('x3');
SELECT * FROM ducto.get_balance('x3');
-- x4: released, the earmark returns into the expired lot and expires at once.
SELECT amount, available_after, error FROM ducto.release_reservation(hold('x4'));
SELECT * FROM ducto.get_balance('x4');
SELECT * FROM lots_of('x4');
-- The sweep: x2's hold and lot expire; x5's earmarked lot is left alone.
SELECT * FROM ducto.expire_credits() ORDER BY user_id;
SELECT * FROM ducto.get_balance('x2');
SELECT * FROM ducto.get_balance('x5');
SELECT * FROM lots_of('x5');
-- x5's hold can still be settled in full.
SELECT amount, balance_after, error FROM ducto.deduct_credits('x5', hold('x5'), 10);
SELECT * FROM ducto.get_balance('x5');

-- ---- a negative floor: holds beyond lot credit -------------------------------------------------------

SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 1"}, "min_balance": -10}') AS version;
SELECT amount FROM ducto.add_credits('debtor', 5);
WITH r AS (SELECT * FROM ducto.reserve_credits('debtor', 12)),
     saved AS (INSERT INTO held SELECT 'd1', reservation_id FROM r)
SELECT amount, available_after, error FROM r;
SELECT amount, available_after, error FROM ducto.reserve_credits('debtor', 3.000001);
SELECT credits(amount) AS amount, credits(allocations[2]) AS lot_part, allocations[3] AS overdraft_lot,
       credits(allocations[4]) AS overdraft_part
FROM ducto.holds WHERE id = hold('d1');
-- Settling spends lot credit first: 3 leaves no debt.
SELECT amount, balance_after, error FROM ducto.deduct_credits('debtor', hold('d1'), 3);
SELECT credits(balance) AS balance, credits(reserved) AS reserved, credits(debt) AS debt
FROM ducto.accounts WHERE user_id = 'debtor';
WITH r AS (SELECT * FROM ducto.reserve_credits('debtor', 12)),
     saved AS (INSERT INTO held SELECT 'd2', reservation_id FROM r)
SELECT amount, available_after, error FROM r;
SELECT amount, balance_after, error FROM ducto.deduct_credits('debtor', hold('d2'), 12);
SELECT credits(balance) AS balance, credits(reserved) AS reserved, credits(debt) AS debt
FROM ducto.accounts WHERE user_id = 'debtor';
-- An unknown user may open a hold in debt.
SELECT user_id, amount, available_after, error FROM ducto.reserve_credits('stranger', 2);
SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 1"}}') AS version;

-- ---- events ------------------------------------------------------------------------------------------

SELECT type, amount, balance_after, data ? 'reservation_id' AS has_reservation,
       data - 'reservation_id' - 'transaction_id' - 'expires_at' AS data
FROM ducto.events WHERE user_id IN ('alice', 'x1', 'x2') AND type <> 'credits.added' ORDER BY id;

SELECT * FROM ducto.verify();
