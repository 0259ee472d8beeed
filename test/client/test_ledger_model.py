#!/usr/bin/python3
"""test/client/test_ledger_model.py: seeded randomized model test of the credit ledger (issues 3 and 5).

Thousands of random ledger operations on a handful of users go both to the extension and to a small
reference model of the contract (balances, holds, debits and their refunds, idempotency keys with their
requests and results). Every deterministic result column (amount, balance_after, available_after, error,
idempotent; ids on replays) and get_balance are compared after every step, with exact Decimals. The
run ends with ducto.verify() returning no rows and one ledger row per balance change.

Issue 5's policies are in the mix: plans with a free allowance and rate overrides (set_user_plan at
random; allowance_used and allowance_remaining predicted), deny spend caps per user (daily and monthly,
all models or one; set and removed at random; cap_reached rejections predicted, with their
credits.cap_reached events) and low-balance thresholds (the config's, or the user's own set at
random): after every step the new credits.low_balance and credits.cap_reached events in the outbox
must be exactly those the model's edge detection predicts (user, balance, threshold; cap, spent).

    eval "$(scripts/cluster.sh env)"
    /usr/bin/python3 test/client/test_ledger_model.py [SEED]     # or DUCTO_MODEL_SEED; DUCTO_MODEL_OPS

Works in a scratch database (created and dropped here). Exit 0 on success; on the first mismatch it
prints the step, the call, what the model expected and what came back, and exits 1.
Nothing here depends on the clock: lots never expire (no expiry or a far-future one) and holds
outlive the run (default TTL of 10 minutes or more). The daily and monthly windows of caps and the
allowance's month hold everything the run does: a run that would start within 2 minutes of midnight
UTC first sleeps until just after it.
"""

import datetime as dt
import json
import os
import random
import sys
import time
import uuid
from collections import Counter
from decimal import ROUND_HALF_UP, Decimal, localcontext

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ductotest  # noqa: E402  (the path above makes the sibling module importable from anywhere)

DEFAULT_SEED = 20240611
DEFAULT_OPS = 3000
DATABASE = "ducto_ledger_model"

MICRO = Decimal("0.000001")
ZERO = Decimal(0)
AMOUNT_LIMIT = Decimal(10) ** 12

# The config plus one model whose price needs rounding: a division (exact to 18 places, half
# away from zero) and a 7th decimal that is a tie when output_tokens is 0.
# Plans: "pro" overrides "odd", "big" overrides the fallback (so every model without an override of
# its own, "gpt-unlisted" and no model at all), "starter" has only a small allowance.
CONFIG = {
    "models": {
        "_default": "input_tokens * 0.001 + output_tokens * 0.003",
        "odd": "input_tokens * 0.0000015 + output_tokens / 7",
    },
    "low_balance_thresholds": [50, 20, 5],
    "plans": {
        "pro": {"name": "Pro", "free_allowance": 3.5,
                "rate_overrides": {"odd": "input_tokens * 0.000002 + output_tokens / 9"}},
        "big": {"name": "Big", "free_allowance": 40,
                "rate_overrides": {"_default": "input_tokens * 0.0005 + output_tokens * 0.002"}},
        "starter": {"name": "Starter", "free_allowance": 0.25},
    },
}
# (input rate, output rate or ("/", divisor)) of each formula above.
FORMULAS = {
    "_default": (Decimal("0.001"), Decimal("0.003")),
    "odd": (Decimal("0.0000015"), ("/", 7)),
    "pro.odd": (Decimal("0.000002"), ("/", 9)),
    "big._default": (Decimal("0.0005"), Decimal("0.002")),
}
ALLOWANCE = {"pro": Decimal("3.5"), "big": Decimal(40), "starter": Decimal("0.25")}
CONFIG_THRESHOLDS = (Decimal(50), Decimal(20), Decimal(5))
CAP_MODELS = (None, None, "odd", "gpt-unlisted")
# "nobody" never receives credits: every debit of it is refused, except a free charge, which opens the account.
USERS = ("alice", "bob", "zoë", "ü" * 255, "nobody")
FUNDED_USERS = USERS[:-1]
FAR_FUTURE = (dt.datetime(2999, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2998, 6, 30, 12, tzinfo=dt.timezone.utc))
PAST = dt.datetime(2001, 1, 1, tzinfo=dt.timezone.utc)
METADATA = ({}, {"order": 1}, {"order": 2, "tag": "x"})
METRIC_KEYS = ("model", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
               "tool_calls", "search_queries", "search_results", "web_search_calls", "code_exec_calls",
               "fixed_job")

# Each function: (parameter, SQL type, default) in declaration order, and the result columns we read.
SIGNATURES = {
    "add_credits": (("user_id", "text", None), ("amount", "numeric", None), ("source", "text", "adjustment"),
                    ("expires_at", "timestamptz", None), ("idempotency_key", "text", None),
                    ("metadata", "jsonb", {})),
    "reserve_credits": (("user_id", "text", None), ("amount", "numeric", None),
                        ("operation_type", "text", "usage"), ("ttl", "interval", dt.timedelta(minutes=10)),
                        ("idempotency_key", "text", None), ("metadata", "jsonb", {})),
    "release_reservation": (("reservation_id", "uuid", None),),
    "deduct_credits": (("user_id", "text", None), ("reservation_id", "uuid", None), ("amount", "numeric", None),
                       ("idempotency_key", "text", None), ("metadata", "jsonb", {})),
    "refund_credits": (("transaction_id", "uuid", None), ("amount", "numeric", None), ("reason", "text", None),
                       ("idempotency_key", "text", None), ("metadata", "jsonb", {})),
    "charge": (("user_id", "text", None), ("metrics", "jsonb", None), ("idempotency_key", "text", None),
               ("metadata", "jsonb", {})),
    # Issue 5's policy settings (always called with valid arguments here; pg_regress covers the errors).
    "set_user_plan": (("user_id", "text", None), ("plan", "text", None)),
    "set_spend_cap": (("user_id", "text", None), ("period", "text", None), ("cap", "numeric", None),
                      ("action", "text", "deny"), ("model", "text", None), ("warn_at", "numeric", Decimal("0.8"))),
    "remove_spend_cap": (("user_id", "text", None), ("period", "text", None), ("model", "text", None)),
    "set_low_balance_thresholds": (("user_id", "text", None), ("thresholds", "numeric[]", None)),
}
# The implementation reads NULL as the default for these (a NULL ttl is a 10-minute hold, not 22004).
NULL_MEANS_DEFAULT = {"source", "operation_type", "ttl"}
CREDIT_COLUMNS = "transaction_id, user_id, amount, balance_after, idempotent, error"
HOLD_COLUMNS = "reservation_id, user_id, amount, available_after, expires_at, idempotent, error"
COLUMNS = {
    "add_credits": CREDIT_COLUMNS,
    "deduct_credits": CREDIT_COLUMNS,
    "reserve_credits": HOLD_COLUMNS,
    "release_reservation": HOLD_COLUMNS,
    "refund_credits": ("refund_transaction_id, original_transaction_id, user_id, amount, balance_after, "
                       "idempotent, error"),
    "charge": ("transaction_id, user_id, amount, balance_after, breakdown::text AS breakdown, idempotent, error, "
               "allowance_used"),
    "set_user_plan": "x->>'plan' AS plan, (x->>'remaining')::numeric AS remaining",
    "set_spend_cap": "1 AS done",
    "remove_spend_cap": "x AS removed",
    "set_low_balance_thresholds": "1 AS done",
}
ID_COLUMN = {"add_credits": "transaction_id", "deduct_credits": "transaction_id", "charge": "transaction_id",
             "reserve_credits": "reservation_id", "release_reservation": "reservation_id",
             "refund_credits": "refund_transaction_id"}


def q6(value):
    """Quantized to 6 places, half away from zero (ROUND_HALF_UP in Python's decimal)."""
    return value.quantize(MICRO, rounding=ROUND_HALF_UP)


def formula_of(model, plan):
    """The formula the engine picks: the plan's override of the model, the model's, the plan's override
    of the fallback, the fallback."""
    model = model or "_default"
    for key in ((f"{plan}.{model}" if plan else None), model, (f"{plan}._default" if plan else None), "_default"):
        if key in FORMULAS:
            return FORMULAS[key]
    raise AssertionError("unreachable: _default exists")


def price(metrics, plan=None):
    """What the config above charges for one usage record (for a user on `plan`), as the engine computes it."""
    input_rate, output_rate = formula_of(metrics.get("model"), plan)
    inputs = Decimal(metrics.get("input_tokens", 0))
    outputs = Decimal(metrics.get("output_tokens", 0))
    if isinstance(output_rate, tuple):
        # '/' is exact to 18 fractional digits, rounded half away from zero.
        output_part = (outputs / output_rate[1]).quantize(Decimal("1e-18"), rounding=ROUND_HALF_UP)
    else:
        output_part = outputs * output_rate
    return max(ZERO, q6(inputs * input_rate + output_part))


# ---- calls ------------------------------------------------------------------------------------------------


class Call:
    """One SQL call of a ledger function with named arguments; omitted parameters take their defaults."""

    def __init__(self, op, **params):
        self.op = op
        self.params = params

    def get(self, name):
        for param, _, default in SIGNATURES[self.op]:
            if param == name:
                value = self.params.get(name, default)
                return default if value is None and name in NULL_MEANS_DEFAULT else value
        raise KeyError(name)

    def request(self):
        """The request's identity for idempotency: the operation and every argument but the key."""
        return (self.op,) + tuple(canonical(self.get(name)) for name, _, _ in SIGNATURES[self.op]
                                  if name != "idempotency_key")

    def sql(self):
        types = {name: sql_type for name, sql_type, _ in SIGNATURES[self.op]}
        args = ", ".join(f"{name} => %s::{types[name]}" for name in self.params)
        values = [Jsonb(v) if types[n] == "jsonb" and v is not None else v for n, v in self.params.items()]
        return f"SELECT {COLUMNS[self.op]} FROM ducto.{self.op}({args}) AS x", values

    def __repr__(self):
        args = ", ".join(f"{name} => {short(value)}" for name, value in self.params.items())
        return f"ducto.{self.op}({args})"


def canonical(value):
    if isinstance(value, Decimal):
        return value.normalize() if value.is_finite() else str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:30] + f"...({len(text)} chars)"


# ---- the reference model ----------------------------------------------------------------------------------


class Raise:
    def __init__(self, sqlstate):
        self.sqlstate = sqlstate


class Reject:
    def __init__(self, code, events=()):
        self.code, self.events = code, list(events)


class Replay:
    def __init__(self, row):
        self.row = row


class Success:
    """Expected columns of a first execution, and what the model does once the row (with its ids) is back."""

    def __init__(self, expected, apply):
        self.expected = expected
        self.apply = apply


class Hold:
    def __init__(self, user, amount):
        self.user, self.amount, self.state = user, amount, "active"
        self.release_row = None


class Debit:
    def __init__(self, user, amount, model=None):
        self.user, self.amount, self.refunded, self.model = user, amount, ZERO, model


class Model:
    def __init__(self):
        self.balance = {}      # user -> balance, for users with an account
        self.holds = {}        # reservation id -> Hold
        self.debits = {}       # transaction id -> Debit (deductions and charges)
        self.credits = {}      # transaction id -> user (grants and refunds: not refundable)
        self.keys = {}         # (user, key) -> (request, row, call) of the first successful execution
        self.ledger_rows = Counter()
        # Issue 5. Everything happens in one UTC day: the daily and monthly windows are the whole run.
        self.plan = {}             # user -> plan id
        self.allowance_used = {}   # user -> allowance used this month (kept across plan changes)
        self.caps = {}             # user -> {(period, model): cap}: deny caps
        self.own_thresholds = {}   # user -> sorted thresholds of their own (may be empty)
        self.events = []           # events the step being applied emits: (type, user, balance_after, data)
        self.event_counts = Counter()

    # -- policies --
    def allowance_remaining(self, user):
        return max(ZERO, ALLOWANCE.get(self.plan.get(user), ZERO) - self.allowance_used.get(user, ZERO))

    def spent(self, user, model):
        """Net debits of the window a cap on `model` (None: all) counts."""
        return sum((d.amount - d.refunded for d in self.debits.values()
                    if d.user == user and (model is None or d.model == model)), ZERO)

    def denying_cap(self, user, model, amount):
        """The first cap (daily before monthly, the all-models cap first) the debit would take over."""
        if amount <= 0:
            return None
        caps = self.caps.get(user, {})
        for period, cap_model in sorted(caps, key=lambda k: (k[0], k[1] is not None, k[1] or "")):
            if cap_model is not None and cap_model != model:
                continue
            spent = self.spent(user, cap_model)
            if spent + amount > caps[(period, cap_model)]:
                return {"period": period, "cap": caps[(period, cap_model)], "spent": spent, "attempted": amount,
                        "error": "cap_reached", **({"model": cap_model} if cap_model else {})}
        return None

    def refuse_over_cap(self, user, model, amount):
        cap = self.denying_cap(user, model, amount)
        if cap is None:
            return None
        balance = self.balance[user]
        return Reject("cap_reached", events=[("credits.cap_reached", user, balance, cap)])

    def debited(self, user, before, after):
        """The low-balance edge: the lowest threshold the debit took the balance from above to at or below."""
        thresholds = self.own_thresholds.get(user, CONFIG_THRESHOLDS)
        crossed = [t for t in thresholds if before > t >= after]
        if crossed:
            self.events.append(("credits.low_balance", user, after, {"balance": after, "threshold": min(crossed)}))

    # -- state --
    def reserved(self, user):
        return sum((h.amount for h in self.holds.values() if h.user == user and h.state == "active"), ZERO)

    def available(self, user):
        return self.balance.get(user, ZERO) - self.reserved(user)

    def expected_balance(self, user):
        balance, reserved = self.balance.get(user, ZERO), self.reserved(user)
        return {"user_id": user, "balance": balance, "reserved": reserved, "available": balance - reserved,
                "allowance_remaining": self.allowance_remaining(user)}

    def bind(self, user, call, row):
        key = call.get("idempotency_key")
        if key is not None:
            self.keys[(user, key)] = (call.request(), row, call)

    def replay_or_conflict(self, user, call):
        """The idempotency check, done under the account lock before anything else."""
        key = call.get("idempotency_key")
        if key is None or (user, key) not in self.keys:
            return None
        request, row, _ = self.keys[(user, key)]
        return Replay(row) if request == call.request() else Reject("idempotency_conflict")

    # -- the operations --
    def predict(self, call):
        return getattr(self, "predict_" + call.op)(call)

    def predict_add_credits(self, call):
        user, amount = call.get("user_id"), call.get("amount")
        invalid = (check_user(user) or check_amount(amount) or check_expires(call.get("expires_at"))
                   or check_key(call.get("idempotency_key")) or check_metadata(call.get("metadata")))
        if invalid:
            return invalid
        early = self.replay_or_conflict(user, call)
        if early:
            return early
        after = self.balance.get(user, ZERO) + amount

        def apply(row):
            self.balance[user] = after
            self.credits[row["transaction_id"]] = user
            self.ledger_rows[user] += 1
            self.bind(user, call, row)
        return Success({"user_id": user, "amount": amount, "balance_after": after}, apply)

    def predict_reserve_credits(self, call):
        user, amount = call.get("user_id"), call.get("amount")
        invalid = (check_user(user) or check_amount(amount) or check_ttl(call.get("ttl"))
                   or check_key(call.get("idempotency_key")) or check_metadata(call.get("metadata")))
        if invalid:
            return invalid
        early = self.replay_or_conflict(user, call)
        if early:
            return early
        after = self.available(user) - amount
        if user not in self.balance or after < 0:
            return Reject("insufficient_credits")

        def apply(row):
            self.holds[row["reservation_id"]] = Hold(user, amount)
            self.bind(user, call, row)
        return Success({"user_id": user, "amount": amount, "available_after": after}, apply)

    def predict_release_reservation(self, call):
        reservation = call.get("reservation_id")
        if reservation is None:
            return Raise("22004")
        hold = self.holds.get(reservation)
        if hold is None:
            return Reject("reservation_not_found")
        if hold.state == "released":
            # Released before: the same call again returns what the release returned.
            return Replay(hold.release_row)
        if hold.state != "active":
            return Reject("reservation_settled")
        after = self.available(hold.user) + hold.amount

        def apply(row):
            hold.state = "released"
            hold.release_row = row
        return Success({"user_id": hold.user, "amount": hold.amount, "available_after": after}, apply)

    def predict_deduct_credits(self, call):
        user, amount, reservation = call.get("user_id"), call.get("amount"), call.get("reservation_id")
        invalid = (check_user(user) or check_amount(amount) or check_key(call.get("idempotency_key"))
                   or check_metadata(call.get("metadata")))
        if invalid:
            return invalid
        early = self.replay_or_conflict(user, call)
        if early:
            return early
        hold = None
        if reservation is not None:
            hold = self.holds.get(reservation)
            if hold is None or hold.user != user:
                return Reject("reservation_not_found")
            if hold.state != "active":
                return Reject("reservation_settled")
            over_cap = self.refuse_over_cap(user, None, amount)
            if over_cap:
                return over_cap
            # Up to the hold always succeeds; beyond it, the excess needs available credit without this hold.
            if amount > hold.amount and self.available(user) + hold.amount - amount < 0:
                return Reject("insufficient_credits")
        else:
            if user not in self.balance:
                return Reject("insufficient_credits")
            over_cap = self.refuse_over_cap(user, None, amount)
            if over_cap:
                return over_cap
            if self.available(user) - amount < 0:
                return Reject("insufficient_credits")
        before = self.balance[user]
        after = before - amount

        def apply(row):
            self.balance[user] = after
            self.debited(user, before, after)
            if hold is not None:
                hold.state = "settled"
            self.debits[row["transaction_id"]] = Debit(user, amount)
            self.ledger_rows[user] += 1
            self.bind(user, call, row)
        return Success({"user_id": user, "amount": -amount, "balance_after": after}, apply)

    def predict_refund_credits(self, call):
        original, amount = call.get("transaction_id"), call.get("amount")
        if original is None:
            return Raise("22004")
        invalid = ((check_amount(amount) if amount is not None else None)
                   or check_key(call.get("idempotency_key")) or check_metadata(call.get("metadata")))
        if invalid:
            return invalid
        if original in self.credits:
            return Reject("not_refundable")
        debit = self.debits.get(original)
        if debit is None:
            return Reject("transaction_not_found")
        user = debit.user
        early = self.replay_or_conflict(user, call)
        if early:
            return early
        remaining = debit.amount - debit.refunded
        # Once nothing is left (or a free charge), any refund is nothing_to_refund, whatever the amount.
        if remaining == 0:
            return Reject("nothing_to_refund")
        if amount is None:
            amount = remaining
        elif amount > remaining:
            return Reject("refund_exceeds_original")
        after = self.balance[user] + amount

        def apply(row):
            self.balance[user] = after
            debit.refunded += amount
            self.credits[row["refund_transaction_id"]] = user
            self.ledger_rows[user] += 1
            self.bind(user, call, row)
        return Success({"user_id": user, "original_transaction_id": original, "amount": amount,
                        "balance_after": after}, apply)

    def predict_charge(self, call):
        user, metrics = call.get("user_id"), call.get("metrics")
        invalid = (check_user(user) or check_metrics(metrics) or check_key(call.get("idempotency_key"))
                   or check_metadata(call.get("metadata")))
        if invalid:
            return invalid
        early = self.replay_or_conflict(user, call)
        if early:
            return early
        model = metrics.get("model")
        total = price(metrics, self.plan.get(user))
        # The free allowance pays first, the balance the rest; caps and the floor see only the rest.
        covered = min(total, self.allowance_remaining(user))
        cost = total - covered
        if user in self.balance:
            over_cap = self.refuse_over_cap(user, model, cost)
            if over_cap:
                return over_cap
        # A free charge is recorded even for a user without an account (available 0 stays at the floor).
        if self.available(user) - cost < 0:
            return Reject("insufficient_credits")
        before = self.balance.get(user, ZERO)
        after = before - cost

        def apply(row):
            self.balance[user] = after
            self.allowance_used[user] = self.allowance_used.get(user, ZERO) + covered
            self.debited(user, before, after)
            self.debits[row["transaction_id"]] = Debit(user, cost, model)
            self.ledger_rows[user] += 1
            self.bind(user, call, row)
        return Success({"user_id": user, "amount": -cost, "balance_after": after, "total": total,
                        "allowance_used": covered}, apply)


    def predict_set_user_plan(self, call):
        user, plan = call.get("user_id"), call.get("plan")

        def apply(row):
            self.balance.setdefault(user, ZERO)  # a policy setting opens the account
            if plan is None:
                self.plan.pop(user, None)
            else:
                self.plan[user] = plan
        used = self.allowance_used.get(user, ZERO)
        remaining = max(ZERO, ALLOWANCE[plan] - used) if plan else ZERO
        return Success({"plan": plan, "remaining": remaining}, apply)

    def predict_set_spend_cap(self, call):
        user, key = call.get("user_id"), (call.get("period"), call.get("model"))

        def apply(row):
            self.balance.setdefault(user, ZERO)
            self.caps.setdefault(user, {})[key] = call.get("cap")
        return Success({"done": 1}, apply)

    def predict_remove_spend_cap(self, call):
        user, key = call.get("user_id"), (call.get("period"), call.get("model"))
        removed = key in self.caps.get(user, {})

        def apply(row):
            if removed:
                del self.caps[user][key]
        return Success({"removed": removed}, apply)

    def predict_set_low_balance_thresholds(self, call):
        user, thresholds = call.get("user_id"), call.get("thresholds")

        def apply(row):
            self.balance.setdefault(user, ZERO)
            if thresholds is None:
                self.own_thresholds.pop(user, None)
            else:
                self.own_thresholds[user] = sorted(set(thresholds))
        return Success({"done": 1}, apply)


# ---- input validation of the contract (22023 invalid, 22004 NULL where a value is required) ---------------


def check_user(user):
    if user is None:
        return Raise("22004")
    if (not user or len(user) > 255 or user != user.strip()
            or any(ord(c) < 32 or ord(c) == 127 for c in user)):
        return Raise("22023")
    return None


def check_amount(amount):
    if amount is None:
        return Raise("22004")
    if not amount.is_finite() or amount <= 0 or amount >= AMOUNT_LIMIT or amount != amount.quantize(MICRO):
        return Raise("22023")
    return None


def check_key(key):
    if key is not None and (not key or len(key) > 255):
        return Raise("22023")
    return None


def check_metadata(metadata):
    return None if isinstance(metadata, dict) else Raise("22023")


def check_expires(expires_at):
    if expires_at is not None and expires_at <= dt.datetime.now(dt.timezone.utc):
        return Raise("22023")
    return None


def check_ttl(ttl):
    if ttl is None:
        return Raise("22004")
    if ttl <= dt.timedelta(0) or ttl > dt.timedelta(days=7):
        return Raise("22023")
    return None


def check_metrics(metrics):
    if metrics is None:
        return Raise("22004")
    if not isinstance(metrics, dict) or any(k not in METRIC_KEYS for k in metrics):
        return Raise("22023")
    for name, value in metrics.items():
        if name != "model" and not (isinstance(value, int) and value >= 0):
            return Raise("22023")
    return None


# ---- random calls -----------------------------------------------------------------------------------------


class Generator:
    def __init__(self, rng, model):
        self.rng, self.model = rng, model

    def amount(self, low_units=1, high_units=40):
        """A valid amount in one of several shapes: integer, cents, micro-credits, trailing zeros."""
        rng = self.rng
        units = rng.randint(low_units, high_units)
        shape = rng.random()
        if shape < 0.35:
            return Decimal(units)
        if shape < 0.6:
            return Decimal(units * 100 + rng.randint(0, 99)).scaleb(-2)
        if shape < 0.85:
            return Decimal(units * 10 ** 6 + rng.randint(0, 10 ** 6 - 1)).scaleb(-6)
        return Decimal(f"{units}.500000")

    def key(self, probability=0.3):
        # A pool large enough for most keyed calls to be first uses, small enough for natural reuse.
        return f"k{self.rng.randint(0, 149)}" if self.rng.random() < probability else None

    def optional(self, call_params, name, value, probability):
        if self.rng.random() < probability:
            call_params[name] = value

    def keyed(self, op, **params):
        """A call with a random key and metadata, sometimes passed explicitly at their defaults."""
        key = self.key()
        if key is not None or self.rng.random() < 0.1:
            params["idempotency_key"] = key
        self.optional(params, "metadata", self.rng.choice(METADATA), 0.3)
        return Call(op, **params)

    def next_call(self):
        rng = self.rng
        kinds = (("add", 14), ("reserve", 12), ("release", 7), ("deduct", 10), ("settle", 12), ("refund", 12),
                 ("charge", 16), ("replay", 7), ("conflict", 4), ("invalid", 6),
                 ("plan", 2), ("cap", 3), ("uncap", 2), ("thresholds", 4))
        kind = rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
        return kind, getattr(self, "gen_" + kind)()

    def gen_add(self):
        params = {"user_id": self.rng.choice(FUNDED_USERS), "amount": self.amount(1, 60)}
        self.optional(params, "source", "purchase", 0.3)
        self.optional(params, "expires_at", self.rng.choice(FAR_FUTURE), 0.3)
        return self.keyed("add_credits", **params)

    def gen_reserve(self):
        params = {"user_id": self.rng.choice(USERS), "amount": self.amount(1, 30)}
        self.optional(params, "operation_type", "render", 0.2)
        self.optional(params, "ttl", self.rng.choice((dt.timedelta(minutes=30), dt.timedelta(days=7), None)), 0.3)
        return self.keyed("reserve_credits", **params)

    def pick_hold(self, states, user=None):
        holds = [r for r, h in self.model.holds.items() if h.state in states and (user is None or h.user == user)]
        return self.rng.choice(holds) if holds else None

    def gen_release(self):
        roll = self.rng.random()
        reservation = (self.pick_hold(("active",)) if roll < 0.75
                       else self.pick_hold(("settled", "released")) if roll < 0.92 else None)
        return Call("release_reservation", reservation_id=reservation or uuid.uuid4())

    def gen_deduct(self):
        # reservation_id has no default: a direct debit passes NULL.
        user = self.rng.choice(USERS)
        amount = self.amount(1, 30)
        # Now and then exactly what is left under the user's tightest all-models cap: allowed.
        room = [cap - self.model.spent(user, None) for (_, model), cap in self.model.caps.get(user, {}).items()
                if model is None]
        if room and min(room) > 0 and self.rng.random() < 0.3:
            amount = min(room)
        return self.keyed("deduct_credits", user_id=user, reservation_id=None, amount=amount)

    def gen_settle(self):
        rng = self.rng
        user = rng.choice(USERS)
        roll = rng.random()
        if roll < 0.7:
            reservation = self.pick_hold(("active",), user)
        elif roll < 0.8:
            reservation = self.pick_hold(("settled", "released"), user)
        elif roll < 0.9:
            reservation = self.pick_hold(("active",))  # maybe another user's
        else:
            reservation = None
        reservation = reservation or uuid.uuid4()
        hold = self.model.holds.get(reservation)
        if hold is None:
            amount = self.amount(1, 20)
        else:
            shape = rng.random()
            if shape < 0.4:
                amount = max(MICRO, (hold.amount * Decimal(rng.randint(1, 99)) / 100).quantize(MICRO))
            elif shape < 0.6:
                amount = hold.amount
            else:
                amount = hold.amount + self.amount(1, 25)
        return self.keyed("deduct_credits", user_id=user, reservation_id=reservation, amount=amount)

    def gen_refund(self):
        rng = self.rng
        roll = rng.random()
        if roll < 0.85 and self.model.debits:
            original = rng.choice(list(self.model.debits))
            debit = self.model.debits[original]
            remaining = debit.amount - debit.refunded
            shape = rng.random()
            params = {"transaction_id": original}
            if shape < 0.35 and remaining > MICRO:
                params["amount"] = (remaining * Decimal(rng.randint(1, 90)) / 100).quantize(MICRO) or MICRO
            elif shape < 0.5 and remaining > 0:
                params["amount"] = remaining
            elif shape < 0.7:
                # The rest of the debit: amount NULL, passed explicitly or left to its default.
                self.optional(params, "amount", None, 0.5)
            else:
                params["amount"] = remaining + self.amount(1, 5)
            self.optional(params, "reason", "support", 0.3)
            return self.keyed("refund_credits", **params)
        # Not a debit: a grant, a refund, or an unknown id (no key: the account is not the point here).
        if roll < 0.95 and self.model.credits:
            original = rng.choice(list(self.model.credits))
        else:
            original = uuid.uuid4()
        return Call("refund_credits", transaction_id=original, amount=self.amount(1, 5))

    def gen_charge(self):
        rng = self.rng
        metrics = {}
        model = rng.random()
        if model < 0.3:
            metrics["model"] = "odd"
        elif model < 0.5:
            metrics["model"] = "gpt-unlisted"  # priced by _default
        if rng.random() < 0.05:
            pass  # no usage at all: a free charge
        else:
            metrics["input_tokens"] = rng.choice((0, 1, 3, rng.randint(0, 20000)))
            if rng.random() < 0.8:
                metrics["output_tokens"] = rng.randint(0, 4000)
        return self.keyed("charge", user_id=rng.choice(USERS), metrics=metrics)

    def gen_plan(self):
        return Call("set_user_plan", user_id=self.rng.choice(USERS),
                    plan=self.rng.choice(("pro", "pro", "big", "starter", None)))

    def gen_cap(self):
        """A deny cap a little above (now and then below) what the user spent: it bites soon."""
        rng = self.rng
        user, model = rng.choice(FUNDED_USERS), rng.choice(CAP_MODELS)
        cap = max(MICRO, self.model.spent(user, model) + self.amount(1, 120) - (40 if rng.random() < 0.1 else 0))
        params = {"user_id": user, "period": rng.choice(("daily", "monthly")), "cap": cap}
        self.optional(params, "action", "deny", 0.3)
        if model is not None or rng.random() < 0.2:
            params["model"] = model
        self.optional(params, "warn_at", rng.choice((Decimal("0.5"), Decimal(1))), 0.3)
        return Call("set_spend_cap", **params)

    def gen_uncap(self):
        caps = [(user, key) for user, by_key in self.model.caps.items() for key in by_key]
        if caps and self.rng.random() < 0.8:
            user, (period, model) = self.rng.choice(caps)
        else:
            user, period, model = self.rng.choice(USERS), self.rng.choice(("daily", "monthly")), None
        return Call("remove_spend_cap", user_id=user, period=period, model=model)

    def gen_thresholds(self):
        """Thresholds around the user's balance, so that debits soon cross them (now and then exactly
        the balance, 0, or the config's again)."""
        rng = self.rng
        user = rng.choice(USERS)
        if rng.random() < 0.2:
            return Call("set_low_balance_thresholds", user_id=user, thresholds=None)
        balance = self.model.balance.get(user, ZERO)
        thresholds = []
        for _ in range(rng.randint(0, 4)):
            shape = rng.random()
            if shape < 0.1:
                thresholds.append(balance if balance >= 0 else ZERO)
            elif shape < 0.2:
                thresholds.append(ZERO)
            else:
                thresholds.append(max(ZERO, balance - Decimal(rng.randint(-1000, 3000)).scaleb(-2)))
        return Call("set_low_balance_thresholds", user_id=user, thresholds=thresholds)

    def gen_replay(self):
        if not self.model.keys:
            return self.gen_add()
        _, _, call = self.model.keys[self.rng.choice(list(self.model.keys))]
        return call

    def gen_conflict(self):
        """A different request under a key already bound: another operation or another amount."""
        if not self.model.keys:
            return self.gen_charge()
        user, key = self.rng.choice(list(self.model.keys))
        _, _, bound = self.model.keys[(user, key)]
        if bound.op == "refund_credits":
            return Call("refund_credits", transaction_id=bound.get("transaction_id"),
                        amount=(bound.get("amount") or ZERO) + MICRO, idempotency_key=key)
        if bound.op == "deduct_credits" and bound.get("reservation_id") is None:
            return Call("deduct_credits", user_id=user, reservation_id=None,
                        amount=bound.get("amount") + 1, idempotency_key=key)
        choice = self.rng.random()
        if choice < 0.5:
            return Call("deduct_credits", user_id=user, reservation_id=None, amount=self.amount(1, 5),
                        idempotency_key=key)
        if choice < 0.75:
            return Call("add_credits", user_id=user, amount=self.amount(1, 5), idempotency_key=key,
                        metadata={"conflict": True})
        return Call("charge", user_id=user, metrics={"input_tokens": 1, "output_tokens": 1},
                    idempotency_key=key, metadata={"conflict": True})

    def gen_invalid(self):
        rng = self.rng
        user = rng.choice(FUNDED_USERS)
        bad_amounts = (ZERO, Decimal("-1"), Decimal("1.0000001"), Decimal("0.0000005"), Decimal("NaN"),
                       Decimal("Infinity"), Decimal("-Infinity"), AMOUNT_LIMIT, None)
        bad_users = ("", " alice", "alice ", "a\tb", "x" * 256, None)
        bad_keys = ("", "k" * 256)
        bad_metadata = ([1, 2], "text", 7)
        bad_metrics = ({"input_tokens": -1}, {"input_tokens": 1.5}, {"bogus": 3}, {"output_tokens": "many"},
                       [1], None)
        bad_ttls = (dt.timedelta(0), dt.timedelta(seconds=-5), dt.timedelta(days=7, seconds=1),
                    dt.timedelta(days=30))
        some_debit = rng.choice(list(self.model.debits)) if self.model.debits else uuid.uuid4()
        candidates = (
            lambda: Call("add_credits", user_id=user, amount=rng.choice(bad_amounts)),
            lambda: Call("add_credits", user_id=rng.choice(bad_users), amount=Decimal(1)),
            lambda: Call("add_credits", user_id=user, amount=Decimal(1), expires_at=PAST),
            lambda: Call("add_credits", user_id=user, amount=Decimal(1), idempotency_key=rng.choice(bad_keys)),
            lambda: Call("add_credits", user_id=user, amount=Decimal(1), metadata=rng.choice(bad_metadata)),
            lambda: Call("reserve_credits", user_id=user, amount=rng.choice(bad_amounts)),
            lambda: Call("reserve_credits", user_id=user, amount=Decimal(1), ttl=rng.choice(bad_ttls)),
            lambda: Call("reserve_credits", user_id=rng.choice(bad_users), amount=Decimal(1)),
            lambda: Call("release_reservation", reservation_id=None),
            lambda: Call("deduct_credits", user_id=user, reservation_id=None, amount=rng.choice(bad_amounts)),
            lambda: Call("deduct_credits", user_id=rng.choice(bad_users), reservation_id=None, amount=Decimal(1)),
            lambda: Call("deduct_credits", user_id=user, reservation_id=None, amount=Decimal(1),
                         idempotency_key=rng.choice(bad_keys)),
            lambda: Call("refund_credits", transaction_id=some_debit,
                         amount=rng.choice([a for a in bad_amounts if a is not None])),
            lambda: Call("refund_credits", transaction_id=None, amount=Decimal(1)),
            lambda: Call("charge", user_id=user, metrics=rng.choice(bad_metrics)),
            lambda: Call("charge", user_id=rng.choice(bad_users), metrics={"input_tokens": 1}),
            lambda: Call("charge", user_id=user, metrics={"input_tokens": 1}, metadata=rng.choice(bad_metadata)),
        )
        return rng.choice(candidates)()


# ---- running and comparing --------------------------------------------------------------------------------


def execute(conn, call):
    """('row', dict) or ('error', sqlstate, message)."""
    sql, values = call.sql()
    try:
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(sql, values).fetchall()
    except psycopg.Error as error:
        return ("error", error.diag.sqlstate, error.diag.message_primary)
    if len(rows) != 1:
        raise ductotest.Mismatch(f"{len(rows)} rows returned, expected exactly 1")
    return ("row", rows[0])


def check_scale(row):
    for name, value in row.items():
        if isinstance(value, Decimal) and (not value.is_finite() or value.as_tuple().exponent < -6):
            raise ductotest.Mismatch(f"column {name} = {value}: not a finite numeric with scale <= 6")


def compare(call, outcome, result, seen_ids):
    """Raises Mismatch unless the result is what the model predicted; returns the row of a success."""
    if isinstance(outcome, Raise):
        if result[0] != "error" or result[1] != outcome.sqlstate:
            raise ductotest.Mismatch(f"expected ERROR {outcome.sqlstate}, got {describe(result)}")
        return None
    if result[0] != "row":
        raise ductotest.Mismatch(f"expected a result row ({describe_outcome(outcome)}), got {describe(result)}")
    row = result[1]
    if isinstance(outcome, Reject):
        if row["error"] != outcome.code or row["idempotent"] is not False:
            raise ductotest.Mismatch(f"expected error {outcome.code} with idempotent false, got {dict(row)}")
        return None
    check_scale(row)
    if isinstance(outcome, Replay):
        expected = dict(outcome.row, idempotent=True)
        if dict(row) != expected:
            raise ductotest.Mismatch(f"expected the original result replayed {expected}, got {dict(row)}")
        return None
    expected = dict(outcome.expected)
    if call.op in ID_COLUMN:  # a ledger operation, not a policy setting
        expected.update(error=None, idempotent=False)
    total = expected.pop("total", None)
    wrong = {name: (value, row[name]) for name, value in expected.items() if row[name] != value}
    if wrong:
        raise ductotest.Mismatch("wrong columns (expected, got): "
                       + ", ".join(f"{n}: {e!r} vs {g!r}" for n, (e, g) in wrong.items()) + f"; row {dict(row)}")
    if call.op not in ID_COLUMN:
        return row
    new_id = row[ID_COLUMN[call.op]]
    if call.op == "release_reservation":
        if new_id != call.get("reservation_id"):
            raise ductotest.Mismatch(f"release returned reservation_id {new_id}, expected {call.get('reservation_id')}")
    elif new_id is None or new_id in seen_ids:
        raise ductotest.Mismatch(f"{ID_COLUMN[call.op]} {new_id} is missing or not new")
    if call.op == "reserve_credits" and row["expires_at"] is None:
        raise ductotest.Mismatch("reserve_credits returned no expires_at")
    if total is not None:
        breakdown = json.loads(row["breakdown"], parse_float=Decimal, parse_int=Decimal)
        if breakdown.get("total") != total:
            raise ductotest.Mismatch(f"breakdown total {breakdown.get('total')!r}, expected {total}: {row['breakdown']}")
    seen_ids.add(new_id)
    return row


def describe(result):
    return f"ERROR {result[1]}: {result[2]}" if result[0] == "error" else f"row {dict(result[1])}"


def describe_outcome(outcome):
    if isinstance(outcome, Reject):
        return f"error {outcome.code}"
    if isinstance(outcome, Replay):
        return "an idempotent replay"
    return f"success {outcome.expected}"


def check_balances(conn, model, users):
    with conn.cursor(row_factory=dict_row) as cur:
        for user in users:
            got = cur.execute("SELECT user_id, balance, reserved, available, allowance_remaining "
                              "FROM ducto.get_balance(%s)",
                              [user]).fetchone()
            expected = model.expected_balance(user)
            if got != expected:
                raise ductotest.Mismatch(f"get_balance({short(user)}): expected {expected}, got {got}")


WATCHED_EVENTS = ("credits.low_balance", "credits.cap_reached")


def check_events(conn, after_id, expected, counts):
    """The low-balance and cap-reached events the step put in the outbox must be exactly the expected
    ones (type, user, balance_after, data); returns the last event id seen."""
    rows = conn.execute("SELECT id, type, user_id, balance_after, data::text FROM ducto.events "
                        "WHERE id > %s AND type = ANY(%s) ORDER BY id", [after_id, list(WATCHED_EVENTS)]).fetchall()
    got = [(t, u, b, json.loads(d, parse_float=Decimal, parse_int=Decimal)) for _, t, u, b, d in rows]
    if got != expected:
        raise ductotest.Mismatch(f"events: expected {expected}, got {got}")
    for event in expected:
        counts[(event[0], event[1])] += 1
    return rows[-1][0] if rows else after_id


def affected_users(call, model):
    users = {call.params.get("user_id")} & set(USERS)
    hold = model.holds.get(call.params.get("reservation_id"))
    debit = model.debits.get(call.params.get("transaction_id"))
    users |= {x.user for x in (hold, debit) if x is not None}
    return sorted(users)


def final_checks(conn, model):
    check_balances(conn, model, USERS)
    for user in USERS:
        rows = conn.execute("SELECT count(*) FROM ducto.transactions(%s, max_rows => 1000)", [user]).fetchone()[0]
        if rows != model.ledger_rows[user]:
            raise ductotest.Mismatch(f"ducto.transactions({short(user)}) has {rows} rows, expected {model.ledger_rows[user]} "
                           "(one per grant, debit and refund; none for holds, rejections and replays)")
    got = Counter({(t, u): n for t, u, n in conn.execute(
        "SELECT type, user_id, count(*) FROM ducto.events WHERE type = ANY(%s) GROUP BY 1, 2",
        [list(WATCHED_EVENTS)]).fetchall()})
    if got != model.event_counts:
        raise ductotest.Mismatch(f"events per user: expected {dict(model.event_counts)}, got {dict(got)}")
    problems = conn.execute("SELECT user_id, problem FROM ducto.verify()").fetchall()
    if problems:
        raise ductotest.Mismatch(f"ducto.verify() reports {len(problems)} problems, first: {problems[:3]}")


def run(seed, operations):
    conn = ductotest.scratch_database(DATABASE)
    conn.execute("SELECT ducto.set_pricing(%s)", [Jsonb(CONFIG)])
    rng = random.Random(seed)
    model = Model()
    generator = Generator(rng, model)
    seen_ids = set()
    tally = Counter()
    last_event = 0
    for step in range(1, operations + 1):
        kind, call = generator.next_call()
        try:
            outcome = model.predict(call)
            result = execute(conn, call)
            row = compare(call, outcome, result, seen_ids)
            model.events = []
            if row is not None:
                outcome.apply(row)
            expected_events = model.events if row is not None else getattr(outcome, "events", [])
            last_event = check_events(conn, last_event, expected_events, model.event_counts)
            users = USERS if step % 50 == 0 else affected_users(call, model)
            check_balances(conn, model, users)
        except ductotest.Mismatch as mismatch:
            ductotest.fail(f"seed {seed}, step {step} ({kind}): {call!r}\n  {mismatch}\n"
                           f"  (database {DATABASE} kept for inspection)")
        tally[label(outcome)] += 1
    try:
        final_checks(conn, model)
    except ductotest.Mismatch as mismatch:
        ductotest.fail(f"seed {seed}, after {operations} operations: {mismatch}")
    conn.close()
    ductotest.drop_database(DATABASE)
    summary = ", ".join(f"{name} {count}" for name, count in sorted(tally.items()))
    events = ", ".join(f"{kind} {sum(n for (t, _), n in model.event_counts.items() if t == kind)}"
                       for kind in WATCHED_EVENTS)
    allowance = sum(model.allowance_used.values(), ZERO)
    print(f"ledger model test: seed {seed}, {operations} operations, all results and balances as modelled "
          f"({summary}); events as modelled: {events}; allowance used {allowance}; verify() clean")


def label(outcome):
    if isinstance(outcome, Raise):
        return f"ERROR {outcome.sqlstate}"
    if isinstance(outcome, Reject):
        return outcome.code
    return "replayed" if isinstance(outcome, Replay) else "succeeded"


def wait_past_midnight():
    """The caps' daily window and the allowance's month must hold the whole run."""
    now = dt.datetime.now(dt.timezone.utc)
    midnight = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if midnight - now < dt.timedelta(minutes=2):
        wait = (midnight - now).total_seconds() + 5
        print(f"ledger model test: {wait:.0f} s to midnight UTC; sleeping past it (daily and monthly windows)")
        time.sleep(wait)


def main():
    wait_past_midnight()
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("DUCTO_MODEL_SEED", DEFAULT_SEED))
    operations = int(os.environ.get("DUCTO_MODEL_OPS", DEFAULT_OPS))
    with localcontext() as context:
        context.prec = 60
        run(seed, operations)


if __name__ == "__main__":
    main()
