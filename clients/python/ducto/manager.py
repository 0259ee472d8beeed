"""ducto.manager: CreditManager, thin calls of ducto's SQL functions that return their result types.

Each method is one ``SELECT * FROM ducto.<function>(name => value, ...)`` on the caller's
connection. The FROM form matters: ``SELECT (ducto.charge(...)).*`` would run the function once per
result column. Arguments the caller leaves out are not sent, so the SQL defaults apply.

The manager never commits: on an autocommit connection each call is its own transaction; otherwise
the caller's transaction decides, and the call's events become visible to listeners when it commits.
Business rejections come back in the result's ``error`` field (``insufficient_credits``, ...); bad
input raises the server's error (SQLSTATE 22023, 22004, 55000) as a psycopg exception.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Iterable, Mapping, Optional, Union
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from ._json import jsonb, use_exact_json
from .events import CreditEventEmitter

Amount = Union[Decimal, int, str]
"""Money goes in as Decimal, int or a decimal string; a float is refused (binary floats are not exact)."""


def _row_to(cls, row: Mapping[str, Any]):
    # Only the dataclass's fields: a column added to a result type later must not break old clients.
    return cls(**{f.name: row.get(f.name) for f in fields(cls)})


class _Result:
    """What the result types share: ``error`` is None on success (business rejections set it)."""

    @property
    def ok(self) -> bool:
        return self.error is None  # type: ignore[attr-defined]


@dataclass(frozen=True)
class CreditResult(_Result):
    """``ducto.credit_result``: add_credits, deduct_credits."""

    transaction_id: Optional[UUID]
    user_id: Optional[str]
    amount: Optional[Decimal]
    balance_after: Optional[Decimal]
    idempotent: Optional[bool]
    error: Optional[str]


@dataclass(frozen=True)
class ReservationResult(_Result):
    """``ducto.reservation_result``: reserve_credits, release_reservation."""

    reservation_id: Optional[UUID]
    user_id: Optional[str]
    amount: Optional[Decimal]
    available_after: Optional[Decimal]
    expires_at: Optional[datetime]
    idempotent: Optional[bool]
    error: Optional[str]


@dataclass(frozen=True)
class RefundResult(_Result):
    """``ducto.refund_result``: refund_credits."""

    refund_transaction_id: Optional[UUID]
    original_transaction_id: Optional[UUID]
    user_id: Optional[str]
    amount: Optional[Decimal]
    balance_after: Optional[Decimal]
    idempotent: Optional[bool]
    error: Optional[str]


@dataclass(frozen=True)
class ChargeResult(_Result):
    """``ducto.charge_result``: charge. ``breakdown`` is the priced usage, amounts as Decimal."""

    transaction_id: Optional[UUID]
    user_id: Optional[str]
    amount: Optional[Decimal]
    balance_after: Optional[Decimal]
    breakdown: Optional[dict]
    idempotent: Optional[bool]
    error: Optional[str]
    allowance_used: Optional[Decimal] = None  # what the plan's monthly free allowance covered (NULL when refused)


@dataclass(frozen=True)
class Balance:
    """``ducto.balance_result``: get_balance (zeros for an unknown user)."""

    user_id: str
    balance: Decimal
    reserved: Decimal
    available: Decimal
    allowance_remaining: Decimal = Decimal("0.000000")  # the plan's free allowance left this month (0 without a plan)


def _amount(value: Optional[Amount], name: str) -> Optional[Decimal]:
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"{name} must be a Decimal, an int or a decimal string, not {type(value).__name__}")
    if isinstance(value, (Decimal, int, str)):
        return Decimal(value)
    raise TypeError(f"{name} must be a Decimal, an int or a decimal string, not {type(value).__name__}")


def _interval(value: Union[timedelta, str, None]) -> Union[timedelta, str, None]:
    if value is None or isinstance(value, (timedelta, str)):
        return value
    raise TypeError("ttl must be a datetime.timedelta or an interval string such as '10 minutes'")


def _json(value: Optional[Any]):
    return None if value is None else jsonb(value)


class CreditManager:
    """The credit operations of one connection.

    ``emitter`` is for convenience only: the manager never dispatches events itself, because events
    come from the outbox, committed, through a listener (``manager.listen(...)`` or
    ``manager.listener(...).start()``), which uses its own connection. Without one a fresh
    ``CreditEventEmitter`` is made, so ``manager.emitter.on(...)`` always works.
    """

    def __init__(self, conn: psycopg.Connection, emitter: Optional[CreditEventEmitter] = None) -> None:
        self.conn = conn
        self.emitter = emitter if emitter is not None else CreditEventEmitter()

    # ---- the calls ---------------------------------------------------------------------------------

    def _call(self, function: str, required: Iterable[tuple[str, str, Any]],
              optional: Iterable[tuple[str, str, Any]] = ()) -> dict:
        """``SELECT * FROM ducto.<function>(name => %s::type, ...)`` and its single row as a dict.
        Required arguments are always sent (None as NULL: the server says what is missing); optional
        ones only when not None, so their SQL defaults apply."""
        sent = list(required) + [argument for argument in optional if argument[2] is not None]
        # Names and types come from this module, never from the caller: safe to format in.
        call = ", ".join(f"{name} => %s::{sql_type}" for (name, sql_type, _) in sent)
        with self.conn.cursor(row_factory=dict_row) as cur:
            use_exact_json(cur)
            cur.execute(f"SELECT * FROM ducto.{function}({call})", [value for (_, _, value) in sent])
            return cur.fetchone()

    def add_credits(self, user_id: str, amount: Amount, source: Optional[str] = None,
                    expires_at: Optional[datetime] = None, idempotency_key: Optional[str] = None,
                    metadata: Optional[Mapping[str, Any]] = None) -> CreditResult:
        """Grants ``amount`` credits (a lot expiring at ``expires_at``, or never); event credits.added."""
        row = self._call("add_credits", [
            ("user_id", "text", user_id),
            ("amount", "numeric", _amount(amount, "amount")),
        ], [
            ("source", "text", source),
            ("expires_at", "timestamptz", expires_at),
            ("idempotency_key", "text", idempotency_key),
            ("metadata", "jsonb", _json(metadata)),
        ])
        return _row_to(CreditResult, row)

    def reserve_credits(self, user_id: str, amount: Amount, operation_type: Optional[str] = None,
                        ttl: Union[timedelta, str, None] = None, idempotency_key: Optional[str] = None,
                        metadata: Optional[Mapping[str, Any]] = None) -> ReservationResult:
        """Holds ``amount`` credits for ``ttl`` (default 10 minutes); event credits.reserved."""
        row = self._call("reserve_credits", [
            ("user_id", "text", user_id),
            ("amount", "numeric", _amount(amount, "amount")),
        ], [
            ("operation_type", "text", operation_type),
            ("ttl", "interval", _interval(ttl)),
            ("idempotency_key", "text", idempotency_key),
            ("metadata", "jsonb", _json(metadata)),
        ])
        return _row_to(ReservationResult, row)

    def release_reservation(self, reservation_id: UUID) -> ReservationResult:
        """Returns a hold's credits; event credits.reservation_released."""
        row = self._call("release_reservation", [("reservation_id", "uuid", reservation_id)])
        return _row_to(ReservationResult, row)

    def deduct_credits(self, user_id: str, reservation_id: Optional[UUID], amount: Amount,
                       idempotency_key: Optional[str] = None,
                       metadata: Optional[Mapping[str, Any]] = None) -> CreditResult:
        """Debits ``amount``: settles the hold ``reservation_id``, or a direct debit when it is None
        (the SQL parameter order); event credits.deducted, credits.deduct_failed on a rejection."""
        row = self._call("deduct_credits", [
            ("user_id", "text", user_id),
            ("reservation_id", "uuid", reservation_id),
            ("amount", "numeric", _amount(amount, "amount")),
        ], [
            ("idempotency_key", "text", idempotency_key),
            ("metadata", "jsonb", _json(metadata)),
        ])
        return _row_to(CreditResult, row)

    def refund_credits(self, transaction_id: UUID, amount: Optional[Amount] = None,
                       reason: Optional[str] = None, idempotency_key: Optional[str] = None,
                       metadata: Optional[Mapping[str, Any]] = None) -> RefundResult:
        """Refunds a debit, all that is still refundable when ``amount`` is None; event credits.refunded,
        credits.refund_failed on a rejection."""
        row = self._call("refund_credits", [("transaction_id", "uuid", transaction_id)], [
            ("amount", "numeric", _amount(amount, "amount")),
            ("reason", "text", reason),
            ("idempotency_key", "text", idempotency_key),
            ("metadata", "jsonb", _json(metadata)),
        ])
        return _row_to(RefundResult, row)

    def charge(self, user_id: str, metrics: Mapping[str, Any], idempotency_key: Optional[str] = None,
               metadata: Optional[Mapping[str, Any]] = None) -> ChargeResult:
        """Prices ``metrics`` with the active config and debits the total in one call; event
        credits.deducted, credits.deduct_failed on a rejection."""
        row = self._call("charge", [
            ("user_id", "text", user_id),
            ("metrics", "jsonb", _json(metrics)),
        ], [
            ("idempotency_key", "text", idempotency_key),
            ("metadata", "jsonb", _json(metadata)),
        ])
        return _row_to(ChargeResult, row)

    def get_balance(self, user_id: str) -> Balance:
        """Balance, active holds and what is available (zeros for an unknown user)."""
        return _row_to(Balance, self._call("get_balance", [("user_id", "text", user_id)]))

    def price(self, metrics: Mapping[str, Any], config: Optional[Mapping[str, Any]] = None,
              plan: Optional[str] = None) -> dict:
        """The breakdown of one usage record (amounts as Decimal), priced with ``config`` or the active one."""
        row = self._call("price", [("metrics", "jsonb", _json(metrics))], [
            ("config", "jsonb", _json(config)),
            ("plan", "text", plan),
        ])
        return row["price"]

    def set_pricing(self, config: Mapping[str, Any], label: Optional[str] = None) -> int:
        """Publishes ``config`` as the next version and makes it active; returns the version."""
        row = self._call("set_pricing", [("config", "jsonb", _json(config))], [("label", "text", label)])
        return row["set_pricing"]

    # ---- events ------------------------------------------------------------------------------------

    def listener(self, conninfo: str = "", consumer: str = "default", types: Optional[Iterable[str]] = None,
                 **options: Any):
        """A ``Listener`` delivering the outbox to ``self.emitter`` over its own connection to ``conninfo``."""
        return self.emitter.listener(conninfo, consumer, types, **options)

    def listen(self, conninfo: str = "", consumer: str = "default", types: Optional[Iterable[str]] = None,
               **options: Any) -> None:
        """Blocking: ``self.emitter.listen(...)`` (pass ``stop=threading.Event()`` to end it)."""
        self.emitter.listen(conninfo, consumer, types, **options)
