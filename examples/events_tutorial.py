#!/usr/bin/python3
"""examples/events_tutorial.py: the events tutorial, end to end against a real server.

Handlers react to credit events without touching the code that moves credits: the operations write
their events to the outbox in their own transaction, and a listener (its own connection, LISTEN +
poll + ack) hands each committed event to the handlers registered for its type.

Run it with Debian's Python and the libpq variables of a database that has the extension:

    eval "$(scripts/cluster.sh env)"; /usr/bin/python3 examples/events_tutorial.py

It publishes a pricing config (so it changes what `charge` costs in that database), uses a new user
per run, and exits non-zero when the results or the events it received are not what the steps imply.
"""

import logging
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "clients" / "python"))

import psycopg  # noqa: E402  (after the path set-up, so a checkout works without installing)

from ducto import CreditEventEmitter, CreditManager, dumps_exact  # noqa: E402

CONSUMER = "events-tutorial"  # durable: a rerun resumes after what the previous run acknowledged
WAIT_SECONDS = 20

log = logging.getLogger("tutorial")


class Problems:
    """What the run saw that it should not have; any entry makes the exit status 1."""

    def __init__(self):
        self.items = []

    def check(self, condition, message):
        if not condition:
            self.items.append(message)
            print(f"  !! {message}")


def wait_for(predicate, what):
    """Waits (at most WAIT_SECONDS) for predicate() to hold; False on timeout."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    print(f"  !! timed out after {WAIT_SECONDS} s waiting for {what}")
    return False


def describe(event):
    return (f"event {event.timestamp.isoformat()} {event.type} amount={event.amount} "
            f"balance_after={event.balance_after} data={dumps_exact(dict(event.data))}")


def main():
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="  log: %(message)s")
    problems = Problems()
    conn = psycopg.connect("", autocommit=True)  # PG* environment; each call its own transaction
    installed = conn.execute("SELECT count(*) FROM pg_catalog.pg_extension WHERE extname = 'ducto'").fetchone()[0]
    if not installed:
        print(f"ducto is not installed in database {conn.info.dbname!r}: run CREATE EXTENSION ducto", file=sys.stderr)
        return 2

    emitter = CreditEventEmitter()
    credits = CreditManager(conn, emitter)
    user = f"tutorial-{uuid.uuid4().hex[:12]}"
    print(f"user: {user}")

    # The outbox is shared by every user of the database: this demo keeps its own user's events.
    lock = threading.Lock()
    captured, refunds = [], []

    def log_event(event):
        if event.user_id != user:
            return
        log.info("%s for %s: amount %s, balance after %s", event.type, event.user_id, event.amount,
                 event.balance_after)
        with lock:
            captured.append(event)

    def on_refund(event):
        if event.user_id == user:
            with lock:
                refunds.append(event)

    # 1. A logging handler for additions, deductions and low-balance alerts.
    for event_type in ("credits.added", "credits.deducted", "credits.low_balance"):
        emitter.on(event_type, log_event)
    print("1. handler registered for credits.added, credits.deducted, credits.low_balance")
    listener = credits.listener("", consumer=CONSUMER, poll_interval=1.0, batch_size=500).start()
    try:
        # 2. Credits for a new user.
        added = credits.add_credits(user, 500, source="tutorial")
        print(f"2. added 500 credits: amount {added.amount}, balance after {added.balance_after}")
        problems.check(added.ok and added.balance_after == 500, f"add 500: {added}")

        # 3. A pricing config: one credit per input token, whatever the model.
        config = {"models": {"_default": "input_tokens * 1"}}
        version = credits.set_pricing(config, label="events tutorial")
        print(f"3. published pricing config version {version}: {dumps_exact(config)}")

        # 4. More credits, then a charge of 100 input tokens.
        added = credits.add_credits(user, 2000, source="tutorial")
        print(f"4. added 2000 credits: amount {added.amount}, balance after {added.balance_after}")
        problems.check(added.ok and added.balance_after == 2500, f"add 2000: {added}")
        charged = credits.charge(user, {"input_tokens": 100})
        print(f"   charged 100 input tokens: amount {charged.amount}, balance after {charged.balance_after}")
        problems.check(charged.ok and charged.amount == -100 and charged.balance_after == 2400,
                       f"charge: expected amount -100 and balance 2400, got {charged}")

        wait_for(lambda: len(captured) >= 3, "the first three events")
        with lock:
            so_far = list(captured)
        print(f"   events captured so far: {len(so_far)}")
        for event in so_far:
            print(f"   {describe(event)}")
        problems.check(
            [(e.type, e.amount, e.balance_after) for e in so_far if e.type != "credits.low_balance"]
            == [("credits.added", 500, 500), ("credits.added", 2000, 2500), ("credits.deducted", -100, 2400)],
            "expected added 500, added 2000, deducted -100, in that order")
        problems.check(all(e.data.get("transaction_id") == str(t.transaction_id)
                           for e, t in zip(so_far[1:3], (added, charged))),
                       "the events' transaction_id must be the operations' transaction ids")

        # 5. A handler for refunds only.
        emitter.on("credits.refunded", on_refund)
        print("5. handler registered for credits.refunded")

        # 6. Reserve 100, deduct them through the reservation, refund 100 with reason "demo".
        reserved = credits.reserve_credits(user, 100, operation_type="tutorial")
        print(f"6. reserved 100: reservation {reserved.reservation_id}, available after {reserved.available_after}")
        problems.check(reserved.ok and reserved.available_after == 2300, f"reserve: {reserved}")
        deducted = credits.deduct_credits(user, reserved.reservation_id, 100)
        print(f"   deducted 100 through the reservation: amount {deducted.amount}, "
              f"balance after {deducted.balance_after}")
        problems.check(deducted.ok and deducted.amount == -100 and deducted.balance_after == 2300,
                       f"deduct: {deducted}")
        refunded = credits.refund_credits(deducted.transaction_id, 100, reason="demo")
        print(f"   refunded 100 with reason demo: amount {refunded.amount}, balance after {refunded.balance_after}")
        problems.check(refunded.ok and refunded.amount == 100 and refunded.balance_after == 2400,
                       f"refund: {refunded}")

        # "Exactly one" means nothing until the listener has acknowledged past the refund event.
        wait_for(lambda: refunds and (listener.acked_up_to or 0) >= refunds[0].id, "the refund event")
        wait_for(lambda: len(captured) >= 4, "the deduction through the reservation")
    finally:
        stopped = listener.stop()
        problems.check(stopped, "the listener did not stop")
    problems.check(listener.last_error is None or isinstance(listener.last_error, psycopg.OperationalError),
                   f"listener error: {listener.last_error!r}")

    print(f"refund handler saw {len(refunds)} event(s)" + (": exactly one" if len(refunds) == 1 else ""))
    for event in refunds:
        print(f"   {describe(event)}")
    problems.check(len(refunds) == 1, f"the refund handler must see exactly one event, saw {len(refunds)}")
    if refunds:
        refund = refunds[0]
        problems.check((refund.amount, refund.balance_after, refund.data.get("reason"))
                       == (100, 2400, "demo"), f"refund event: {describe(refund)}")
        problems.check(refund.data.get("original_transaction_id") == str(deducted.transaction_id),
                       "the refund event must name the deduction it refunds")
    settle = [e for e in captured[3:] if e.type == "credits.deducted"]
    problems.check(len(settle) == 1 and settle[0].amount == -100 and settle[0].balance_after == 2300
                   and settle[0].data.get("reservation_id") == str(reserved.reservation_id),
                   "expected one credits.deducted of -100 carrying the reservation_id")

    print("all events captured:")
    for event in sorted(captured + refunds, key=lambda e: e.id):
        print(f"   {describe(event)}")
    balance = credits.get_balance(user)
    print(f"balance: {balance.balance}, reserved {balance.reserved}, available {balance.available}")
    problems.check((balance.balance, balance.reserved, balance.available) == (2400, 0, 2400),
                   f"final balance: {balance}")
    conn.close()

    if problems.items:
        print(f"tutorial: FAILED ({len(problems.items)} problem(s))")
        return 1
    print("tutorial: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
