-- sql/teams.sql: team administration (issue 5, Teams): create_team, add_team_member, remove_team_member
-- and team_members; every bad argument (22004 for NULL, 22023 otherwise), ids that are both a team and a
-- person, named notation, the tables charge_team reads, privileges and catalog entries.
-- Times change from run to run: only their presence is shown. Errors show their SQLSTATE through try().
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

-- ---- create_team -------------------------------------------------------------------------------------

SELECT ducto.create_team('acme', 'Acme Inc.') AS created;
SELECT ducto.create_team(name => 'Globex', team_id => 'globex') AS created;
-- A team is an account of kind team with a zero balance, plus its ducto.teams row.
SELECT a.user_id, a.kind, a.balance, t.name, t.created_at IS NOT NULL AS has_created_at
FROM ducto.accounts AS a JOIN ducto.teams AS t ON t.account_id = a.id ORDER BY a.user_id;
SELECT user_id, balance, reserved, available FROM ducto.get_balance('acme');
-- Credits are added to the team's id like to a user's.
SELECT user_id, amount, balance_after, error FROM ducto.add_credits('acme', 50);
SELECT a.kind, a.balance FROM ducto.accounts AS a WHERE a.user_id = 'acme';

-- An id is a team or a person, once: 22023, and nothing changes.
SELECT amount FROM ducto.add_credits('alice', 10);
SELECT label, try(sql) AS result
FROM (VALUES
  ('team again', $$SELECT ducto.create_team('acme', 'Acme again')$$),
  ('personal account', $$SELECT ducto.create_team('alice', 'Alice Ltd')$$)
) AS t(label, sql);
SELECT user_id, kind FROM ducto.accounts ORDER BY user_id;
SELECT count(*) AS teams FROM ducto.teams;

-- Bad ids and names, as the ledger checks user ids and labels.
SELECT label, try(sql) AS result
FROM (VALUES
  ('NULL team_id', $$SELECT ducto.create_team(NULL, 'x')$$),
  ('NULL name', $$SELECT ducto.create_team('initech', NULL)$$),
  ('empty team_id', $$SELECT ducto.create_team('', 'x')$$),
  ('leading space', $$SELECT ducto.create_team(' initech', 'x')$$),
  ('trailing space', $$SELECT ducto.create_team('initech ', 'x')$$),
  ('control character', $$SELECT ducto.create_team(E'init\ntech', 'x')$$),
  ('256 characters', format('SELECT ducto.create_team(%L, %L)', repeat('t', 256), 'x')),
  ('empty name', $$SELECT ducto.create_team('initech', '')$$),
  ('256-character name', format('SELECT ducto.create_team(%L, %L)', 'initech', repeat('n', 256)))
) AS t(label, sql);
-- The longest id and name are fine.
SELECT ducto.create_team(repeat('t', 255), repeat('n', 255)) AS created;
SELECT length(a.user_id) AS id_length, length(t.name) AS name_length
FROM ducto.accounts AS a JOIN ducto.teams AS t ON t.account_id = a.id WHERE a.user_id LIKE 'ttt%';

-- ---- add_team_member ---------------------------------------------------------------------------------

-- true: added. Defaults: role member, no cap.
SELECT ducto.add_team_member('acme', 'alice') AS added;
SELECT ducto.add_team_member('acme', 'bob', 'admin', 100) AS added;
SELECT ducto.add_team_member(spend_cap => 0.000001, role => 'owner', user_id => 'carol', team_id => 'acme') AS added;
-- A member needs no account of their own; a user can be in several teams.
SELECT ducto.add_team_member('globex', 'alice', 'owner', 12.5) AS added;
SELECT user_id, role, spend_cap FROM ducto.team_members('acme');
SELECT user_id, role, spend_cap FROM ducto.team_members(team_id => 'globex');
SELECT bool_and(added_at IS NOT NULL) AS has_added_at FROM ducto.team_members('acme');

-- Adding again sets role and cap (false: it was an update); added_at stays.
CREATE TEMP TABLE before AS SELECT user_id, added_at FROM ducto.team_members('acme');
SELECT ducto.add_team_member('acme', 'bob', 'member') AS added;
SELECT ducto.add_team_member('acme', 'alice', 'admin', 999999999999.999999) AS added;
-- A NULL role is the default one; spend_cap keeps its 6 places.
SELECT ducto.add_team_member('acme', 'carol', NULL, 2.5000000) AS added;
SELECT m.user_id, m.role, m.spend_cap, m.added_at = b.added_at AS same_added_at
FROM ducto.team_members('acme') AS m JOIN before AS b USING (user_id) ORDER BY m.user_id;

-- The table charge_team reads: the team's account id, caps in micro-credits.
SELECT a.user_id AS team, m.user_id, m.role, m.spend_cap
FROM ducto.team_members AS m JOIN ducto.accounts AS a ON a.id = m.team_id ORDER BY a.user_id, m.user_id;

-- Refusals: 22023 (22004 for NULL), and nothing changes.
SELECT label, try(sql) AS result
FROM (VALUES
  ('unknown team', $$SELECT ducto.add_team_member('initech', 'bob')$$),
  ('personal account as team', $$SELECT ducto.add_team_member('alice', 'bob')$$),
  ('team as member', $$SELECT ducto.add_team_member('acme', 'globex')$$),
  ('team as its own member', $$SELECT ducto.add_team_member('acme', 'acme')$$),
  ('NULL team_id', $$SELECT ducto.add_team_member(NULL, 'bob')$$),
  ('NULL user_id', $$SELECT ducto.add_team_member('acme', NULL)$$),
  ('bad team_id', $$SELECT ducto.add_team_member('acme ', 'bob')$$),
  ('empty user_id', $$SELECT ducto.add_team_member('acme', '')$$),
  ('control character', $$SELECT ducto.add_team_member('acme', E'bo\tb')$$),
  ('unknown role', $$SELECT ducto.add_team_member('acme', 'bob', 'boss')$$),
  ('role case', $$SELECT ducto.add_team_member('acme', 'bob', 'Admin')$$),
  ('empty role', $$SELECT ducto.add_team_member('acme', 'bob', '')$$),
  ('zero cap', $$SELECT ducto.add_team_member('acme', 'bob', 'member', 0)$$),
  ('negative cap', $$SELECT ducto.add_team_member('acme', 'bob', 'member', -5)$$),
  ('7 places', $$SELECT ducto.add_team_member('acme', 'bob', 'member', 1.0000001)$$),
  ('NaN cap', $$SELECT ducto.add_team_member('acme', 'bob', 'member', 'NaN')$$),
  ('infinite cap', $$SELECT ducto.add_team_member('acme', 'bob', 'member', 'Infinity')$$),
  ('cap of 10^12', $$SELECT ducto.add_team_member('acme', 'bob', 'member', 1000000000000)$$)
) AS t(label, sql);
SELECT user_id, role, spend_cap FROM ducto.team_members('acme');
SELECT count(*) AS accounts FROM ducto.accounts WHERE user_id IN ('initech', 'bob');

-- A member cannot become a team (not even one without an account of its own).
SELECT try($$SELECT ducto.create_team('bob', 'Bob Corp')$$) AS member_as_team;

-- ---- remove_team_member ------------------------------------------------------------------------------

SELECT ducto.remove_team_member('acme', 'bob') AS removed;
SELECT ducto.remove_team_member('acme', 'bob') AS removed_again;
SELECT ducto.remove_team_member(user_id => 'nobody', team_id => 'acme') AS removed_non_member;
-- Removing from one team leaves the others.
SELECT ducto.remove_team_member('globex', 'alice') AS removed;
SELECT user_id, role FROM ducto.team_members('acme');
SELECT count(*) AS globex_members FROM ducto.team_members('globex');
-- No longer a member anywhere: bob's id may now be a team.
SELECT ducto.create_team('bob', 'Bob Corp') AS created;
SELECT label, try(sql) AS result
FROM (VALUES
  ('unknown team', $$SELECT ducto.remove_team_member('initech', 'alice')$$),
  ('personal account', $$SELECT ducto.remove_team_member('alice', 'carol')$$),
  ('NULL team_id', $$SELECT ducto.remove_team_member(NULL, 'alice')$$),
  ('NULL user_id', $$SELECT ducto.remove_team_member('acme', NULL)$$),
  ('bad user_id', $$SELECT ducto.remove_team_member('acme', ' alice')$$)
) AS t(label, sql);

-- ---- team_members ------------------------------------------------------------------------------------

SELECT label, try(sql) AS result
FROM (VALUES
  ('unknown team', $$SELECT count(*) FROM ducto.team_members('initech')$$),
  ('personal account', $$SELECT count(*) FROM ducto.team_members('alice')$$),
  ('NULL team_id', $$SELECT count(*) FROM ducto.team_members(NULL)$$),
  ('bad team_id', $$SELECT count(*) FROM ducto.team_members('')$$)
) AS t(label, sql);
-- Ordered by user_id in byte order (COLLATE "C").
SELECT ducto.add_team_member('globex', id) FROM unnest(ARRAY['b', 'B', 'a', 'é', 'A']) AS id;
SELECT string_agg(user_id, ' ') AS members FROM ducto.team_members('globex');

-- ---- privileges --------------------------------------------------------------------------------------

CREATE ROLE regress_teams_app;
SET ROLE regress_teams_app;
SELECT label, try(sql) AS result
FROM (VALUES
  ('create_team', $$SELECT ducto.create_team('initech', 'x')$$),
  ('add_team_member', $$SELECT ducto.add_team_member('acme', 'dave')$$),
  ('remove_team_member', $$SELECT ducto.remove_team_member('acme', 'alice')$$),
  ('team_members', $$SELECT count(*) FROM ducto.team_members('acme')$$),
  ('read teams', $$SELECT count(*) FROM ducto.teams$$),
  ('read team_members', $$SELECT count(*) FROM ducto.team_members$$),
  ('write team_members', $$UPDATE ducto.team_members SET spend_cap = NULL RETURNING 1$$)
) AS t(label, sql);
RESET ROLE;
-- One GRANT (README) and the functions work, still without access to the tables.
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ducto TO regress_teams_app;
SET ROLE regress_teams_app;
SELECT ducto.create_team('initech', 'Initech') AS created;
SELECT ducto.add_team_member('initech', 'dave', 'owner', 5) AS added;
SELECT user_id, role, spend_cap FROM ducto.team_members('initech');
SELECT ducto.remove_team_member('initech', 'dave') AS removed;
SELECT try($$SELECT count(*) FROM ducto.team_members$$) AS read_table;
RESET ROLE;
DROP OWNED BY regress_teams_app;
DROP ROLE regress_teams_app;

-- ---- catalog -----------------------------------------------------------------------------------------

SELECT p.proname, pg_get_function_arguments(p.oid) AS arguments, pg_get_function_result(p.oid) AS result,
       CASE p.provolatile WHEN 'v' THEN 'volatile' WHEN 's' THEN 'stable' ELSE 'immutable' END AS volatility,
       p.prosecdef AS security_definer, p.proisstrict AS strict,
       obj_description(p.oid, 'pg_proc') IS NOT NULL AS has_comment,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
FROM pg_proc AS p
WHERE p.pronamespace = 'ducto'::regnamespace
  AND p.proname IN ('create_team', 'add_team_member', 'remove_team_member', 'team_members')
ORDER BY p.proname;
-- ducto.team_members as charge_team relies on it.
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
       (SELECT c.collname FROM pg_collation AS c WHERE c.oid = a.attcollation) AS collation
FROM pg_attribute AS a
WHERE a.attrelid = 'ducto.team_members'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;
SELECT pg_get_constraintdef(c.oid) AS primary_key
FROM pg_constraint AS c WHERE c.conrelid = 'ducto.team_members'::regclass AND c.contype = 'p';
-- Dumped with the data (pg_extension_config_dump); PUBLIC has no right on them.
SELECT c.relname, c.oid = ANY (e.extconfig) AS dumped,
       has_table_privilege('public', c.oid, 'SELECT') AS public_select
FROM pg_class AS c, pg_extension AS e
WHERE e.extname = 'ducto' AND c.oid IN ('ducto.teams'::regclass, 'ducto.team_members'::regclass)
ORDER BY c.relname;
