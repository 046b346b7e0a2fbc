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
    the event.
    """
    g = (
        d.mutate(__event=event.cast(dt.int64))
        .group_by([*keys, time])
        .aggregate(events=ibis._.__event.sum(), total=ibis._.count())
    )
    gb = keys or None
    # at risk at t: everyone whose time is t or later
    desc = ibis.window(group_by=gb, order_by=ibis.desc(g[time]), rows=(None, 0))
    g = g.mutate(at_risk=g.total.sum().over(desc), censored=g.total - g.events)
    asc = ibis.window(group_by=gb, order_by=g[time], rows=(None, 0))
    all_gone = g.events >= g.at_risk
    log_factor = ibis.ifelse(all_gone, 0.0, (1.0 - g.events.cast(dt.float64) / g.at_risk).ln())
    g = g.mutate(__zero=all_gone.cast(dt.int64).max().over(asc), __log=log_factor.sum().over(asc))
    g = g.mutate(survival=ibis.ifelse(g.__zero > 0, 0.0, g.__log.exp()))
    return g.select(*keys, time, "at_risk", "events", "censored", "survival")
