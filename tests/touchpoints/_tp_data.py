"""Shared builders for the touchpoints tests (a uniquely named module, importable
from any test file in this folder under pytest's default import mode)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import ibis.expr.types as ir

from revloop.schema import schema

T0 = dt.datetime(2024, 5, 1, 9, 0, 0)


def make_events(rows: list[dict[str, Any]]) -> ir.Table:
    """A canonical events table from partial rows; ``m`` = minutes after T0."""
    spec = schema("events")
    full = []
    for i, r in enumerate(rows):
        r = dict(r)
        if "m" in r:
            r["occurred_at"] = T0 + dt.timedelta(minutes=r.pop("m"))
        r.setdefault("event_id", f"e{i + 1:02d}")
        r.setdefault("anonymous_id", "a")
        r.setdefault("event_type", "page_view")
        full.append(r)
    return ibis.memtable({n: [r.get(n) for r in full] for n in spec.names}, schema=spec)
