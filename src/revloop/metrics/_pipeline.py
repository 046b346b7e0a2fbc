"""Pipeline metrics: win rate, sales cycle, velocity, coverage, stages, slippage, deal size.

Definitions, vendor defaults and sources: ``shared/reference/revops.md`` §2.4–2.8.
"""

from __future__ import annotations

from collections.abc import Mapping

import ibis.expr.types as ir

from revloop.attribution import to_reporting_currency
from revloop.metrics._registry import Policy, Scope, metric
from revloop.metrics._scope import group_keys, scoped
from revloop.schema import conform

__all__ = ["average_deal_size"]


@metric(
    "average_deal_size",
    family="pipeline",
    tables=("opportunities",),
    optional_tables=("fx_rates",),
    policies=(
        Policy(
            "statistic",
            "mean",
            ("mean", "median"),
            doc="Mean (the usual ASP/average deal size) or median of won amounts.",
            sources={
                "mean": "HubSpot and Salesforce 'average deal size': won amount / won deals",
                "median": "robust alternative; one large deal moves the mean",
            },
        ),
        Policy("reporting_currency", "USD", doc="ISO 4217 code amounts are converted to."),
    ),
)
def average_deal_size(
    tables: Mapping[str, ir.Table], *, scope: Scope, statistic: str, reporting_currency: str
) -> ir.Table:
    """Average amount of deals won, by the day they were won.

    Output: [by, period,] value (mean or median won amount in the reporting currency),
    deals (won deals), won_amount (their total).
    """
    opp = conform(tables["opportunities"], "opportunities")
    won = opp.filter((opp.status == "won") & opp.closed_at.notnull())
    won = to_reporting_currency(
        won,
        tables.get("fx_rates"),
        at="closed_at",
        reporting_currency=reporting_currency,
        key="opportunity_id",
    )
    won = scoped(won, "closed_at", scope, table_name="opportunities")
    amount = won.amount_reporting
    value = amount.mean() if statistic == "mean" else amount.median()
    keys = group_keys(scope)
    aggs = {"value": value, "deals": won.count(), "won_amount": amount.sum()}
    if keys:
        return won.group_by(keys).aggregate(**aggs).order_by(keys)
    return won.aggregate(**aggs)
