"""test/client/test_events_tutorial.py: runs examples/events_tutorial.py and checks what it saw.

The tutorial runs as a subprocess (/usr/bin/python3) against a fresh database, twice (a rerun must
work: new user, the durable consumer resumes). Its exit status, its printed results and the events
its handlers printed are compared with the outbox rows of its user, read independently here.
Run: eval "$(scripts/cluster.sh env)"; /usr/bin/python3 test/client/test_events_tutorial.py
"""

import os
import re
import subprocess
import unittest
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "examples" / "events_tutorial.py"
DATABASE = "ducto_client_tutorial"

EVENT_LINE = re.compile(r"^\s*event (\S+) (\S+) amount=(\S+) balance_after=(\S+) data=(.*)$")


def recreate_database(name):
    with psycopg.connect("", autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect("", dbname=name, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION ducto")


def drop_database(name):
    with psycopg.connect("", autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def decimal_or_none(text):
    return None if text == "None" else Decimal(text)


class EventsTutorialTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        recreate_database(DATABASE)

    @classmethod
    def tearDownClass(cls):
        drop_database(DATABASE)

    def run_tutorial(self):
        env = dict(os.environ, PGDATABASE=DATABASE)
        done = subprocess.run(["/usr/bin/python3", str(TUTORIAL)], env=env, capture_output=True, text=True,
                              timeout=120)
        report = f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        self.assertEqual(done.returncode, 0, report)
        return done.stdout, report

    def outbox_rows(self, user):
        with psycopg.connect("", dbname=DATABASE) as conn:
            return conn.execute(
                "SELECT id, type, amount, balance_after, data FROM ducto.events WHERE user_id = %s ORDER BY id",
                (user,)).fetchall()

    def check_one_run(self):
        # Another user's event in the outbox: the tutorial must report only its own user's events.
        with psycopg.connect("", dbname=DATABASE, autocommit=True) as conn:
            conn.execute("SELECT * FROM ducto.add_credits(user_id => %s, amount => 1)", (f"bystander-{os.getpid()}",))
        out, report = self.run_tutorial()
        user = re.search(r"^user: (\S+)$", out, re.M).group(1)
        self.assertIn("tutorial: OK", out, report)
        self.assertIn("charged 100 input tokens: amount -100.000000, balance after 2400.000000", out, report)
        self.assertRegex(out, r"refund handler saw 1 event\(s\): exactly one", report)

        # What the outbox holds for this user, in order, is exactly the tutorial's operations.
        rows = self.outbox_rows(user)
        self.assertEqual(
            [(r[1], r[2]) for r in rows],
            [("credits.added", 500), ("credits.added", 2000), ("credits.deducted", -100),
             ("credits.reserved", 100), ("credits.deducted", -100), ("credits.refunded", 100)], report)
        # A hold does not change the balance; what its balance_after shows is the SQL side's business.
        self.assertEqual([r[3] for r in rows if r[1] != "credits.reserved"], [500, 2500, 2400, 2300, 2400])
        self.assertEqual(rows[4][4].get("reservation_id"), rows[3][4].get("reservation_id"), rows[4][4])
        self.assertIsNotNone(rows[4][4].get("reservation_id"), rows[4][4])
        self.assertEqual(rows[5][4].get("reason"), "demo", rows[5][4])

        # The final listing: the handlers received the added/deducted/refunded events, each once.
        listing = out[out.index("all events captured:"):]
        printed = [EVENT_LINE.match(line) for line in listing.splitlines()]
        printed = [(m.group(2), decimal_or_none(m.group(3)), decimal_or_none(m.group(4)))
                   for m in printed if m]
        expected = [(r[1], r[2], r[3]) for r in rows if r[1] != "credits.reserved"]
        self.assertEqual(printed, expected, report)
        return user

    def test_tutorial_runs_and_reruns(self):
        first = self.check_one_run()
        second = self.check_one_run()
        self.assertNotEqual(first, second)


if __name__ == "__main__":
    unittest.main(verbosity=2)
