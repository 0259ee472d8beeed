#!/usr/bin/python3
"""test/client/test_policy_events.py: the events of issue 5's policies, read through the real outbox.

Every step runs on its own committed (autocommit) connection that NOTIFYs a per-run channel; a second
connection LISTENs on it. After each step the test reads what the step emitted with ducto.poll_events
and acknowledges it with ducto.ack_events, checks that exactly one NOTIFY announced exactly those
events (none when nothing was emitted), and compares type, user_id, amount, balance_after and data
exactly. Covered:
- credits.plan_changed on set_user_plan (none when the plan stays the same);
- the free allowance: charge_result.allowance_used, get_balance allowance_remaining, the event's
  allowance_used; a rolled-back charge and a replay consume none;
- credits.low_balance: once, on the lowest threshold crossed downwards; not again until the balance
  rose above it; not on a replay; "at or below"; per-user thresholds;
- credits.cap_warning at warn_at and on crossing a warn/notify cap (with the action); a deny cap:
  credits.cap_reached, error cap_reached, nothing debited;
- charge_team: not_a_member, member_cap_reached, the member named in the events.

    eval "$(scripts/cluster.sh env)"; /usr/bin/python3 test/client/test_policy_events.py
Works in its own scratch database (created and dropped). Exit 0 on success.
"""

import json
import os
import select
import sys
import time
import unittest
import uuid
from decimal import Decimal

from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ductotest  # noqa: E402

DATABASE = "ducto_policy_events"
WAIT = 10.0  # seconds for an expected NOTIFY; generous for a loaded machine
QUIET = 0.3  # seconds of silence that count as "no NOTIFY"

CONFIG = {
    "models": {"_default": "input_tokens * 0.001", "gpt-4": "input_tokens * 0.01"},
    "low_balance_thresholds": [100, 20],
    "plans": {
        "pro": {"name": "Pro", "free_allowance": 5, "rate_overrides": {"gpt-4": "input_tokens * 0.008"},
                "features": {"sso": True}},
        "free": {"name": "Free"},
    },
}


def D(text):
    return Decimal(text)


def stripped(data):
    """Event data without the generated ids and the pricing breakdown (checked where they matter)."""
    return {k: v for k, v in data.items() if k not in ("transaction_id", "breakdown")}


def setUpModule():
    conn = ductotest.scratch_database(DATABASE)
    conn.execute("SELECT ducto.set_pricing(%s)", [Jsonb(CONFIG)])
    conn.close()


def tearDownModule():
    with ductotest.connect() as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))


class PolicyEventsTest(unittest.TestCase):
    """Base: a writer that notifies a private channel, a listener, and a fresh consumer per test."""

    def setUp(self):
        suffix = uuid.uuid4().hex[:8]
        self.channel = f"ducto_policy_{suffix}"
        self.consumer = f"policy-test-{suffix}"
        self.listener = ductotest.connect(dbname=DATABASE)
        self.listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        self.notifies = []
        self.listener.add_notify_handler(lambda n: self.notifies.append(n) if n.channel == self.channel else None)
        self.writer = ductotest.connect(dbname=DATABASE)
        self.writer.execute("SELECT set_config('ducto.notify_channel', %s, false), "
                            "set_config('ducto.notify', 'transaction', false)", (self.channel,))
        self.reader = ductotest.connect(dbname=DATABASE)
        # A new consumer starts at the oldest event kept: skip what earlier tests wrote.
        while self.poll():
            pass
        self.wait_notifies(QUIET)
        self.notifies.clear()
        self.user = f"u-{suffix}"

    def tearDown(self):
        for conn in (self.writer, self.listener, self.reader):
            conn.close()

    # -- the outbox --
    def poll(self):
        """The events after the consumer's cursor (poll_events), acknowledged (ack_events)."""
        rows = self.reader.cursor(row_factory=dict_row).execute(
            "SELECT id, type, user_id, amount, balance_after, data::text AS data FROM ducto.poll_events(%s, 1000)",
            (self.consumer,)).fetchall()
        for row in rows:  # exact numbers: JSON numbers as Decimals, not floats
            row["data"] = json.loads(row["data"], parse_float=Decimal, parse_int=Decimal)
        if rows:
            acked = self.reader.execute("SELECT ducto.ack_events(%s, %s)", (self.consumer, rows[-1]["id"])).fetchone()[0]
            self.assertEqual(acked, len(rows), "ack_events acknowledges exactly what poll_events delivered")
        return rows

    def wait_notifies(self, seconds, until_count=None):
        deadline = time.monotonic() + seconds
        self.listener.execute("SELECT 1")  # delivers what already arrived
        while (until_count is None or len(self.notifies) < until_count) and (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.listener.fileno()], [], [], left)
            if readable:
                self.listener.execute("SELECT 1")

    def emitted(self):
        """What the last committed step emitted, checked against its single NOTIFY; as tuples
        (type, user_id, amount, balance_after, data)."""
        # The step committed before we got here: its events are visible now, and its NOTIFY is on its way.
        events = self.poll()
        if events:
            self.wait_notifies(WAIT, until_count=1)
        self.wait_notifies(QUIET)  # and nothing more
        notifies, self.notifies = self.notifies, []
        if not events:
            self.assertEqual([n.payload for n in notifies], [], "a NOTIFY but no event in the outbox")
            return []
        self.assertEqual(len(notifies), 1, f"one NOTIFY per committed transaction, got {[n.payload for n in notifies]}")
        summary = json.loads(notifies[0].payload)
        self.assertEqual((summary["count"], summary["first"], summary["last"]),
                         (len(events), events[0]["id"], events[-1]["id"]),
                         f"the NOTIFY announces the events polled: {notifies[0].payload}")
        self.raw = events
        return [(e["type"], e["user_id"], e["amount"], e["balance_after"], stripped(e["data"])) for e in events]

    def only(self, events, *types):
        return [e for e in events if e[0] in types]

    # -- calls --
    def one(self, query, params=()):
        return self.writer.cursor(row_factory=dict_row).execute(query, params).fetchone()

    def add(self, user, amount):
        self.one("SELECT * FROM ducto.add_credits(%s, %s)", (user, D(amount)))
        events = self.emitted()
        self.assertEqual([e[0] for e in events], ["credits.added"], events)

    def deduct(self, user, amount, key=None):
        return self.one("SELECT amount, balance_after, error, idempotent FROM ducto.deduct_credits("
                        "%s, NULL, %s, %s)", (user, D(amount), key))

    def charge(self, user, metrics, key=None):
        return self.one("SELECT amount, balance_after, error, idempotent, allowance_used FROM ducto.charge(%s, %s, %s)",
                        (user, Jsonb(metrics), key))

    def balance(self, user):
        return self.one("SELECT balance, allowance_remaining FROM ducto.get_balance(%s)", (user,))

    def ledger_rows(self, user):
        return self.one("SELECT count(*) AS n FROM ducto.transactions(%s, max_rows => 1000)", (user,))["n"]


class PlanChangedTest(PolicyEventsTest):
    def test_plan_changed_on_each_change_only(self):
        u = self.user
        steps = (("pro", [{"plan": "pro"}]),
                 ("pro", []),
                 ("free", [{"plan": "free", "previous_plan": "pro"}]),
                 (None, [{"previous_plan": "free"}]),
                 (None, []))
        for plan, data in steps:
            document = self.one("SELECT ducto.set_user_plan(%s, %s) AS d", (u, plan))["d"]
            self.assertEqual(document["plan"], plan)
            self.assertEqual(self.emitted(), [("credits.plan_changed", u, None, D("0"), d) for d in data],
                             f"set_user_plan({plan!r})")
        # An unknown plan is an error and emits nothing.
        self.assertEqual(ductotest.sqlstate_of(self.writer, "SELECT ducto.set_user_plan(%s, 'gold')", (u,))[0], "22023")
        self.assertEqual(self.emitted(), [])


class AllowanceTest(PolicyEventsTest):
    def test_allowance_is_spent_first_and_only_by_committed_first_executions(self):
        u = self.user
        self.add(u, "200")
        self.one("SELECT ducto.set_user_plan(%s, 'pro')", (u,))
        self.emitted()
        self.assertEqual(self.balance(u), {"balance": D("200"), "allowance_remaining": D("5")})

        row = self.charge(u, {"input_tokens": 3000}, key="a-1")  # 3.000000, all from the allowance
        self.assertEqual(row, {"amount": D("0"), "balance_after": D("200"), "error": None, "idempotent": False,
                               "allowance_used": D("3")})
        self.assertEqual(self.emitted(), [("credits.deducted", u, D("0"), D("200"),
                                           {"metadata": {}, "allowance_used": D("3"), "idempotency_key": "a-1"})])
        self.assertEqual(self.balance(u)["allowance_remaining"], D("2"))

        # A replay returns the stored allowance_used, consumes nothing and emits nothing.
        replay = self.charge(u, {"input_tokens": 3000}, key="a-1")
        self.assertEqual(replay, dict(row, idempotent=True))
        self.assertEqual(self.emitted(), [])
        self.assertEqual(self.balance(u)["allowance_remaining"], D("2"))

        # A rolled-back charge consumes none and notifies nobody.
        with self.writer.transaction(force_rollback=True):
            inside = self.charge(u, {"input_tokens": 1500})
            self.assertEqual(inside["allowance_used"], D("1.5"))
            self.assertEqual(self.balance(u)["allowance_remaining"], D("0.5"), "inside the transaction")
        self.assertEqual(self.emitted(), [])
        self.assertEqual(self.balance(u), {"balance": D("200"), "allowance_remaining": D("2")})

        # A rejected charge (insufficient credits) consumes none either.
        rejected = self.charge(u, {"input_tokens": 500000})
        self.assertEqual((rejected["error"], rejected["allowance_used"]), ("insufficient_credits", None))
        self.assertEqual([e[0] for e in self.emitted()], ["credits.deduct_failed"])
        self.assertEqual(self.balance(u)["allowance_remaining"], D("2"))

        # Partly covered: the rest of the allowance, then the balance. Plan rate override: gpt-4 at 0.008.
        row = self.charge(u, {"model": "gpt-4", "input_tokens": 1000})  # 8.000000
        self.assertEqual((row["amount"], row["balance_after"], row["allowance_used"]), (D("-6"), D("194"), D("2")))
        self.assertEqual(self.emitted(), [("credits.deducted", u, D("-6"), D("194"),
                                           {"metadata": {}, "model": "gpt-4", "allowance_used": D("2")})])
        self.assertEqual(D(str(self.raw[0]["data"]["breakdown"]["total"])), D("8"), "priced with the plan's override")
        self.assertEqual(self.balance(u), {"balance": D("194"), "allowance_remaining": D("0")})
        row = self.charge(u, {"input_tokens": 1000})
        self.assertEqual((row["amount"], row["allowance_used"]), (D("-1"), D("0")))
        events = self.emitted()
        self.assertEqual(len(events), 1)
        self.assertNotIn("allowance_used", events[0][4], "no allowance_used key once nothing was covered")


class LowBalanceTest(PolicyEventsTest):
    def low(self, user, balance, threshold):
        return ("credits.low_balance", user, None, D(balance), {"balance": D(balance), "threshold": D(threshold)})

    def debit_and_events(self, user, amount, key=None):
        row = self.deduct(user, amount, key)
        self.assertIsNone(row["error"], row)
        return self.only(self.emitted(), "credits.low_balance")

    def test_edge_triggered_once_per_downward_crossing(self):
        u = self.user
        self.add(u, "150")
        self.assertEqual(self.debit_and_events(u, "40"), [], "150 -> 110: above both thresholds")
        self.assertEqual(self.debit_and_events(u, "15", key="cross-100"), [self.low(u, "95", "100")])
        self.assertEqual(self.debit_and_events(u, "5"), [], "95 -> 90: already below 100")
        # A replay of the crossing debit emits nothing.
        replay = self.deduct(u, "15", key="cross-100")
        self.assertEqual((replay["idempotent"], replay["balance_after"]), (True, D("95")))
        self.assertEqual(self.emitted(), [])
        # Back to exactly 100 is not above it: 100 stays disarmed.
        self.add(u, "10")
        self.assertEqual(self.debit_and_events(u, "1"), [], "100 -> 99 without having been above 100")
        # Above 100 again re-arms it; landing exactly on a threshold counts ("at or below").
        self.add(u, "2")  # 101
        self.assertEqual(self.debit_and_events(u, "1"), [self.low(u, "100", "100")])
        # Both thresholds in one debit: one event, for the lowest crossed.
        self.assertEqual(self.debit_and_events(u, "90"), [self.low(u, "10", "20")])
        self.assertEqual(self.debit_and_events(u, "5"), [], "10 -> 5")

    def test_charges_cross_too_and_a_rejection_does_not(self):
        u = self.user
        self.add(u, "25")
        row = self.charge(u, {"input_tokens": 30000})  # 30 > 25: refused
        self.assertEqual(row["error"], "insufficient_credits")
        self.assertEqual([e[0] for e in self.emitted()], ["credits.deduct_failed"])
        row = self.charge(u, {"input_tokens": 5000})  # 25 -> 20
        self.assertEqual(row["balance_after"], D("20"))
        events = self.emitted()
        self.assertEqual([e[0] for e in events], ["credits.deducted", "credits.low_balance"])
        self.assertEqual(events[1], self.low(u, "20", "20"))

    def test_per_user_thresholds_replace_the_configs(self):
        u = self.user
        self.add(u, "150")
        self.one("SELECT ducto.set_low_balance_thresholds(%s, ARRAY[50, 120]::numeric[])", (u,))
        self.assertEqual(self.emitted(), [])
        self.assertEqual(self.debit_and_events(u, "35"), [self.low(u, "115", "120")])
        self.assertEqual(self.debit_and_events(u, "20"), [], "95: the config's 100 no longer applies")
        self.assertEqual(self.debit_and_events(u, "50"), [self.low(u, "45", "50")])
        self.one("SELECT ducto.set_low_balance_thresholds(%s, NULL)", (u,))
        self.emitted()
        self.assertEqual(self.debit_and_events(u, "30"), [self.low(u, "15", "20")], "back to the config's")


class SpendCapTest(PolicyEventsTest):
    def warning(self, user, balance, period, cap, spent, action, reason, threshold, warn_at=None, model=None):
        data = {"period": period, "cap": D(cap), "spent": D(spent), "action": action, "reason": reason,
                "threshold": D(threshold)}
        if warn_at is not None:
            data["warn_at"] = D(warn_at)
        if model is not None:
            data["model"] = model
        return ("credits.cap_warning", user, None, D(balance), data)

    def test_deny_cap_warns_at_warn_at_then_refuses_with_nothing_debited(self):
        u = self.user
        self.add(u, "1000")
        self.one("SELECT ducto.set_spend_cap(%s, 'monthly', 10)", (u,))
        self.assertEqual(self.emitted(), [])
        self.assertIsNone(self.deduct(u, "5")["error"])
        self.assertEqual(self.only(self.emitted(), "credits.cap_warning"), [])
        self.assertIsNone(self.deduct(u, "3")["error"])  # spent 8 = 0.8 x 10
        self.assertEqual(self.only(self.emitted(), "credits.cap_warning"),
                         [self.warning(u, "992", "monthly", "10", "8", "deny", "threshold", "8", warn_at="0.8")])
        rows_before = self.ledger_rows(u)
        for attempt in (lambda: self.deduct(u, "3"), lambda: self.charge(u, {"input_tokens": 2500})):
            row = attempt()
            self.assertEqual((row["error"], row["balance_after"], row["idempotent"]), ("cap_reached", None, False), row)
            attempted = -row["amount"]
            self.assertEqual(self.emitted(), [
                ("credits.cap_reached", u, -attempted, D("992"),
                 {"period": "monthly", "cap": D("10"), "spent": D("8"), "attempted": attempted,
                  "error": "cap_reached"}),
                ("credits.deduct_failed", u, -attempted, D("992"), {"error": "cap_reached", "metadata": {}})])
            self.assertEqual(self.balance(u)["balance"], D("992"), "nothing debited")
        self.assertEqual(self.ledger_rows(u), rows_before, "no ledger row for a refused debit")
        # Up to the cap exactly is allowed, and warns no more.
        self.assertIsNone(self.deduct(u, "2")["error"])
        self.assertEqual(self.only(self.emitted(), "credits.cap_warning", "credits.cap_reached"), [])

    def test_warn_cap_on_a_model_lets_through_and_warns_once_per_crossing(self):
        u = self.user
        self.add(u, "1000")
        self.one("SELECT ducto.set_spend_cap(%s, 'daily', 1, 'warn', 'gpt-4', 0.5)", (u,))
        self.emitted()
        self.charge(u, {"input_tokens": 2000})  # _default, 2.000000: not this cap's model
        self.assertEqual(self.only(self.emitted(), "credits.cap_warning"), [])
        self.charge(u, {"model": "gpt-4", "input_tokens": 60})  # 0.6 >= 0.5
        self.assertEqual(self.only(self.emitted(), "credits.cap_warning"),
                         [self.warning(u, "997.4", "daily", "1", "0.6", "warn", "threshold", "0.5", warn_at="0.5",
                                       model="gpt-4")])
        row = self.charge(u, {"model": "gpt-4", "input_tokens": 50})  # 1.1 > 1: let through
        self.assertEqual((row["error"], row["balance_after"]), (None, D("996.9")))
        self.assertEqual(self.only(self.emitted(), "credits.cap_warning"),
                         [self.warning(u, "996.9", "daily", "1", "1.1", "warn", "cap_exceeded", "1", model="gpt-4")])
        self.charge(u, {"model": "gpt-4", "input_tokens": 50})
        self.assertEqual(self.only(self.emitted(), "credits.cap_warning"), [], "once per window")

    def test_notify_cap_crossed_at_once_emits_both_warnings(self):
        u = self.user
        self.add(u, "1000")
        self.one("SELECT ducto.set_spend_cap(%s, 'monthly', 70, 'notify')", (u,))
        self.emitted()
        row = self.deduct(u, "73.6")
        self.assertIsNone(row["error"])
        self.assertEqual(self.only(self.emitted(), "credits.cap_warning"), [
            self.warning(u, "926.4", "monthly", "70", "73.6", "notify", "threshold", "56", warn_at="0.8"),
            self.warning(u, "926.4", "monthly", "70", "73.6", "notify", "cap_exceeded", "70")])


class TeamTest(PolicyEventsTest):
    def test_members_caps_and_attribution(self):
        team = f"team-{self.user}"
        self.one("SELECT ducto.create_team(%s, 'Acme')", (team,))
        self.one("SELECT ducto.add_team_member(%s, 'bob', 'member', 5)", (team,))
        self.emitted()
        self.add(team, "100")

        def charge_team(member, tokens):
            return self.one("SELECT amount, balance_after, error FROM ducto.charge_team(%s, %s, %s)",
                            (team, member, Jsonb({"input_tokens": tokens})))

        row = charge_team("mallory", 1000)
        self.assertEqual((row["error"], row["balance_after"]), ("not_a_member", None))
        self.assertEqual(self.emitted(), [("credits.deduct_failed", team, D("-1"), D("100"),
                                           {"error": "not_a_member", "metadata": {}, "member_user_id": "mallory"})])
        row = charge_team("bob", 4000)
        self.assertEqual((row["error"], row["amount"], row["balance_after"]), (None, D("-4"), D("96")))
        self.assertEqual(self.emitted(), [("credits.deducted", team, D("-4"), D("96"),
                                           {"metadata": {}, "member_user_id": "bob"})])
        row = charge_team("bob", 2000)  # 4 + 2 > 5
        self.assertEqual((row["error"], row["balance_after"]), ("member_cap_reached", None))
        self.assertEqual(self.emitted(), [("credits.deduct_failed", team, D("-2"), D("96"),
                                           {"error": "member_cap_reached", "metadata": {}, "member_user_id": "bob"})])
        self.assertEqual(self.balance(team)["balance"], D("96"), "nothing debited")
        row = charge_team("bob", 1000)  # exactly 5
        self.assertEqual((row["error"], row["balance_after"]), (None, D("95")))
        self.assertEqual([e[0] for e in self.emitted()], ["credits.deducted"])


if __name__ == "__main__":
    unittest.main()
