-- sql/policies_teams.sql: charge_team: debits the team, attributes the spend to the member (ledger
-- member_user_id, event data), enforces the member's monthly spend cap (member_cap_reached), refuses
-- non-members (not_a_member), shares the team's idempotency key space; personal operations on a team
-- account are refused (22023); refunds of a team charge lower the member's spend.
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

SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 0.001"}, "low_balance_thresholds": [50]}') AS version;
SELECT ducto.create_team('acme', 'Acme Inc');
SELECT amount FROM ducto.add_credits('acme', 100);
SELECT ducto.add_team_member('acme', 'bob', 'member', 10);
SELECT ducto.add_team_member('acme', 'carol', 'admin');
SELECT amount FROM ducto.add_credits('bob', 5);

-- A member's charge debits the team, not the member.
SELECT user_id, amount, balance_after, breakdown->>'total' AS total, idempotent, error, allowance_used
  FROM ducto.charge_team('acme', 'bob', '{"input_tokens": 4000}', 'job-1', '{"job": 1}');
SELECT user_id, balance FROM ducto.get_balance('acme') UNION ALL SELECT user_id, balance FROM ducto.get_balance('bob');
SELECT l.kind, l.amount, l.member_user_id, l.idempotency_key FROM ducto.ledger AS l
  JOIN ducto.accounts AS a ON a.id = l.account_id WHERE a.user_id = 'acme' ORDER BY l.id;
SELECT type, user_id, amount, data - 'transaction_id' - 'breakdown' AS data FROM ducto.events
 WHERE type = 'credits.deducted' ORDER BY id;
-- Replay in the team's key space; the same key for another member is a different request.
SELECT amount, balance_after, idempotent, error FROM ducto.charge_team('acme', 'bob', '{"input_tokens": 4000}', 'job-1', '{"job": 1}');
SELECT amount, idempotent, error FROM ducto.charge_team('acme', 'carol', '{"input_tokens": 4000}', 'job-1', '{"job": 1}');
-- The member cap: 4 spent of 10; 7 more is refused, 6 more is exactly the cap.
SELECT amount, balance_after, error FROM ducto.charge_team('acme', 'bob', '{"input_tokens": 7000}');
SELECT amount, balance_after, error FROM ducto.charge_team('acme', 'bob', '{"input_tokens": 6000}');
-- carol has no cap.
SELECT amount, balance_after, error FROM ducto.charge_team('acme', 'carol', '{"input_tokens": 30000}');
-- Non-members, removed members.
SELECT user_id, amount, error FROM ducto.charge_team('acme', 'mallory', '{"input_tokens": 1}');
SELECT ducto.remove_team_member('acme', 'carol');
SELECT amount, error FROM ducto.charge_team('acme', 'carol', '{"input_tokens": 1}');
SELECT type, user_id, amount, data FROM ducto.events WHERE type IN ('credits.deduct_failed', 'credits.low_balance')
 ORDER BY id;
-- A refund of bob's charge gives the team its credits back and bob room under his cap.
SELECT amount FROM ducto.refund_credits((SELECT l.id FROM ducto.ledger AS l WHERE l.member_user_id = 'bob'
                                          ORDER BY l.id LIMIT 1));
SELECT amount, error FROM ducto.charge_team('acme', 'bob', '{"input_tokens": 4000}');
SELECT amount, error FROM ducto.charge_team('acme', 'bob', '{"input_tokens": 1}');
-- Errors.
SELECT try($$SELECT error FROM ducto.charge_team('nope', 'bob', '{"input_tokens": 1}')$$) AS unknown_team,
       try($$SELECT error FROM ducto.charge_team('bob', 'bob', '{"input_tokens": 1}')$$) AS not_a_team,
       try($$SELECT error FROM ducto.charge_team(NULL, 'bob', '{"input_tokens": 1}')$$) AS null_team,
       try($$SELECT error FROM ducto.charge_team('acme', NULL, '{"input_tokens": 1}')$$) AS null_user,
       try($$SELECT error FROM ducto.charge_team('acme', 'bob', NULL)$$) AS null_metrics,
       try($$SELECT error FROM ducto.charge_team('acme', 'bob', '{"bogus": 1}')$$) AS bad_metrics;
-- Personal operations on a team account.
SELECT try($$SELECT error FROM ducto.charge('acme', '{"input_tokens": 1}')$$) AS charge,
       try($$SELECT error FROM ducto.deduct_credits('acme', NULL, 1)$$) AS deduct,
       try($$SELECT error FROM ducto.reserve_credits('acme', 1)$$) AS reserve;
SELECT count(*) AS problems FROM ducto.verify();
SELECT has_function_privilege('public', 'ducto.charge_team(text, text, jsonb, text, jsonb)', 'EXECUTE') AS public_execute;
