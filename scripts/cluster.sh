#!/usr/bin/env bash
# scripts/cluster.sh {start|stop|status|env}: a throwaway PostgreSQL 15 cluster for tests and the demo.
#   start   (re)creates it from scratch with initdb and starts it; a stale one is stopped and wiped
#   stop    stops it if it runs (fast, then immediate, then SIGKILL of its postmaster); always exits 0
#   status  prints whether it runs; exit 0 if it does, 3 if not
#   env     prints export lines for PGHOST/PGPORT/PGUSER/PGDATABASE: eval "$(scripts/cluster.sh env)"
# initdb refuses root, so as root the server runs as the unprivileged OS user `ducto` (created if
# missing). Unix socket only (listen_addresses = ''), trust auth, superuser `postgres`.
# Extra server settings: scripts/cluster.conf, or the file named by $DUCTO_CLUSTER_CONF.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OS_USER=ducto
PGBIN="$("$PG_CONFIG" --bindir)"
EXTRA_CONF="${DUCTO_CLUSTER_CONF:-$DUCTO_ROOT/scripts/cluster.conf}"

# Where the cluster lives. Inside the repo (build/cluster, git-ignored) when the server's OS user
# can reach it; otherwise (a clone under /root, mode 700, as in CI) in /tmp under a name unique to
# this clone. Also /tmp when the socket path would exceed the kernel's 107-byte limit.
# Decided from permission bits alone, so status/stop/env need no side effects.
others_can_traverse() {
  local dir="$1"
  while [[ "$dir" != "/" ]]; do
    (( 8#$(stat -c %a "$dir") & 1 )) || return 1
    dir="$(dirname "$dir")"
  done
}

cluster_base() {
  # An explicit location wins: parallel runs (and the worker test's preloaded server) use their own.
  if [[ -n "${DUCTO_CLUSTER_DIR:-}" ]]; then echo "$DUCTO_CLUSTER_DIR"; return; fi
  local in_repo="$DUCTO_ROOT/build/cluster"
  local socket_path="$in_repo/sock/.s.PGSQL.65535"
  if ((EUID != 0)) || { others_can_traverse "$DUCTO_ROOT" && ((${#socket_path} <= 100)); }; then
    echo "$in_repo"
  else
    echo "/tmp/ducto-$(printf '%s' "$DUCTO_ROOT" | sha256sum | cut -c1-12)"
  fi
}

BASE="$(cluster_base)"
DATA="$BASE/data"
SOCK="$BASE/sock"
LOG="$BASE/server.log"

# Runs a Postgres binary as the cluster's owner, from / so a private cwd (/root) is no problem.
as_owner() {
  if ((EUID == 0)); then
    (cd / && runuser -u "$OS_USER" -- "$@")
  else
    (cd / && "$@")
  fi
}

ensure_os_user() {
  ((EUID == 0)) || return 0
  id -u "$OS_USER" >/dev/null 2>&1 && return 0
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$OS_USER" \
    || id -u "$OS_USER" >/dev/null 2>&1
}

is_running() {
  [[ -f "$DATA/PG_VERSION" ]] && as_owner "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

postmaster_pid() {
  [[ -f "$DATA/postmaster.pid" ]] && head -n 1 "$DATA/postmaster.pid"
}

# True while the process exists and is not a zombie (a zombie has exited; only reaping is left).
# Read from /proc (the state is the field after the parenthesized command name): no procps needed.
process_alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z ]]
}

wait_for_exit() {
  local pid="$1" tries
  for ((tries = 0; tries < 50; tries++)); do
    process_alive "$pid" || return 0
    sleep 0.1
  done
  return 1
}

stop_cluster() {
  if ! is_running; then
    echo "cluster: not running ($BASE)"
    return 0
  fi
  local pid
  pid="$(postmaster_pid || true)"
  if ! as_owner "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 30 stop >/dev/null 2>&1; then
    as_owner "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
  fi
  if [[ -n "$pid" ]] && ! wait_for_exit "$pid"; then
    # Last resort, by the exact pid of our own postmaster; its children exit when it is gone.
    kill -KILL "$pid" 2>/dev/null || true
    wait_for_exit "$pid" || die "postmaster $pid does not exit"
  fi
  echo "cluster: stopped ($BASE)"
}

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

write_config() {
  local port="$1"
  cat >>"$DATA/postgresql.conf" <<CONF

# --- added by scripts/cluster.sh ---
listen_addresses = ''
port = $port
unix_socket_directories = '$SOCK'
include_if_exists = 'ducto_extra.conf'
CONF
  if [[ -f "$EXTRA_CONF" ]]; then
    # A copy: the server's OS user may not be able to read the repo.
    install -m 644 "$EXTRA_CONF" "$DATA/ducto_extra.conf"
  fi
  echo "$port" >"$BASE/port"
}

start_cluster() {
  stop_cluster >/dev/null
  ensure_os_user
  if ((EUID == 0)) && [[ "$BASE" == "$DUCTO_ROOT"/* ]]; then
    install -d -m 755 "$DUCTO_ROOT/build"
  fi
  rm -rf "$BASE"
  mkdir -p "$BASE"
  chmod 755 "$BASE"
  if ((EUID == 0)); then
    chown "$OS_USER:$OS_USER" "$BASE"
  fi
  as_owner mkdir -m 755 "$SOCK"

  if ! as_owner "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 \
    >"$BASE/initdb.log" 2>&1; then
    cat "$BASE/initdb.log" >&2
    die "initdb failed"
  fi
  write_config "$(free_port)"
  if ((EUID == 0)); then
    chown "$OS_USER:$OS_USER" "$DATA/postgresql.conf" "$BASE/port"
    if [[ -f "$DATA/ducto_extra.conf" ]]; then
      chown "$OS_USER:$OS_USER" "$DATA/ducto_extra.conf"
    fi
  fi

  if ! as_owner "$PGBIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null; then
    tail -n 30 "$LOG" >&2 || true
    die "the server did not start (log: $LOG)"
  fi
  echo "cluster: running in $BASE (socket $SOCK, port $(cat "$BASE/port"))"
}

print_env() {
  [[ -f "$BASE/port" ]] || die "no cluster in $BASE: run scripts/cluster.sh start"
  printf 'export PGHOST=%q\n' "$SOCK"
  printf 'export PGPORT=%q\n' "$(cat "$BASE/port")"
  printf 'export PGUSER=postgres\n'
  printf 'export PGDATABASE=postgres\n'
}

case "${1:-}" in
  start) start_cluster ;;
  stop) stop_cluster ;;
  status)
    if is_running; then
      echo "cluster: running ($BASE)"
    else
      echo "cluster: not running ($BASE)"
      exit 3
    fi
    ;;
  env) print_env ;;
  *) die "usage: $0 {start|stop|status|env}" ;;
esac
