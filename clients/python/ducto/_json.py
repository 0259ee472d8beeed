"""ducto._json: JSON that keeps decimal numbers exact in both directions.

The database stores jsonb numbers as exact decimals; Python's json module would read them as binary
floats (``0.1`` becomes 0.1000000000000000055...) and cannot write a Decimal at all.
"""

from __future__ import annotations

import json
from decimal import Decimal
from functools import partial
from typing import Any

import psycopg
from psycopg.types.json import Jsonb, set_json_loads

loads_exact = partial(json.loads, parse_float=Decimal)
"""json.loads with every number that has a fraction or an exponent parsed as Decimal."""


def dumps_exact(value: Any) -> str:
    """json.dumps that also writes Decimal values as JSON numbers, digit for digit."""
    return "".join(_encode(value))


def _encode(value: Any):
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} has no JSON representation")
        yield str(value)
    elif isinstance(value, dict):
        yield "{"
        for index, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
            yield ", " if index else ""
            yield json.dumps(key)
            yield ": "
            yield from _encode(item)
        yield "}"
    elif isinstance(value, (list, tuple)):
        yield "["
        for index, item in enumerate(value):
            yield ", " if index else ""
            yield from _encode(item)
        yield "]"
    else:
        yield json.dumps(value, allow_nan=False)  # str, int, float, bool, None; anything else raises


def jsonb(value: Any) -> Jsonb:
    """A psycopg jsonb parameter that may contain Decimal values."""
    return Jsonb(value, dumps=dumps_exact)


def use_exact_json(context: psycopg.Cursor | psycopg.Connection) -> None:
    """Makes json/jsonb values fetched through ``context`` parse numbers with a fraction as Decimal."""
    set_json_loads(loads_exact, context)
