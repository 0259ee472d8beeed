"""ducto.events: credit events, an emitter that dispatches them to handlers, and the outbox listener.

The database is the source of truth: every credit operation writes its events to the outbox table
``ducto.events`` in the same transaction, and a committing transaction sends at most one NOTIFY as a
wake-up hint. ``Listener`` turns that into handler calls: it reads the outbox with
``ducto.poll_events``, runs the handlers, then acknowledges with ``ducto.ack_events``. Delivery is
at-least-once: an event whose handlers ran but whose ack was lost (crash, killed connection) is
delivered again, so handlers should be idempotent (``CreditEvent.event_id`` is a stable key).
"""

from __future__ import annotations

import logging
import select
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from ._json import use_exact_json

log = logging.getLogger("ducto.events")

ANY_TYPE = "*"
"""Register a handler under this type to receive every event type."""

DEFAULT_CHANNEL = "ducto_events"

EVENT_TYPES = (
    "credits.added",
    "credits.deducted",
    "credits.refunded",
    "credits.reserved",
    "credits.reservation_released",
    "credits.reservation_expired",
    "credits.expired",
    "credits.deduct_failed",
    "credits.refund_failed",
    "credits.low_balance",
    "credits.cap_warning",
    "credits.cap_reached",
    "credits.plan_changed",
)
"""The event catalog (the last four are reserved for the policies issue)."""

# Connection loss (server restart, pg_terminate_backend, network) and conflicts worth a retry.
RETRYABLE_ERRORS = (psycopg.OperationalError, psycopg.errors.TransactionRollback)

Handler = Callable[["CreditEvent"], Any]

@dataclass(frozen=True)
class CreditEvent:
    """One event of the outbox. Amounts are signed like the ledger: credits positive, debits negative,
    a hold's amount the positive amount held; ``amount`` and ``balance_after`` are None where the
    event type has none."""

    type: str
    user_id: Optional[str]
    amount: Optional[Decimal]
    balance_after: Optional[Decimal]
    timestamp: datetime
    data: Mapping[str, Any] = field(default_factory=dict, hash=False)  # a dict: hash the other fields
    id: Optional[int] = None
    """The outbox row id: what ``ack_events`` takes. Not commit order (see poll_events)."""
    event_id: Optional[UUID] = None
    """Globally unique and stable across redeliveries: the key for idempotent handlers."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "CreditEvent":
        """Builds an event from a ``ducto.events`` row fetched as a dict."""
        return cls(
            type=row["type"],
            user_id=row["user_id"],
            amount=row["amount"],
            balance_after=row["balance_after"],
            timestamp=row["created_at"],
            data=row["data"] if row["data"] is not None else {},
            id=row["id"],
            event_id=row["event_id"],
        )


class CreditEventEmitter:
    """Dispatches events to handlers registered per event type.

    Handlers of a type run in registration order, together with the ``"*"`` handlers (again in
    registration order across both). A handler that raises is logged on the ``ducto.events`` logger
    and the remaining handlers still run. Registration is thread-safe, so handlers can be added or
    removed while a listener thread dispatches; a dispatch uses the handlers registered when it began.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._registrations: list[tuple[str, Handler]] = []

    def on(self, event_type: str, handler: Optional[Handler] = None):
        """Registers ``handler`` for ``event_type`` (``"*"``: every type) and returns it. Without a
        handler, returns a decorator: ``@emitter.on("credits.added")``."""
        if not isinstance(event_type, str) or not event_type:
            raise ValueError("event_type must be a non-empty string")
        if handler is None:
            return partial(self.on, event_type)
        if not callable(handler):
            raise TypeError("handler must be callable")
        with self._lock:
            self._registrations.append((event_type, handler))
        return handler

    def off(self, event_type: str, handler: Handler) -> bool:
        """Removes every registration of ``handler`` for ``event_type``; True if there was one."""
        with self._lock:
            kept = [(t, h) for (t, h) in self._registrations if not (t == event_type and h == handler)]
            removed = len(kept) != len(self._registrations)
            self._registrations = kept
        return removed

    def handlers(self, event_type: str) -> list[Handler]:
        """The handlers an event of ``event_type`` runs, in order."""
        with self._lock:
            return [h for (t, h) in self._registrations if t == event_type or t == ANY_TYPE]

    def emit(self, event: CreditEvent) -> int:
        """Runs the event's handlers in order and returns how many of them raised (each is logged)."""
        failures = 0
        for handler in self.handlers(event.type):
            try:
                handler(event)
            except Exception:  # a handler's bug must not starve the handlers after it
                failures += 1
                log.exception("handler %r failed on %s event %s (id %s)",
                              handler, event.type, event.event_id, event.id)
        return failures

    def listener(self, conninfo: str = "", consumer: str = "default", types: Optional[Iterable[str]] = None,
                 **options: Any) -> "Listener":
        """A ``Listener`` that dispatches to this emitter (see ``Listener`` for the options)."""
        return Listener(self, conninfo, consumer, types, **options)

    def listen(self, conninfo: str = "", consumer: str = "default", types: Optional[Iterable[str]] = None,
               stop: Optional[threading.Event] = None, **options: Any) -> None:
        """Delivers the outbox's events to this emitter's handlers until ``stop`` is set (or, without
        ``stop``, forever). Blocking; for a background thread use ``listener(...).start()``."""
        self.listener(conninfo, consumer, types, stop=stop, **options).run()


class Listener:
    """Reads the outbox for one durable consumer and dispatches each event to an emitter.

    The cycle: poll a batch with ``ducto.poll_events`` (oldest first, after the consumer's durable
    cursor), run the handlers of each event, then ``ducto.ack_events`` up to the last event of the
    batch. The ack comes after the handlers, so delivery is at-least-once; a failing handler is logged
    by the emitter and does not hold the batch back (it would otherwise be redelivered forever).

    The connection is in autocommit mode: LISTEN takes effect at once, and poll and ack each run as
    their own short transaction, never one held open while handlers run (an open transaction with a
    snapshot would hold back the xmin every consumer's delivery waits for).

    Waiting: psycopg 3.1's ``Connection.notifies()`` has no timeout and blocks inside the connection
    lock, so it cannot be stopped. Instead the listener ``select()``s on the connection's socket in
    short slices (``stop_check`` seconds) until a notification arrives, ``poll_interval`` elapses
    (a periodic poll: NOTIFY is only a hint, it can be skipped by the server or be for an event not yet
    visible to us) or stop is requested. Notifications already pending are drained from libpq before
    each poll; one that arrives during a poll or an ack is seen by a notify handler and triggers
    another poll at once, so no wake-up is lost between the poll and the next wait.

    Connection loss (``psycopg.OperationalError``: server restart, ``pg_terminate_backend``, network)
    is retried with exponential backoff; after reconnecting, the consumer resumes from its durable
    cursor, so nothing acknowledged is delivered again and nothing unacknowledged is lost.
    """

    def __init__(
        self,
        emitter: CreditEventEmitter,
        conninfo: str = "",
        consumer: str = "default",
        types: Optional[Iterable[str]] = None,
        *,
        stop: Optional[threading.Event] = None,
        poll_interval: float = 5.0,
        batch_size: int = 100,
        channel: Optional[str] = None,
        reconnect_delay: float = 0.1,
        max_reconnect_delay: float = 5.0,
        stop_check: float = 0.2,
        connect_options: Optional[Mapping[str, Any]] = None,
    ) -> None:
        if not consumer:
            raise ValueError("consumer must be a non-empty name")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if poll_interval <= 0 or stop_check <= 0:
            raise ValueError("poll_interval and stop_check must be positive")
        self.emitter = emitter
        self.conninfo = conninfo
        self.consumer = consumer
        self.types: Optional[list[str]] = list(types) if types is not None else None
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.channel = channel
        self.reconnect_delay = reconnect_delay
        self.max_reconnect_delay = max_reconnect_delay
        self.stop_check = stop_check
        self.connect_options = dict(connect_options or {})
        if "application_name" not in conninfo_to_dict(conninfo):  # visible in pg_stat_activity
            self.connect_options.setdefault("application_name", f"ducto-listener:{consumer}"[:63])
        self._stop = stop if stop is not None else threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._conn: Optional[psycopg.Connection] = None
        self._notified = False
        # Progress, for monitoring and tests (written by the listening thread only).
        self.backend_pid: Optional[int] = None
        self.acked_up_to: Optional[int] = None
        self.delivered = 0
        self.reconnects = 0
        self.last_error: Optional[BaseException] = None
        self.connected = threading.Event()

    # ---- control ---------------------------------------------------------------------------------

    def start(self) -> "Listener":
        """Runs the listener in a daemon thread and returns self."""
        if self._thread is not None:
            raise RuntimeError("listener already started")
        self._thread = threading.Thread(target=self.run, name=f"ducto-listener-{self.consumer}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: Optional[float] = 10.0) -> bool:
        """Requests a stop; joins the thread started by ``start``. True when the listener has stopped.
        A batch being dispatched is finished and acknowledged first."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def __enter__(self) -> "Listener":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # ---- the loop --------------------------------------------------------------------------------

    def run(self) -> None:
        """Listens until stop is requested. Connection loss and transaction conflicts (40001, 40P01)
        are retried; any other error is recorded in ``last_error`` and propagates."""
        delay = self.reconnect_delay
        try:
            while not self._stop.is_set():
                try:
                    self._connect()
                    delay = self.reconnect_delay
                    self._serve()
                except RETRYABLE_ERRORS as error:
                    self.last_error = error
                    self.connected.clear()
                    if self._stop.is_set():
                        break
                    log.warning("consumer %s lost its connection (%s); reconnecting in %.1f s",
                                self.consumer, str(error).strip(), delay)
                    self._close()
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.max_reconnect_delay)
                    self.reconnects += 1
        except BaseException as error:
            self.last_error = error
            raise
        finally:
            self.connected.clear()
            self._close()

    def _connect(self) -> None:
        self._close()
        conn = psycopg.connect(self.conninfo, autocommit=True, **self.connect_options)
        self._conn = conn
        use_exact_json(conn)
        conn.add_notify_handler(self._on_notify)
        channel = self.channel or self._configured_channel(conn)
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        self.backend_pid = conn.info.backend_pid
        self.connected.set()

    @staticmethod
    def _configured_channel(conn: psycopg.Connection) -> str:
        # The GUC as this session sees it: set per database or role it applies here too.
        row = conn.execute("SELECT pg_catalog.current_setting('ducto.notify_channel', true)").fetchone()
        return row[0] if row and row[0] else DEFAULT_CHANNEL

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing a dead connection must not mask why it died
                pass

    def _on_notify(self, _notify: psycopg.Notify) -> None:
        self._notified = True

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._notified = False
            self._drain_pending_notifications()
            delivered = self._poll_dispatch_ack()
            if self._stop.is_set():
                return
            if delivered >= self.batch_size or self._notified:
                continue  # more may be waiting: a full batch, or a wake-up that came during the cycle
            self._wait()

    def _drain_pending_notifications(self) -> None:
        # Wake-ups received while idle are about commits before the poll we are about to run, so they
        # need no second poll; reading them here also clears the socket's readability for select().
        pgconn = self._conn.pgconn
        pgconn.consume_input()
        while pgconn.notifies() is not None:
            pass

    def _poll_dispatch_ack(self) -> int:
        conn = self._conn
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "SELECT * FROM ducto.poll_events(consumer => %s::text, max_events => %s::integer,"
                " types => %s::text[])",
                (self.consumer, self.batch_size, self.types),
            )
            rows = cur.fetchall()
        if not rows:
            return 0
        for row in rows:
            self.emitter.emit(CreditEvent.from_row(row))
        # Acked even when a handler failed (it was logged): otherwise one bad event blocks the consumer.
        last_id = rows[-1]["id"]
        conn.execute("SELECT ducto.ack_events(consumer => %s::text, up_to => %s::bigint)",
                     (self.consumer, last_id))
        self.acked_up_to = last_id
        self.delivered += len(rows)
        return len(rows)

    def _wait(self) -> None:
        """Returns when a notification may be pending, poll_interval passed, or stop was requested."""
        fd = self._conn.fileno()
        deadline = time.monotonic() + self.poll_interval
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            readable, _, _ = select.select([fd], [], [], min(remaining, self.stop_check))
            if readable:
                return  # a notification, or the server closing the connection: the next poll tells


def poll_once(conn: psycopg.Connection, consumer: str, max_events: int = 100,
              types: Optional[Sequence[str]] = None) -> list[CreditEvent]:
    """One ``ducto.poll_events`` call on ``conn`` (no ack): the events after the consumer's cursor."""
    with conn.cursor(row_factory=dict_row) as cur:
        use_exact_json(cur)
        cur.execute(
            "SELECT * FROM ducto.poll_events(consumer => %s::text, max_events => %s::integer,"
            " types => %s::text[])",
            (consumer, max_events, list(types) if types is not None else None),
        )
        return [CreditEvent.from_row(row) for row in cur.fetchall()]


def ack(conn: psycopg.Connection, consumer: str, up_to: int) -> int:
    """One ``ducto.ack_events`` call on ``conn``: advances the consumer's cursor to ``up_to``."""
    row = conn.execute("SELECT ducto.ack_events(consumer => %s::text, up_to => %s::bigint)",
                       (consumer, up_to)).fetchone()
    return row[0]
