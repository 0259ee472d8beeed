-- sql/ledger_basic.sql: add_credits, get_balance and transactions (issue 3): results with 6 decimal
-- places, named notation, every bad input of the shared arguments (amounts, user ids, keys, metadata,
-- expires_at), the events a credit writes, and reads that never create an account.
-- Ids and times change from run to run: only their presence is shown. Errors show their SQLSTATE through try().
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

-- ---- reads of an unknown user ------------------------------------------------------------------------

-- Zeros, not NULLs, and no account is created.
SELECT * FROM ducto.get_balance('alice');
SELECT count(*) AS transactions FROM ducto.transactions('alice');
SELECT count(*) AS accounts FROM ducto.accounts;

-- ---- add_credits -------------------------------------------------------------------------------------

SELECT transaction_id IS NOT NULL AS has_id, user_id, amount, balance_after, idempotent, error
FROM ducto.add_credits('alice', 100);
SELECT * FROM ducto.get_balance('alice');
-- Amounts come back with exactly 6 places; zeros past the 6th place are fine.
SELECT amount, balance_after FROM ducto.add_credits('alice', 0.5);
SELECT amount, balance_after FROM ducto.add_credits('alice', 1.5000000);
SELECT amount, balance_after FROM ducto.add_credits('alice', 0.000001);
SELECT amount, balance_after FROM ducto.add_credits('alice', 999999999999.999999);
SELECT * FROM ducto.get_balance('alice');

-- Named notation, in any order, with every optional argument.
SELECT user_id, amount, balance_after, idempotent, error
FROM ducto.add_credits(metadata => '{"order": 7}', amount => 25, user_id => 'bob', source => 'purchase',
                       expires_at => pg_catalog.clock_timestamp() + interval '30 days',
                       idempotency_key => 'order-7');
SELECT user_id, balance, reserved, available FROM ducto.get_balance(user_id => 'bob');
-- A NULL source is the default one; a NULL metadata is {}.
SELECT amount FROM ducto.add_credits('bob', 1, source => NULL, metadata => NULL);
SELECT kind, amount, balance_after, source, idempotency_key, metadata, reason, model, breakdown,
       reservation_id, original_transaction_id
FROM ducto.transactions('bob');

-- Each credit is a lot of its own, with its expiry.
SELECT l.granted, l.remaining, l.earmarked, l.expires_at IS NOT NULL AS expires
FROM ducto.lots AS l JOIN ducto.accounts AS a ON a.id = l.account_id
WHERE a.user_id = 'bob' ORDER BY l.id;

-- ---- bad amounts: 22023 (22004 for NULL), nothing changes -------------------------------------------

SELECT a AS amount, try(format('SELECT error FROM ducto.add_credits(%L, %s)', 'alice', a)) AS result
FROM (VALUES ('NULL'), ('0'), ('0.000000'), ('-1'), ('-0.000001'), ('1000000000000'), ('1e15'),
             ('1.0000001'), ('0.0000001'), ('''NaN''::numeric'), ('''Infinity''::numeric'),
             ('''-Infinity''::numeric')) AS t(a);

-- ---- bad user ids ------------------------------------------------------------------------------------

SELECT label, try(format('SELECT error FROM ducto.add_credits(%L, 1)', id)) AS result
FROM (VALUES ('NULL', NULL), ('empty', ''), ('256 characters', repeat('a', 256)),
             ('tab inside', E'a\tb'), ('newline at the end', E'alice\n'), ('control character', 'a' || chr(1)),
             ('DEL', 'a' || chr(127)), ('C1 control', 'a' || chr(133)), ('leading space', ' alice'),
             ('trailing space', 'alice '), ('no-break space', chr(160) || 'alice'),
             ('ideographic space', 'alice' || chr(12288))) AS t(label, id);
-- 255 characters is fine, even when they take more bytes.
SELECT length(user_id) AS characters, octet_length(user_id) AS bytes, amount
FROM ducto.add_credits(repeat('é', 255), 1);
SELECT user_id, amount FROM ducto.add_credits('a b', 1);
SELECT try($$SELECT balance FROM ducto.get_balance(NULL)$$) AS null_read,
       try($$SELECT balance FROM ducto.get_balance('')$$) AS empty_read,
       try($$SELECT count(*) FROM ducto.transactions(NULL)$$) AS null_listing;

-- ---- bad source, expires_at, idempotency_key, metadata ---------------------------------------------

SELECT label, try(sql) AS result
FROM (VALUES
  ('empty source', $$SELECT error FROM ducto.add_credits('alice', 1, source => '')$$),
  ('256-character source', format('SELECT error FROM ducto.add_credits(%L, 1, source => %L)', 'alice', repeat('s', 256))),
  ('expires_at in the past', $$SELECT error FROM ducto.add_credits('alice', 1, expires_at => now() - interval '1 second')$$),
  ('expires_at = now(), the transaction start', $$SELECT error FROM ducto.add_credits('alice', 1, expires_at => now())$$),
  ('expires_at -infinity', $$SELECT error FROM ducto.add_credits('alice', 1, expires_at => '-infinity')$$),
  ('empty key', $$SELECT error FROM ducto.add_credits('alice', 1, idempotency_key => '')$$),
  ('256-character key', format('SELECT error FROM ducto.add_credits(%L, 1, idempotency_key => %L)', 'alice', repeat('k', 256))),
  ('array metadata', $$SELECT error FROM ducto.add_credits('alice', 1, metadata => '[1, 2]')$$),
  ('string metadata', $$SELECT error FROM ducto.add_credits('alice', 1, metadata => '"note"')$$),
  ('JSON null metadata', $$SELECT error FROM ducto.add_credits('alice', 1, metadata => 'null')$$),
  ('metadata over 16 kB', format('SELECT error FROM ducto.add_credits(%L, 1, metadata => %L)', 'alice',
                                 jsonb_build_object('note', repeat('x', 16384))))
) AS t(label, sql);
-- 16 kB of metadata as text is the limit, inclusive.
SELECT length(m::text) AS metadata_bytes, try(format('SELECT error FROM ducto.add_credits(%L, 1, metadata => %L)', 'carol', m)) AS result
FROM (SELECT jsonb_build_object('note', repeat('x', 16384 - 12)) AS m) AS t;
SELECT length(m::text) AS metadata_bytes, try(format('SELECT error FROM ducto.add_credits(%L, 1, metadata => %L)', 'carol', m)) AS result
FROM (SELECT jsonb_build_object('note', repeat('x', 16384 - 11)) AS m) AS t;

-- None of the refused calls changed anything: the balances are as before.
SELECT user_id, balance, reserved, available FROM ducto.get_balance('alice');
SELECT count(*) AS accounts FROM ducto.accounts;

-- ---- events ------------------------------------------------------------------------------------------

SELECT type, user_id, amount, balance_after, data ? 'transaction_id' AS has_transaction_id,
       data - 'transaction_id' - 'expires_at' AS data, data ? 'expires_at' AS has_expires_at
FROM ducto.events WHERE user_id = 'bob' ORDER BY id;

-- ---- transactions ------------------------------------------------------------------------------------

-- Newest first, keyset-paginated by before_id.
SELECT kind, amount, balance_after FROM ducto.transactions('alice');
SELECT kind, amount, balance_after FROM ducto.transactions('alice', max_rows => 2);
SELECT kind, amount, balance_after
FROM ducto.transactions('alice',
                        before_id => (SELECT transaction_id FROM ducto.transactions('alice') OFFSET 1 LIMIT 1),
                        max_rows => 2);
SELECT count(*) AS past_the_oldest
FROM ducto.transactions('alice', before_id => (SELECT id FROM ducto.ledger ORDER BY id LIMIT 1));
SELECT try($$SELECT count(*) FROM ducto.transactions('alice', max_rows => 0)$$) AS zero_rows,
       try($$SELECT count(*) FROM ducto.transactions('alice', max_rows => 1001)$$) AS too_many,
       try($$SELECT count(*) FROM ducto.transactions('alice', max_rows => NULL)$$) AS null_rows,
       try($$SELECT count(*) FROM ducto.transactions('alice', max_rows => 1000)$$) AS thousand;
-- Ids are time-ordered (UUIDv7) and in each account's order.
SELECT bool_and(ordered) AS ids_follow_balances FROM (
  SELECT balance_after - amount = coalesce(lag(balance_after) OVER (ORDER BY transaction_id), 0) AS ordered
  FROM ducto.transactions('alice')) AS t;
SELECT DISTINCT substr(transaction_id::text, 15, 1) AS uuid_version FROM ducto.transactions('alice');

SELECT * FROM ducto.verify();
