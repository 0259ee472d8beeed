-- sql/pricing.sql: pricing configs in the database: validate_pricing, set_pricing, activate_pricing,
-- pricing_history, get_pricing, the active-config cache within one session, the table's guarantees,
-- function attributes and privileges. Errors show their SQLSTATE through try().
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

-- ---- before any config is published ------------------------------------------------------------------

SELECT try($$SELECT ducto.price('{"input_tokens": 1}')$$) AS price_without_config,
       ducto.get_pricing() AS active_config,
       try($$SELECT ducto.get_pricing(1)$$) AS version_1,
       try($$SELECT ducto.activate_pricing(1)$$) AS activate_1;
SELECT count(*) AS versions FROM ducto.pricing_history();

-- ---- validate_pricing --------------------------------------------------------------------------------

-- The design's example config is valid: no rows.
SELECT count(*) AS problems FROM ducto.validate_pricing($${
  "version": 1,
  "models":  { "_default": "input_tokens * 0.001 + output_tokens * 0.003",
               "gpt-4":    "input_tokens * 0.01 + output_tokens * 0.03" },
  "tools":   { "_default": "tool_calls * 0", "web_search": "tool_calls * 0.5" },
  "search":  { "costs": "search_queries * 0.5 + search_results * 0.05" },
  "cache":   { "discount": "0 - cache_read_tokens * 0.0045" },
  "fixed":   { "roadmap_gen": 20 },
  "min_balance": 0,
  "low_balance_thresholds": [100, 20],
  "measures": ["images"],
  "plans": { "pro": { "name": "Pro", "free_allowance": 5000,
                      "rate_overrides": { "gpt-4": "input_tokens * 0.008" },
                      "features": { "priority_queue": true } } }
}$$);
SELECT count(*) AS problems FROM ducto.validate_pricing(config => '{}');

-- Every problem, each with its path (dotted; a key with a dot is quoted), in jsonb's key order.
SELECT problem FROM ducto.validate_pricing($${
  "version": 2,
  "modles": {},
  "models": { "_default": "inputtokens * 0.001", "gpt-4.1": "input_tokens *", "o1": 5 },
  "tools": { "web_search": "tool_calls ** 2" },
  "search": { "cost": "1" },
  "cache": "0",
  "fixed": { "job": -1, "other": "5", "third": 1.0000001 },
  "min_balance": "0",
  "low_balance_thresholds": [100, "20"],
  "measures": ["images", "input_tokens", "bad name", "images"],
  "plans": { "pro": { "nam": "Pro", "free_allowance": 1e12,
                      "rate_overrides": { "gpt-4": "images * unknown" } } }
}$$) AS problem;

-- A config must be a JSON object.
SELECT config, (SELECT string_agg(p, '; ') FROM ducto.validate_pricing(config) AS p) AS problems
FROM (VALUES ('[]'::jsonb), ('"models"'), ('1'), ('null'), ('{"models": []}')) AS t(config);

SELECT try($$SELECT ducto.validate_pricing(NULL)$$) AS null_config;

-- ---- set_pricing -------------------------------------------------------------------------------------

-- An invalid config raises 22023 listing every problem, and stores nothing.
SELECT try($$SELECT ducto.set_pricing('{"models": {"_default": "input_tokens +"}, "extra": 1}')$$) AS invalid;
SELECT try($$SELECT ducto.set_pricing(NULL)$$) AS null_config,
       try($$SELECT ducto.set_pricing(NULL, 'label')$$) AS null_config_with_label;
SELECT count(*) AS versions FROM ducto.pricing_history();

SELECT ducto.set_pricing(config => '{"models": {"_default": "input_tokens * 0.001"}}', label => 'v1') AS v1;
SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 0.002"}}', 'v2') AS v2;
SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 0.003"}}') AS v3;

-- Newest first; exactly one active; created_at filled in, in publishing order.
SELECT version, label, active FROM ducto.pricing_history();
SELECT bool_and(created_at IS NOT NULL) AS stamped,
       array_agg(version ORDER BY created_at, version) = '{1,2,3}' AS in_order
FROM ducto.pricing_history();

SELECT ducto.get_pricing() AS active, ducto.get_pricing(1) AS v1, ducto.get_pricing(version => 2) AS v2;
SELECT try($$SELECT ducto.get_pricing(4)$$) AS unknown, try($$SELECT ducto.get_pricing(-1)$$) AS negative;

SELECT ducto.price('{"input_tokens": 1000}') ->> 'total' AS priced_with_v3;

-- ---- activate_pricing: roll back and forward ---------------------------------------------------------

SELECT ducto.activate_pricing(1) AS rolled_back_to;
SELECT version, label, active FROM ducto.pricing_history();
SELECT ducto.price('{"input_tokens": 1000}') ->> 'total' AS priced_with_v1,
       ducto.get_pricing() AS active;
SELECT ducto.activate_pricing(version => 1) AS activate_active_again;
SELECT try($$SELECT ducto.activate_pricing(99)$$) AS unknown,
       try($$SELECT ducto.activate_pricing(NULL)$$) AS null_version;
SELECT version, active FROM ducto.pricing_history() WHERE active;
SELECT ducto.activate_pricing(3) AS rolled_forward_to,
       ducto.price('{"input_tokens": 1000}') ->> 'total' AS priced_with_v3;

-- ---- transactions and the per-session cache ------------------------------------------------------------

-- Inside a transaction the new version is used at once; after a rollback the cached config is dropped and
-- the old one comes back.
BEGIN;
SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 0.004"}}', 'rolled back') AS v4;
SELECT ducto.price('{"input_tokens": 1000}') ->> 'total' AS priced_with_v4;
ROLLBACK;
SELECT ducto.price('{"input_tokens": 1000}') ->> 'total' AS priced_with_v3_again;
SELECT version, label, active FROM ducto.pricing_history();

-- The rolled-back number is used again, for another document: compiled configs are cached by content,
-- never by version number, so the new version 4 prices with its own formula.
SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 0.005"}}', 'v4') AS v4;
SELECT ducto.price('{"input_tokens": 1000}') ->> 'total' AS priced_with_new_v4;

-- Publishing and pricing in one statement: the new version is visible to the rest of the statement.
SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 0.006"}}', 'v5') AS v5,
       ducto.price('{"input_tokens": 1000}') ->> 'total' AS priced_with_v5;

-- A savepoint rolled back restores the previous active version too.
BEGIN;
SAVEPOINT s;
SELECT ducto.activate_pricing(2) AS activated;
SELECT ducto.price('{"input_tokens": 1000}') ->> 'total' AS priced_with_v2;
ROLLBACK TO SAVEPOINT s;
SELECT ducto.price('{"input_tokens": 1000}') ->> 'total' AS priced_with_v5_again;
COMMIT;

-- Postgres errors raised inside the glue (here by its first UPDATE) reach the client unchanged, SQLSTATE
-- included; reads still work in a read-only transaction.
BEGIN READ ONLY;
SELECT try($$SELECT ducto.set_pricing('{"models": {"_default": "1"}}')$$) AS set_pricing,
       try($$SELECT ducto.activate_pricing(1)$$) AS activate_pricing;
COMMIT;
BEGIN READ ONLY;
SELECT ducto.price('{"input_tokens": 1000}') ->> 'total' AS price, ducto.get_pricing(1) AS get_pricing;
COMMIT;

-- ---- the table's guarantees ------------------------------------------------------------------------------

-- One active version at most, even for a superuser writing the table directly.
SELECT try($$INSERT INTO ducto.pricing_configs (version, config, active) VALUES (100, '{}', true) RETURNING version$$)
  AS second_active;
-- The table is part of pg_dump's data (pg_extension_config_dump).
SELECT 'ducto.pricing_configs'::regclass = ANY (extconfig) AS dumped FROM pg_extension WHERE extname = 'ducto';

-- ---- function attributes ------------------------------------------------------------------------------

SELECT p.oid::regprocedure AS function, p.provolatile AS volatility, p.proparallel AS parallel,
       p.proisstrict AS strict, p.prosecdef AS security_definer,
       obj_description(p.oid, 'pg_proc') IS NOT NULL AS commented
FROM pg_proc AS p
WHERE p.pronamespace = 'ducto'::regnamespace
  AND p.proname IN ('eval', 'validate_pricing', 'set_pricing', 'activate_pricing', 'pricing_history',
                    'get_pricing', 'price')
ORDER BY p.proname;
-- Every function of the extension has a comment.
SELECT count(*) AS uncommented FROM pg_proc AS p
WHERE p.pronamespace = 'ducto'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL;

-- ---- privileges ---------------------------------------------------------------------------------------

-- PUBLIC may price and read configs, but not publish nor touch the table. The glue reads and writes the
-- table as the extension owner, so the functions work without any grant on it.
CREATE ROLE regress_ducto_app;
SET ROLE regress_ducto_app;
SELECT try($$SELECT ducto.set_pricing('{}')$$) AS set_pricing,
       try($$SELECT ducto.activate_pricing(1)$$) AS activate_pricing,
       try($$SELECT count(*) FROM ducto.pricing_configs$$) AS read_table,
       try($$UPDATE ducto.pricing_configs SET active = false RETURNING 1$$) AS write_table;
SELECT ducto.price('{"input_tokens": 1000}') ->> 'total' AS price,
       ducto.get_pricing() AS get_pricing,
       ducto.eval('1 + 1') AS eval,
       (SELECT count(*) FROM ducto.pricing_history()) AS history,
       (SELECT count(*) FROM ducto.validate_pricing('{}')) AS validate;
RESET ROLE;

-- One GRANT lets an application role publish; the rows are still written as the owner.
GRANT EXECUTE ON FUNCTION ducto.set_pricing(jsonb, text), ducto.activate_pricing(integer) TO regress_ducto_app;
SET ROLE regress_ducto_app;
SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 0.007"}}', 'by the app') AS v6;
SELECT ducto.activate_pricing(5) AS back_to_v5;
SELECT try($$SELECT count(*) FROM ducto.pricing_configs$$) AS read_table_still_denied;
RESET ROLE;
SELECT version, label, active FROM ducto.pricing_history() WHERE version >= 5;
DROP OWNED BY regress_ducto_app;
DROP ROLE regress_ducto_app;

-- The caller's search_path cannot redirect the glue's statements: an operator = on integers that
-- matches nothing, found first on the path, changes nothing.
CREATE SCHEMA regress_evil;
CREATE FUNCTION regress_evil.never(integer, integer) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE OPERATOR regress_evil.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = regress_evil.never);
SET search_path = regress_evil, pg_catalog, public;
SELECT 1 = 1 AS hijacked_here;
SELECT ducto.activate_pricing(6) AS activated, ducto.get_pricing(6) AS config;
RESET search_path;
DROP SCHEMA regress_evil CASCADE;

-- The session survives every error above.
SELECT 1 AS still_alive;
