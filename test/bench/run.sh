#!/usr/bin/env bash
# test/bench/run.sh [price|expr|ledger|events|all]: builds and installs ducto, starts a throwaway
# PostgreSQL 15 server of its own, runs the benchmarks, prints a summary table per benchmark, and
# stops the server (also on failure or Ctrl-C). Results: build/bench/<benchmark>/ (summary.txt, raw
# samples, pgbench logs). See test/bench/README.md for what each figure means.
#   price   ducto.price over 100,000 usage rows vs the same arithmetic in plain SQL (issue 2 (b))
#   expr    Google Benchmark of compiled formula evaluation, 5 repetitions (issue 2 (a))
#   ledger  pgbench: charge vs reserve+deduct vs PL/pgSQL vs the plain-SQL floor (issue 3)
#   events  pgbench: charge with ducto.notify off / transaction / worker / no events (issue 4)
#   all     the four, in that order, on one server (about 9 minutes on 2 cores)
# Settings (environment): BENCH_SECONDS (10, per pgbench run), BENCH_ROUNDS (3: ledger, events),
# BENCH_PRICE_ROUNDS (7), BENCH_ROWS (100000), BENCH_USERS (10000), BENCH_EXPR_REPETITIONS (5),
# DUCTO_BENCH_NO_BUILD=1 (use what is installed), DUCTO_BENCH_CLUSTER_DIR (where the server lives).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
cd "$DUCTO_ROOT"

BENCH_DIR="$DUCTO_ROOT/test/bench"
OUT="$DUCTO_ROOT/build/bench"
DB=bench
SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
ROUNDS="${BENCH_ROUNDS:-3}"
PRICE_ROUNDS="${BENCH_PRICE_ROUNDS:-7}"
ROWS="${BENCH_ROWS:-100000}"
USERS="${BENCH_USERS:-10000}"
EXPR_REPETITIONS="${BENCH_EXPR_REPETITIONS:-5}"

# Our own cluster, never the test cluster (cluster.sh start wipes whatever lives at its location).
CLUSTER_ID="$(printf '%s' "$DUCTO_ROOT" | sha256sum | cut -c1-12)"
export DUCTO_CLUSTER_DIR="${DUCTO_BENCH_CLUSTER_DIR:-/tmp/ducto-bench-$CLUSTER_ID}"
export DUCTO_CLUSTER_CONF="$OUT/cluster.conf"

WHAT="${1:-all}"
case "$WHAT" in
  price | expr | ledger | events | all) ;;
  *) die "usage: $0 [price|expr|ledger|events|all]" ;;
esac

needs_server() { [[ "$WHAT" != expr ]]; }

build() {
  if [[ "${DUCTO_BENCH_NO_BUILD:-0}" == 1 ]]; then
    stage "bench: build skipped (DUCTO_BENCH_NO_BUILD=1)"
    return
  fi
  if needs_server; then
    bash scripts/build.sh all
  else
    bash scripts/build.sh core
  fi
}

# One configuration for every benchmark. fsync and synchronous_commit keep their defaults (on): the
# ledger and events figures include the commit flush. The preload starts the background worker on the
# bench database (the worker notify mode needs it). Checkpoints are kept out of the timed runs (bench.py
# runs CHECKPOINT before each), so one variant never pays for another's WAL.
write_server_conf() {
  mkdir -p "$OUT"
  cat >"$DUCTO_CLUSTER_CONF" <<CONF
# written by test/bench/run.sh
shared_buffers = 256MB
max_connections = 50
shared_preload_libraries = 'ducto'
ducto.database = '$DB'
max_wal_size = 8GB
checkpoint_timeout = 1h
CONF
}

stop_server() {
  bash scripts/cluster.sh stop || true
}

start_server() {
  write_server_conf
  stage "bench: starting a throwaway server in $DUCTO_CLUSTER_DIR"
  trap stop_server EXIT
  trap 'exit 130' INT TERM
  bash scripts/cluster.sh start
  eval "$(bash scripts/cluster.sh env)"
  # The worker connects to ducto.database; until it exists the postmaster restarts it every 10 s.
  "$("$PG_CONFIG" --bindir)/psql" -X -q -d postgres -c "CREATE DATABASE $DB"
  export PGDATABASE="$DB"
}

run_price() {
  stage "bench: price (issue 2 (b))"
  python3 "$BENCH_DIR/bench.py" price --out "$OUT/price" --db "$DB" --rows "$ROWS" --rounds "$PRICE_ROUNDS"
}

run_expr() {
  stage "bench: expr (issue 2 (a))"
  local binary="$DUCTO_ROOT/build/cmake/bench_expr"
  [[ -x "$binary" ]] || die "$binary is missing: run scripts/build.sh core"
  mkdir -p "$OUT/expr"
  "$binary" --benchmark_repetitions="$EXPR_REPETITIONS" --benchmark_report_aggregates_only=true \
    --benchmark_out="$OUT/expr/bench_expr.json" --benchmark_out_format=json >"$OUT/expr/bench_expr.txt"
  python3 "$BENCH_DIR/bench.py" expr --out "$OUT/expr" --json "$OUT/expr/bench_expr.json" \
    --repetitions "$EXPR_REPETITIONS"
}

run_ledger() {
  stage "bench: ledger (issue 3)"
  python3 "$BENCH_DIR/bench.py" ledger --out "$OUT/ledger" --db "$DB" --users "$USERS" --rounds "$ROUNDS" \
    --seconds "$SECONDS_PER_RUN"
}

run_events() {
  stage "bench: events (issue 4)"
  python3 "$BENCH_DIR/bench.py" events --out "$OUT/events" --db "$DB" --users "$USERS" --rounds "$ROUNDS" \
    --seconds "$SECONDS_PER_RUN"
}

build
if needs_server; then
  start_server
fi
case "$WHAT" in
  all)
    run_expr
    run_price
    run_ledger
    run_events
    ;;
  *) "run_$WHAT" ;;
esac
stage "bench: done; results in $OUT"
