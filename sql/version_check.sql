-- sql/version_check.sql: the library refuses to run against a version of the extension's SQL it does
-- not know (design.md, Operations), and runs again once the versions match.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS ducto CASCADE;
CREATE EXTENSION ducto;
RESET client_min_messages;
SELECT extversion FROM pg_extension WHERE extname = 'ducto';
-- Pretend the installed SQL is a version this library was not built for (as after installing new files
-- without ALTER EXTENSION ducto UPDATE, or the reverse). The check runs once per backend: reconnect.
UPDATE pg_catalog.pg_extension SET extversion = '9.9' WHERE extname = 'ducto';
\c
\set VERBOSITY default
-- Pricing with an inline config reads none of ducto's tables, so it still works; anything that does
-- read them refuses with 55000.
SELECT ducto.price('{"input_tokens": 1}', config => '{"models": {"_default": "input_tokens"}}');
SELECT balance FROM ducto.get_balance('alice');
UPDATE pg_catalog.pg_extension SET extversion = '1.0' WHERE extname = 'ducto';
\c
SELECT balance FROM ducto.get_balance('alice');
