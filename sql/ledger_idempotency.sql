-- sql/ledger_idempotency.sql: idempotency keys (design.md, Idempotency). One key namespace per user
-- across all operations; the same request replays the original result (balance_after included) with
-- idempotent = true and writes nothing, no event either; a different request under the key is
-- idempotency_conflict; a refused call binds nothing; the digest covers every argument, metadata included.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS ducto;
CREATE EXTENSION ducto;
RESET client_min_messages;
\pset null '(null)'

CREATE TEMP TABLE first_result (name text PRIMARY KEY, id uuid, result text);
-- remember(name, id, result): keeps a first result to compare replays with.
CREATE OR REPLACE FUNCTION remember(name text, id uuid, result text) RETURNS text LANGUAGE sql AS $$
  INSERT INTO first_result VALUES (name, id, result) RETURNING result
$$;
CREATE OR REPLACE FUNCTION first(name text) RETURNS uuid LANGUAGE sql AS $$
  SELECT f.id FROM first_result AS f WHERE f.name = first.name
$$;
-- writes(): ledger rows, holds and events so far, to show that a replay writes nothing.
CREATE OR REPLACE FUNCTION writes() RETURNS text LANGUAGE sql AS $$
  SELECT format('ledger %s, holds %s, events %s', (SELECT count(*) FROM ducto.ledger),
                (SELECT count(*) FROM ducto.holds), (SELECT count(*) FROM ducto.events))
$$;

SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 1"}}') AS version;

-- ---- add_credits -------------------------------------------------------------------------------------

SELECT remember('grant', transaction_id, format('%s %s', amount, balance_after)) AS first_call, idempotent
FROM ducto.add_credits('alice', 100, idempotency_key => 'grant-1', metadata => '{"a": 1, "b": 2}');
SELECT amount FROM ducto.add_credits('alice', 7);
SELECT writes();
-- The same request: the original result, balance_after included, and nothing written. 100 is 100.000.
-- Key order inside metadata does not matter (jsonb is canonical).
SELECT transaction_id = first('grant') AS same_id, amount, balance_after, idempotent, error
FROM ducto.add_credits('alice', 100.000, idempotency_key => 'grant-1', metadata => '{"b": 2, "a": 1}');
SELECT writes();
-- Any other argument makes it another request.
SELECT label, r.transaction_id, r.amount, r.balance_after, r.idempotent, r.error
FROM (VALUES ('amount', 101::numeric, 'adjustment', '{"a": 1, "b": 2}'::jsonb, NULL::timestamptz),
             ('source', 100, 'purchase', '{"a": 1, "b": 2}', NULL),
             ('metadata', 100, 'adjustment', '{"a": 1}', NULL),
             ('expires_at', 100, 'adjustment', '{"a": 1, "b": 2}', now() + interval '1 day')) AS t(label, a, s, m, e),
     LATERAL ducto.add_credits('alice', a, source => s, expires_at => e, idempotency_key => 'grant-1', metadata => m) AS r;
SELECT * FROM ducto.get_balance('alice');

-- ---- one namespace per user, across operations -------------------------------------------------------

SELECT label, error
FROM (VALUES ('deduct', (SELECT error FROM ducto.deduct_credits('alice', NULL, 1, idempotency_key => 'grant-1'))),
             ('reserve', (SELECT error FROM ducto.reserve_credits('alice', 1, idempotency_key => 'grant-1'))),
             ('charge', (SELECT error FROM ducto.charge('alice', '{"input_tokens": 1}', idempotency_key => 'grant-1'))),
             ('refund', (SELECT error FROM ducto.refund_credits(first('grant'), idempotency_key => 'grant-1')))
     ) AS t(label, error);
-- Another user has keys of their own.
SELECT user_id, amount, balance_after, idempotent, error
FROM ducto.add_credits('bob', 100, idempotency_key => 'grant-1', metadata => '{"a": 1, "b": 2}');
SELECT type, user_id, amount, data ->> 'error' AS error FROM ducto.events WHERE type LIKE '%failed' ORDER BY id;

-- ---- refusals bind nothing ---------------------------------------------------------------------------

SELECT amount, balance_after, idempotent, error FROM ducto.deduct_credits('carol', NULL, 5, idempotency_key => 'job-1');
SELECT amount FROM ducto.add_credits('carol', 10);
SELECT remember('job-1', transaction_id, format('%s %s', amount, balance_after)) AS first_call, idempotent, error
FROM ducto.deduct_credits('carol', NULL, 5, idempotency_key => 'job-1');
SELECT transaction_id = first('job-1') AS same_id, amount, balance_after, idempotent, error
FROM ducto.deduct_credits('carol', NULL, 5, idempotency_key => 'job-1');
SELECT transaction_id, amount, balance_after, idempotent, error
FROM ducto.deduct_credits('carol', NULL, 5, idempotency_key => 'job-1', metadata => '{"retry": true}');
SELECT * FROM ducto.get_balance('carol');

-- ---- reserve and settle ------------------------------------------------------------------------------

SELECT remember('hold', reservation_id, format('%s %s', amount, available_after)) AS first_call, idempotent
FROM ducto.reserve_credits('alice', 30, idempotency_key => 'job-2:reserve');
SELECT writes();
SELECT reservation_id = first('hold') AS same_id, amount, available_after,
       expires_at = (SELECT expires_at FROM ducto.holds WHERE id = first('hold')) AS same_expiry, idempotent, error
FROM ducto.reserve_credits('alice', 30, idempotency_key => 'job-2:reserve');
SELECT reservation_id, amount, available_after, idempotent, error
FROM ducto.reserve_credits('alice', 30, ttl => '1 hour', idempotency_key => 'job-2:reserve');
SELECT remember('settle', transaction_id, format('%s %s', amount, balance_after)) AS first_call, idempotent
FROM ducto.deduct_credits('alice', first('hold'), 12, idempotency_key => 'job-2:deduct');
SELECT writes();
-- Replayed after the settle: the settle's result, not reservation_settled.
SELECT transaction_id = first('settle') AS same_id, amount, balance_after, idempotent, error
FROM ducto.deduct_credits('alice', first('hold'), 12, idempotency_key => 'job-2:deduct');
-- The reserve too still replays its original result.
SELECT reservation_id = first('hold') AS same_id, amount, available_after, idempotent, error
FROM ducto.reserve_credits('alice', 30, idempotency_key => 'job-2:reserve');
-- The same key without the reservation is another request.
SELECT amount, balance_after, idempotent, error
FROM ducto.deduct_credits('alice', NULL, 12, idempotency_key => 'job-2:deduct');
SELECT writes();

-- ---- refunds -----------------------------------------------------------------------------------------

SELECT remember('refund', refund_transaction_id, format('%s %s', amount, balance_after)) AS first_call,
       original_transaction_id = first('settle') AS of_the_settle, idempotent
FROM ducto.refund_credits(first('settle'), 2, reason => 'late', idempotency_key => 'refund-1');
SELECT amount FROM ducto.add_credits('alice', 1);
SELECT refund_transaction_id = first('refund') AS same_id, original_transaction_id = first('settle') AS same_original,
       amount, balance_after, idempotent, error
FROM ducto.refund_credits(first('settle'), 2, reason => 'late', idempotency_key => 'refund-1');
SELECT refund_transaction_id, amount, balance_after, idempotent, error
FROM ducto.refund_credits(first('settle'), 2, reason => 'later', idempotency_key => 'refund-1');
SELECT refund_transaction_id, amount, balance_after, idempotent, error
FROM ducto.refund_credits(first('settle'), idempotency_key => 'refund-1');

-- ---- charges -----------------------------------------------------------------------------------------

SELECT remember('charge', transaction_id, format('%s %s %s', amount, balance_after, breakdown ->> 'total')) AS first_call,
       idempotent
FROM ducto.charge('alice', '{"input_tokens": 3}', idempotency_key => 'call-1');
-- New prices do not change a replay: the stored amount and breakdown come back.
SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 100"}}') AS version;
SELECT transaction_id = first('charge') AS same_id, amount, balance_after, breakdown ->> 'total' AS total,
       idempotent, error
FROM ducto.charge('alice', '{"input_tokens": 3}', idempotency_key => 'call-1');
SELECT transaction_id, amount, balance_after, breakdown, idempotent, error
FROM ducto.charge('alice', '{"input_tokens": 4}', idempotency_key => 'call-1');
SELECT writes();

-- Every replay above wrote nothing; the balance is what the first calls left.
SELECT * FROM ducto.get_balance('alice');
SELECT count(*) AS keyed_entries FROM ducto.ledger WHERE idempotency_key IS NOT NULL;
SELECT count(*) AS keyed_holds FROM ducto.holds WHERE idempotency_key IS NOT NULL;

SELECT * FROM ducto.verify();
