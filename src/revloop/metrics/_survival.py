"""Kaplan–Meier survival in the engine, shared by the metrics that censor (compute layer).

Speed to lead censors never-contacted leads; time in stage censors deals still in a
stage. Both need the same estimator (Kaplan & Meier 1958; the lifelines
``KaplanMeierFitter`` conventions), written once here as window functions.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

__all__ = ["km_curve"]


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
    gb = keys or None
    w = ibis.window(group_by=gb, order_by=d[time])
    ranked = d.mutate(
        __event=event.cast(dt.int64),
        # subjects whose time is t or later: the group's size less those before t
        __at_risk=d[time].count().over(w) - ibis.rank().over(w),
    )
    g = ranked.group_by([*keys, time]).aggregate(
        events=ranked.__event.sum(), total=ranked.count(), at_risk=ranked.__at_risk.max()
    )
    g = g.mutate(censored=g.total - g.events)
    asc = ibis.window(group_by=gb, order_by=g[time], rows=(None, 0))
    all_gone = g.events >= g.at_risk
    log_factor = ibis.ifelse(all_gone, 0.0, (1.0 - g.events.cast(dt.float64) / g.at_risk).ln())
    g = g.mutate(survival=ibis.ifelse(all_gone, 0.0, log_factor.sum().over(asc).exp()))
    return g.select(*keys, time, "at_risk", "events", "censored", "survival")
