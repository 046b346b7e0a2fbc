"""Pipeline metrics: win rate, sales cycle, velocity, coverage, stages, slippage, deal size.

Definitions, vendor defaults and sources: ``shared/reference/revops.md`` §2.4–2.8
(cited below as "revops.md §x"). Every function builds an unexecuted Ibis table.

A deal won without an amount is never dropped silently: amount-based figures leave it
out of their sums and count it in a ``won_without_amount`` column (a deal whose
currency has no FX rate counts there too), so a report can warn about it. Inconsistent
deal rows are counted the same way: ``closed_without_date`` (won or lost, no
``closed_at``) and ``closed_before_created`` (left out of cycle statistics). With
``as_of`` a deal's amount and close date are those stage_history knew then (:func:`_deals`).
"""

from __future__ import annotations

import calendar
import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revloop.attribution import to_reporting_currency
from revloop.exceptions import ConfigError, SchemaError
from revloop.metrics._registry import Benchmark, Policy, Scope, SharedBuild, as_datetime, metric
from revloop.metrics._scope import (
    as_timestamp,
    attach,
    group_keys,
    period_start,
    scoped,
    with_lone_groups,
)
from revloop.metrics._stats import quantiles
from revloop.metrics._survival import km_steps
from revloop.schema import conform

__all__ = [
    "average_deal_size",
    "pipeline_coverage",
    "pipeline_velocity",
    "pipeline_waterfall",
    "sales_cycle",
    "slippage",
    "stage_conversion",
    "time_in_stage",
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


def _stages_check(value: Any) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, list | tuple)
        or not value
        or not all(isinstance(v, str) for v in value)
    ):
        return 'expected the open stages in funnel order, e.g. --param stages=\'["Discovery", "Demo", "Proposal"]\''
    if len(set(value)) != len(value):
        return "a stage is listed twice"
    return None


_STAGES = Policy(
    "stages",
    None,
    doc="The open stages in funnel order (closed stages are read from the deal's status). "
    "None infers the order: stages sorted by the mean rank of their first entry within a deal.",
    sources={
        "stages": "Salesforce OpportunityStage sort order; HubSpot pipeline display_order (revops.md §3.1, §5.2)"
    },
    check=_stages_check,
)


_QUALIFIED = Policy(
    "qualified_stage",
    None,
    doc="Count only qualified deals: those that reached this stage (or a later one in "
    "``stages`` order) in stage_history, or were won. None: every opportunity is qualified.",
    sources={
        "qualified_stage": "revops.md §2.4 'qualified win rate (from the stage where reps qualify)', "
        "§2.6 'count only qualified opportunities', §2.7 'required coverage = 1 ÷ win rate of qualified pipeline'"
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


def deals_key(scope: Scope, reporting_currency: str) -> str:
    """The name materialised :func:`_deals` go by.

    >>> deals_key(Scope(as_of="2025-01-01"), "EUR")
    'deals(as_of=2025-01-01, reporting_currency=EUR)'
    """
    return f"deals(as_of={scope.as_of}, reporting_currency={reporting_currency})"


def _shared_deals(
    tables: Mapping[str, ir.Table],
    *,
    scope: Scope,
    reporting_currency: str = "USD",
    qualified_stage: str | None = None,
    **_: Any,
) -> dict[str, SharedBuild]:
    """``{key: builder}``: the converted deals every deal metric reads, and the stage
    history when ``qualified_stage`` needs it."""
    whole = Scope(as_of=scope.as_of)

    def build(available: Mapping[str, ir.Table]) -> ir.Table:
        return _deals(available, whole, reporting_currency)

    out: dict[str, SharedBuild] = {deals_key(whole, reporting_currency): build}
    if qualified_stage is not None and "stage_history" in tables:
        out.update(_shared_history(tables, scope=scope))
    return out


def _deals(tables: Mapping[str, ir.Table], scope: Scope, reporting_currency: str) -> ir.Table:
    """Opportunities as known at ``scope.as_of``, with ``amt`` in the reporting currency.

    With ``as_of``: deals created later are left out, and a deal closed later is still
    ``open`` (its ``closed_at`` is null). ``close_date`` and ``amount`` are those known at
    ``as_of``: the latest value of each in the deal's stage-history rows at or before it
    (a blank in a row is "not recorded", as in :func:`_slipped_deals`), the opportunities
    row only when the deal has none, so nothing after ``as_of`` is read (revops.md §3.6:
    "never use current values of amount, close_date … for past t"). Without ``as_of``
    the opportunities row is today's state and is used as it is.

    ``amt`` is ``amount`` in ``reporting_currency`` at the rate of the close day, or of the
    creation day while the deal is open (:func:`revloop.attribution.to_reporting_currency`:
    the latest ``fx_rates`` row on or before that day); null when the amount or the rate is
    unknown. A runner of several metrics may have materialised them under :func:`deals_key`.
    """
    shared = tables.get(deals_key(Scope(as_of=scope.as_of), reporting_currency))
    if shared is not None:
        return shared
    opp = conform(tables["opportunities"], "opportunities")
    if scope.as_of is not None:
        cut = as_timestamp(scope.as_of)
        opp = opp.filter(opp.created_at <= cut)
        later = opp.closed_at.notnull() & (opp.closed_at > cut)
        opp = opp.mutate(
            status=ibis.ifelse(later, "open", opp.status),
            closed_at=ibis.ifelse(later, ibis.null(dt.timestamp), opp.closed_at),
        )
        opp = _known_at(opp, tables.get("stage_history"), cut)
    opp = opp.mutate(__fx_at=opp.closed_at.coalesce(opp.created_at))
    opp = to_reporting_currency(
        opp,
        tables.get("fx_rates"),
        at="__fx_at",
        reporting_currency=reporting_currency,
    )
    return opp.mutate(amt=opp.amount_reporting).drop("__fx_at", "amount_reporting")


#: The deal fields stage_history records over time, which :func:`_known_at` rewinds.
_TRACKED = ("amount", "close_date")


def _known_at(opp: ir.Table, history: ir.Table | None, cut: ir.TimestampScalar) -> ir.Table:
    """``opp`` with ``amount`` and ``close_date`` as stage_history knew them at ``cut``.

    Per deal and field: the value of its latest stage-history row at or before ``cut``
    with the field set; the opportunities value when there is none (no history, no row
    yet, or a field the export does not carry).
    """
    if history is None:
        return opp
    fields = [f for f in _TRACKED if f in history.columns]
    if not fields:
        return opp
    sh = conform(history, "stage_history")
    sh = sh.filter(sh.changed_at <= cut)
    known = sh.group_by(__kid=sh.opportunity_id).aggregate(
        **{f"__k_{f}": sh[f].last(order_by=sh.changed_at) for f in fields}
    )
    m = opp.left_join(known, opp.opportunity_id == known.__kid)
    return m.mutate(**{f: m[f"__k_{f}"].coalesce(m[f]) for f in fields}).select(*opp.columns)


def _qualified(
    opp: ir.Table,
    tables: Mapping[str, ir.Table],
    scope: Scope,
    qualified_stage: str | None,
    stages: Sequence[str] | None,
) -> ir.Table:
    """``opp`` limited to qualified deals: won, or reached ``qualified_stage`` (or later)."""
    if qualified_stage is None:
        return opp
    if "stage_history" not in tables:
        raise ConfigError(
            f"qualified_stage={qualified_stage!r} needs the stage_history table to know which "
            "deals reached it. Add stage_history.csv to the folder, or leave qualified_stage unset."
        )
    if stages is not None and qualified_stage not in stages:
        raise ConfigError(
            f"qualified_stage={qualified_stage!r} is not one of stages={list(stages)}. "
            "Pass a stage of that list."
        )
    h = _history(tables, scope)
    pos = _positions(_entries_of(tables, scope, h), stages)
    hp = h.inner_join(pos, "stage")
    q = pos.filter(pos.stage == qualified_stage).select(__qpos=pos.position)
    hp = hp.cross_join(q)
    reached = hp.filter(hp.position >= hp.__qpos).select(__qid=hp.opportunity_id).distinct()
    marked = opp.left_join(reached, opp.opportunity_id == reached.__qid)
    qualified = marked.__qid.notnull() | (marked.status == "won")
    if stages is None:
        # a stage no history row names (a misspelling) qualifies no deal, so the figures
        # are null rather than a 100 % win rate of the won deals alone
        qualified = qualified & (pos.stage == qualified_stage).any().as_scalar()
    return marked.filter(qualified).drop("__qid")


def _agg(t: ir.Table, keys: list[str], **aggs: Any) -> ir.Table:
    if keys:
        return t.group_by(keys).aggregate(**aggs)
    return t.aggregate(**aggs)


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


def _won_lost(opp: ir.Table, scope: Scope) -> ir.Table:
    closed = opp.filter(opp.status.isin(("won", "lost")) & opp.closed_at.notnull())
    return scoped(closed, "closed_at", scope, table_name="opportunities")


def _undated(opp: ir.Table) -> ir.BooleanValue:
    """Won or lost with no ``closed_at``: closed, but when is not known."""
    return opp.status.isin(("won", "lost")) & opp.closed_at.isnull()


def _with_undated(out: ir.Table, opp: ir.Table, scope: Scope) -> ir.Table:
    """``out`` plus ``closed_without_date``: the deals of each ``by`` group (all deals
    without ``by``) that are won or lost but have no ``closed_at``, created before ``end``
    (they may have closed in the window). A figure anchored on the close cannot place them
    in a period, so they are in none of its figures and counted on every row of their
    group instead of vanishing (revops.md §6: data quality is the first cause of bad
    figures). A ``by`` group with such deals and no figure gets a row of its own (its
    figures and ``period`` null, its counts 0), so its count is not lost either."""
    u = opp.filter(_undated(opp))
    if scope.end is not None:
        u = u.filter(u.created_at < as_timestamp(scope.end))
    by = [scope.by] if scope.by is not None else []
    n = _agg(u, by, closed_without_date=u.count())
    out = attach(out, n, by)
    out = out.mutate(closed_without_date=out.closed_without_date.coalesce(0).cast(dt.int64))
    return with_lone_groups(out, n, by) if by else out  # without by: one row always


def _win_aggs(t: ir.Table) -> dict[str, Any]:
    won = t.status == "won"
    lost = t.status == "lost"
    # counts over no deals are 0, not null (the rate is then null)
    return {
        "won": won.sum().cast(dt.int64).coalesce(0),
        "lost": lost.sum().cast(dt.int64).coalesce(0),
        "won_amount": t.amt.sum(where=won).coalesce(0.0),
        "lost_amount": t.amt.sum(where=lost).coalesce(0.0),
        "won_without_amount": (won & t.amt.isnull()).sum().cast(dt.int64).coalesce(0),
        "lost_without_amount": (lost & t.amt.isnull()).sum().cast(dt.int64).coalesce(0),
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
    shared=_shared_deals,
    tables=("opportunities",),
    optional_tables=("fx_rates", "stage_history"),
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

    Parameters
    ----------
    tables
        Canonical tables by name: opportunities (optional: fx_rates).
    scope
        Grouping (``by``, ``period``), window (``start``, ``end``) and ``as_of``.
    statistic
        Mean (the usual ASP/average deal size) or median of won amounts. Default 'mean'.
    reporting_currency
        ISO 4217 code amounts are converted to. Default 'USD'.

    Returns
    -------
    ibis.Table
        Unexecuted; columns [by, period,] value (mean or median won amount in the reporting
        currency), deals (won deals), won_amount (their total), won_without_amount (won
        deals with no amount or no FX rate: not in value, counted here),
        closed_without_date (won or lost deals without ``closed_at``, see
        :func:`_with_undated`).
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
    out = _with_undated(out, opp, scope)
    return out.order_by(keys) if keys else out


# ---------------------------------------------------------------- win rate


@metric(
    "win_rate",
    family="pipeline",
    shared=_shared_deals,
    tables=("opportunities",),
    optional_tables=("fx_rates", "stage_history"),
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
            "estimator",
            "naive",
            ("naive", "aalen_johansen"),
            doc="cohort variant only: naive = won ÷ created, a deal still open counts as not "
            "won; aalen_johansen = the cumulative incidence of a win by window_days (or ever) "
            "with lost as a competing event and deals still open at as_of censored at their "
            "age, so a young cohort is not read as a bad one (count basis only).",
            sources={
                "naive": "created-date-filtered win-rate reports in Salesforce and HubSpot (revops.md §2.4)",
                "aalen_johansen": "funnelcast.com and statmodeling.stat.columbia.edu 2019/10/08 (revops.md §2.4): survival / competing-risks win rate",
            },
        ),
        _QUALIFIED,
        _STAGES,
        Policy(
            "window_days",
            None,
            doc="cohort variant only: count a win only within this many days of creation; "
            "None counts every win up to as_of. With the naive estimator only mature deals "
            "count (created at least window_days before as_of, else the data's end); younger "
            "ones are left out and counted in ``immature``.",
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
    estimator: str,
    window_days: float | None,
    qualified_stage: str | None,
    stages: Sequence[str] | None,
    reporting_currency: str,
) -> ir.Table:
    """Share of deals (or of money) won.

    Parameters
    ----------
    tables
        Canonical tables by name: opportunities (optional: fx_rates, stage_history).
    scope
        Grouping (``by``, ``period``), window (``start``, ``end``) and ``as_of``.
    basis
        Win rate over deals (won ÷ (won + lost)) or over money (won $ ÷ (won $ + lost $)).
        Default 'count'.
    variant
        period: deals closed in the period, won ÷ (won + lost), open deals excluded. cohort:
        deals created in the period, share won (within window_days of creation when given)
        with still-open deals kept in the denominator, i.e. the cumulative incidence of a
        win, which does not overstate young cohorts. Default 'period'.
    qualified_stage
        Count only qualified deals: those that reached this stage (or a later one in
        ``stages`` order) in stage_history, or were won. None: every opportunity is
        qualified. Default None.
    stages
        The open stages in funnel order (closed stages are read from the deal's status).
        None infers the order: stages sorted by the mean rank of their first entry within a
        deal. Default None.
    window_days
        cohort variant only: count a win only within this many days of creation; None counts
        every win up to as_of. With the naive estimator only mature deals count (created at
        least window_days before as_of, else the data's end); younger ones are left out and
        counted in ``immature``. Default None.
    reporting_currency
        ISO 4217 code amounts are converted to. Default 'USD'.

    Returns
    -------
    ibis.Table
        Unexecuted; columns [by, period,] value, won, lost, won_amount, lost_amount,
        won_without_amount, lost_without_amount (of qualified deals when ``qualified_stage``
        is set), closed_without_date (won or lost deals without ``closed_at``: left out;
        the period variant counts them per ``by`` group on every row, see
        :func:`_with_undated`, the cohort variant in their creation cohort); the cohort
        variant adds ``created`` and ``open`` (created in the cohort, not won or lost in
        the window), ``censored`` and ``immature``. With ``basis="amount"`` deals without an
        amount are left out of the ratio and counted in the ``*_without_amount`` columns.

        Naive cohort with ``window_days``: a deal younger than the window at the horizon
        may still win within it, so reading it as not won biases young cohorts down; like
        lead_to_opportunity_rate's ``immature_leads`` (revops.md §2.3 "report conversion
        within 30/60/90 days and mature cohorts only", §2.4), such deals leave
        ``created``/``won``/``lost``/``open`` and the value and are counted in
        ``immature``. Aalen–Johansen keeps them, censored at their age (``censored``), so
        its ``immature`` is 0.
    """
    if estimator == "aalen_johansen" and variant == "period":
        raise ConfigError(
            "win_rate: estimator='aalen_johansen' follows a cohort of deals from creation; "
            "use it with variant='cohort', or estimator='naive' with variant='period'."
        )
    if estimator == "aalen_johansen" and basis == "amount":
        raise ConfigError(
            "win_rate: estimator='aalen_johansen' estimates a share of deals; "
            "use basis='count' with it, or estimator='naive' with basis='amount'."
        )
    opp = _deals(tables, scope, reporting_currency)
    opp = _qualified(opp, tables, scope, qualified_stage, stages)
    keys = group_keys(scope)
    if variant == "period":
        closed = _won_lost(opp, scope)
        out = _agg(closed, keys, **_win_aggs(closed))
        out = out.mutate(value=_win_value(out, basis))
        out = _with_undated(out, opp, scope)
        cols = ["value", "won", "lost", "won_amount", "lost_amount"]
        tail = ["won_without_amount", "lost_without_amount", "closed_without_date"]
        return _finish(out, keys, [*cols, *tail])
    ref = as_timestamp(scope.as_of) if scope.as_of is not None else None
    created = scoped(opp, "created_at", scope, table_name="opportunities")
    if ref is None:
        # scalar subqueries over every deal: the data's end, not the cohort's latest time
        last = opp.created_at.max().as_scalar()
        ref = ibis.greatest(last, opp.closed_at.max().as_scalar().coalesce(last))
    undated = created.filter(_undated(created))
    undated_n = _agg(undated, keys, closed_without_date=undated.count())
    cohort = created.filter(~_undated(created))
    aj = _aalen_johansen(cohort, keys, ref, window_days)
    if window_days is not None and estimator == "naive":
        mature = _days(ref, cohort.created_at) >= float(window_days)
    else:
        mature = ibis.literal(True)
    cohort = cohort.mutate(__mature=mature)
    young = cohort.filter(~cohort.__mature)
    young_n = _agg(young, keys, immature=young.count())
    # every cohort with a deal keeps its row, even when all of them are immature or undated
    out = _spine([created], keys)
    cohort = cohort.filter(cohort.__mature).drop("__mature")
    in_window = cohort.closed_at.notnull()
    if window_days is not None:
        in_window = in_window & (_days(cohort.closed_at, cohort.created_at) <= float(window_days))
    status = ibis.ifelse(in_window, cohort.status, "open")
    cohort = cohort.mutate(status=status)
    aggs = _win_aggs(cohort)
    aggs["created"] = cohort.count()
    aggs["open"] = (cohort.status == "open").sum().cast(dt.int64)
    aggs["all_amount"] = cohort.amt.sum().coalesce(0.0)
    for part in (_agg(cohort, keys, **aggs), aj, young_n, undated_n):
        out = attach(out, part, keys)
    counts = ["created", "won", "lost", "open", "censored", "immature", "closed_without_date"]
    out = out.mutate(**{c: out[c].coalesce(0).cast(dt.int64) for c in counts})
    out = out.mutate(
        won_amount=out.won_amount.coalesce(0.0),
        lost_amount=out.lost_amount.coalesce(0.0),
        all_amount=out.all_amount.coalesce(0.0),
        won_without_amount=out.won_without_amount.coalesce(0),
        lost_without_amount=out.lost_without_amount.coalesce(0),
    )
    if estimator == "aalen_johansen":
        value = out.aj_won
    elif basis == "amount":
        value = _rate(out.won_amount, out.all_amount)
    else:
        value = _rate(out.won, out.created)
    out = out.mutate(value=value)
    cols = ["value", "created", "won", "lost", "open", "censored", "immature"]
    tail = ["won_without_amount", "lost_without_amount", "closed_without_date"]
    return _finish(out, keys, [*cols, "won_amount", "lost_amount", *tail])


def _aalen_johansen(
    cohort: ir.Table, keys: list[str], ref: ir.TimestampValue, window_days: float | None
) -> ir.Table:
    """Per ``keys``: ``aj_won``, the Aalen–Johansen cumulative incidence of a win by
    ``window_days`` after creation (or by the latest age), lost a competing event; and
    ``censored``, the deals still open at ``ref`` before reaching the window.
    """
    closed = cohort.closed_at.notnull()
    age = _days(ref, cohort.created_at)
    # a deal closed before it was created (inconsistent data, a warning of the validator)
    # closes at age 0, as the naive estimator counts it within any window
    t = ibis.ifelse(closed, ibis.greatest(_days(cohort.closed_at, cohort.created_at), 0.0), age)
    ev = ibis.cases(
        (closed & (cohort.status == "won"), 1), (closed & (cohort.status == "lost"), 2), else_=0
    )
    d = cohort.mutate(__t=t, __ev=ev)
    if window_days is not None:
        late = d.__t > float(window_days)
        d = d.mutate(
            __t=ibis.ifelse(late, float(window_days), d.__t), __ev=ibis.ifelse(late, 0, d.__ev)
        )
    cens = d.__ev == 0
    if window_days is not None:
        cens = cens & (d.__t < float(window_days))
    d = d.mutate(__cens=cens)
    g = d.group_by([*keys, "__t"]).aggregate(
        d_won=(d.__ev == 1).sum(),
        d_all=(d.__ev > 0).sum(),
        total=d.count(),
        cens=d.__cens.sum(),
    )
    gk = keys or None
    desc = ibis.window(group_by=gk, order_by=ibis.desc(g.__t), rows=(None, 0))
    g = g.mutate(at_risk=g.total.sum().over(desc))
    asc = ibis.window(group_by=gk, order_by=g.__t, rows=(None, 0))
    gone = g.d_all >= g.at_risk
    log_f = ibis.ifelse(gone, 0.0, (1.0 - g.d_all.cast(dt.float64) / g.at_risk).ln())
    g = g.mutate(__zero=gone.cast(dt.int64).max().over(asc), __log=log_f.sum().over(asc))
    g = g.mutate(__s=ibis.ifelse(g.__zero > 0, 0.0, g.__log.exp()))
    g = g.mutate(__before=g.__s.lag().over(ibis.window(group_by=gk, order_by=g.__t)).coalesce(1.0))
    inc = g.__before * g.d_won.cast(dt.float64) / g.at_risk
    return _agg(g, keys, aj_won=inc.sum(), censored=g.cens.sum().cast(dt.int64))


# ---------------------------------------------------------------- sales cycle


def _cycles(opp: ir.Table, scope: Scope) -> ir.Table:
    """Won deals closed in the scope, with ``days`` from creation to close and
    ``backwards`` (closed on a day before the one it was created: inconsistent data,
    ``days`` null so it is in no cycle statistic; a negative cycle would drag the median
    and mean down). A deal closed the day it was created has a cycle of at least 0: a
    close *date* (Salesforce CloseDate, midnight) earlier in that day than the creation
    time is the same day, not a backwards deal."""
    won = opp.filter((opp.status == "won") & opp.closed_at.notnull())
    won = scoped(won, "closed_at", scope, table_name="opportunities")
    backwards = won.closed_at.date() < won.created_at.date()
    days = ibis.greatest(_days(won.closed_at, won.created_at), 0.0)
    days = ibis.ifelse(backwards, ibis.null(dt.float64), days)
    return won.mutate(days=days, backwards=backwards)


@metric(
    "sales_cycle",
    family="pipeline",
    shared=_shared_deals,
    tables=("opportunities",),
    optional_tables=("fx_rates", "stage_history"),
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

    Parameters
    ----------
    tables
        Canonical tables by name: opportunities.
    scope
        Grouping (``by``, ``period``), window (``start``, ``end``) and ``as_of``.
    statistic
        Headline figure over won deals' days from creation to close. Default 'median'.
    percentile
        How a median or percentile is read off the data: interpolated between the two
        nearest values, or the smallest observed value whose rank is at least q × n. Default
        'linear'.

    Returns
    -------
    ibis.Table
        Unexecuted; columns [by, period,] value (median or mean days), median, p75, p90,
        mean, deals, closed_before_created (won deals whose ``closed_at`` is before their
        ``created_at``: inconsistent data, in no statistic and not in ``deals``, as the
        lead metrics treat ``contacted_before_created``), closed_without_date (won or lost
        deals without ``closed_at``, see :func:`_with_undated`). Lost and open deals are
        not in it (revops.md §2.5).
    """
    opp = _deals(tables, scope, "USD")
    won = _cycles(opp, scope)
    keys = group_keys(scope)
    ok = won.days.notnull()
    base = _agg(
        won,
        keys,
        deals=ok.sum().cast(dt.int64),
        mean=won.days.mean(),
        closed_before_created=won.backwards.sum().cast(dt.int64),
    )
    qs = quantiles(won, keys, "days", {"median": 0.5, "p75": 0.75, "p90": 0.9}, percentile)
    out = attach(base, qs, keys)
    out = out.mutate(value=out.median if statistic == "median" else out["mean"])
    out = _with_undated(out, opp, scope)
    cols = ["value", "median", "p75", "p90", "mean", "deals", "closed_before_created"]
    return _finish(out, keys, [*cols, "closed_without_date"])


# ---------------------------------------------------------------- pipeline velocity


def _log_mean(a: ir.FloatingValue, b: ir.FloatingValue) -> ir.FloatingValue:
    """Logarithmic mean (a − b) / (ln a − ln b), = a when a = b (LMDI weights)."""
    return ibis.ifelse(a == b, a, (a - b) / (a.ln() - b.ln()))


@metric(
    "pipeline_velocity",
    family="pipeline",
    shared=_shared_deals,
    tables=("opportunities",),
    optional_tables=("fx_rates", "stage_history"),
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
        _QUALIFIED,
        _STAGES,
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
    qualified_stage: str | None,
    stages: Sequence[str] | None,
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

    Parameters
    ----------
    tables
        Canonical tables by name: opportunities (optional: fx_rates, stage_history).
    scope
        Grouping (``by``, ``period``), window (``start``, ``end``) and ``as_of``.
    basis
        Win rate over deals (won ÷ (won + lost)) or over money (won $ ÷ (won $ + lost $)).
        Default 'count'.
    cycle_statistic
        Cycle length of the deals won in the period: median or mean days. Default 'median'.
    per
        Velocity in money per day, or per 30-day month (×30). Default 'day'.
    qualified_stage
        Count only qualified deals: those that reached this stage (or a later one in
        ``stages`` order) in stage_history, or were won. None: every opportunity is
        qualified. Default None.
    stages
        The open stages in funnel order (closed stages are read from the deal's status).
        None infers the order: stages sorted by the mean rank of their first entry within a
        deal. Default None.
    reporting_currency
        ISO 4217 code amounts are converted to. Default 'USD'.

    Returns
    -------
    ibis.Table
        Unexecuted; columns [by, period,] value, opportunities, win_rate, average_deal_size,
        cycle_days, won_without_amount, closed_before_created (won deals closed before
        they were created: in the deal size, not in the cycle), closed_without_date (won or
        lost deals without ``closed_at``: in no lever, see :func:`_with_undated`), change,
        contrib_opportunities, contrib_win_rate, contrib_deal_size, contrib_cycle.
    """
    opp = _deals(tables, scope, reporting_currency)
    opp = _qualified(opp, tables, scope, qualified_stage, stages)
    keys = group_keys(scope)
    created = scoped(opp, "created_at", scope, table_name="opportunities")
    n = _agg(created, keys, opportunities=created.count())
    closed = _won_lost(opp, scope)
    wr = _agg(closed, keys, **_win_aggs(closed))
    wr = wr.mutate(win_rate=_win_value(wr, basis)).select(*keys, "win_rate", "won_without_amount")
    won = _cycles(opp, scope)
    size = _agg(
        won,
        keys,
        average_deal_size=won.amt.mean(),
        mean_days=won.days.mean(),
        closed_before_created=won.backwards.sum().cast(dt.int64),
    )
    med = quantiles(won, keys, "days", {"median_days": 0.5}, "linear")
    out = _spine([n, wr, size], keys)
    for part in (n, wr, size, med):
        out = attach(out, part, keys)
    out = _with_undated(out, opp, scope)
    cycle = out.median_days if cycle_statistic == "median" else out.mean_days
    factor = 30.0 if per == "month" else 1.0
    out = out.mutate(
        opportunities=out.opportunities.coalesce(0),
        closed_before_created=out.closed_before_created.coalesce(0),
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
        out = out.mutate(**prev, __prev_period=out.period.lag().over(w))
        # the change is against the calendar period just before; after a period without
        # deals there is none (null), not a comparison with an older period
        before = period_start(out.period.cast(dt.Timestamp()) - ibis.interval(days=1), scope.period)
        adjacent = out.__prev_period == before
        out = out.mutate(
            **{c: ibis.ifelse(adjacent, out[c], ibis.null(out[c].type())) for c in prev}
        )
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
    cols += ["won_without_amount", "closed_before_created", "closed_without_date"]
    return _finish(out, keys, [*cols, "change", *levers.values()])


# ---------------------------------------------------------------- pipeline coverage


def _unbounded(scope: Scope) -> Scope:
    """The scope without ``as_of``: for expected close dates, which may lie ahead of it."""
    return Scope(by=scope.by, period=scope.period, start=scope.start, end=scope.end)


@metric(
    "pipeline_coverage",
    family="pipeline",
    shared=_shared_deals,
    tables=("opportunities",),
    optional_tables=("fx_rates", "stage_history"),
    policies=(
        Policy(
            "target",
            None,
            doc="Quota or revenue target of each period (money, reporting currency). Required.",
            sources={"target": "coverage = open pipeline ÷ remaining quota (revops.md §2.7)"},
            check=_positive_number,
        ),
        _BASIS,
        _QUALIFIED,
        _STAGES,
        _CURRENCY,
    ),
    benchmarks=(
        Benchmark(
            "rule-of-thumb coverage (the inverse of a ~33% win rate, not survey-backed)",
            3.0,
            "x",
            "winsabove.pages.dev/glossary/pipeline-coverage-ratio (revops.md §2.7)",
            column="value",
        ),
    ),
)
def pipeline_coverage(
    tables: Mapping[str, ir.Table],
    *,
    scope: Scope,
    target: float | None,
    basis: str,
    qualified_stage: str | None,
    stages: Sequence[str] | None,
    reporting_currency: str,
) -> ir.Table:
    """Open pipeline with its expected close date in the period, ÷ the target.

    Deals open at ``as_of`` (now when not given) are grouped by the period of their
    ``close_date``; ``start``/``end`` bound the close date. ``required_coverage`` is
    1 ÷ the win rate (``basis``) of every deal closed up to ``as_of`` (per ``by``): the
    coverage that, at that win rate, just meets the target (revops.md §2.7).

    Parameters
    ----------
    tables
        Canonical tables by name: opportunities (optional: fx_rates, stage_history).
    scope
        Grouping (``by``, ``period``), window (``start``, ``end``) and ``as_of``.
    target
        Quota or revenue target of each period (money, reporting currency). Required.
        Default None.
    basis
        Win rate over deals (won ÷ (won + lost)) or over money (won $ ÷ (won $ + lost $)).
        Default 'count'.
    qualified_stage
        Count only qualified deals: those that reached this stage (or a later one in
        ``stages`` order) in stage_history, or were won. None: every opportunity is
        qualified. Default None.
    stages
        The open stages in funnel order (closed stages are read from the deal's status).
        None infers the order: stages sorted by the mean rank of their first entry within a
        deal. Default None.
    reporting_currency
        ISO 4217 code amounts are converted to. Default 'USD'.

    Returns
    -------
    ibis.Table
        Unexecuted; columns [by, period,] value, open_pipeline, open_deals,
        open_without_amount, target, win_rate, required_coverage, gap (value −
        required_coverage).
    """
    if target is None:
        raise ConfigError(
            "pipeline_coverage needs a target (quota) per period: pass target=500000 "
            "(CLI: --param target=500000)."
        )
    opp = _deals(tables, scope, reporting_currency)
    opp = _qualified(opp, tables, scope, qualified_stage, stages)
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
    out = attach(out, wr, by)
    tgt = ibis.literal(float(target))
    out = out.mutate(
        value=out.open_pipeline / tgt,
        target=tgt,
        required_coverage=ibis.ifelse(out.win_rate > 0, 1.0 / out.win_rate, ibis.null(dt.float64)),
    )
    out = out.mutate(gap=out.value - out.required_coverage)
    cols = ["value", "open_pipeline", "open_deals", "open_without_amount", "target"]
    return _finish(out, keys, [*cols, "win_rate", "required_coverage", "gap"])


# ---------------------------------------------------------------- stage history


def history_key(scope: Scope) -> str:
    """The name a materialised stage history (:func:`_history`) goes by.

    >>> history_key(Scope(by="segment"))
    'stage_history(as_of=None, by=segment)'
    """
    return f"stage_history(as_of={scope.as_of}, by={scope.by})"


def _shared_history(
    tables: Mapping[str, ir.Table], *, scope: Scope, **_: Any
) -> dict[str, SharedBuild]:
    """``{history_key: builder}``: the stage history every stage metric reads, and its
    stage entries (built from the materialised history when there is one)."""
    whole = Scope(by=scope.by, as_of=scope.as_of)

    def build(available: Mapping[str, ir.Table]) -> ir.Table:
        h = _history(available, whole)
        # materialised narrower: without the CRM's forecast fields no stage metric reads
        return h.drop(*[c for c in _UNREAD_HISTORY if c in h.columns and c != scope.by])

    def build_entries(available: Mapping[str, ir.Table]) -> ir.Table:
        e = _entries(_history(available, whole))
        keep = [*_ENTRY_COLUMNS, *([scope.by] if scope.by is not None else [])]
        return e.select(*dict.fromkeys(keep))

    return {history_key(whole): build, entries_key(whole): build_entries}


#: Stage-history columns no stage metric reads (a shared history leaves them out).
_UNREAD_HISTORY = ("forecast_category", "probability")
#: The columns of a stage entry the stage metrics read (a shared table holds only these).
_ENTRY_COLUMNS = ("opportunity_id", "stage", "changed_at", "status", "exit_at", "ref_at")


def entries_key(scope: Scope) -> str:
    """The name materialised stage entries (:func:`_entries` of the history) go by."""
    return f"stage_entries(as_of={scope.as_of}, by={scope.by})"


def _entries_of(tables: Mapping[str, ir.Table], scope: Scope, h: ir.Table) -> ir.Table:
    """The stage entries of history ``h``: shared ones when a runner materialised them."""
    shared = tables.get(entries_key(scope))
    return _entries(h) if shared is None else shared


def _history(tables: Mapping[str, ir.Table], scope: Scope) -> ir.Table:
    """Stage-history rows known at ``as_of``, with the deal's ``status``, ``closed_at`` and ``by``.

    Adds ``terminal`` (the row was written when or after the deal closed) and, from one
    window over each deal's rows in ``changed_at`` order that every stage metric reads
    instead of sorting again: ``_seq`` (the row's rank, 0 first), ``_prev_stage`` (the
    previous row's stage), ``_prev_close`` (the previous row's ``close_date``),
    ``_next_at`` (the next row's ``changed_at``; null on the last row) and ``_first_at``
    (the deal's first ``changed_at``). A runner of several metrics may have materialised
    it under :func:`history_key`.
    """
    shared = tables.get(history_key(scope))
    if shared is not None:
        return shared
    sh = conform(tables["stage_history"], "stage_history")
    if scope.as_of is not None:
        sh = sh.filter(sh.changed_at <= as_timestamp(scope.as_of))
    opp = _deals(tables, scope, "USD")
    if scope.by is not None and scope.by not in sh.columns and scope.by not in opp.columns:
        raise SchemaError(
            f"cannot group by {scope.by!r}: neither stage_history nor opportunities has it "
            f"(opportunities has {list(opp.columns)}). Pass one of those as --by."
        )
    extra = [scope.by] if scope.by is not None and scope.by not in sh.columns else []
    o = opp.select(*extra, __oid=opp.opportunity_id, __status=opp.status, __closed_at=opp.closed_at)
    h = sh.left_join(o, sh.opportunity_id == o.__oid)
    h = h.mutate(
        status=h.__status.coalesce("open"),
        closed_at=h.__closed_at,
    ).drop("__oid", "__status", "__closed_at")
    w = ibis.window(group_by=h.opportunity_id, order_by=h.changed_at)
    return h.mutate(
        terminal=h.closed_at.notnull() & (h.changed_at >= h.closed_at),
        _seq=ibis.row_number().over(w),
        _prev_stage=h.stage.lag().over(w),
        _prev_close=h.close_date.lag().over(w),
        _next_at=h.changed_at.lead().over(w),
        _first_at=h.changed_at.first().over(w),
    )


def _entries(h: ir.Table) -> ir.Table:
    """One row per entry into a stage (consecutive rows of the same stage merged).

    ``exit_at`` is the next entry's time, else the close time, else null (still there);
    ``ref_at`` is the latest time in the data (or ``as_of``), used to censor open visits.
    Terminal entries (the closed stage itself) are left out.
    """
    w = ibis.window(group_by="opportunity_id", order_by="changed_at")
    last_change = h.changed_at.max().as_scalar()  # scalar subqueries, not windows
    h = h.mutate(
        __ref=ibis.greatest(last_change, h.closed_at.max().as_scalar().coalesce(last_change))
    )
    e = h.filter(h._prev_stage.isnull() | (h._prev_stage != h.stage))
    e = e.mutate(exit_at=e.changed_at.lead().over(w).coalesce(e.closed_at))
    return e.filter(~e.terminal).rename(ref_at="__ref")


def _positions(
    e: ir.Table, stages: Sequence[str] | None, first: ir.Table | None = None
) -> ir.Table:
    """``stage, position`` (1..n): the order given, else inferred from entries ``e`` by
    the mean rank of each deal's first entry into a stage (``first``: those first entries,
    ``opportunity_id, stage, first_at``, when the caller has them already)."""
    if stages is not None:
        return ibis.memtable(
            {"stage": list(stages), "position": list(range(1, len(stages) + 1))},
            schema={"stage": "string", "position": "int64"},
        )
    if first is None:
        first = e.group_by(["opportunity_id", "stage"]).aggregate(first_at=e.changed_at.min())
    first = first.mutate(
        rank=ibis.row_number().over(group_by="opportunity_id", order_by="first_at")
    )
    avg = first.group_by("stage").aggregate(mean_rank=first["rank"].mean())
    avg = avg.mutate(
        position=ibis.row_number().over(order_by=[avg.mean_rank, avg.stage]).cast(dt.int64) + 1
    )
    return avg.select("stage", "position")


@metric(
    "stage_conversion",
    family="pipeline",
    shared=_shared_history,
    tables=("stage_history", "opportunities"),
    policies=(
        Policy(
            "skipped_stages",
            "passed",
            ("passed", "strict"),
            doc="passed: a deal that jumps from stage k to k+2 (or is won from k) counts as having "
            "entered and left every stage in between, counted in ``skipped``. strict: only stages "
            "with a history row count, and advancing means a row at the very next stage "
            "(or a win after the last).",
            sources={
                "passed": "revops.md §2.8 'count a skip as having passed through'",
                "strict": "HubSpot hs_v2_date_entered_{stage} is empty for skipped stages; FlowFuse handbook (revops.md §2.8)",
            },
        ),
        _STAGES,
    ),
)
def stage_conversion(
    tables: Mapping[str, ir.Table],
    *,
    scope: Scope,
    skipped_stages: str,
    stages: Sequence[str] | None,
) -> ir.Table:
    """Stage-to-stage conversion: deals that reached the next stage (or won) ÷ deals that entered.

    A regression (moving back to an earlier stage) keeps the first entry; deals that
    entered a stage more than once are counted in ``regressed``. Deals are grouped by the
    time of their first stage-history row (``period``). A deal enters the funnel at its
    first stage: stages before it are not counted as skipped.

    Parameters
    ----------
    tables
        Canonical tables by name: stage_history, opportunities.
    scope
        Grouping (``by``, ``period``), window (``start``, ``end``) and ``as_of``.
    skipped_stages
        passed: a deal that jumps from stage k to k+2 (or is won from k) counts as having
        entered and left every stage in between, counted in ``skipped``. strict: only stages
        with a history row count, and advancing means a row at the very next stage (or a win
        after the last). Default 'passed'.
    stages
        The open stages in funnel order (closed stages are read from the deal's status).
        None infers the order: stages sorted by the mean rank of their first entry within a
        deal. Default None.

    Returns
    -------
    ibis.Table
        Unexecuted; columns [by, period,] stage, position, value, entered, advanced,
        skipped, regressed, and with ``stages`` given, ``unlisted``: the deals of the group
        with a stage-history row at a stage the list leaves out (their rows there are not
        counted; a misspelt or missing stage name shows here), repeated on each stage row.
    """
    h = _history(tables, scope)
    e = _entries_of(tables, scope, h)
    # each deal's visits to a stage and its first entry there (the inferred order's input)
    per_stage = e.group_by(["opportunity_id", "stage"]).aggregate(
        visits=e.count(), first_at=e.changed_at.min()
    )
    pos = _positions(e, stages, per_stage.drop("visits"))
    v = e.inner_join(pos, "stage")
    dims = [scope.by] if scope.by is not None else []
    n = pos.position.max().as_scalar()  # positions run 1..n
    deal = v.group_by(["opportunity_id", *dims]).aggregate(
        min_pos=v.position.min(),
        max_pos=v.position.max(),
        start_at=v.changed_at.min(),
        won=(v.status == "won").any(),
    )
    # the furthest position a deal reached: past the last stage when won
    deal = deal.mutate(reach=ibis.ifelse(deal.won, n + 1, deal.max_pos))
    deal = scoped(deal, "start_at", _unbounded(scope), table_name="stage_history")
    head = group_keys(scope)
    keys = [*head, "stage", "position"]
    n_off = None
    groups = deal.select(*head, __any=ibis.literal(True))
    if stages is not None:
        # deals with a row at a stage the list leaves out (a typo, or a stage missing
        # from it): counted, never dropped silently, their group kept even when none of
        # its deals has a listed stage
        # (a closed deal's last row is its closing stage, 'Closed Won' or the like, which
        # the list of open stages rightly leaves out, even when it precedes closed_at)
        off = e.mutate(__off=(~e.stage.isin(list(stages))).cast(dt.int64))
        off = off.group_by(["opportunity_id", *dims]).aggregate(
            start_at=off.changed_at.min(),
            __n=off.__off.sum(),
            __last=off.__off.argmax(off.changed_at),
            __closed=off.status.isin(("won", "lost")).any(),
        )
        closing = ibis.ifelse(off.__closed, off.__last, 0)
        off = off.mutate(__off=(off.__n - closing) > 0)
        off = scoped(off, "start_at", _unbounded(scope), table_name="stage_history")
        off = off.filter(off.__off)
        n_off = off.group_by(head).aggregate(unlisted=off.count()) if head else None
        if n_off is None:
            n_off = off.aggregate(unlisted=off.count())
        groups = groups.union(off.select(*head, __any=ibis.literal(True)))
    # every stage of every group that has a deal, even with nothing counted at it
    groups = groups.distinct()
    skeleton = groups.cross_join(pos).drop("__any")
    # deals at a stage with a row: visited once or more, and whether the next one was
    visits = per_stage.drop("first_at").inner_join(pos, "stage")
    d = deal.select(*head, "won", __rid="opportunity_id")
    rows = visits.inner_join(d, visits.opportunity_id == d.__rid).drop("__rid")
    if skipped_stages == "strict":
        # advanced: a row at the next position (positions are consecutive), or won from the last
        nxt = visits.select("opportunity_id", position=visits.position - 1, __next=ibis.literal(1))
        rows = attach(rows, nxt, ["opportunity_id", "position"])
    counted: dict[str, Any] = {"__rows": rows.count(), "regressed": (rows.visits > 1).sum()}
    if skipped_stages == "strict":
        advanced_next = ibis.ifelse(rows.position == n, rows.won, rows.__next.notnull())
        counted["__strict"] = advanced_next.sum()
    out = attach(skeleton, rows.group_by(keys).aggregate(**counted), keys)
    rows_at = out.__rows.fill_null(0)
    if skipped_stages == "passed":
        # a deal entered every stage from its first to the furthest it reached (skips
        # included) and advanced from each but the furthest: counted per (first,
        # furthest) pair, a few dozen groups, instead of per deal and stage
        span = deal.group_by([*head, "min_pos", "reach"]).aggregate(__deals=deal.count())
        sp = span.cross_join(pos.select("position"))
        k = sp.position
        inside = (sp.min_pos <= k) & (k <= sp.reach)
        flow = sp.group_by([*head, "position"]).aggregate(
            __entered=sp.__deals.sum(where=inside),
            __advanced=sp.__deals.sum(where=inside & (sp.reach >= k + 1)),
        )
        out = attach(out, flow, [*head, "position"])
        entered = out.__entered.fill_null(0)
        advanced = out.__advanced.fill_null(0)
        # every row at a stage lies within its deal's first and furthest positions
        skipped = entered - rows_at
    else:
        entered = rows_at
        advanced = out.__strict.fill_null(0)
        skipped = ibis.literal(0)
    out = out.mutate(
        entered=entered.cast(dt.int64),
        advanced=advanced.cast(dt.int64),
        skipped=skipped.cast(dt.int64),
        regressed=out.regressed.fill_null(0).cast(dt.int64),
    )
    out = out.mutate(value=_rate(out.advanced, out.entered))
    cols = [*keys, "value", "entered", "advanced", "skipped", "regressed"]
    if n_off is not None:
        out = attach(out, n_off, head)
        out = out.mutate(unlisted=out.unlisted.fill_null(0).cast(dt.int64))
        cols.append("unlisted")
    return out.select(*cols).order_by([*head, "position"])


def _km_quantiles(d: ir.Table, keys: list[str], qs: Mapping[str, float]) -> ir.Table:
    """Kaplan–Meier quantiles of ``dur`` with ``event`` (1 exited, 0 censored) per ``keys``.

    A quantile q is the smallest time t with S(t) ≤ 1 − q (the lifelines convention);
    null when the curve never gets there (too many censored deals).
    """
    g = km_steps(d, keys, "dur", d.event == 1)
    return g.group_by(keys).aggregate(
        **{name: g.dur.min(where=g.survival <= 1.0 - q + _EPS) for name, q in qs.items()}
    )


@metric(
    "time_in_stage",
    family="pipeline",
    shared=_shared_history,
    tables=("stage_history", "opportunities"),
    policies=(
        Policy(
            "censoring",
            "kaplan_meier",
            ("kaplan_meier", "exclude_open"),
            doc="kaplan_meier: deals still in the stage count as censored at as_of (or the "
            "latest time in the data), so long-stuck deals are not forgotten. exclude_open: "
            "only finished visits.",
            sources={
                "kaplan_meier": "revops.md §2.8 'Censor open deals'; lifelines KaplanMeierFitter",
                "exclude_open": "CRM stage-duration reports over exited deals (HubSpot hs_v2_latest_time_in_{stage}, revops.md §3.2)",
            },
        ),
        Policy(
            "revisits",
            "sum",
            ("sum", "span"),
            doc="When a deal enters a stage more than once: the sum of its visits, or first entry to last exit.",
            sources={
                "sum": "HubSpot hs_v2_cumulative_time_in_{stage} (revops.md §3.2)",
                "span": "revops.md §2.8 'counting first entry and last exit'",
            },
        ),
        Policy(
            "stall_percentile",
            "p75",
            ("p75", "p90"),
            doc="An open deal is stalled when its time in its current stage exceeds this "
            "percentile of won deals' time in that stage.",
            sources={
                "p75": "revops.md §2.8 stall detection: '> p75 … for won deals'",
                "p90": "revops.md §2.8 '(or p90)'",
            },
        ),
    ),
)
def time_in_stage(
    tables: Mapping[str, ir.Table],
    *,
    scope: Scope,
    censoring: str,
    revisits: str,
    stall_percentile: str,
) -> ir.Table:
    """Days deals spend in each stage (median, p75, p90) and the deals stalled there.

    Grouped by the time the deal first entered the stage (``period``). Open deals still in
    a stage are censored at ``as_of`` (else the latest timestamp in the data).
    ``stall_threshold`` is the p75 (p90) of *finished* visits of won deals at that stage
    (linear interpolation, over all periods); ``stalled`` counts open deals currently in the
    stage for longer than that; ``past_close_date`` counts open deals currently in the stage
    whose latest close date is already past (another stall rule of revops.md §2.8).

    Parameters
    ----------
    tables
        Canonical tables by name: stage_history, opportunities.
    scope
        Grouping (``by``, ``period``), window (``start``, ``end``) and ``as_of``.
    censoring
        kaplan_meier: deals still in the stage count as censored at as_of (or the latest
        time in the data), so long-stuck deals are not forgotten. exclude_open: only
        finished visits. Default 'kaplan_meier'.
    revisits
        When a deal enters a stage more than once: the sum of its visits, or first entry to
        last exit. Default 'sum'.
    stall_percentile
        An open deal is stalled when its time in its current stage exceeds this percentile
        of won deals' time in that stage. Default 'p75'.

    Returns
    -------
    ibis.Table
        Unexecuted; columns [by, period,] stage, value (median days), p75, p90, deals,
        censored, stall_threshold, stalled, past_close_date.
    """
    h = _history(tables, scope)
    e = _entries_of(tables, scope, h)
    if scope.as_of is not None:
        e = e.mutate(ref_at=as_timestamp(scope.as_of))
    end = e.exit_at.coalesce(e.ref_at)
    e = e.mutate(__dur=_days(end, e.changed_at), __end=end, __done=e.exit_at.notnull())
    dims = [scope.by] if scope.by is not None else []
    per = e.group_by(["opportunity_id", "stage", "status", *dims]).aggregate(
        first_at=e.changed_at.min(),
        __sum=e.__dur.sum(),
        __span=_days(e.__end.max(), e.changed_at.min()),
        __exited=e.__done.all(),
        __ref=e.ref_at.max(),
    )
    d = per.mutate(
        dur=per.__sum if revisits == "sum" else per.__span,
        event=per.__exited.cast(dt.int64),
    )
    won = d.filter((d.status == "won") & (d.event == 1))
    q = 0.75 if stall_percentile == "p75" else 0.9
    thr = quantiles(won, [*dims, "stage"], "dur", {"stall_threshold": q}, "linear")
    d = scoped(d, "first_at", _unbounded(scope), table_name="stage_history")
    # open deals still in a stage are checked for stalls under either censoring policy
    cur = d.filter((d.status == "open") & (d.event == 0))
    if censoring == "exclude_open":
        d = d.filter(d.event == 1)
    keys = [*group_keys(scope), "stage"]
    km = _km_quantiles(d, keys, {"value": 0.5, "p75": 0.75, "p90": 0.9})
    counts = d.group_by(keys).aggregate(
        deals=d.count(), censored=(d.event == 0).sum().cast(dt.int64)
    )
    out = attach(counts, km, keys)
    out = attach(out, thr, [*dims, "stage"])
    cur = attach(cur, thr, [*dims, "stage"])
    # each deal's latest close date: its last row (no next row), not a sort per deal
    last = h.filter(h._next_at.isnull())
    latest = last.select(__lid=last.opportunity_id, __close=last.close_date)
    cur = cur.left_join(latest, cur.opportunity_id == latest.__lid)
    stalled = cur.group_by(keys).aggregate(
        stalled=(cur.dur > cur.stall_threshold).sum().cast(dt.int64),
        past_close_date=(cur.__close < cur.__ref).sum().cast(dt.int64),
    )
    out = attach(out, stalled, keys)
    out = out.mutate(
        stalled=out.stalled.coalesce(0), past_close_date=out.past_close_date.coalesce(0)
    )
    cols = ["value", "p75", "p90", "deals", "censored", "stall_threshold", "stalled"]
    cols.append("past_close_date")
    return out.select(*keys, *cols).order_by(keys)


# ---------------------------------------------------------------- slippage


def slippage_key(scope: Scope, push: str, push_period: str) -> str:
    """The name materialised :func:`_slipped_deals` go by.

    >>> slippage_key(Scope(), "later_period", "quarter")
    'slipped_deals(as_of=None, by=None, push=later_period, push_period=quarter)'
    """
    return (
        f"slipped_deals(as_of={scope.as_of}, by={scope.by}, push={push}, push_period={push_period})"
    )


def _shared_slippage(
    tables: Mapping[str, ir.Table], *, scope: Scope, push: str, push_period: str, **_: Any
) -> dict[str, SharedBuild]:
    """``{key: builder}``: the stage history and the per-deal pushes a headline and a trend
    of slippage both read."""
    whole = Scope(by=scope.by, as_of=scope.as_of)

    def build(available: Mapping[str, ir.Table]) -> ir.Table:
        return _slipped_deals(available, whole, push, push_period)

    return {**_shared_history(tables, scope=scope), slippage_key(whole, push, push_period): build}


def _slipped_deals(
    tables: Mapping[str, ir.Table], scope: Scope, push: str, push_period: str
) -> ir.Table:
    """One row per deal with a close date: [by,] pushes, pulls, first and last close date.

    A row's close date is compared with the deal's previous *known* one: rows without a
    close date (HubSpot's ``closedate`` may be empty) are skipped. For the deals without
    such rows (nearly all) the history's own window has it all: ``_prev_close``, the
    first row (``_seq`` 0) and the last (no ``_next_at``), so the 1.5M-row history is
    not sorted again; only the deals with a blank close date get a window of their own.
    """
    h = _history(tables, scope)
    blank = h.filter(h.close_date.isnull()).select(__boid=h.opportunity_id).distinct()
    clean = h.anti_join(blank, h.opportunity_id == blank.__boid)
    clean = clean.mutate(
        __prev=clean._prev_close, __first=clean._seq == 0, __last=clean._next_at.isnull()
    )
    rest = h.semi_join(blank, h.opportunity_id == blank.__boid)
    rest = rest.filter(rest.close_date.notnull())
    w = ibis.window(group_by=rest.opportunity_id, order_by=rest._seq)
    rest = rest.mutate(
        __prev=rest.close_date.lag().over(w),
        __first=ibis.row_number().over(w) == 0,
        __last=rest.close_date.lead().over(w).isnull(),
    )
    h = clean.union(rest)
    if push == "later_date":
        pushed = h.close_date > h.__prev
        pulled = h.close_date < h.__prev
    else:
        now = period_start(h.close_date, push_period)
        before = period_start(h.__prev, push_period)
        pushed = now > before
        pulled = now < before
    h = h.mutate(
        __push=pushed.coalesce(False).cast(dt.int64),
        __pull=pulled.coalesce(False).cast(dt.int64),
    )
    dims = [scope.by] if scope.by is not None else []
    deal = h.group_by(["opportunity_id", *dims]).aggregate(
        pushes=h.__push.sum(),
        pulls=h.__pull.sum(),
        first_close=h.close_date.min(where=h.__first),
        last_close=h.close_date.max(where=h.__last),
    )
    deal = deal.mutate(
        __out=period_start(deal.last_close, push_period)
        > period_start(deal.first_close, push_period)
    )
    return deal


@metric(
    "slippage",
    family="pipeline",
    shared=_shared_slippage,
    tables=("stage_history", "opportunities"),
    policies=(
        Policy(
            "push",
            "later_period",
            ("later_period", "later_date"),
            doc="What counts as a push: a new close date in a later ``push_period`` than the "
            "previous one, or any later date.",
            sources={
                "later_period": "revops.md §2.8 '\"Pushed\" = the new close date falls in a later period'",
                "later_date": "Salesforce OpportunityHistory CloseDate > PrevCloseDate (revops.md §3.1)",
            },
        ),
        Policy(
            "push_period",
            "quarter",
            ("month", "quarter"),
            doc="The forecast period a push is measured against (and ``pushed_out``).",
            sources={
                "quarter": "Salesforce and HubSpot quarterly forecasts (revops.md §3.1, §3.2)",
                "month": "monthly forecast cadence",
            },
        ),
    ),
)
def slippage(
    tables: Mapping[str, ir.Table], *, scope: Scope, push: str, push_period: str
) -> ir.Table:
    """Close-date pushes per deal, from the close-date history.

    Each change of ``close_date`` in stage_history is compared with the previous known
    close date of the deal. Deals are grouped by their first known close date
    (``period``); ``pushed_out`` deals have their last known close date (as of
    ``as_of``) in a later ``push_period`` than the first.

    Parameters
    ----------
    tables
        Canonical tables by name: stage_history, opportunities.
    scope
        Grouping (``by``, ``period``), window (``start``, ``end``) and ``as_of``.
    push
        What counts as a push: a new close date in a later ``push_period`` than the previous
        one, or any later date. Default 'later_period'.
    push_period
        The forecast period a push is measured against (and ``pushed_out``). Default
        'quarter'.

    Returns
    -------
    ibis.Table
        Unexecuted; columns [by, period,] value (pushes per deal), deals, pushes, pulls,
        slipped_deals (≥ 1 push), repeat_slipped_deals (≥ 2), repeat_slip_share (of slipped
        deals; the "60% slip again" claim of revops.md §2.8 to measure), pushed_out_deals,
        pushed_out_share.
    """
    deal = tables.get(slippage_key(scope, push, push_period))
    if deal is None:
        deal = _slipped_deals(tables, scope, push, push_period)
    deal = scoped(deal, "first_close", _unbounded(scope), table_name="stage_history")
    keys = group_keys(scope)
    out = _agg(
        deal,
        keys,
        deals=deal.count(),
        pushes=deal.pushes.sum().cast(dt.int64),
        pulls=deal.pulls.sum().cast(dt.int64),
        slipped_deals=(deal.pushes >= 1).sum().cast(dt.int64),
        repeat_slipped_deals=(deal.pushes >= 2).sum().cast(dt.int64),
        pushed_out_deals=deal.__out.sum().cast(dt.int64),
    )
    out = out.mutate(
        value=_rate(out.pushes, out.deals),
        repeat_slip_share=_rate(out.repeat_slipped_deals, out.slipped_deals),
        pushed_out_share=_rate(out.pushed_out_deals, out.deals),
    )
    cols = ["value", "deals", "pushes", "pulls", "slipped_deals", "repeat_slipped_deals"]
    return _finish(out, keys, [*cols, "repeat_slip_share", "pushed_out_deals", "pushed_out_share"])


# ---------------------------------------------------------------- pipeline waterfall


def _deal_rates(tables: Mapping[str, ir.Table], reporting_currency: str) -> ir.Table:
    """``__rid, __rate``: per opportunity, the factor from its currency to
    ``reporting_currency`` on its creation day (1 in that currency or without one; null
    when ``fx_rates`` has no rate for it by then)."""
    opp = conform(tables["opportunities"], "opportunities")
    one = opp.select(
        opp.opportunity_id, opp.currency, opp.created_at, amount=ibis.literal(1.0, dt.float64)
    )
    one = to_reporting_currency(
        one, tables.get("fx_rates"), at="created_at", reporting_currency=reporting_currency
    )
    return one.select(__rid=one.opportunity_id, __rate=one.amount_reporting)


def _step(t: _dt.datetime, period: str) -> _dt.datetime:
    if period == "day":
        return t + _dt.timedelta(days=1)
    if period == "week":
        return t + _dt.timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    m = t.month - 1 + months
    year, month = t.year + m // 12, m % 12 + 1
    day = min(t.day, calendar.monthrange(year, month)[1])
    return t.replace(year=year, month=month, day=day)


def _boundaries(scope: Scope) -> list[_dt.datetime]:
    if scope.start is None or scope.end is None:
        raise ConfigError(
            "pipeline_waterfall needs a window: pass start and end "
            "(CLI: --start 2024-01-01 --end 2024-04-01)."
        )
    start, end = as_datetime(scope.start), as_datetime(scope.end)
    if scope.as_of is not None:
        end = min(end, as_datetime(scope.as_of))
    if end <= start:
        raise ConfigError(
            f"pipeline_waterfall: the window [{start}, {end}) is empty (end and as_of must "
            "come after start)."
        )
    out = [start]
    while out[-1] < end:
        out.append(min(_step(out[-1], scope.period or "month"), end))
    return out


@metric(
    "pipeline_waterfall",
    family="pipeline",
    shared=_shared_history,
    tables=("stage_history", "opportunities"),
    optional_tables=("fx_rates",),
    policies=(
        Policy(
            "close_window",
            "scope",
            ("scope", "any"),
            doc="scope: the pipeline is the open deals whose close date (as known at each "
            "boundary) lies in [start, end), so close-date moves across its edges are pulled "
            "in / pushed. any: every open deal, whatever its close date (no pushes).",
            sources={
                "scope": "the quarter bridge of revops.md §2.8 (github.com/boomii/bdw/issues/277)",
                "any": "Salesforce 'open pipeline' historical trending without a close-date filter (revops.md §3.1)",
            },
        ),
        _CURRENCY,
    ),
)
def pipeline_waterfall(
    tables: Mapping[str, ir.Table], *, scope: Scope, close_window: str, reporting_currency: str
) -> ir.Table:
    """Pipeline bridge per period: start + new + pulled_in − pushed − won − lost + changed = end.

    Each boundary (``start``, then every ``period``, default month, until ``end`` or
    ``as_of``) is rebuilt from stage_history: a deal's amount and close date are those of
    its row in force at that instant, never today's values; it is open if it had not
    closed by then. A deal enters the pipeline with its first stage-history row.
    Between two boundaries each deal moves once: ``new`` (its first row falls in the
    period), ``pulled_in`` (existed, close date moved into the window), ``pushed`` (still
    open, close date moved out), ``won``/``lost`` (at its amount at the start), and
    ``changed`` (amount changes of deals in at both ends). A deal created and closed
    within one period never shows. ``check`` is the identity's residual (0).

    Amounts are in ``reporting_currency``: a stage-history amount is in its deal's
    ``opportunities.currency`` and is converted at the rate of the deal's creation day
    (the latest ``fx_rates`` row on or before it), the rule every pipeline metric applies
    to an open deal, and every deal in the pipeline is open. One rate per deal, so a
    rate move never shows as a movement (ChartMogul creates no movement for currency
    fluctuation, revops.md §1.2). An amount that cannot be known (none on the row in
    force, or no rate for its currency) adds nothing to the figures and is counted in the
    ``*_without_amount`` column of the movement (or end) it is in, never read as 0
    silently; the identity holds over the known amounts (an amount that becomes known
    while the deal stays in is a ``changed``, counted in ``changed_without_amount``).

    Parameters
    ----------
    tables
        Canonical tables by name: stage_history, opportunities (optional: fx_rates).
    scope
        Grouping (``by``, ``period``), window (``start``, ``end``) and ``as_of``.
    close_window
        scope: the pipeline is the open deals whose close date (as known at each boundary)
        lies in [start, end), so close-date moves across its edges are pulled in / pushed.
        any: every open deal, whatever its close date (no pushes). Default 'scope'.
    reporting_currency
        ISO 4217 code amounts are converted to. Default 'USD'.

    Returns
    -------
    ibis.Table
        Unexecuted; columns [by,] period (start of the period), period_end, start, new,
        pulled_in, pushed, won, lost, changed, end, check, deals_start, deals_end, and the
        deals whose amount is unknown: start_without_amount, new_without_amount,
        pulled_in_without_amount, pushed_without_amount, won_without_amount,
        lost_without_amount, changed_without_amount, end_without_amount.

    References
    ----------
    revops.md §2.8 (pipeline waterfall, github.com/boomii/bdw/issues/277); §1.8 and
    §1.2 (conversion at a fixed date, no FX movements); §3.6 (as-of rebuilds).
    """
    bounds = _boundaries(scope)
    assert scope.start is not None  # _boundaries checked both ends
    assert scope.end is not None
    win_start, win_end = as_datetime(scope.start), as_datetime(scope.end)
    bt = ibis.memtable(
        {"bidx": list(range(len(bounds))), "b": bounds, "b_prev": [bounds[0], *bounds[:-1]]},
        schema={"bidx": "int64", "b": "timestamp", "b_prev": "timestamp"},
    )
    h = _history(tables, scope)
    dims = [scope.by] if scope.by is not None else []
    # the row in force at each boundary: the one whose [changed_at, next change) holds it
    # (an interval join: no deal x boundary product to rank)
    h = h.mutate(__to=h._next_at.fill_null(ibis.literal(_dt.datetime(9999, 12, 31), dt.timestamp)))
    s = h.inner_join(bt, [h.changed_at <= bt.b, h.__to > bt.b])
    spine_dims = s.select(*dims).distinct() if dims else None
    # a deal closed by the previous boundary is out at both ends of the period: it moves
    # nothing, so its rows are dropped before pairing each period's start with its end
    s = s.filter(s.closed_at.isnull() | (s.closed_at > s.b_prev))
    rate = _deal_rates(tables, reporting_currency)
    s = s.left_join(rate, s.opportunity_id == rate.__rid)
    # a deal without an opportunities row has no known currency: its amount is kept, as
    # to_reporting_currency keeps an amount without a currency
    s = s.mutate(__amt=s.amount * ibis.ifelse(s.__rid.isnull(), 1.0, s.__rate))
    open_at = s.closed_at.isnull() | (s.closed_at > s.b)
    if close_window == "scope":
        inside = (s.close_date >= as_timestamp(win_start)) & (s.close_date < as_timestamp(win_end))
        open_at = open_at & inside.coalesce(False)
    s = s.select(
        "opportunity_id",
        *dims,
        "bidx",
        "status",
        "closed_at",
        first_at=s._first_at,
        inn=open_at,
        amt=s.__amt.coalesce(0.0),
        no_amt=s.__amt.isnull(),
    )
    ends = s.filter(s.bidx >= 1).mutate(idx=s.bidx - 1)
    starts = s.select(
        __oid=s.opportunity_id, __idx=s.bidx, in_s=s.inn, amt_s=s.amt, no_amt_s=s.no_amt
    )
    m = ends.left_join(starts, (ends.opportunity_id == starts.__oid) & (ends.idx == starts.__idx))
    iv = ibis.memtable(
        {
            "idx": list(range(len(bounds) - 1)),
            "b_from": bounds[:-1],
            "b_to": bounds[1:],
        },
        schema={"idx": "int64", "b_from": "timestamp", "b_to": "timestamp"},
    )
    m = m.inner_join(iv, "idx")
    in_s = m.in_s.coalesce(False)
    in_e = m.inn
    amt_s = m.amt_s.coalesce(0.0)
    no_s, no_e = m.no_amt_s.coalesce(False), m.no_amt
    closed = m.closed_at.notnull() & (m.closed_at <= m.b_to)
    zero = ibis.literal(0.0)
    # each movement: (when it applies, the amount it moves, whether that amount is unknown)
    moves = {
        "start": (in_s, amt_s, no_s),
        "new": (~in_s & in_e & (m.first_at > m.b_from), m.amt, no_e),
        "pulled_in": (~in_s & in_e & (m.first_at <= m.b_from), m.amt, no_e),
        "pushed": (in_s & ~in_e & ~closed, amt_s, no_s),
        "won": (in_s & ~in_e & closed & (m.status == "won"), amt_s, no_s),
        "lost": (in_s & ~in_e & closed & (m.status != "won"), amt_s, no_s),
        "changed": (in_s & in_e, m.amt - amt_s, no_s | no_e),
        "end": (in_e, m.amt, no_e),
    }
    agg = m.group_by(["idx", *dims]).aggregate(
        **{k: ibis.ifelse(when, amount, zero).sum() for k, (when, amount, _) in moves.items()},
        deals_start=in_s.sum().cast(dt.int64),
        deals_end=in_e.sum().cast(dt.int64),
        **{
            f"{k}_without_amount": (when & unknown).sum().cast(dt.int64)
            for k, (when, _, unknown) in moves.items()
        },
    )
    spine = iv
    if dims:
        spine = iv.cross_join(spine_dims)
    out = attach(spine, agg, ["idx", *dims])
    figures = ["start", "new", "pulled_in", "pushed", "won", "lost", "changed", "end"]
    counts = ["deals_start", "deals_end", *[f"{k}_without_amount" for k in figures]]
    out = out.mutate(
        **{c: out[c].coalesce(0.0) for c in figures}, **{c: out[c].coalesce(0) for c in counts}
    )
    out = out.mutate(
        period=out.b_from.date(),
        period_end=out.b_to.date(),
        check=out.start
        + out.new
        + out.pulled_in
        - out.pushed
        - out.won
        - out.lost
        + out.changed
        - out.end,
    )
    keys = [*dims, "period"]
    return out.select(*keys, "period_end", *figures, "check", *counts).order_by(keys)
