#!/usr/bin/env bash
# scripts/test.sh: the one test command (README, .ci/run). From a fresh clone on Debian 12, as root:
# installs missing packages, builds, runs every test the project has, and ends with exactly one line
# `N passed, M failed`, counted over all suites:
#   unit        each GoogleTest case (ctest, build/cmake)
#   regress     each pg_regress test (sql/*.sql vs expected/*.out)
#   isolation   each isolation spec (test/isolation/specs/*.spec)
#   client      each test/client/test_*.py program (exit 0 = pass), against the throwaway cluster
#   fuzz        each libFuzzer target (test/fuzz/fuzz_*.cpp), ~15 s over test/fuzz/corpus/<target>/
# A stage that breaks (a build, the cluster, a runner that cannot run) counts as one failure, so a
# broken build is never "0 failed". Exit status: 0 only if nothing failed.
# The server is stopped on every exit path. Environment knobs: DUCTO_FUZZ_SECONDS (default 15).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$DUCTO_ROOT"

LOG_DIR="$DUCTO_ROOT/build/test-logs"
FUZZ_SECONDS="${DUCTO_FUZZ_SECONDS:-15}"
PASSED=0
FAILED=0
SUMMARY=()

mkdir -p "$LOG_DIR"
trap 'bash "$DUCTO_ROOT/scripts/cluster.sh" stop >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT TERM

# record SUITE PASSED FAILED [NOTE]: adds one suite's counts to the totals.
record() {
  PASSED=$((PASSED + $2))
  FAILED=$((FAILED + $3))
  SUMMARY+=("$(printf '  %-10s %4d ok  %4d failed  %s' "$1" "$2" "$3" "${4:-}")")
}

# broken SUITE WHY: a stage that could not run counts as one failure.
broken() {
  record "$1" 0 1 "BROKEN: $2"
  printf '!!! %s: %s\n' "$1" "$2"
}

# run_logged LOG CMD...: runs CMD with its output both shown and saved; returns CMD's status.
run_logged() {
  local log="$1" status=0
  shift
  "$@" </dev/null 2>&1 | tee "$log" || status=$?
  return "$status"
}

# show_diffs FILE: points at a pg_regress diff file and prints its start into the log.
show_diffs() {
  [[ -s "$1" ]] || return 0
  printf '\n--- differences: %s (first 300 lines) ---\n' "$1"
  head -n 300 "$1"
  printf -- '--- end of %s ---\n' "$1"
}

run_unit_tests() {
  stage "unit tests (ctest)"
  local log="$LOG_DIR/ctest.log" status=0
  run_logged "$log" ctest --test-dir build/cmake --output-on-failure --timeout 300 -j "$BUILD_JOBS" || status=$?
  local line
  line="$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)"
  if [[ -n "$line" ]]; then
    local failed total
    failed="$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$line")"
    total="$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")"
    record unit "$((total - failed))" "$failed"
    ((status == 0 || failed > 0)) || broken unit "ctest exited $status"
  elif grep -q 'No tests were found' "$log" && ((status == 0)); then
    record unit 0 0 "(no unit tests yet)"
  else
    broken unit "ctest exited $status without a result line"
  fi
}

# run_pg_suite SUITE DIFFS MAKE-ARGS...: one `make installcheck` restricted to one suite, parsed
# from pg_regress's per-test lines ("test name ... ok" / "... FAILED").
run_pg_suite() {
  local suite="$1" diffs="$2" status=0
  shift 2
  stage "$suite tests (make installcheck $*)"
  local log="$LOG_DIR/$suite.log"
  run_logged "$log" make installcheck PG_CONFIG="$PG_CONFIG" "$@" || status=$?
  local ok failed
  ok="$(grep -cE '\.\.\. (ok|failed \(ignored\))' "$log" || true)"
  failed="$(grep -cE '\.\.\. FAILED' "$log" || true)"
  record "$suite" "$ok" "$failed"
  if ((status != 0 && failed == 0)); then
    broken "$suite" "make installcheck exited $status"
  fi
  if ((status != 0)); then
    show_diffs "$diffs"
  fi
}

run_client_tests() {
  stage "client tests (test/client/test_*.py)"
  local tests=(test/client/test_*.py)
  if [[ ! -e "${tests[0]}" ]]; then
    record client 0 0 "(no client tests yet)"
    return 0
  fi
  local ok=0 failed=0 test
  for test in "${tests[@]}"; do
    echo "--- $test"
    if PYTHONPATH="$DUCTO_ROOT/clients/python${PYTHONPATH:+:$PYTHONPATH}" \
      timeout 600 /usr/bin/python3 "$test" </dev/null; then
      ok=$((ok + 1))
      echo "--- $test: ok"
    else
      failed=$((failed + 1))
      echo "--- $test: FAILED"
    fi
  done
  record client "$ok" "$failed"
}

run_fuzz_smoke() {
  stage "fuzz smoke (${FUZZ_SECONDS} s per target)"
  local sources=(test/fuzz/fuzz_*.cpp)
  if [[ ! -e "${sources[0]}" ]]; then
    record fuzz 0 0 "(no fuzz targets yet)"
    return 0
  fi
  if ! bash scripts/build.sh fuzz </dev/null; then
    broken fuzz "build failed"
    return 0
  fi
  local ok=0 failed=0 source
  for source in "${sources[@]}"; do
    local target
    target="$(basename "$source" .cpp)"
    # New inputs go to a scratch corpus under build/; the committed seeds are only read.
    local work="build/fuzz/corpus/$target" artifacts="build/fuzz/artifacts/$target"
    mkdir -p "$work" "$artifacts"
    local args=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
      -artifact_prefix="$artifacts/" "$work")
    [[ -d "test/fuzz/corpus/$target" ]] && args+=("test/fuzz/corpus/$target")
    [[ -f "test/fuzz/$target.dict" ]] && args=(-dict="test/fuzz/$target.dict" "${args[@]}")
    echo "--- $target ${args[*]}"
    if "build/fuzz/$target" "${args[@]}" </dev/null >"$LOG_DIR/$target.log" 2>&1; then
      ok=$((ok + 1))
      echo "--- $target: ok ($(grep -E '^stat::number_of_executed_units' "$LOG_DIR/$target.log" | awk '{print $2}') runs)"
    else
      failed=$((failed + 1))
      echo "--- $target: FAILED (reproducer in $artifacts/, full log $LOG_DIR/$target.log)"
      tail -n 60 "$LOG_DIR/$target.log"
    fi
  done
  record fuzz "$ok" "$failed"
}

main() {
  stage "dependencies"
  bash scripts/deps.sh </dev/null || broken deps "scripts/deps.sh failed"

  if bash scripts/build.sh core </dev/null; then
    run_unit_tests
  else
    broken unit "core/unit test build failed"
  fi

  if ! bash scripts/build.sh pg </dev/null; then
    broken pg "extension build or install failed"
  else
    stage "cluster"
    if bash scripts/cluster.sh start </dev/null; then
      eval "$(bash scripts/cluster.sh env)"
      # Separate make runs, so the isolation specs run even when a regress test failed.
      run_pg_suite regress "$DUCTO_ROOT/regression.diffs" ISOLATION=
      run_pg_suite isolation "$DUCTO_ROOT/output_iso/regression.diffs" REGRESS=
      run_client_tests
      stage "cluster"
      bash scripts/cluster.sh stop </dev/null || broken cluster "stop failed"
    else
      broken cluster "could not start the server"
    fi
  fi

  run_fuzz_smoke

  stage "summary"
  printf '%s\n' "${SUMMARY[@]}"
  printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
  ((FAILED == 0))
}

main
