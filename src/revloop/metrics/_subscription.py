"""Subscription revenue metrics: MRR ledger, ARR, churn rates, NRR/GRR, ARPA, LTV, cohorts.

Every metric is read off the customer-grain ledger of :mod:`revloop.metrics._mrr`.
Definitions, vendor defaults and sources: ``shared/reference/revops.md`` §1 and
``docs/metrics-subscription.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revloop.metrics._mrr import (
    LEDGER_POLICIES,
    aggregate_ledger,
    customer_attribute,
    customer_ledger,
)
from revloop.metrics._registry import Benchmark, Policy, Scope, metric

__all__ = ["arr", "mrr", "mrr_movements", "net_new_mrr"]

_TABLES = ("subscriptions",)
_OPTIONAL = ("fx_rates",)
_LEDGER_KEYS = tuple(p.name for p in LEDGER_POLICIES)


def _totals(tables: Mapping[str, ir.Table], scope: Scope, policy: Mapping[str, Any]) -> ir.Table:
    ledger_policy = {k: policy[k] for k in _LEDGER_KEYS}
    led = customer_ledger(tables, scope=scope, **ledger_policy)
    by = None if scope.by is None else customer_attribute(tables["subscriptions"], scope.by)
    return aggregate_ledger(led, scope, by=by)


def _keys(scope: Scope) -> list[str]:
    return [k for k in (scope.by, "period" if scope.period else None) if k is not None]


def _ratio(num: ir.NumericValue, den: ir.NumericValue) -> ir.FloatingValue:
    """``num / den``, null when the denominator is zero."""
    return ibis.ifelse(den == 0, ibis.null(dt.float64), num.cast(dt.float64) / den.cast(dt.float64))


def _front(t: ir.Table, scope: Scope, cols: list[str]) -> ir.Table:
    return t.select(*_keys(scope), *cols)


@metric(
    "mrr",
    family="subscription",
    tables=_TABLES,
    optional_tables=_OPTIONAL,
    policies=LEDGER_POLICIES,
)
def mrr(tables: Mapping[str, ir.Table], *, scope: Scope, **policy: Any) -> ir.Table:
    """Monthly recurring revenue at the end of the period (the last month of the window).

    Output: [by, period,] value (MRR in the reporting currency), customers (paying
    customers), unknown_interval (rows with an unknown interval; value is null when > 0).
    """
    t = _totals(tables, scope, policy)
    t = t.mutate(value=t.end_mrr, customers=t.customers_end)
    return _front(t, scope, ["value", "customers", "unknown_interval"])


@metric(
    "arr",
    family="subscription",
    tables=_TABLES,
    optional_tables=_OPTIONAL,
    policies=LEDGER_POLICIES,
)
def arr(tables: Mapping[str, ir.Table], *, scope: Scope, **policy: Any) -> ir.Table:
    """Annual recurring revenue: 12 × MRR at the end of the period (Baremetrics, revops.md §1.1).

    Output: [by, period,] value (ARR), mrr, customers, unknown_interval.
    """
    t = _totals(tables, scope, policy)
    t = t.mutate(value=t.end_mrr * 12.0, mrr=t.end_mrr, customers=t.customers_end)
    return _front(t, scope, ["value", "mrr", "customers", "unknown_interval"])


_MOVEMENT_COLS = [
    "start_mrr",
    "new",
    "expansion",
    "reactivation",
    "contraction",
    "churn",
    "fx",
    "end_mrr",
    "reconciles",
    "customers_start",
    "new_customers",
    "reactivated_customers",
    "churned_customers",
    "new_churned_customers",
    "customers_end",
    "unknown_interval",
]


@metric(
    "mrr_movements",
    family="subscription",
    tables=_TABLES,
    optional_tables=_OPTIONAL,
    policies=LEDGER_POLICIES,
)
def mrr_movements(tables: Mapping[str, ir.Table], *, scope: Scope, **policy: Any) -> ir.Table:
    """The MRR bridge: start + new + expansion + reactivation − contraction − churn ± fx = end.

    Output: [by, period,] value (net new MRR = end − start − fx), start_mrr, new,
    expansion, reactivation, contraction, churn, fx (exchange-rate impact, never a
    movement), end_mrr, reconciles (the identity holds for every customer-month and
    for the totals), customer counts, unknown_interval.
    """
    t = _totals(tables, scope, policy)
    t = t.mutate(value=t.new + t.expansion + t.reactivation - t.contraction - t.churn)
    return _front(t, scope, ["value", *_MOVEMENT_COLS])


@metric(
    "net_new_mrr",
    family="subscription",
    tables=_TABLES,
    optional_tables=_OPTIONAL,
    policies=LEDGER_POLICIES,
)
def net_new_mrr(tables: Mapping[str, ir.Table], *, scope: Scope, **policy: Any) -> ir.Table:
    """Net new MRR: new + expansion + reactivation − contraction − churn (FX impact excluded).

    Output: [by, period,] value, new, expansion, reactivation, contraction, churn, fx.
    """
    t = _totals(tables, scope, policy)
    t = t.mutate(value=t.new + t.expansion + t.reactivation - t.contraction - t.churn)
    return _front(
        t, scope, ["value", "new", "expansion", "reactivation", "contraction", "churn", "fx"]
    )


_ = (Benchmark, Policy)
