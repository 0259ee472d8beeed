#!/usr/bin/env bash
# test/bench/bench_analytics.sh: times ducto's analytics (issue 5) on a ledger of 1,000,000 rows.
# Builds and installs ducto (DUCTO_BENCH_NO_BUILD=1 skips that), starts a throwaway server of its own
# (DUCTO_CLUSTER_DIR, default /tmp/ducto-analytics; stopped at the end, also on failure or Ctrl-C),
# fills the ledger directly with generate_series (30 days of UTC January 2025, 10,000 users, 8 models,
# about 92% charges, 5% deductions, 2% grants, 1% expiry, 2% of the rows refunds of earlier charges;
# ids are UUIDv7 of created_at as the ledger makes them), then runs each analytics function over a
# one-day window and over the whole month, BENCH_ANALYTICS_ROUNDS (5) rounds after one warm-up, and
# prints the median and the fastest time of each with the number of rows it returned.
# Settings: BENCH_ANALYTICS_ROWS (1000000), BENCH_ANALYTICS_USERS (10000), BENCH_ANALYTICS_ROUNDS (5).
# Output: build/bench/analytics/summary.txt.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
cd "$DUCTO_ROOT"

ROWS="${BENCH_ANALYTICS_ROWS:-1000000}"
USERS="${BENCH_ANALYTICS_USERS:-10000}"
ROUNDS="${BENCH_ANALYTICS_ROUNDS:-5}"
OUT="$DUCTO_ROOT/build/bench/analytics"
export DUCTO_CLUSTER_DIR="${DUCTO_CLUSTER_DIR:-/tmp/ducto-analytics}"
export DUCTO_CLUSTER_CONF="$OUT/cluster.conf"

if [[ "${DUCTO_BENCH_NO_BUILD:-0}" != 1 ]]; then
  bash scripts/build.sh pg
fi

mkdir -p "$OUT"
cat >"$DUCTO_CLUSTER_CONF" <<CONF
# written by test/bench/bench_analytics.sh
shared_buffers = 256MB
max_wal_size = 8GB
checkpoint_timeout = 1h
CONF

stop_server() { bash scripts/cluster.sh stop || true; }
trap stop_server EXIT
trap 'exit 130' INT TERM
stage "analytics bench: starting a throwaway server in $DUCTO_CLUSTER_DIR"
bash scripts/cluster.sh start
eval "$(bash scripts/cluster.sh env)"
createdb analytics
export PGDATABASE=analytics

stage "analytics bench: generating $ROWS ledger rows"
psql -X -q -v ON_ERROR_STOP=1 -v rows="$ROWS" -v users="$USERS" <<'SQL'
\timing on
CREATE EXTENSION ducto;
-- A UUIDv7 of a time, as the ledger makes them: 48 bits of Unix milliseconds, then version, random bits.
CREATE FUNCTION pg_temp.uuid7(at timestamptz, seed bigint) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
  SELECT (lpad(to_hex(floor(extract(epoch FROM at) * 1000)::bigint), 12, '0') || '7'
          || substr(md5(seed::text), 1, 3) || '8' || substr(md5(seed::text), 4, 15))::uuid
$$;
INSERT INTO ducto.accounts (id, user_id)
SELECT u, 'user-' || lpad(u::text, 5, '0') FROM generate_series(1, :users) AS u;
SELECT setval('ducto.accounts_id_seq', :users);
-- 98% of the rows spread evenly over January 2025; their kinds by i % 100.
INSERT INTO ducto.ledger (id, account_id, kind, amount, balance_after, created_at, model)
SELECT pg_temp.uuid7(g.at, g.i), g.account_id, g.kind,
       CASE g.kind WHEN 'grant' THEN 10000000 WHEN 'expiry' THEN -(g.i % 100000) - 1
                   ELSE -(1000 + g.i % 50000) END,
       0, g.at, CASE g.kind WHEN 'charge' THEN 'model-' || (g.i % 8) END
FROM (SELECT i, timestamptz '2025-01-01 00:00:00+00' + (i - 1) * (interval '31 days' / (:rows * 0.98)) AS at,
             1 + (i * 7919) % :users AS account_id,
             CASE WHEN i % 100 < 2 THEN 'grant' WHEN i % 100 = 2 THEN 'expiry'
                  WHEN i % 100 < 8 THEN 'deduct' ELSE 'charge' END AS kind
      FROM generate_series(1, (:rows * 0.98)::bigint) AS i) AS g;
-- The other 2%: refunds of half of an earlier charge, up to an hour after it.
INSERT INTO ducto.ledger (id, account_id, kind, amount, balance_after, created_at, original_id)
SELECT pg_temp.uuid7(r.at, -r.n), r.account_id, 'refund', -r.amount / 2, 0, r.at, r.id
FROM (SELECT c.id, c.account_id, c.amount, c.created_at + (c.n % 3600) * interval '1 second' AS at, c.n
      FROM (SELECT l.id, l.account_id, l.amount, l.created_at, row_number() OVER (ORDER BY l.id) AS n
            FROM ducto.ledger AS l WHERE l.kind = 'charge') AS c
      WHERE c.n % 45 = 0
      LIMIT (:rows * 0.02)::bigint) AS r;
VACUUM ANALYZE ducto.ledger;
VACUUM ANALYZE ducto.accounts;
SELECT count(*) AS ledger_rows, pg_size_pretty(pg_total_relation_size('ducto.ledger')) AS ledger_size
FROM ducto.ledger;
SQL

stage "analytics bench: $ROUNDS rounds"
psql -X -q -v ON_ERROR_STOP=1 -v rounds="$ROUNDS" <<'SQL' | tee "$OUT/summary.txt"
SET bench.rounds = :rounds;
SELECT count(*) AS ledger_rows FROM ducto.ledger \gset
CREATE TEMP TABLE cases (ord integer, name text, window_name text, sql text);
INSERT INTO cases
SELECT f.ord * 2 + w.ord, f.name, w.name, format(f.sql, w.from_ts, w.to_ts)
FROM (VALUES (1, 'spend_by_user', 'SELECT count(*) FROM ducto.spend_by_user(%L, %L)'),
             (2, 'spend_by_model', 'SELECT count(*) FROM ducto.spend_by_model(%L, %L)'),
             (3, 'top_users(100)', 'SELECT count(*) FROM ducto.top_users(100, %L, %L)'),
             (4, 'daily_spend', 'SELECT count(*) FROM ducto.daily_spend(%L, %L)'),
             (5, 'aggregate_stats', 'SELECT count(*) FROM ducto.aggregate_stats(%L, %L)')) AS f(ord, name, sql),
     (VALUES (0, 'one day', timestamptz '2025-01-15 00:00+00', timestamptz '2025-01-16 00:00+00'),
             (1, 'whole month', timestamptz '2025-01-01 00:00+00', timestamptz '2025-02-01 00:00+00'))
         AS w(ord, name, from_ts, to_ts);
CREATE TEMP TABLE samples (name text, window_name text, round integer, ms double precision, result_rows bigint);
DO $$
DECLARE
  c record;
  started timestamptz;
  result_rows bigint;
BEGIN
  FOR round IN 0..current_setting('bench.rounds')::integer LOOP
    FOR c IN SELECT * FROM cases ORDER BY ord LOOP
      started := clock_timestamp();
      EXECUTE c.sql INTO result_rows;
      -- Round 0 warms the cache and is not counted.
      IF round > 0 THEN
        INSERT INTO samples
        VALUES (c.name, c.window_name, round, extract(epoch FROM clock_timestamp() - started) * 1000, result_rows);
      END IF;
    END LOOP;
  END LOOP;
END $$;
\echo
\echo ducto analytics on a ledger of :'ledger_rows' rows (median and fastest of the rounds, milliseconds)
SELECT s.name AS function, s.window_name AS "window",
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY s.ms)::numeric, 1) AS median_ms,
       round(min(s.ms)::numeric, 1) AS fastest_ms,
       max(s.result_rows) AS result_rows
FROM samples AS s JOIN cases AS c ON c.name = s.name AND c.window_name = s.window_name
GROUP BY c.ord, s.name, s.window_name
ORDER BY c.ord;
SQL
