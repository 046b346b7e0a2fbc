"""Time scope and grouping shared by every metric (compute layer)."""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revloop.exceptions import SchemaError
from revloop.metrics._registry import DateLike, Scope

__all__ = ["as_timestamp", "attach", "group_keys", "period_start", "scoped"]

_UNITS = {"day": "D", "week": "W", "month": "M", "quarter": "Q", "year": "Y"}


def as_timestamp(value: DateLike) -> ir.TimestampScalar:
    """A literal timestamp from a date, datetime or ISO string."""
    return ibis.literal(value).cast(dt.Timestamp())


def period_start(ts: ir.TimestampValue, period: str) -> ir.DateValue:
    """The first day of the calendar ``period`` (day, week from Monday, month, quarter, year)."""
    return ts.truncate(_UNITS[period]).date()


def scoped(table: ir.Table, anchor: str, scope: Scope, *, table_name: str) -> ir.Table:
    """``table`` limited to the scope's window on column ``anchor``, with a ``period`` column.

    Rows are kept when ``start <= anchor < end``; with ``as_of`` also ``anchor <= as_of``.
    With ``scope.period`` a ``period`` column (the period's first day) is added; with
    ``scope.by`` the column must exist.
    """
    if scope.by is not None and scope.by not in table.columns:
        shown = [c for c in table.columns if not c.startswith("_")]  # not revloop's own
        raise SchemaError(
            f"cannot group {table_name} by {scope.by!r}: it has {shown}. Pass one of those as --by."
        )
    t = table
    col = t[anchor]
    if scope.start is not None:
        t = t.filter(col >= as_timestamp(scope.start))
    if scope.end is not None:
        t = t.filter(t[anchor] < as_timestamp(scope.end))
    if scope.as_of is not None:
        t = t.filter(t[anchor] <= as_timestamp(scope.as_of))
    if scope.period is not None:
        t = t.mutate(period=period_start(t[anchor], scope.period))
    return t


def group_keys(scope: Scope) -> list[str]:
    """The grouping columns a scoped table carries: ``by`` then ``period``."""
    return [k for k in (scope.by, "period" if scope.period else None) if k is not None]


def attach(base: ir.Table, other: ir.Table, keys: list[str]) -> ir.Table:
    """``base`` with the columns of ``other`` (one row per key) by a left join on ``keys``.

    Keys match null-safely (``IS NOT DISTINCT FROM``): a blank ``by`` value is a group of
    its own, as in a group-by, and gets its figures like any other. Without keys, one-row
    tables are cross-joined.
    """
    if not keys:
        return base.cross_join(other)
    joined = base.left_join(other, [base[k].identical_to(other[k]) for k in keys])
    return joined.drop(*[f"{k}_right" for k in keys if f"{k}_right" in joined.columns])
