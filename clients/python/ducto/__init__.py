"""ducto: the Python client of the ducto PostgreSQL extension (usage-based credits).

    conn = psycopg.connect("", autocommit=True)      # PG* environment variables
    credits = CreditManager(conn)
    credits.add_credits("alice", 500)
    credits.emitter.on("credits.deducted", lambda e: print(e.amount, e.balance_after))
    credits.listener("", consumer="billing").start()  # outbox -> handlers, at-least-once

Only dependency: psycopg 3 (Debian's python3-psycopg).
"""

from ._json import dumps_exact, jsonb, loads_exact, use_exact_json
from .events import (
    ANY_TYPE,
    DEFAULT_CHANNEL,
    EVENT_TYPES,
    CreditEvent,
    CreditEventEmitter,
    Listener,
    ack,
    poll_once,
)
from .manager import (
    Balance,
    ChargeResult,
    CreditManager,
    CreditResult,
    RefundResult,
    ReservationResult,
)

__all__ = [
    "ANY_TYPE",
    "DEFAULT_CHANNEL",
    "EVENT_TYPES",
    "Balance",
    "ChargeResult",
    "CreditEvent",
    "CreditEventEmitter",
    "CreditManager",
    "CreditResult",
    "Listener",
    "RefundResult",
    "ReservationResult",
    "ack",
    "dumps_exact",
    "jsonb",
    "loads_exact",
    "poll_once",
    "use_exact_json",
]
