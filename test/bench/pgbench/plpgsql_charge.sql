-- (c) A PL/pgSQL charge with the same contract (test/bench/ledger_setup.sql), one call per event.
\set uid random(1, :nusers)
SELECT * FROM bench.pl_charge('user-' || :uid::integer, '{"input_tokens": 100}');
