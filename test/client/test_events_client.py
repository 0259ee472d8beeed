"""test/client/test_events_client.py: event delivery over real connections, and the Python client.

Against a fresh database (dropped at the end) of the cluster named by the PG* variables:
- a LISTEN connection is notified after the commit, not before, once per transaction, and not for a
  rollback;
- a consumer that was down catches up from the outbox: no gap, redelivery until the ack, no
  duplicate after it, and an event whose transaction commits late is still delivered;
- `types` filters, in poll_events and in the Listener;
- CreditManager: named calls, SQL defaults, dataclass results with exact Decimals, errors;
- the emitter runs handlers in registration order and isolates a failing one;
- the Listener stops on request, is woken by NOTIFY, resumes from its durable cursor after its
  connection is killed (pg_terminate_backend), and redelivers an event whose ack was lost.
Run: eval "$(scripts/cluster.sh env)"; /usr/bin/python3 test/client/test_events_client.py
"""

import json
import logging
import select
import sys
import threading
import time
import unittest
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from ducto import (  # noqa: E402
    Balance,
    ChargeResult,
    CreditEvent,
    CreditEventEmitter,
    CreditManager,
    CreditResult,
    Listener,
    RefundResult,
    ReservationResult,
    ack,
    poll_once,
)

DATABASE = "ducto_client_events"
CONNINFO = f"dbname={DATABASE}"
WAIT = 15.0  # seconds; generous, a loaded CI machine is slow


def admin_execute(statement):
    with psycopg.connect("", autocommit=True) as admin:
        admin.execute(statement)


def connect(autocommit=True):
    return psycopg.connect(CONNINFO, autocommit=autocommit)


def new_name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_until(predicate, timeout=WAIT, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def collect_notifies(conn, seconds, channel):
    """The notifications `conn` (autocommit, LISTENing) receives on `channel` within `seconds`.
    psycopg 3.1 has no notifies(timeout): select() on the socket, then a query delivers them."""
    received = []

    def handler(notify):
        if notify.channel == channel:
            received.append(notify)

    conn.add_notify_handler(handler)
    try:
        conn.execute("SELECT 1")  # whatever already arrived
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([conn.fileno()], [], [], remaining)
            if readable:
                conn.execute("SELECT 1")
    finally:
        conn.remove_notify_handler(handler)
    return received


def outbox_ids(conn, user):
    return [row[0] for row in conn.execute(
        "SELECT id FROM ducto.events WHERE user_id = %s ORDER BY id", (user,)).fetchall()]


def fresh_consumer(conn, consumer):
    """Creates the consumer and acknowledges the backlog (a new consumer starts at the oldest event
    kept), so the test sees only what it writes afterwards."""
    while True:
        events = poll_once(conn, consumer, 1000)
        if not events:
            return
        ack(conn, consumer, events[-1].id)


def setUpModule():
    admin_execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
    admin_execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    with connect() as conn:
        conn.execute("CREATE EXTENSION ducto")


def tearDownModule():
    admin_execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))


def event(event_type, amount="1"):
    return CreditEvent(event_type, "u", Decimal(amount), None, datetime.now(timezone.utc))


class EmitterTest(unittest.TestCase):
    """No server needed: dispatch order, isolation of a failing handler, off()."""

    def test_handlers_run_in_registration_order_with_star_handlers(self):
        emitter, calls = CreditEventEmitter(), []
        emitter.on("credits.added", lambda e: calls.append("a1"))
        emitter.on("*", lambda e: calls.append("star"))
        emitter.on("credits.added", lambda e: calls.append("a2"))
        emitter.on("credits.deducted", lambda e: calls.append("d"))
        self.assertEqual(emitter.emit(event("credits.added")), 0)
        self.assertEqual(calls, ["a1", "star", "a2"])
        calls.clear()
        emitter.emit(event("credits.deducted", "-1"))
        self.assertEqual(calls, ["star", "d"])

    def test_failing_handler_is_logged_and_the_others_still_run(self):
        emitter, calls = CreditEventEmitter(), []

        def broken(e):
            raise RuntimeError("handler bug")

        emitter.on("credits.added", lambda e: calls.append(1))
        emitter.on("credits.added", broken)
        emitter.on("credits.added", lambda e: calls.append(3))
        with self.assertLogs("ducto.events", logging.ERROR) as logs:
            failures = emitter.emit(event("credits.added"))
        self.assertEqual(failures, 1)
        self.assertEqual(calls, [1, 3])
        self.assertEqual(len(logs.records), 1)
        self.assertIn("credits.added", logs.output[0])
        self.assertIn("RuntimeError: handler bug", logs.output[0])

    def test_off_removes_only_that_registration(self):
        emitter, calls = CreditEventEmitter(), []

        def first(e):
            calls.append("first")

        def second(e):
            calls.append("second")

        emitter.on("credits.added", first)
        emitter.on("credits.deducted", first)
        emitter.on("credits.added", second)
        self.assertTrue(emitter.off("credits.added", first))
        self.assertFalse(emitter.off("credits.added", first))
        emitter.emit(event("credits.added"))
        emitter.emit(event("credits.deducted"))
        self.assertEqual(calls, ["second", "first"])

    def test_decorator_form_and_bad_registrations(self):
        emitter, calls = CreditEventEmitter(), []

        @emitter.on("credits.refunded")
        def refunded(e):
            calls.append(e.amount)

        emitter.emit(event("credits.refunded", "2.5"))
        self.assertEqual(calls, [Decimal("2.5")])
        with self.assertRaises(TypeError):
            emitter.on("credits.added", "not callable")
        with self.assertRaises(ValueError):
            emitter.on("", refunded)


class ManagerTest(unittest.TestCase):
    """CreditManager: named calls, SQL defaults, dataclass results with exact Decimals, errors."""

    def setUp(self):
        self.conn = connect()
        self.credits = CreditManager(self.conn)
        self.user = new_name("manager")

    def tearDown(self):
        self.conn.close()

    def test_results_are_dataclasses_with_exact_decimals_and_replays(self):
        added = self.credits.add_credits(self.user, Decimal("10.5"), source="promo", idempotency_key="k1",
                                         metadata={"note": Decimal("0.1")})
        self.assertIsInstance(added, CreditResult)
        self.assertIsInstance(added.transaction_id, uuid.UUID)
        self.assertEqual((added.user_id, added.amount, added.balance_after, added.idempotent, added.error),
                         (self.user, Decimal("10.500000"), Decimal("10.500000"), False, None))
        self.assertTrue(added.ok)
        again = self.credits.add_credits(self.user, Decimal("10.5"), source="promo", idempotency_key="k1",
                                         metadata={"note": Decimal("0.1")})
        self.assertEqual((again.transaction_id, again.idempotent), (added.transaction_id, True))
        conflict = self.credits.add_credits(self.user, 11, idempotency_key="k1")
        self.assertEqual((conflict.error, conflict.ok), ("idempotency_conflict", False))
        default_source = self.credits.add_credits(self.user, "1.25")  # source left out: SQL default
        [first, second] = [e for e in poll_once(self.conn, new_name("peek"), 10000) if e.user_id == self.user]
        self.assertEqual((first.data["source"], first.data["metadata"]), ("promo", {"note": Decimal("0.1")}))
        self.assertEqual((second.data["source"], second.amount, second.balance_after),
                         ("adjustment", Decimal("1.25"), default_source.balance_after))

    def test_holds_balance_and_business_rejections(self):
        self.credits.add_credits(self.user, 10)
        hold = self.credits.reserve_credits(self.user, 4, ttl=timedelta(minutes=1))
        self.assertIsInstance(hold, ReservationResult)
        self.assertEqual((hold.amount, hold.available_after, hold.error), (4, 6, None))
        seconds_left = (hold.expires_at - datetime.now(timezone.utc)).total_seconds()
        self.assertTrue(50 < seconds_left <= 60, seconds_left)
        self.assertEqual(self.credits.get_balance(self.user), Balance(self.user, Decimal("10.000000"),
                                                                      Decimal("4.000000"), Decimal("6.000000")))
        released = self.credits.release_reservation(hold.reservation_id)
        self.assertEqual((released.reservation_id, released.error), (hold.reservation_id, None))
        self.assertEqual(self.credits.get_balance(self.user).available, 10)
        too_much = self.credits.deduct_credits(self.user, None, 100)
        self.assertEqual((too_much.error, too_much.transaction_id), ("insufficient_credits", None))
        grant = self.credits.add_credits(self.user, 1)
        self.assertEqual(self.credits.refund_credits(grant.transaction_id).error, "not_refundable")
        self.assertEqual(self.credits.get_balance(new_name("nobody")).balance, 0)

    def test_price_and_charge_keep_decimals(self):
        version = self.credits.set_pricing({"models": {"_default": "input_tokens * 0.001"}}, label="client test")
        self.assertIsInstance(version, int)
        priced = self.credits.price({"input_tokens": 1234})
        self.assertEqual((priced["model"], priced["total"]), ("_default", Decimal("1.234")))
        self.assertIsInstance(priced["total"], Decimal)
        inline = self.credits.price({"input_tokens": 3}, config={"models": {"_default": "input_tokens * 0.5"}})
        self.assertEqual(inline["total"], Decimal("1.5"))
        self.credits.add_credits(self.user, 5)
        charged = self.credits.charge(self.user, {"input_tokens": 1234}, idempotency_key="c1")
        self.assertIsInstance(charged, ChargeResult)
        self.assertEqual((charged.amount, charged.balance_after, charged.breakdown["total"]),
                         (Decimal("-1.234"), Decimal("3.766"), Decimal("1.234")))
        self.assertIsInstance(charged.breakdown["model_credits"], Decimal)
        refund = self.credits.refund_credits(charged.transaction_id, Decimal("0.234"), reason="partial")
        self.assertIsInstance(refund, RefundResult)
        self.assertEqual((refund.original_transaction_id, refund.amount, refund.balance_after),
                         (charged.transaction_id, Decimal("0.234"), Decimal("4")))

    def test_bad_input_raises_before_or_at_the_server(self):
        with self.assertRaises(TypeError):
            self.credits.add_credits(self.user, 0.1)  # a float is not money
        with self.assertRaises(TypeError):
            self.credits.reserve_credits(self.user, 1, ttl=60)
        with self.assertRaises(psycopg.errors.InvalidParameterValue):  # 22023
            self.credits.add_credits(self.user, Decimal("-1"))
        with self.assertRaises(psycopg.errors.NullValueNotAllowed):  # 22004
            self.credits.add_credits(None, 1)
        self.assertEqual(self.credits.get_balance(self.user).balance, 0, "nothing changed")


class NotifyTest(unittest.TestCase):
    """Wake-ups: after the commit, not before; one per transaction; none for a rollback."""

    def setUp(self):
        self.channel = new_name("ducto_test").replace("-", "_")
        self.listener = connect()
        self.listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
        self.writer = connect(autocommit=False)
        # The channel is per session: this test's notifications cannot mix with anyone else's.
        self.writer.execute("SELECT set_config('ducto.notify_channel', %s, false), "
                            "set_config('ducto.notify', 'transaction', false)", (self.channel,))
        self.writer.commit()
        self.credits = CreditManager(self.writer)
        self.user = new_name("notify")

    def tearDown(self):
        self.writer.close()
        self.listener.close()

    def test_notified_after_commit_not_before(self):
        self.credits.add_credits(self.user, 10)
        self.credits.add_credits(self.user, 5)
        self.credits.deduct_credits(self.user, None, 3)
        # The transaction is open: its events exist only inside it, and nobody is woken.
        self.assertEqual(collect_notifies(self.listener, 1.0, self.channel), [])
        with connect() as other:
            self.assertEqual(outbox_ids(other, self.user), [])
        self.writer.commit()
        notifies = collect_notifies(self.listener, 2.0, self.channel)
        self.assertEqual(len(notifies), 1, f"one NOTIFY per committing transaction, got {notifies}")
        payload = notifies[0].payload
        self.assertLess(len(payload.encode()), 1024)
        self.assertEqual(notifies[0].pid, self.writer.info.backend_pid)
        with connect() as other:
            ids = outbox_ids(other, self.user)
        self.assertEqual(len(ids), 3)
        summary = json.loads(payload)
        self.assertEqual((summary["first"], summary["last"], summary["count"]), (ids[0], ids[-1], 3), payload)

    def test_rolled_back_transaction_notifies_nobody(self):
        self.credits.add_credits(self.user, 10)
        self.writer.rollback()
        self.assertEqual(collect_notifies(self.listener, 1.0, self.channel), [])
        with connect() as other:
            self.assertEqual(outbox_ids(other, self.user), [])

    def test_each_committing_transaction_notifies_once(self):
        for amount in (1, 2, 3):
            self.credits.add_credits(self.user, amount)
            self.writer.commit()
        self.writer.execute("SELECT 1")  # a transaction without events: no wake-up
        self.writer.commit()
        notifies = collect_notifies(self.listener, 2.0, self.channel)
        self.assertEqual([json.loads(n.payload)["count"] for n in notifies], [1, 1, 1])


class ConsumerTest(unittest.TestCase):
    """The durable cursor: catch-up after downtime, redelivery until the ack, types."""

    def setUp(self):
        self.conn = connect()
        self.credits = CreditManager(self.conn)
        self.user = new_name("consumer")
        self.consumer = new_name("test-consumer")
        fresh_consumer(self.conn, self.consumer)

    def tearDown(self):
        self.conn.close()

    def mine(self, events):
        return [e for e in events if e.user_id == self.user]

    def test_consumer_that_was_down_catches_up_with_no_gap_and_no_duplicate(self):
        # Written while the consumer is not polling: separate transactions and one with two events.
        self.credits.add_credits(self.user, 100)
        self.credits.add_credits(self.user, 50)
        with self.conn.transaction():
            self.credits.deduct_credits(self.user, None, 30)
            self.credits.add_credits(self.user, 7)
        self.credits.deduct_credits(self.user, None, 1)
        written = outbox_ids(self.conn, self.user)
        self.assertEqual(len(written), 5)

        first = self.mine(poll_once(self.conn, self.consumer, 3))
        self.assertEqual([e.id for e in first], written[:3])
        self.assertEqual([(e.type, e.amount) for e in first],
                         [("credits.added", 100), ("credits.added", 50), ("credits.deducted", -30)])
        # Not acknowledged: delivered again (at-least-once), identically.
        again = self.mine(poll_once(self.conn, self.consumer, 3))
        self.assertEqual(again, first)
        # Acknowledge two: the next poll starts right after them.
        ack(self.conn, self.consumer, first[1].id)
        rest = self.mine(poll_once(self.conn, self.consumer, 100))
        self.assertEqual([e.id for e in rest], written[2:])
        self.assertEqual(rest[-1].balance_after, 126)
        ack(self.conn, self.consumer, rest[-1].id)
        self.assertEqual(poll_once(self.conn, self.consumer, 100), [])
        # A fresh connection (a restarted consumer) resumes from the same durable cursor.
        with connect() as restarted:
            self.assertEqual(poll_once(restarted, self.consumer, 100), [])

    def test_event_of_a_transaction_that_commits_late_is_not_skipped(self):
        late_user = f"{self.user}-late"  # another account: the open transaction must not block ours
        slow = connect(autocommit=False)
        try:
            CreditManager(slow).add_credits(late_user, 9)  # takes its id first, commits last
            self.credits.add_credits(self.user, 10)  # commits now, with a higher id
            seen = [e for e in poll_once(self.conn, self.consumer, 100) if e.user_id in (self.user, late_user)]
            if seen:
                ack(self.conn, self.consumer, seen[-1].id)
            slow.commit()
        finally:
            slow.close()
        seen += [e for e in poll_once(self.conn, self.consumer, 100) if e.user_id in (self.user, late_user)]
        self.assertEqual(sorted(e.amount for e in seen), [9, 10], "both delivered, exactly once")
        self.assertEqual(sorted(e.id for e in seen),
                         sorted(outbox_ids(self.conn, self.user) + outbox_ids(self.conn, late_user)))

    def test_types_filter(self):
        self.credits.add_credits(self.user, 100)
        hold = self.credits.reserve_credits(self.user, 40)
        self.credits.deduct_credits(self.user, hold.reservation_id, 40)
        self.credits.add_credits(self.user, 5)
        added = self.mine(poll_once(self.conn, self.consumer, 100, types=["credits.added"]))
        self.assertEqual([(e.type, e.amount) for e in added], [("credits.added", 100), ("credits.added", 5)])
        both = self.mine(poll_once(self.conn, self.consumer, 100, types=["credits.reserved", "credits.deducted"]))
        self.assertEqual([(e.type, e.amount) for e in both], [("credits.reserved", 40), ("credits.deducted", -40)])
        self.assertEqual(both[1].data.get("reservation_id"), str(hold.reservation_id))


class ListenerTest(unittest.TestCase):
    """The Python listener: stop, NOTIFY wake-up, resume after a killed connection, redelivery."""

    def setUp(self):
        self.conn = connect()
        self.credits = CreditManager(self.conn)
        self.user = new_name("listener")
        self.consumer = new_name("test-listener")
        fresh_consumer(self.conn, self.consumer)
        self.emitter = CreditEventEmitter()
        self.seen = []
        self.lock = threading.Lock()
        self.emitter.on("*", self.record)

    def tearDown(self):
        self.conn.close()

    def record(self, event):
        if event.user_id == self.user:
            with self.lock:
                self.seen.append(event)

    def seen_ids(self):
        with self.lock:
            return [e.id for e in self.seen]

    def listener(self, **options):
        options.setdefault("poll_interval", 60.0)  # so a prompt delivery proves the NOTIFY wake-up
        return Listener(self.emitter, CONNINFO, self.consumer, **options)

    def test_stop_on_request_with_an_event_or_the_stop_method(self):
        stop = threading.Event()
        listener = self.listener(stop=stop)
        thread = threading.Thread(target=listener.run)
        thread.start()
        self.assertTrue(listener.connected.wait(WAIT))
        time.sleep(0.5)  # past its first poll: now waiting for a wake-up (poll_interval is 60 s)
        started = time.monotonic()
        stop.set()
        thread.join(WAIT)
        self.assertFalse(thread.is_alive())
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertIsNone(listener.last_error)

        listener = self.listener().start()
        self.assertTrue(listener.connected.wait(WAIT))
        time.sleep(0.5)
        started = time.monotonic()
        self.assertTrue(listener.stop(timeout=WAIT))
        self.assertLess(time.monotonic() - started, 2.0)
        with self.assertRaises(RuntimeError):
            listener.start()

    def test_notify_wakes_the_listener_and_types_filter(self):
        # The "*" handler (setUp) sees every event the listener delivers: only the deduction passes.
        with self.listener(types=["credits.deducted"]) as listener:
            self.assertTrue(listener.connected.wait(WAIT))
            self.credits.add_credits(self.user, 20)
            self.credits.deduct_credits(self.user, None, 8)
            self.assertTrue(wait_until(lambda: len(self.seen_ids()) >= 1, timeout=5.0),
                            "not delivered within 5 s although poll_interval is 60 s: no NOTIFY wake-up?")
            self.assertTrue(wait_until(lambda: listener.acked_up_to == outbox_ids(self.conn, self.user)[-1]))
        self.assertEqual([(e.type, e.amount, e.balance_after) for e in self.seen],
                         [("credits.deducted", -8, 12)])
        self.assertIsNone(listener.last_error)

    def test_wake_up_that_arrives_while_handlers_run_is_not_lost(self):
        # The event written by the handler commits during the cycle; its NOTIFY is read by the ack
        # query, not by the wait that follows: the listener must still poll again at once.
        writer = connect()

        def write_another_once(e):
            if e.user_id == self.user and e.amount == 1:
                CreditManager(writer).add_credits(self.user, 2)
                time.sleep(0.2)  # let the NOTIFY reach the socket before the ack is sent

        self.emitter.on("credits.added", write_another_once)
        try:
            with self.listener() as listener:
                self.assertTrue(listener.connected.wait(WAIT))
                self.credits.add_credits(self.user, 1)
                self.assertTrue(wait_until(lambda: len(self.seen_ids()) == 2, timeout=5.0),
                                "the second event waited for the periodic poll: a wake-up was lost")
        finally:
            writer.close()
        self.assertEqual([e.amount for e in self.seen], [1, 2])

    def test_resumes_from_its_cursor_after_its_connection_is_killed(self):
        with self.listener(reconnect_delay=0.2) as listener:
            self.assertTrue(listener.connected.wait(WAIT))
            for amount in (1, 2, 3):
                self.credits.add_credits(self.user, amount)
            written = outbox_ids(self.conn, self.user)
            self.assertTrue(wait_until(lambda: listener.acked_up_to == written[-1]))
            old_pid = listener.backend_pid
            killed = self.conn.execute("SELECT pg_terminate_backend(%s, 10000)", (old_pid,)).fetchone()[0]
            self.assertTrue(killed)
            for amount in (4, 5):  # while it is down or reconnecting
                self.credits.add_credits(self.user, amount)
            written = outbox_ids(self.conn, self.user)
            self.assertTrue(wait_until(lambda: listener.acked_up_to == written[-1]), self.seen_ids())
            self.assertGreaterEqual(listener.reconnects, 1)
            self.assertNotEqual(listener.backend_pid, old_pid)
            # Listening again after the reconnect: woken by NOTIFY (poll_interval is 60 s).
            self.credits.add_credits(self.user, 6)
            written = outbox_ids(self.conn, self.user)
            self.assertTrue(wait_until(lambda: self.seen_ids() == written, timeout=5.0), self.seen_ids())
        self.assertEqual(self.seen_ids(), written, "no gap and no duplicate across the reconnect")
        self.assertEqual([e.amount for e in self.seen], [1, 2, 3, 4, 5, 6])
        self.assertIsInstance(listener.last_error, psycopg.OperationalError)

    def test_event_whose_ack_was_lost_is_delivered_again(self):
        # The handler runs, then the connection dies before the ack: at-least-once means a redelivery.
        killer = connect()
        calls = []

        def kill_own_connection_once(e):
            if e.user_id == self.user:
                calls.append(e.event_id)
                if len(calls) == 1:
                    killer.execute("SELECT pg_terminate_backend(%s, 10000)", (listener.backend_pid,))

        self.emitter.on("credits.added", kill_own_connection_once)
        listener = self.listener(reconnect_delay=0.2)
        try:
            listener.start()
            self.assertTrue(listener.connected.wait(WAIT))
            self.credits.add_credits(self.user, 11)
            [only] = outbox_ids(self.conn, self.user)
            self.assertTrue(wait_until(lambda: listener.acked_up_to == only), calls)
        finally:
            self.assertTrue(listener.stop(timeout=WAIT))
            killer.close()
        self.assertEqual(len(calls), 2, "delivered again after the lost ack")
        self.assertEqual(calls[0], calls[1], "the same event_id both times")
        self.assertEqual(self.seen_ids(), [only, only])
        self.assertGreaterEqual(listener.reconnects, 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
