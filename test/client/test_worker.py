#!/usr/bin/python3
"""test/client/test_worker.py: the background worker on a throwaway server of its own.

Starts a cluster with shared_preload_libraries = 'ducto' (scripts/cluster.sh with DUCTO_CLUSTER_DIR and
DUCTO_CLUSTER_CONF), installs the extension and checks, each with a bounded wait:
  - the worker runs, connected to the database named by ducto.database;
  - worker mode: a writer's commit sends no NOTIFY itself, the worker relays one (from its own pid) with
    the id range of the new events;
  - the worker's expiry sweep expires a hold whose ttl ran out (credits.reservation_expired event,
    hold no longer reserved), with no operation on the account that could have expired it lazily;
  - a SIGHUP (pg_reload_conf) turning ducto.notify off stops the relay;
  - PREPARE TRANSACTION works for a transaction that wrote events in transaction mode.
The cluster is stopped in a finally block. Exit status 0 = pass.
"""
import json
import os
import pathlib
import select
import subprocess
import sys
import tempfile
import time

import psycopg

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "scripts" / "cluster.sh"
CLUSTER_DIR = "/tmp/ducto-worker-test"
CONF = """
shared_preload_libraries = 'ducto'
ducto.database = 'postgres'
ducto.notify = 'worker'
ducto.notify_interval = '200ms'
ducto.expiry_interval = '1s'
ducto.prune_interval = '1h'
max_prepared_transactions = 2
"""
WAIT_SECONDS = 20


def cluster(command, env):
    return subprocess.run(["bash", str(CLUSTER), command], env=env, check=True, capture_output=True, text=True).stdout


def wait_for(what, probe, seconds=WAIT_SECONDS):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


class Listener:
    """A LISTEN connection; notifications are collected whenever it talks to the server."""

    def __init__(self, conninfo, channel):
        self.conn = psycopg.connect(conninfo, autocommit=True)
        self.received = []
        self.conn.add_notify_handler(self.received.append)
        self.conn.execute(f"LISTEN {channel}")

    def drain(self, seconds):
        """Waits up to `seconds` for traffic, then lets psycopg deliver what arrived."""
        select.select([self.conn.fileno()], [], [], seconds)
        self.conn.execute("SELECT 1")
        return self.received


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    print(f"ok - {message}")


def main():
    env = dict(os.environ, DUCTO_CLUSTER_DIR=CLUSTER_DIR)
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as conf:
        conf.write(CONF)
    os.chmod(conf.name, 0o644)
    env["DUCTO_CLUSTER_CONF"] = conf.name
    try:
        cluster("start", env)
        settings = dict(line.removeprefix("export ").split("=", 1) for line in cluster("env", env).split("\n") if line)
        conninfo = f"host={settings['PGHOST']} port={settings['PGPORT']} user=postgres dbname=postgres"
        run(conninfo)
    finally:
        subprocess.run(["bash", str(CLUSTER), "stop"], env=env, capture_output=True)
        os.unlink(conf.name)


def run(conninfo):
    db = psycopg.connect(conninfo, autocommit=True)
    db.execute("CREATE EXTENSION ducto")

    worker = wait_for("the ducto worker", lambda: db.execute(
        "SELECT pid, datname FROM pg_stat_activity WHERE backend_type = 'ducto worker'").fetchone())
    check(worker[1] == "postgres", f"the worker runs in database {worker[1]} (ducto.database)")
    worker_pid = worker[0]

    # Worker mode: the writer's own commit notifies nobody; the worker relays the new events.
    listener = Listener(conninfo, "ducto_events")
    writer = psycopg.connect(conninfo, autocommit=True)
    check(writer.execute("SHOW ducto.notify").fetchone()[0] == "worker", "ducto.notify = worker from the config")
    row = writer.execute("SELECT amount, balance_after, error FROM ducto.add_credits('w-user', 100)").fetchone()
    check(row[2] is None, "add_credits succeeded")
    first_id, last_id = db.execute("SELECT min(id), max(id) FROM ducto.events").fetchone()
    notes = wait_for("a relayed NOTIFY", lambda: listener.drain(0.5))
    check(all(n.pid == worker_pid for n in notes), "every NOTIFY came from the worker, none from the writer")
    payload = json.loads(notes[0].payload)
    check(payload["first"] == first_id and payload["last"] == last_id and payload["count"] >= 1,
          f"the relay's payload covers the new events: {notes[0].payload}")
    listener.received.clear()

    # The expiry sweep: a hold with a 1 s ttl is expired by the worker alone (nothing touches the account).
    hold = writer.execute(
        "SELECT reservation_id, error FROM ducto.reserve_credits('w-user', 10, ttl => '1 second')").fetchone()
    check(hold[1] is None, "reserve_credits succeeded")
    expired = wait_for("the worker to expire the hold", lambda: db.execute(
        "SELECT id, amount FROM ducto.events WHERE type = 'credits.reservation_expired' "
        "AND data->>'reservation_id' = %s", (str(hold[0]),)).fetchone())
    check(expired is not None, f"credits.reservation_expired written by the sweep (event {expired[0]})")
    balance = db.execute("SELECT balance, reserved, available FROM ducto.get_balance('w-user')").fetchone()
    check(balance[1] == 0 and balance[2] == balance[0], f"the hold no longer reserves credit: {balance}")
    notes = wait_for("a NOTIFY for the expiry event", lambda: [
        n for n in listener.drain(0.5) if json.loads(n.payload)["last"] >= expired[0]])
    check(notes[0].pid == worker_pid, "the expiry event was relayed by the worker")

    # SIGHUP: turning notify off in the config stops the relay.
    db.execute("ALTER SYSTEM SET ducto.notify = 'off'")
    db.execute("SELECT pg_reload_conf()")
    time.sleep(1)
    listener.received.clear()
    writer.close()
    writer = psycopg.connect(conninfo, autocommit=True)
    writer.execute("SELECT error FROM ducto.add_credits('w-user', 1)")
    time.sleep(1.5)
    check(listener.drain(0.1) == [], "after the reload (ducto.notify = off) no NOTIFY is relayed")

    # PREPARE TRANSACTION after writing events in transaction mode: no pending NOTIFY makes it fail.
    writer.autocommit = False
    writer.execute("SET ducto.notify = transaction")
    writer.execute("SELECT error FROM ducto.add_credits('w-user', 2)")
    writer.execute("PREPARE TRANSACTION 'ducto_p1'")
    writer.autocommit = True
    writer.execute("COMMIT PREPARED 'ducto_p1'")
    check(db.execute("SELECT count(*) FROM ducto.events WHERE type = 'credits.added' AND amount = 2").fetchone()[0] == 1,
          "PREPARE TRANSACTION of a transaction that wrote an event succeeds and commits it")
    check(listener.drain(0.5) == [], "and it sent no NOTIFY")

    check(db.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'ducto worker'").fetchone()[0] == 1,
          "the worker is still running after all tasks (errors, if any, did not kill it)")
    for conn in (listener.conn, writer, db):
        conn.close()


if __name__ == "__main__":
    try:
        main()
    except AssertionError as failure:
        print(f"FAILED: {failure}")
        sys.exit(1)
    print("test_worker: all checks passed")
