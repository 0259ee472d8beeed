-- sql/policies_charge.sql: the policies inside charge and deduct_credits: the free allowance (spent
-- before the balance, never by a rejected, rolled-back or replayed charge), plan rate overrides,
-- low-balance alerts (edge-triggered, lowest threshold crossed), and spend caps (deny, warn, notify,
-- warn_at, model caps, refunds), with their events.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS ducto;
CREATE EXTENSION ducto;
RESET client_min_messages;
\pset null '(null)'

SELECT ducto.set_pricing($${
  "models": { "_default": "input_tokens * 0.001", "gpt-4": "input_tokens * 0.01" },
  "low_balance_thresholds": [100, 20],
  "plans": { "pro": { "name": "Pro", "free_allowance": 5,
                      "rate_overrides": { "gpt-4": "input_tokens * 0.008" } } }
}$$) AS version;

-- Only the events of a user since the last look.
CREATE TABLE seen (id bigint);
INSERT INTO seen VALUES (0);
CREATE OR REPLACE FUNCTION new_events(who text)
RETURNS TABLE (type text, amount numeric, balance_after numeric, data jsonb) LANGUAGE plpgsql AS $$
DECLARE
  last bigint := (SELECT s.id FROM seen AS s);
BEGIN
  UPDATE seen SET id = (SELECT coalesce(max(e.id), 0) FROM ducto.events AS e);
  RETURN QUERY SELECT e.type, e.amount, e.balance_after,
                      e.data - 'transaction_id' - 'breakdown' - 'original_transaction_id' - 'refund_transaction_id'
                 FROM ducto.events AS e WHERE e.id > last AND e.user_id = who ORDER BY e.id;
END $$;

-- ---- allowance ---------------------------------------------------------------------------------------

SELECT amount FROM ducto.add_credits('alice', 200);
SELECT ducto.set_user_plan('alice', 'pro') ->> 'plan' AS plan;
SELECT * FROM new_events('alice');
-- Covered in full: a zero-amount debit, recorded with its event.
SELECT user_id, amount, balance_after, idempotent, error, allowance_used
  FROM ducto.charge('alice', '{"input_tokens": 3000}', 'a-1');
SELECT * FROM ducto.get_balance('alice');
-- Partly covered: the rest of the allowance, then the balance.
SELECT amount, balance_after, allowance_used FROM ducto.charge('alice', '{"input_tokens": 4000}');
SELECT ducto.get_user_plan('alice') - 'window_start' - 'window_end' - 'features' AS plan;
SELECT * FROM new_events('alice');
-- Replays return the stored allowance_used and consume nothing.
SELECT amount, balance_after, idempotent, allowance_used FROM ducto.charge('alice', '{"input_tokens": 3000}', 'a-1');
-- The plan's rate override prices gpt-4 at 0.008 instead of 0.01.
SELECT amount, breakdown->>'total' AS total, allowance_used FROM ducto.charge('alice', '{"model": "gpt-4", "input_tokens": 1000}');
SELECT ducto.price('{"model": "gpt-4", "input_tokens": 1000}', plan => 'pro') ->> 'total' AS price_with_plan;
SELECT kind, amount, allowance_used FROM ducto.ledger ORDER BY id;

-- A rejected charge and a rolled-back charge consume no allowance.
SELECT ducto.set_user_plan('bob', 'pro') ->> 'plan' AS plan;
SELECT amount, balance_after, allowance_used, error FROM ducto.charge('bob', '{"input_tokens": 6000}');
SELECT allowance_remaining FROM ducto.get_balance('bob');
BEGIN;
SELECT amount, allowance_used FROM ducto.charge('bob', '{"input_tokens": 2000}');
ROLLBACK;
SELECT allowance_remaining FROM ducto.get_balance('bob');
SELECT amount, balance_after, allowance_used, error FROM ducto.charge('bob', '{"input_tokens": 5000}');
SELECT allowance_remaining FROM ducto.get_balance('bob');
-- Refunds return only what was debited: nothing for an allowance-covered charge.
SELECT error FROM ducto.refund_credits((SELECT l.id FROM ducto.ledger AS l JOIN ducto.accounts AS a
                                          ON a.id = l.account_id WHERE a.user_id = 'bob'));
-- No plan: allowance_used 0.
SELECT amount, allowance_used FROM ducto.charge('alice-free', '{"input_tokens": 0}');
SELECT * FROM ducto.get_balance('nobody');

-- ---- low balance -------------------------------------------------------------------------------------

SELECT amount FROM ducto.add_credits('carol', 150);
SELECT * FROM new_events('carol');
SELECT balance_after FROM ducto.charge('carol', '{"input_tokens": 60000}');
SELECT balance_after FROM ducto.charge('carol', '{"input_tokens": 5000}');
SELECT * FROM new_events('carol');
-- From above both thresholds to below both: one event, for the lowest.
SELECT amount FROM ducto.add_credits('carol', 100);
SELECT balance_after FROM ducto.charge('carol', '{"input_tokens": 170000}');
SELECT * FROM new_events('carol');
-- Still below: nothing; a deduction counts like a charge.
SELECT balance_after FROM ducto.deduct_credits('carol', NULL, 1);
SELECT * FROM new_events('carol');
-- Re-armed once the balance rose above it.
SELECT amount FROM ducto.add_credits('carol', 10);
SELECT balance_after FROM ducto.deduct_credits('carol', NULL, 10);
SELECT * FROM new_events('carol');
-- Per-user thresholds replace the config's; NULL goes back to them.
SELECT ducto.set_low_balance_thresholds('carol', ARRAY[10]);
SELECT balance_after FROM ducto.deduct_credits('carol', NULL, 5);
SELECT * FROM new_events('carol');
SELECT amount FROM ducto.add_credits('carol', 100);
SELECT ducto.set_low_balance_thresholds('carol', NULL);
SELECT balance_after FROM ducto.charge('carol', '{"input_tokens": 20000}', 'c-1');
SELECT * FROM new_events('carol');
-- Replays emit nothing.
SELECT balance_after, idempotent FROM ducto.charge('carol', '{"input_tokens": 20000}', 'c-1');
SELECT * FROM new_events('carol');

-- ---- spend caps --------------------------------------------------------------------------------------

SELECT amount FROM ducto.add_credits('dave', 1000);
SELECT ducto.set_spend_cap('dave', 'monthly', 10);
SELECT amount, error FROM ducto.charge('dave', '{"input_tokens": 8000}');
SELECT * FROM new_events('dave');
-- Over the deny cap: refused, nothing debited, a cap_reached event.
SELECT amount, balance_after, error FROM ducto.charge('dave', '{"input_tokens": 3000}');
SELECT * FROM new_events('dave');
SELECT balance_after, error FROM ducto.deduct_credits('dave', NULL, 2.5);
-- Up to the cap exactly is allowed.
SELECT balance_after, error FROM ducto.deduct_credits('dave', NULL, 2);
SELECT period, cap, spent FROM ducto.spend_caps('dave');
-- Spend is net of refunds.
SELECT amount FROM ducto.refund_credits((SELECT l.id FROM ducto.ledger AS l JOIN ducto.accounts AS a
                                           ON a.id = l.account_id WHERE a.user_id = 'dave' AND l.kind = 'charge'), 3);
SELECT period, cap, spent FROM ducto.spend_caps('dave');
SELECT * FROM new_events('dave');
-- A model cap counts only that model's charges; warn lets it through and warns once when crossed.
SELECT ducto.remove_spend_cap('dave', 'monthly');
SELECT ducto.set_spend_cap('dave', 'daily', 1, 'warn', 'gpt-4', 0.5);
SELECT amount, error FROM ducto.charge('dave', '{"input_tokens": 5000}');
SELECT amount, error FROM ducto.charge('dave', '{"model": "gpt-4", "input_tokens": 60}');
SELECT amount, error FROM ducto.charge('dave', '{"model": "gpt-4", "input_tokens": 50}');
SELECT amount, error FROM ducto.charge('dave', '{"model": "gpt-4", "input_tokens": 50}');
SELECT period, model, cap, spent FROM ducto.spend_caps('dave');
SELECT * FROM new_events('dave');
-- notify behaves like warn; a cap set mid-window counts what was already spent in it.
SELECT ducto.set_spend_cap('dave', 'daily', 70, 'notify');
SELECT period, model, cap, spent FROM ducto.spend_caps('dave') WHERE model IS NULL;
SELECT amount, error FROM ducto.charge('dave', '{"input_tokens": 60000}');
SELECT * FROM new_events('dave');
SELECT count(*) AS problems FROM ducto.verify();
