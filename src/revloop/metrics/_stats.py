"""Exact quantiles as plain aggregates (compute layer).

Two definitions, the ``percentile`` policy of the lead and pipeline metrics
(``shared/reference/revops.md`` §2):

- ``linear``: ``h = (n − 1) · p``; ``x[⌊h⌋] + (h − ⌊h⌋) · (x[⌈h⌉] − x[⌊h⌋])`` on the
  0-based sorted values (numpy's default, Excel ``PERCENTILE.INC``). On an engine with
  an exact quantile aggregate (Ibis ``quantile``: DuckDB ``quantile_cont``, Spark
  ``percentile``, Snowflake and PostgreSQL ``percentile_cont``) it is that aggregate,
  with no window over the rows. Ibis 12 has none for BigQuery or Trino, and unbound
  tables have no engine yet: there the rows are ranked and the two neighbours
  interpolated, the same figure by SQL every engine runs;
- ``nearest_rank``: the value of 1-based rank ``⌈n · p⌉`` (Excel ``PERCENTILE.EXC``-free
  textbook definition; what HubSpot and most BI tools show as "p90"; SQL
  ``PERCENTILE_DISC``). Ibis has no discrete quantile of a number (its ``quantile`` is
  the continuous one), so the rows are ranked and the one of that rank is picked with a
  conditional ``max``, which every engine runs alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.operations as ops
import ibis.expr.types as ir

__all__ = ["exact_quantile", "quantile", "quantiles", "ranked"]

# guards ⌈n · p⌉ against binary fractions: 0.7 * 10 == 7.000000000000001
_EPS = 1e-9


def ranked(
    t: ir.Table,
    keys: Sequence[str],
    col: str,
    *,
    where: ir.BooleanValue | None = None,
    method: str = "nearest_rank",
) -> ir.Table:
    """``t`` with ``__q_ok`` (row counts), ``__q_rn`` (0-based rank of ``col``) and ``__q_n``.

    Rows count when ``col`` is not null and ``where`` holds; ranks and counts are within
    ``keys`` among counting rows (other rows keep their place but are never picked).
    With ``method="linear"`` on an engine with an exact quantile aggregate only
    ``__q_ok`` is added: :func:`quantile` then needs no rank.
    """
    ok = t[col].notnull() if where is None else (where.fill_null(False) & t[col].notnull())
    t = t.mutate(__q_ok=ok)
    if method == "linear" and exact_quantile(t):
        return t
    part = [*keys, "__q_ok"]
    return t.mutate(
        __q_rn=ibis.row_number().over(ibis.window(group_by=part, order_by=t[col])),
        __q_n=t.count().over(ibis.window(group_by=part)),
    )


def quantile(r: ir.Table, col: str, p: float, method: str) -> ir.FloatingScalar:
    """Quantile ``p`` of ``col`` as an aggregate over a table from :func:`ranked`
    (ranked with the same ``method``)."""
    x = r[col].cast(dt.float64)
    if method == "linear" and "__q_rn" not in r.columns:
        return x.quantile(p, where=r.__q_ok)
    # the count as a double: ``n * 0.9`` would be DECIMAL arithmetic in DuckDB (a float
    # literal is typed DECIMAL), 50x slower per row
    ok, rn, n = r.__q_ok, r.__q_rn, r.__q_n.cast(dt.float64)
    if method == "nearest_rank":
        k = ibis.greatest((n * p - _EPS).ceil().cast(dt.int64) - 1, 0)
        return x.max(where=ok & (rn == k))
    if method != "linear":
        raise ValueError(f"percentile method {method!r}: use 'linear' or 'nearest_rank'")
    h = (n - 1.0) * p
    lo, hi = h.floor().cast(dt.int64), h.ceil().cast(dt.int64)
    x_lo = x.max(where=ok & (rn == lo))
    x_hi = x.max(where=ok & (rn == hi))
    frac = (h - lo).max(where=ok)
    return x_lo + frac * (x_hi - x_lo)


def exact_quantile(t: ir.Table) -> bool:
    """Whether the engine of ``t`` has an exact quantile aggregate (Ibis ``Quantile``).

    Reads the backend's capabilities, never runs anything. False for unbound tables,
    whose SQL may be compiled for any engine.
    """
    try:
        backend = t.get_backend()
    except Exception:  # unbound tables, or tables of several backends
        return False
    return bool(backend.has_operation(ops.Quantile))


def quantiles(
    t: ir.Table,
    keys: Sequence[str],
    col: str,
    qs: Mapping[str, float],
    method: str,
    *,
    where: ir.BooleanValue | None = None,
) -> ir.Table:
    """Per ``keys``, the quantiles ``qs`` (output name → p) of ``col`` (nulls ignored).

    >>> import revloop
    >>> t = ibis.memtable({"g": ["a"] * 4 + ["b"], "x": [1.0, 2.0, 3.0, 10.0, 5.0]})
    >>> q = quantiles(t, ["g"], "x", {"med": 0.5, "p90": 0.9}, "linear").order_by("g")
    >>> revloop.connect().to_pandas(q).round(6).to_dict("list")  # a: h=1.5 → 2.5; h=2.7 → 3 + .7·7
    {'g': ['a', 'b'], 'med': [2.5, 5.0], 'p90': [7.9, 5.0]}
    """
    r = ranked(t, keys, col, where=where, method=method)
    aggs = {name: quantile(r, col, q, method) for name, q in qs.items()}
    return r.group_by(list(keys)).aggregate(**aggs) if keys else r.aggregate(**aggs)
