"""Pipeline metrics: win rate, sales cycle, velocity, coverage, stages, slippage, deal size.

Definitions, vendor defaults and sources: ``shared/reference/revops.md`` §2.4–2.8
(cited below as "revops.md §x"). Every function builds an unexecuted Ibis table.

A deal won without an amount is never dropped silently: amount-based figures leave it
out of their sums and count it in a ``won_without_amount`` column (a deal whose
currency has no FX rate counts there too), so a report can warn about it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revloop.attribution import to_reporting_currency
from revloop.exceptions import ConfigError
from revloop.metrics._registry import Benchmark, Policy, Scope, metric
from revloop.metrics._scope import as_timestamp, group_keys, scoped
from revloop.schema import conform

__all__ = [
    "average_deal_size",
    "pipeline_coverage",
    "pipeline_velocity",
    "sales_cycle",
    "win_rate",
]

_DAY = 86400.0
_EPS = 1e-9

# ---------------------------------------------------------------- shared policies

_CURRENCY = Policy("reporting_currency", "USD", doc="ISO 4217 code amounts are converted to.")
_BASIS = Policy(
    "basis",
    "count",
    ("count", "amount"),
    doc="Win rate over deals (won ÷ (won + lost)) or over money (won $ ÷ (won $ + lost $)).",
    sources={
        "count": "the standard definition; Salesforce and HubSpot win-rate reports (revops.md §2.4)",
        "amount": "Fivetran dbt_salesforce total_win_percent = bookings / (bookings + lost) (revops.md §2.4, §5.1)",
    },
)
_PERCENTILE = Policy(
    "percentile",
    "linear",
    ("linear", "nearest_rank"),
    doc="How a median or percentile is read off the data: interpolated between the two "
    "nearest values, or the smallest observed value whose rank is at least q × n.",
    sources={
        "linear": "DuckDB/Postgres percentile_cont, numpy's default (type 7)",
        "nearest_rank": "Excel PERCENTILE.EXC-free nearest-rank definition; always an observed value",
    },
)


def _positive_number(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return "expected a positive number, e.g. --param target=500000"
    return None


def _days(later: ir.TimestampValue, earlier: ir.TimestampValue) -> ir.FloatingValue:
    """Days from ``earlier`` to ``later`` (fractional, to the second)."""
    return (later.epoch_seconds() - earlier.epoch_seconds()).cast(dt.float64) / _DAY


def _deals(tables: Mapping[str, ir.Table], scope: Scope, reporting_currency: str) -> ir.Table:
    """Opportunities as known at ``scope.as_of``, with ``amt`` in the reporting currency.

    With ``as_of``: deals created later are left out, and a deal closed later is still
    ``open`` (its ``closed_at`` is null). ``amt`` is converted at the close (or creation) day.
    """
    opp = conform(tables["opportunities"], "opportunities")
    if scope.as_of is not None:
        cut = as_timestamp(scope.as_of)
        opp = opp.filter(opp.created_at <= cut)
        later = opp.closed_at.notnull() & (opp.closed_at > cut)
        opp = opp.mutate(
            status=ibis.ifelse(later, "open", opp.status),
            closed_at=ibis.ifelse(later, ibis.null(dt.timestamp), opp.closed_at),
        )
    opp = opp.mutate(__fx_at=opp.closed_at.coalesce(opp.created_at))
    opp = to_reporting_currency(
        opp,
        tables.get("fx_rates"),
        at="__fx_at",
        reporting_currency=reporting_currency,
        key="opportunity_id",
    )
    return opp.mutate(amt=opp.amount_reporting).drop("__fx_at", "amount_reporting")


def _agg(t: ir.Table, keys: list[str], **aggs: Any) -> ir.Table:
    if keys:
        return t.group_by(keys).aggregate(**aggs)
    return t.aggregate(**aggs)


def _attach(base: ir.Table, other: ir.Table, keys: list[str]) -> ir.Table:
    """``base`` with the columns of ``other`` (one row per key), by left join on ``keys``."""
    if not keys:
        return base.cross_join(other)
    joined = base.left_join(other, keys)
    return joined.drop(*[f"{k}_right" for k in keys if f"{k}_right" in joined.columns])


def _spine(parts: Sequence[ir.Table], keys: list[str]) -> ir.Table:
    """Every key combination present in any of ``parts`` (one row when there are no keys)."""
    if not keys:
        return ibis.memtable({"__one": [1]})
    out = parts[0].select(*keys)
    for p in parts[1:]:
        out = out.union(p.select(*keys))
    return out.distinct()


def _finish(t: ir.Table, keys: list[str], cols: Sequence[str]) -> ir.Table:
    t = t.select(*keys, *cols)
    return t.order_by(keys) if keys else t


def _quantiles(
    t: ir.Table, keys: list[str], col: str, qs: Mapping[str, float], method: str
) -> ir.Table:
    """Per ``keys``, the quantiles ``qs`` (name → q) of column ``col`` (nulls ignored)."""
    if method == "linear":
        return _agg(t, keys, **{name: t[col].quantile(q) for name, q in qs.items()})
    r = t.filter(t[col].notnull())
    gb = keys or None
    r = r.mutate(
        __rank=ibis.row_number().over(ibis.window(group_by=gb, order_by=r[col])) + 1,
        __n=r[col].count().over(ibis.window(group_by=gb)),
    )
    aggs = {
        name: r[col].min(where=r.__rank >= (r.__n.cast(dt.float64) * q - _EPS).ceil())
        for name, q in qs.items()
    }
    return _agg(r, keys, **aggs)


def _won_lost(opp: ir.Table, scope: Scope) -> ir.Table:
    closed = opp.filter(opp.status.isin(("won", "lost")) & opp.closed_at.notnull())
    return scoped(closed, "closed_at", scope, table_name="opportunities")


def _win_aggs(t: ir.Table) -> dict[str, Any]:
    won = t.status == "won"
    lost = t.status == "lost"
    return {
        "won": won.sum().cast(dt.int64),
        "lost": lost.sum().cast(dt.int64),
        "won_amount": t.amt.sum(where=won).coalesce(0.0),
        "lost_amount": t.amt.sum(where=lost).coalesce(0.0),
        "won_without_amount": (won & t.amt.isnull()).sum().cast(dt.int64),
        "lost_without_amount": (lost & t.amt.isnull()).sum().cast(dt.int64),
    }


def _rate(num: ir.NumericValue, den: ir.NumericValue) -> ir.FloatingValue:
    return ibis.ifelse(den > 0, num.cast(dt.float64) / den.cast(dt.float64), ibis.null(dt.float64))


def _win_value(t: ir.Table, basis: str) -> ir.FloatingValue:
    if basis == "amount":
        return _rate(t.won_amount, t.won_amount + t.lost_amount)
    return _rate(t.won, t.won + t.lost)


# ---------------------------------------------------------------- average deal size


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
        _CURRENCY,
    ),
)
def average_deal_size(
    tables: Mapping[str, ir.Table], *, scope: Scope, statistic: str, reporting_currency: str
) -> ir.Table:
    """Average amount of deals won, by the day they were won.

    Output: [by, period,] value (mean or median won amount in the reporting currency),
    deals (won deals), won_amount (their total), won_without_amount (won deals with no
    amount or no FX rate: not in value, counted here).
    """
    opp = _deals(tables, scope, reporting_currency)
    won = opp.filter((opp.status == "won") & opp.closed_at.notnull())
    won = scoped(won, "closed_at", scope, table_name="opportunities")
    amount = won.amt
    value = amount.mean() if statistic == "mean" else amount.median()
    keys = group_keys(scope)
    out = _agg(
        won,
        keys,
        value=value,
        deals=won.count(),
        won_amount=amount.sum(),
        won_without_amount=amount.isnull().sum().cast(dt.int64),
    )
    return out.order_by(keys) if keys else out


# ---------------------------------------------------------------- win rate


@metric(
    "win_rate",
    family="pipeline",
    tables=("opportunities",),
    optional_tables=("fx_rates",),
    policies=(
        _BASIS,
        Policy(
            "variant",
            "period",
            ("period", "cohort"),
            doc="period: deals closed in the period, won ÷ (won + lost), open deals excluded. "
            "cohort: deals created in the period, share won (within window_days of creation "
            "when given) with still-open deals kept in the denominator, i.e. the cumulative "
            "incidence of a win, which does not overstate young cohorts.",
            sources={
                "period": "Salesforce/HubSpot win-rate reports; Fivetran win_percent_this_month by close date (revops.md §2.4)",
                "cohort": "funnelcast.com 'compute win rates the way epidemiologists compute case fatality' (revops.md §2.4)",
            },
        ),
        Policy(
            "window_days",
            None,
            doc="cohort variant only: count a win only within this many days of creation; "
            "None counts every win up to as_of.",
            sources={"window_days": "mature-cohort convention of revops.md §2.3/§2.4"},
            check=_positive_number,
        ),
        _CURRENCY,
    ),
)
def win_rate(
    tables: Mapping[str, ir.Table],
    *,
    scope: Scope,
    basis: str,
    variant: str,
    window_days: float | None,
    reporting_currency: str,
) -> ir.Table:
    """Share of deals (or of money) won.

    Output: [by, period,] value, won, lost, won_amount, lost_amount, won_without_amount,
    lost_without_amount; the cohort variant adds ``created`` and ``open`` (created in the
    cohort, not won or lost in the window). With ``basis="amount"`` deals without an amount
    are left out of the ratio and counted in the ``*_without_amount`` columns.
    """
    opp = _deals(tables, scope, reporting_currency)
    keys = group_keys(scope)
    if variant == "period":
        closed = _won_lost(opp, scope)
        out = _agg(closed, keys, **_win_aggs(closed))
        out = out.mutate(value=_win_value(out, basis))
        cols = ["value", "won", "lost", "won_amount", "lost_amount"]
        return _finish(out, keys, [*cols, "won_without_amount", "lost_without_amount"])
    cohort = scoped(opp, "created_at", scope, table_name="opportunities")
    in_window = cohort.closed_at.notnull()
    if window_days is not None:
        in_window = in_window & (_days(cohort.closed_at, cohort.created_at) <= float(window_days))
    status = ibis.ifelse(in_window, cohort.status, "open")
    cohort = cohort.mutate(status=status)
    aggs = _win_aggs(cohort)
    aggs["created"] = cohort.count()
    aggs["open"] = (cohort.status == "open").sum().cast(dt.int64)
    aggs["all_amount"] = cohort.amt.sum().coalesce(0.0)
    out = _agg(cohort, keys, **aggs)
    if basis == "amount":
        value = _rate(out.won_amount, out.all_amount)
    else:
        value = _rate(out.won, out.created)
    out = out.mutate(value=value)
    cols = ["value", "created", "won", "lost", "open", "won_amount", "lost_amount"]
    return _finish(out, keys, [*cols, "won_without_amount", "lost_without_amount"])


# ---------------------------------------------------------------- sales cycle


def _cycles(opp: ir.Table, scope: Scope) -> ir.Table:
    won = opp.filter((opp.status == "won") & opp.closed_at.notnull())
    won = scoped(won, "closed_at", scope, table_name="opportunities")
    return won.mutate(days=_days(won.closed_at, won.created_at))


@metric(
    "sales_cycle",
    family="pipeline",
    tables=("opportunities",),
    policies=(
        Policy(
            "statistic",
            "median",
            ("median", "mean"),
            doc="Headline figure over won deals' days from creation to close.",
            sources={
                "median": "ooligo.com/en/learn/pipeline-velocity: 'cycle time is a median, not a mean' (revops.md §2.5)",
                "mean": "Fivetran avg_days_to_close; ChartMogul 'Average sales cycle length' (revops.md §2.5)",
            },
        ),
        _PERCENTILE,
    ),
)
def sales_cycle(
    tables: Mapping[str, ir.Table], *, scope: Scope, statistic: str, percentile: str
) -> ir.Table:
    """Days from creation to close of won deals, by the day they were won.

    Output: [by, period,] value (median or mean days), median, p75, p90, mean, deals.
    Lost and open deals are not in it (revops.md §2.5).
    """
    opp = _deals(tables, scope, "USD")
    won = _cycles(opp, scope)
    keys = group_keys(scope)
    base = _agg(won, keys, deals=won.count(), mean=won.days.mean())
    qs = _quantiles(won, keys, "days", {"median": 0.5, "p75": 0.75, "p90": 0.9}, percentile)
    out = _attach(base, qs, keys)
    out = out.mutate(value=out.median if statistic == "median" else out["mean"])
    return _finish(out, keys, ["value", "median", "p75", "p90", "mean", "deals"])


# ---------------------------------------------------------------- pipeline velocity


def _log_mean(a: ir.FloatingValue, b: ir.FloatingValue) -> ir.FloatingValue:
    """Logarithmic mean (a − b) / (ln a − ln b), = a when a = b (LMDI weights)."""
    return ibis.ifelse(a == b, a, (a - b) / (a.ln() - b.ln()))


@metric(
    "pipeline_velocity",
    family="pipeline",
    tables=("opportunities",),
    optional_tables=("fx_rates",),
    policies=(
        _BASIS,
        Policy(
            "cycle_statistic",
            "median",
            ("median", "mean"),
            doc="Cycle length of the deals won in the period: median or mean days.",
            sources={
                "median": "ooligo.com/en/learn/pipeline-velocity 'use the median cycle' (revops.md §2.6)",
                "mean": "the textbook formula's 'average sales cycle length' (revops.md §2.6)",
            },
        ),
        Policy(
            "per",
            "day",
            ("day", "month"),
            doc="Velocity in money per day, or per 30-day month (×30).",
            sources={
                "day": "standard formula, $/day (revops.md §2.6)",
                "month": "'Monthly velocity = ×30' (revops.md §2.6)",
            },
        ),
        _CURRENCY,
    ),
)
def pipeline_velocity(
    tables: Mapping[str, ir.Table],
    *,
    scope: Scope,
    basis: str,
    cycle_statistic: str,
    per: str,
    reporting_currency: str,
) -> ir.Table:
    """Expected revenue throughput: opportunities × win rate × deal size ÷ cycle days.

    Computed from flows (revops.md §2.6, "our version"): ``opportunities`` created in the
    period, the win rate of deals closed in it (``basis``), the mean amount and the
    median (or mean) cycle of deals won in it. With ``period``, ``change`` is the
    difference from the previous period (per ``by``) and the ``contrib_*`` columns split it
    among the four levers by the logarithmic (LMDI) decomposition,
    ΔV = L(V₁, V₀) · [Δln N + Δln w + Δln s − Δln c], so they add up to ``change``
    exactly (null when a lever is zero or missing in either period).

    Output: [by, period,] value, opportunities, win_rate, average_deal_size, cycle_days,
    won_without_amount, change, contrib_opportunities, contrib_win_rate,
    contrib_deal_size, contrib_cycle.
    """
    opp = _deals(tables, scope, reporting_currency)
    keys = group_keys(scope)
    created = scoped(opp, "created_at", scope, table_name="opportunities")
    n = _agg(created, keys, opportunities=created.count())
    closed = _won_lost(opp, scope)
    wr = _agg(closed, keys, **_win_aggs(closed))
    wr = wr.mutate(win_rate=_win_value(wr, basis)).select(*keys, "win_rate", "won_without_amount")
    won = _cycles(opp, scope)
    size = _agg(won, keys, average_deal_size=won.amt.mean(), mean_days=won.days.mean())
    med = _quantiles(won, keys, "days", {"median_days": 0.5}, "linear")
    out = _spine([n, wr, size], keys)
    for part in (n, wr, size, med):
        out = _attach(out, part, keys)
    cycle = out.median_days if cycle_statistic == "median" else out.mean_days
    factor = 30.0 if per == "month" else 1.0
    out = out.mutate(
        opportunities=out.opportunities.coalesce(0),
        cycle_days=cycle,
    )
    out = out.mutate(
        value=ibis.ifelse(
            out.cycle_days > 0,
            out.opportunities.cast(dt.float64)
            * out.win_rate
            * out.average_deal_size
            / out.cycle_days
            * factor,
            ibis.null(dt.float64),
        )
    )
    levers = {
        "opportunities": "contrib_opportunities",
        "win_rate": "contrib_win_rate",
        "average_deal_size": "contrib_deal_size",
        "cycle_days": "contrib_cycle",
    }
    if scope.period is None:
        out = out.mutate(
            change=ibis.null(dt.float64), **{c: ibis.null(dt.float64) for c in levers.values()}
        )
    else:
        w = ibis.window(group_by=[scope.by] if scope.by else None, order_by="period")
        prev = {f"prev_{k}": out[k].lag().over(w) for k in ["value", *levers]}
        out = out.mutate(**prev)
        ok = out.value > 0
        for k in levers:
            ok = ok & (out[k] > 0) & (out[f"prev_{k}"] > 0)
        weight = _log_mean(out.value, out.prev_value)
        contrib = {}
        for k, name in levers.items():
            sign = -1.0 if k == "cycle_days" else 1.0
            ratio = out[k].cast(dt.float64) / out[f"prev_{k}"].cast(dt.float64)
            contrib[name] = ibis.ifelse(ok, sign * weight * ratio.ln(), ibis.null(dt.float64))
        out = out.mutate(change=out.value - out.prev_value, **contrib)
    cols = ["value", "opportunities", "win_rate", "average_deal_size", "cycle_days"]
    return _finish(out, keys, [*cols, "won_without_amount", "change", *levers.values()])


# ---------------------------------------------------------------- pipeline coverage


def _unbounded(scope: Scope) -> Scope:
    """The scope without ``as_of``: for expected close dates, which may lie ahead of it."""
    return Scope(by=scope.by, period=scope.period, start=scope.start, end=scope.end)


@metric(
    "pipeline_coverage",
    family="pipeline",
    tables=("opportunities",),
    optional_tables=("fx_rates",),
    policies=(
        Policy(
            "target",
            None,
            doc="Quota or revenue target of each period (money, reporting currency). Required.",
            sources={"target": "coverage = open pipeline ÷ remaining quota (revops.md §2.7)"},
            check=_positive_number,
        ),
        _BASIS,
        _CURRENCY,
    ),
    benchmarks=(
        Benchmark(
            "rule-of-thumb coverage (the inverse of a ~33% win rate, not survey-backed)",
            3.0,
            "x",
            "winsabove.pages.dev/glossary/pipeline-coverage-ratio (revops.md §2.7)",
        ),
    ),
)
def pipeline_coverage(
    tables: Mapping[str, ir.Table],
    *,
    scope: Scope,
    target: float | None,
    basis: str,
    reporting_currency: str,
) -> ir.Table:
    """Open pipeline with its expected close date in the period, ÷ the target.

    Deals open at ``as_of`` (now when not given) are grouped by the period of their
    ``close_date``; ``start``/``end`` bound the close date. ``required_coverage`` is
    1 ÷ the win rate (``basis``) of every deal closed up to ``as_of`` (per ``by``): the
    coverage that, at that win rate, just meets the target (revops.md §2.7).

    Output: [by, period,] value, open_pipeline, open_deals, open_without_amount, target,
    win_rate, required_coverage, gap (value − required_coverage).
    """
    if target is None:
        raise ConfigError(
            "pipeline_coverage needs a target (quota) per period: pass target=500000 "
            "(CLI: --param target=500000)."
        )
    opp = _deals(tables, scope, reporting_currency)
    keys = group_keys(scope)
    open_ = scoped(
        opp.filter(opp.status == "open"),
        "close_date",
        _unbounded(scope),
        table_name="opportunities",
    )
    out = _agg(
        open_,
        keys,
        open_pipeline=open_.amt.sum().coalesce(0.0),
        open_deals=open_.count(),
        open_without_amount=open_.amt.isnull().sum().cast(dt.int64),
    )
    closed = opp.filter(opp.status.isin(("won", "lost")) & opp.closed_at.notnull())
    by = [scope.by] if scope.by else []
    wr = _agg(closed, by, **_win_aggs(closed))
    wr = wr.mutate(win_rate=_win_value(wr, basis)).select(*by, "win_rate")
    out = _attach(out, wr, by)
    tgt = ibis.literal(float(target))
    out = out.mutate(
        value=out.open_pipeline / tgt,
        target=tgt,
        required_coverage=ibis.ifelse(out.win_rate > 0, 1.0 / out.win_rate, ibis.null(dt.float64)),
    )
    out = out.mutate(gap=out.value - out.required_coverage)
    cols = ["value", "open_pipeline", "open_deals", "open_without_amount", "target"]
    return _finish(out, keys, [*cols, "win_rate", "required_coverage", "gap"])
