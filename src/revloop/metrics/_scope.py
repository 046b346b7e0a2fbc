"""Time scope and grouping shared by every metric (compute layer)."""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revloop.exceptions import SchemaError
from revloop.metrics._registry import DateLike, Scope

__all__ = ["as_timestamp", "attach", "group_keys", "period_start", "scoped", "with_lone_groups"]

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


def with_lone_groups(
    out: ir.Table, counts: ir.Table, keys: list[str], **values: ir.Value
) -> ir.Table:
    """``out`` plus one row per group of ``counts`` that ``out`` has no row for.

    What a metric counts as left out of its figures (deals without a close date, leads
    touched before they were created) must not vanish with a group that has nothing
    else: such a group gets a row carrying its counts. The row takes the columns of
    ``counts`` it shares with ``out`` (the keys, the counts), then ``values``; its other
    integer columns are 0 (nothing of that group was counted) and the rest null (no
    figure). Keys match null-safely, as in :func:`attach`; without keys, the one row of
    ``counts`` is added when ``out`` is empty.
    """
    if keys:
        seen = out.select(*keys).distinct()
        lone = counts.anti_join(seen, [counts[k].identical_to(seen[k]) for k in keys])
    else:
        lone = counts.cross_join(out.aggregate(__rows=out.count()))
        lone = lone.filter(lone.__rows == 0)
    schema = out.schema()

    def cell(c: str) -> ir.Value:
        if c in values:
            return values[c].cast(schema[c])
        if c in counts.columns:
            return lone[c].cast(schema[c])
        if schema[c].is_integer():
            return ibis.literal(0, schema[c])
        return ibis.null(schema[c])

    return out.union(lone.select(**{c: cell(c) for c in out.columns}))
