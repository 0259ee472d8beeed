-- sql/ledger_privileges.sql: the ledger's privileges and catalog entries. PUBLIC can neither read nor
-- write the ledger's tables nor execute a ledger function; one GRANT (README) lets an application role
-- call them all, still without any table access. Function attributes, comments and pg_dump registration.
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

SELECT ducto.set_pricing('{"models": {"_default": "input_tokens * 1"}}') AS version;
SELECT amount FROM ducto.add_credits('alice', 100);

-- ---- without a grant ---------------------------------------------------------------------------------

CREATE ROLE regress_ledger_app;
SET ROLE regress_ledger_app;
SELECT label, try(sql) AS result
FROM (VALUES
  ('add_credits', $$SELECT error FROM ducto.add_credits('alice', 1)$$),
  ('get_balance', $$SELECT balance FROM ducto.get_balance('alice')$$),
  ('reserve_credits', $$SELECT error FROM ducto.reserve_credits('alice', 1)$$),
  ('release_reservation', $$SELECT error FROM ducto.release_reservation('00000000-0000-7000-8000-000000000000')$$),
  ('deduct_credits', $$SELECT error FROM ducto.deduct_credits('alice', NULL, 1)$$),
  ('refund_credits', $$SELECT error FROM ducto.refund_credits('00000000-0000-7000-8000-000000000000')$$),
  ('charge', $$SELECT error FROM ducto.charge('alice', '{"input_tokens": 1}')$$),
  ('transactions', $$SELECT count(*) FROM ducto.transactions('alice')$$),
  ('expire_credits', $$SELECT count(*) FROM ducto.expire_credits()$$),
  ('verify', $$SELECT count(*) FROM ducto.verify()$$),
  ('read accounts', $$SELECT count(*) FROM ducto.accounts$$),
  ('read lots', $$SELECT count(*) FROM ducto.lots$$),
  ('read ledger', $$SELECT count(*) FROM ducto.ledger$$),
  ('read holds', $$SELECT count(*) FROM ducto.holds$$),
  ('write accounts', $$UPDATE ducto.accounts SET balance = 0 RETURNING 1$$),
  ('write ledger', $$DELETE FROM ducto.ledger RETURNING 1$$),
  ('use a sequence', $$SELECT nextval('ducto.lots_id_seq')$$)
) AS t(label, sql);
RESET ROLE;

-- ---- the one GRANT an application role needs ---------------------------------------------------------

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ducto TO regress_ledger_app;
SET ROLE regress_ledger_app;
SELECT user_id, amount, balance_after, error FROM ducto.charge('alice', '{"input_tokens": 5}');
SELECT user_id, amount, balance_after, error FROM ducto.add_credits('bob', 10);
SELECT user_id, amount, available_after, error FROM ducto.reserve_credits('bob', 4);
SELECT user_id, amount, balance_after, error
FROM ducto.deduct_credits('bob', (SELECT reservation_id FROM ducto.reserve_credits('bob', 2)), 2);
SELECT * FROM ducto.get_balance('bob');
SELECT kind, amount FROM ducto.transactions('bob');
SELECT count(*) AS problems FROM ducto.verify();
-- Still no direct access to the tables.
SELECT try($$SELECT count(*) FROM ducto.ledger$$) AS read_ledger,
       try($$UPDATE ducto.accounts SET balance = 0 RETURNING 1$$) AS write_accounts;
RESET ROLE;

DROP OWNED BY regress_ledger_app;
DROP ROLE regress_ledger_app;

-- ---- attributes, comments, pg_dump -------------------------------------------------------------------

SELECT p.proname, pg_get_function_identity_arguments(p.oid) AS arguments,
       CASE p.provolatile WHEN 'v' THEN 'volatile' WHEN 's' THEN 'stable' ELSE 'immutable' END AS volatility,
       CASE p.proparallel WHEN 'u' THEN 'unsafe' WHEN 'r' THEN 'restricted' ELSE 'safe' END AS parallel,
       p.prosecdef AS security_definer, p.proisstrict AS strict,
       obj_description(p.oid, 'pg_proc') IS NOT NULL AS has_comment,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
FROM pg_proc AS p
WHERE p.pronamespace = 'ducto'::regnamespace
  AND p.proname IN ('add_credits', 'get_balance', 'reserve_credits', 'release_reservation', 'deduct_credits',
                    'refund_credits', 'charge', 'transactions', 'expire_credits', 'verify')
ORDER BY p.proname;

-- Default arguments, as the issue names them.
SELECT p.proname, pg_get_function_arguments(p.oid) AS arguments, pg_get_function_result(p.oid) AS result
FROM pg_proc AS p
WHERE p.pronamespace = 'ducto'::regnamespace
  AND p.proname IN ('add_credits', 'get_balance', 'reserve_credits', 'release_reservation', 'deduct_credits',
                    'refund_credits', 'charge', 'transactions', 'expire_credits', 'verify')
ORDER BY p.proname;

-- The result types' fields.
SELECT t.typname, string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum) AS fields
FROM pg_type AS t JOIN pg_attribute AS a ON a.attrelid = t.typrelid AND a.attnum > 0
WHERE t.typnamespace = 'ducto'::regnamespace AND t.typname LIKE '%\_result'
GROUP BY t.typname ORDER BY t.typname;

-- Every ledger table and sequence is dumped with its data.
SELECT c.relname, c.relkind
FROM pg_extension AS e, unnest(e.extconfig) AS config(oid) JOIN pg_class AS c ON c.oid = config.oid
WHERE e.extname = 'ducto' AND c.relname IN ('accounts', 'accounts_id_seq', 'lots', 'lots_id_seq', 'ledger', 'holds')
ORDER BY c.relname;
-- No privilege for PUBLIC on any of them.
SELECT c.relname, c.relacl IS NULL OR NOT EXISTS (
         SELECT FROM aclexplode(c.relacl) AS acl WHERE acl.grantee = 0) AS nothing_for_public
FROM pg_class AS c
WHERE c.relnamespace = 'ducto'::regnamespace
  AND c.relname IN ('accounts', 'accounts_id_seq', 'lots', 'lots_id_seq', 'ledger', 'holds')
ORDER BY c.relname;

SELECT * FROM ducto.verify();
