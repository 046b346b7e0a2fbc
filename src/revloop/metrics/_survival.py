"""Kaplan–Meier survival in the engine, shared by the metrics that censor (compute layer).

Speed to lead censors never-contacted leads; time in stage censors deals still in a
stage. Both need the same estimator (Kaplan & Meier 1958; the lifelines
``KaplanMeierFitter`` conventions), written once here as window functions.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

__all__ = ["km_curve", "km_steps"]


def km_curve(d: ir.Table, keys: list[str], time: str, event: ir.BooleanValue) -> ir.Table:
    """The Kaplan–Meier curve of ``time`` per ``keys``; rows where ``event`` is false are censored.

    Output: [keys,] ``time``, at_risk, events, censored, survival (S just after ``time``),
    one row per distinct time. Survival is exactly 0 once every subject at risk has had
    the event. ``time`` is never null (the callers censor at a horizon).

    Two sorted passes, the fewest the estimator allows: the subjects at risk at t (all
    subjects of the group less those whose time is earlier, a rank), then the running
    product of (1 - d/n) as a running sum of logarithms. Everyone at risk has the event
    only at a group's last time (nobody is left after it), so that row's survival is 0
    without a running maximum.
    """
    g = _ranked(d, keys, time, event)
    g = g.group_by([*keys, time]).aggregate(
        events=g.__event.sum(), total=g.count(), at_risk=g.__at_risk.max()
    )
    g = g.mutate(censored=g.total - g.events)
    g = _with_survival(g, keys, time)
    return g.select(*keys, time, "at_risk", "events", "censored", "survival")


def km_steps(d: ir.Table, keys: list[str], time: str, event: ir.BooleanValue) -> ir.Table:
    """The steps of :func:`km_curve`: its rows at the times with an event only.

    Output: [keys,] ``time``, at_risk, events, survival. What a quantile of the curve
    reads (S only changes at an event, so the smallest t with S(t) ≤ p is one of these
    times): censored times still count in ``at_risk``, but the group-by and the running
    sum run over the events alone (a third fewer rows when a third of the subjects are
    censored, as never-contacted leads are).
    """
    g = _ranked(d, keys, time, event)
    g = g.filter(g.__event == 1)
    g = g.group_by([*keys, time]).aggregate(events=g.count(), at_risk=g.__at_risk.max())
    g = _with_survival(g, keys, time)
    return g.select(*keys, time, "at_risk", "events", "survival")


def _ranked(d: ir.Table, keys: list[str], time: str, event: ir.BooleanValue) -> ir.Table:
    """``d`` with ``__event`` (0/1) and ``__at_risk``: the subjects of the group whose time
    is ``time`` or later (the group's size less those before, a rank)."""
    w = ibis.window(group_by=keys or None, order_by=d[time])
    return d.mutate(
        __event=event.cast(dt.int64),
        __at_risk=d[time].count().over(w) - ibis.rank().over(w),
    )


def _with_survival(g: ir.Table, keys: list[str], time: str) -> ir.Table:
    """``g`` (one row per time with ``events`` and ``at_risk``) with ``survival``: the
    running product of (1 - d/n), as a running sum of logarithms."""
    asc = ibis.window(group_by=keys or None, order_by=g[time], rows=(None, 0))
    all_gone = g.events >= g.at_risk
    log_factor = ibis.ifelse(all_gone, 0.0, (1.0 - g.events.cast(dt.float64) / g.at_risk).ln())
    return g.mutate(survival=ibis.ifelse(all_gone, 0.0, log_factor.sum().over(asc).exp()))
