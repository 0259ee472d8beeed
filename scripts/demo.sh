#!/usr/bin/env bash
# scripts/demo.sh: the README's demo command. From a fresh clone on Debian 12, as root: installs
# missing packages, builds and installs the extension, starts a throwaway PostgreSQL, creates
# ducto in a fresh database `ducto_demo`, runs scripts/demo.sql with psql and the events tutorial
# (examples/events_tutorial.py), and stops the server
# (on every exit path). Idempotent: each run starts from a new cluster.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$DUCTO_ROOT"

DEMO_DB=ducto_demo

trap 'bash "$DUCTO_ROOT/scripts/cluster.sh" stop >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT TERM

stage "dependencies"
bash scripts/deps.sh </dev/null
# The demo needs only the extension, not the unit tests and benchmarks.
bash scripts/build.sh pg </dev/null

stage "cluster"
bash scripts/cluster.sh start </dev/null
eval "$(bash scripts/cluster.sh env)"
createdb "$DEMO_DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$DEMO_DB" -c 'CREATE EXTENSION ducto'

stage "demo (scripts/demo.sql)"
psql -X -v ON_ERROR_STOP=1 -d "$DEMO_DB" -f scripts/demo.sql </dev/null

stage "events tutorial (examples/events_tutorial.py)"
# Debian's python3 (with python3-psycopg), not whatever python3 comes first on PATH.
PGDATABASE="$DEMO_DB" PYTHONPATH="$DUCTO_ROOT/clients/python" /usr/bin/python3 examples/events_tutorial.py </dev/null

stage "done"
bash scripts/cluster.sh stop </dev/null
