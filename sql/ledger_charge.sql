-- sql/ledger_charge.sql: charge, price and debit in one call: no active config (55000), bad metrics and
-- failing formulas (22023), unknown_model and insufficient_credits refusals, the floor, zero-cost
-- charges (recorded), what the ledger row keeps (model, metrics, breakdown, config version), events,
-- named notation, and the SELECT (ducto.charge(...)).* trap, which charges once per column.
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

-- ---- no active config --------------------------------------------------------------------------------

SELECT amount FROM ducto.add_credits('alice', 100);
SELECT try($$SELECT error FROM ducto.charge('alice', '{"input_tokens": 1}')$$) AS no_config,
       try($$SELECT error FROM ducto.charge('alice', '{"bogus": 1}')$$) AS no_config_bad_metrics;

-- No _default model: a usage record without a known model is unknown_model.
SELECT ducto.set_pricing($${
  "models": { "gpt-4": "input_tokens * 0.01 + output_tokens * 0.03",
              "free":  "0",
              "ratio": "input_tokens / output_tokens" },
  "tools":  { "web_search": "tool_calls * 0.5" },
  "fixed":  { "report": 20 }
}$$, 'charge tests') AS version;

-- ---- a charge ----------------------------------------------------------------------------------------

SELECT transaction_id IS NOT NULL AS has_id, user_id, amount, balance_after, breakdown, idempotent, error
FROM ducto.charge('alice', '{"model": "gpt-4", "input_tokens": 1000, "output_tokens": 500}');
SELECT * FROM ducto.get_balance('alice');
-- Named notation, tools and a fixed job.
SELECT user_id, amount, balance_after, breakdown ->> 'total' AS total, error
FROM ducto.charge(metrics => '{"model": "gpt-4", "tool_calls": [{"name": "web_search"}, {"name": "web_search"}]}',
                  metadata => '{"request": "r-1"}', user_id => 'alice');
SELECT user_id, amount, balance_after, breakdown ->> 'fixed_credits' AS fixed, error
FROM ducto.charge('alice', '{"model": "gpt-4", "fixed_job": "report"}');
-- The ledger row keeps the model, the measures as given, the breakdown and the config version.
SELECT kind, credits(amount) AS amount, model, metrics, breakdown ->> 'total' AS total, config_version, metadata
FROM ducto.ledger WHERE kind = 'charge' ORDER BY id;
SELECT kind, amount, model, breakdown ->> 'model' AS priced_as FROM ducto.transactions('alice', max_rows => 1);

-- ---- bad input: errors, nothing changes --------------------------------------------------------------

SELECT label, try(sql) AS result
FROM (VALUES
  ('NULL user', $$SELECT error FROM ducto.charge(NULL, '{"model": "gpt-4"}')$$),
  ('NULL metrics', $$SELECT error FROM ducto.charge('alice', NULL)$$),
  ('metrics not an object', $$SELECT error FROM ducto.charge('alice', '[1]')$$),
  ('unknown measure', $$SELECT error FROM ducto.charge('alice', '{"model": "gpt-4", "tokens": 5}')$$),
  ('negative count', $$SELECT error FROM ducto.charge('alice', '{"model": "gpt-4", "input_tokens": -1}')$$),
  ('fractional count', $$SELECT error FROM ducto.charge('alice', '{"model": "gpt-4", "input_tokens": 1.5}')$$),
  ('unknown fixed job', $$SELECT error FROM ducto.charge('alice', '{"model": "gpt-4", "fixed_job": "nope"}')$$),
  ('division by zero', $$SELECT error FROM ducto.charge('alice', '{"model": "ratio", "input_tokens": 1}')$$),
  ('price of 10^12', $$SELECT error FROM ducto.charge('alice', '{"model": "gpt-4", "input_tokens": 100000000000000}')$$),
  ('array metadata', $$SELECT error FROM ducto.charge('alice', '{"model": "gpt-4"}', metadata => '[]')$$),
  ('empty key', $$SELECT error FROM ducto.charge('alice', '{"model": "gpt-4"}', idempotency_key => '')$$)
) AS t(label, sql);
SELECT * FROM ducto.get_balance('alice');

-- ---- refusals ----------------------------------------------------------------------------------------

-- No formula for the model (none given, and no _default): unknown_model, after the lock.
SELECT transaction_id, user_id, amount, balance_after, breakdown, idempotent, error
FROM ducto.charge('alice', '{"model": "gpt-5", "input_tokens": 10}');
SELECT user_id, amount, error FROM ducto.charge('alice', '{"input_tokens": 10}');
SELECT user_id, amount, error FROM ducto.charge('stranger', '{"model": "gpt-5"}');
-- More than available.
SELECT transaction_id, user_id, amount, balance_after, breakdown, idempotent, error
FROM ducto.charge('alice', '{"model": "gpt-4", "input_tokens": 4000, "output_tokens": 1000}');
SELECT user_id, amount, error FROM ducto.charge('stranger', '{"model": "gpt-4", "input_tokens": 1}');
SELECT count(*) AS stranger_accounts FROM ducto.accounts WHERE user_id = 'stranger';
SELECT * FROM ducto.get_balance('alice');

-- ---- zero-cost charges are recorded ------------------------------------------------------------------

SELECT user_id, amount, balance_after, breakdown ->> 'total' AS total, error
FROM ducto.charge('alice', '{"model": "free", "input_tokens": 1000}');
-- Even for a user without credit: the account is created with the ledger row.
SELECT user_id, amount, balance_after, error FROM ducto.charge('newcomer', '{"model": "gpt-4"}');
SELECT * FROM ducto.get_balance('newcomer');
SELECT kind, amount, balance_after, model FROM ducto.transactions('newcomer');

-- ---- the floor ---------------------------------------------------------------------------------------

SELECT ducto.set_pricing($${
  "models": { "gpt-4": "input_tokens * 0.01 + output_tokens * 0.03", "free": "0" },
  "min_balance": 50
}$$) AS version;
SELECT amount FROM ducto.add_credits('carol', 60);
SELECT amount, balance_after, error FROM ducto.charge('carol', '{"model": "gpt-4", "input_tokens": 1001}');
SELECT amount, balance_after, error FROM ducto.charge('carol', '{"model": "gpt-4", "input_tokens": 1000}');
SELECT amount, balance_after, error FROM ducto.charge('carol', '{"model": "gpt-4", "input_tokens": 1}');
-- A free charge moves nothing: the floor does not refuse it.
SELECT amount, balance_after, error FROM ducto.charge('carol', '{"model": "free"}');
SELECT config_version, count(*) FROM ducto.ledger WHERE kind = 'charge' GROUP BY config_version ORDER BY 1;

-- ---- events ------------------------------------------------------------------------------------------

SELECT type, user_id, amount, balance_after, data ? 'transaction_id' AS has_transaction_id,
       data -> 'breakdown' ->> 'total' AS breakdown_total, data - 'transaction_id' - 'breakdown' AS data
FROM ducto.events WHERE type LIKE 'credits.deduct%' ORDER BY id;

-- ---- SELECT (ducto.charge(...)).* charges once per column ---------------------------------------------

SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 1"}}') AS version;
SELECT amount FROM ducto.add_credits('trap', 100);
-- The right way: one charge.
SELECT amount, balance_after FROM ducto.charge('trap', '{"input_tokens": 1}');
SELECT balance FROM ducto.get_balance('trap');
-- The trap: Postgres evaluates the function once per column it expands, so this charges twice, and the
-- (...).* form below once for each of the eight columns of ducto.charge_result.
SELECT (ducto.charge('trap', '{"input_tokens": 1}')).amount IS NOT NULL AS charged,
       (ducto.charge('trap', '{"input_tokens": 1}')).error IS NULL AS no_error;
SELECT balance FROM ducto.get_balance('trap');
SELECT user_id, amount, balance_after, idempotent, error
FROM (SELECT (ducto.charge('trap', '{"input_tokens": 1}')).*) AS t;
SELECT balance FROM ducto.get_balance('trap');
SELECT count(*) AS charges FROM ducto.transactions('trap') WHERE kind = 'charge';

-- ---- search_path cannot redirect the functions' SQL --------------------------------------------------

CREATE SCHEMA evil;
CREATE FUNCTION evil.text_eq(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_eq);
SET search_path = evil, pg_catalog;
SELECT user_id, amount, balance_after, error FROM ducto.charge('trap', '{"input_tokens": 1}');
SELECT user_id, balance FROM ducto.get_balance('carol');
RESET search_path;
DROP SCHEMA evil CASCADE;

SELECT * FROM ducto.verify();
