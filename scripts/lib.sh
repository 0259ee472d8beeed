# scripts/lib.sh: shared settings and helpers for the other scripts (sourced, not run).
# Everything is derived from the repo's location, so the scripts work from any clone and any cwd.
# shellcheck shell=bash disable=SC2034  # (the variables are used by the scripts that source this)

DUCTO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
BUILD_JOBS="${BUILD_JOBS:-2}"

# A visible stage banner, so a CI log can be scanned by eye.
stage() {
  printf '\n===== %s =====\n' "$*"
}

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}
