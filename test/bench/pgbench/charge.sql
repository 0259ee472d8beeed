-- (a) ducto.charge: price and debit in one call, one transaction. -D nusers=N picks the user spread.
\set uid random(1, :nusers)
SELECT * FROM ducto.charge('user-' || :uid::integer, '{"input_tokens": 100}');
