"""What the planner needs from the history, as small unexecuted aggregates (compute layer).

:func:`plan_inputs` builds, per segment, the funnel counts of mature cohorts, the
empirical lag histograms (lead → opportunity, opportunity → won, in calendar months), a
bounded sample of won deal amounts and the monthly actuals. Every table is an unexecuted
Ibis expression of a few hundred rows at most; the edge layer fetches them (see
:meth:`PlanQueries.tables`) and hands the frames to :func:`revloop.forecast.plan`.

Definitions reuse the metrics: a lead's opportunity and its conversion time are those of
``lead_to_opportunity_rate`` (``metrics._lead``), deals as known at ``as_of`` with amounts
in the reporting currency and the qualified-deal filter are those of the pipeline metrics
(``metrics._pipeline``). References: ``shared/reference/revops.md`` §2.3, §2.4 and §4.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revloop.exceptions import ConfigError, SchemaError
from revloop.metrics._lead import _lead_base
from revloop.metrics._pipeline import _deals, _qualified
from revloop.metrics._registry import DateLike, Scope
from revloop.metrics._scope import as_timestamp
from revloop.schema import conform

__all__ = [
    "PREDICTABLE_REVENUE_SEGMENTS",
    "PlanQueries",
    "check_segments",
    "plan_inputs",
]

#: The demo company's lead sources as the book's three lead types (Ross & Tyler,
#: *Predictable Revenue*, pp. 129-131): **seeds** are grown, not bought (happy customers,
#: referrals, organic search/SEO, most social media, PR); **nets** are one-to-many
#: marketing programmes (paid search and social, e-mail, display, video, affiliates,
#: webinars and events, unattributed web forms); **spears** are targeted one-to-one
#: outbound. Partner referrals count as seeds. Pass your own mapping for other sources.
PREDICTABLE_REVENUE_SEGMENTS: Mapping[str, tuple[str, ...]] = {
    "seeds": (
        "Partner",
        "Inbound - Referral",
        "Inbound - Organic Search",
        "Inbound - Organic Social",
        "Inbound - Organic Video",
        "Inbound - Direct",
    ),
    "nets": (
        "Inbound - Paid Search",
        "Inbound - Paid Social",
        "Inbound - Email",
        "Inbound - Display",
        "Inbound - Paid Video",
        "Inbound - Affiliates",
        "Inbound - Cross-network",
        "Inbound - Other",
        "Inbound - Web",
    ),
    "spears": ("Outbound",),
}

#: Segment of an opportunity that no lead names.
NO_LEAD = "(no lead)"
#: Segment of a lead whose segment column is null.
NO_VALUE = "(none)"
#: Segment of a value no group of ``segments`` lists.
OTHER = "other"
#: The one segment when ``segment=None``.
ALL = "all"


@dataclass(frozen=True)
class PlanQueries:
    """The planner's inputs as unexecuted Ibis tables (fetch each with ``engine.to_pandas``).

    Attributes
    ----------
    counts
        One row per segment: ``leads`` (leads of mature cohorts: created in the lookback
        window at least ``lead_window_days`` before ``as_of``), ``converted`` (of those,
        with an opportunity within ``lead_window_days``), ``opportunities`` (opportunities
        of mature cohorts: created in the lookback window at least ``win_window_days``
        before ``as_of``; qualified ones only with ``qualified_stage``), ``won`` and
        ``lost`` (of those, closed so within ``win_window_days``), ``open`` (the rest),
        ``deals_won`` and ``won_revenue`` (deals won in the lookback window up to
        ``as_of``, amounts in the reporting currency) and ``won_without_amount`` (won
        deals without an amount or an FX rate: left out of ``won_revenue``).
    lead_lags
        ``segment, lag_months, leads``: converted leads of ``counts`` by calendar months
        from the lead's month to its opportunity's month (0 = same month).
    win_lags
        ``segment, lag_months, deals``: won deals of ``counts`` by calendar months from the
        opportunity's month to the month it was won.
    deal_sizes
        ``segment, amount``: the amounts of the most recent ``max_deals`` deals won in the
        lookback window per segment (reporting currency).
    actuals
        ``segment, month, leads, opportunities, deals_won, won_revenue``: every month of
        the data (not limited by ``as_of``: they are what the plan is compared with).
    meta
        One row: ``as_of`` (the instant the estimates stop; the latest lead or opportunity
        creation when not given), ``data_end`` (the latest timestamp in the data),
        ``lookback_start``.
    segment, segments, qualified_stage, lead_window_days, win_window_days, lookback_months
        The parameters the tables were built with (and ``reporting_currency``).
    """

    counts: ir.Table
    lead_lags: ir.Table
    win_lags: ir.Table
    deal_sizes: ir.Table
    actuals: ir.Table
    meta: ir.Table
    segment: str | None
    lead_window_days: int
    win_window_days: int
    lookback_months: int
    reporting_currency: str
    segments: Mapping[str, tuple[str, ...]] | None = None
    qualified_stage: str | None = None

    def tables(self) -> dict[str, ir.Table]:
        """The tables by name, for the edge layer to fetch (``PlanInputs.from_frames``)."""
        return {
            "counts": self.counts,
            "lead_lags": self.lead_lags,
            "win_lags": self.win_lags,
            "deal_sizes": self.deal_sizes,
            "actuals": self.actuals,
            "meta": self.meta,
        }

    def params(self) -> dict[str, object]:
        """The parameters the tables were built with (stated in every plan)."""
        return {
            "segment": self.segment,
            "segments": None
            if self.segments is None
            else {k: list(v) for k, v in self.segments.items()},
            "qualified_stage": self.qualified_stage,
            "lead_window_days": self.lead_window_days,
            "win_window_days": self.win_window_days,
            "lookback_months": self.lookback_months,
            "reporting_currency": self.reporting_currency,
        }


def check_segments(segments: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """``segments`` checked: group name → the segment-column values it holds, each value once.

    Examples
    --------
    >>> check_segments({"seeds": ["Partner"], "spears": ["Outbound"]})
    {'seeds': ('Partner',), 'spears': ('Outbound',)}
    """
    out: dict[str, tuple[str, ...]] = {}
    seen: dict[str, str] = {}
    if not isinstance(segments, Mapping) or not segments:
        raise ConfigError(
            f"segments={segments!r}: expected a mapping of group name to values, e.g. "
            '{"seeds": ["Partner"], "nets": ["Inbound - Paid Search"], "spears": ["Outbound"]}.'
        )
    for name, values in segments.items():
        if isinstance(values, str) or not isinstance(values, Sequence):
            raise ConfigError(
                f"segments[{name!r}]={values!r}: expected a list of values of the segment "
                f'column, e.g. ["Outbound"].'
            )
        for v in values:
            if v in seen and seen[v] != name:
                raise ConfigError(
                    f"segments: {v!r} is in both {seen[v]!r} and {name!r}. Put it in one group."
                )
            seen[str(v)] = str(name)
        out[str(name)] = tuple(str(v) for v in values)
    return out


def _segment_of(
    col: ir.Value | None, segments: Mapping[str, tuple[str, ...]] | None
) -> ir.StringValue:
    if col is None:
        return ibis.literal(ALL)
    v = col.cast(dt.string)
    if segments is None:
        return v.fill_null(NO_VALUE)
    cases = [(v.isin(list(vals)), name) for name, vals in segments.items() if vals]
    if not cases:
        return ibis.literal(OTHER)
    return ibis.cases(*cases, else_=OTHER)


def _month_index(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Months since year 0: consecutive calendar months differ by 1."""
    return (ts.year() * 12 + ts.month() - 1).cast(dt.int64)


def _agg(t: ir.Table, **aggs: ir.Value) -> ir.Table:
    return t.group_by("segment").aggregate(**aggs)


def plan_inputs(
    tables: Mapping[str, ir.Table],
    *,
    segment: str | None = "source",
    segments: Mapping[str, Sequence[str]] | None = None,
    as_of: DateLike | None = None,
    lookback_months: int = 24,
    lead_window_days: int = 180,
    win_window_days: int = 180,
    qualified_stage: str | None = None,
    stages: Sequence[str] | None = None,
    reporting_currency: str = "USD",
    max_deals: int = 2000,
) -> PlanQueries:
    """The history the planner reads, per segment, as small unexecuted tables.

    Parameters
    ----------
    tables
        Canonical tables by name: ``leads`` and ``opportunities`` (optional: ``fx_rates``
        to convert amounts, ``stage_history`` for ``qualified_stage``).
    segment
        A column of ``leads`` to segment by (default ``source``); an opportunity takes the
        segment of its lead (``opportunities.lead_id``, else the lead whose
        ``opportunity_id`` names it; ``"(no lead)"`` when none). ``None``: one segment,
        ``"all"``.
    segments
        Optional groups of ``segment`` values, e.g. the book's seeds, nets and spears
        (:data:`PREDICTABLE_REVENUE_SEGMENTS` for the demo company). Values no group lists
        go to ``"other"``.
    as_of
        Estimate from what was known at this instant only (leads and opportunities created
        later do not exist, deals closed later are still open). Default: the latest lead or
        opportunity creation. The monthly ``actuals`` are not limited by it.
    lookback_months
        Months of history before ``as_of`` the rates, lags and deal sizes come from.
    lead_window_days
        A lead converts when its opportunity is created within this many days; only leads
        created at least this long before ``as_of`` count (mature cohorts, revops.md §2.3).
        180 days: about twice Implisit's 84-day average; 92 % of the demo company's
        conversions happen within it.
    win_window_days
        Likewise for an opportunity being won (cohort win rate, revops.md §2.4).
    qualified_stage, stages
        Count only qualified opportunities (reached ``qualified_stage`` or later, or won),
        as the pipeline metrics do: the funnel is then lead → qualified opportunity → won.
    reporting_currency
        ISO 4217 code amounts are converted to (with ``fx_rates``).
    max_deals
        Won amounts kept per segment for the deal-size bootstrap (the most recent ones).

    Returns
    -------
    PlanQueries
        Unexecuted tables ``counts``, ``lead_lags``, ``win_lags``, ``deal_sizes``,
        ``actuals`` and ``meta`` (see :class:`PlanQueries`).

    Examples
    --------
    >>> from revloop.schema import schema
    >>> t = {n: ibis.table(schema(n), name=n) for n in ("leads", "opportunities")}
    >>> q = plan_inputs(t, as_of="2026-10-31")
    >>> q.counts.columns[:4]
    ('segment', 'leads', 'converted', 'opportunities')
    """
    for name, value in (
        ("lookback_months", lookback_months),
        ("lead_window_days", lead_window_days),
        ("win_window_days", win_window_days),
        ("max_deals", max_deals),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"plan_inputs: {name}={value!r}: expected a whole number >= 1.")
    for needed in ("leads", "opportunities"):
        if needed not in tables:
            raise SchemaError(
                f"plan_inputs needs the {needed} table; got {sorted(tables)}. "
                f"Add {needed}.csv to the folder."
            )
    groups = None if segments is None else check_segments(segments)
    leads = conform(tables["leads"], "leads")
    if segment is not None and segment not in leads.columns:
        raise SchemaError(
            f"cannot segment leads by {segment!r}: leads has {list(leads.columns)}. "
            "Pass one of those as segment (--segment), or segment=None for one segment."
        )
    scope = Scope(as_of=as_of)
    cur = reporting_currency

    # deals as known at as_of (status, closed_at) with ``amt`` in the reporting currency
    opp = _deals(tables, scope, cur)
    opp = _qualified(opp, tables, scope, qualified_stage, stages)
    if as_of is not None:
        horizon: ir.TimestampValue = as_timestamp(as_of)
        leads_known = leads.filter(leads.created_at <= horizon)
    else:
        lmax = leads.created_at.max()
        horizon = ibis.greatest(lmax, opp.created_at.max().fill_null(lmax))
        leads_known = leads
    start = horizon - ibis.interval(months=lookback_months)

    seg_leads = leads.mutate(
        segment=_segment_of(None if segment is None else leads[segment], groups)
    )
    opp = _with_segment(opp, seg_leads)

    # ---- lead -> opportunity: the lead's first opportunity (metrics lead_to_opportunity_rate)
    sub = {"leads": leads_known, "opportunities": opp.drop("segment")}
    base = _lead_base(sub, scope)
    base = base.mutate(segment=_segment_of(None if segment is None else base[segment], groups))
    lw = ibis.interval(days=lead_window_days)
    cohort = base.filter(
        (base.created_at >= start) & (base.created_at + lw <= horizon) & ~base.early
    )
    hit = cohort.conv_at.notnull() & (cohort.conv_at < cohort.created_at + lw)
    cohort = cohort.mutate(
        __hit=hit, __lag=_month_index(cohort.conv_at) - _month_index(cohort.created_at)
    )
    lead_counts = _agg(cohort, leads=cohort.count(), converted=cohort.__hit.cast(dt.int64).sum())
    conv = cohort.filter(cohort.__hit)
    lead_lags = (
        conv.group_by(["segment", conv.__lag.name("lag_months")])
        .aggregate(leads=conv.count())
        .order_by(["segment", "lag_months"])
    )

    # ---- opportunity -> won within the window (cohort win rate, revops.md §2.4)
    ww = ibis.interval(days=win_window_days)
    oc = opp.filter((opp.created_at >= start) & (opp.created_at + ww <= horizon))
    closed_in = oc.closed_at.notnull() & (oc.closed_at < oc.created_at + ww)
    won = closed_in & (oc.status == "won")
    lost = closed_in & (oc.status == "lost")
    oc = oc.mutate(
        __won=won, __lost=lost, __lag=_month_index(oc.closed_at) - _month_index(oc.created_at)
    )
    opp_counts = _agg(
        oc,
        opportunities=oc.count(),
        won=oc.__won.cast(dt.int64).sum(),
        lost=oc.__lost.cast(dt.int64).sum(),
    )
    wins = oc.filter(oc.__won)
    win_lags = (
        wins.group_by(["segment", wins.__lag.name("lag_months")])
        .aggregate(deals=wins.count())
        .order_by(["segment", "lag_months"])
    )

    # ---- won deals in the lookback window: deal size and revenue share
    wd = opp.filter(
        (opp.status == "won")
        & opp.closed_at.notnull()
        & (opp.closed_at >= start)
        & (opp.closed_at <= horizon)
    )
    money = _agg(
        wd,
        deals_won=wd.count(),
        won_revenue=wd.amt.sum().fill_null(0.0),
        won_without_amount=wd.amt.isnull().cast(dt.int64).sum(),
    )
    priced = wd.filter(wd.amt.notnull())
    recent = ibis.window(
        group_by="segment", order_by=[ibis.desc(priced.closed_at), priced.opportunity_id]
    )
    priced = priced.mutate(__rn=ibis.row_number().over(recent))
    deal_sizes = (
        priced.filter(priced.__rn < max_deals)
        .select("segment", amount=priced.amt)
        .order_by(["segment", "amount"])
    )

    # ---- every segment present in any part, then the counts
    spine = (
        lead_counts.select("segment")
        .union(opp_counts.select("segment"))
        .union(money.select("segment"))
        .distinct()
    )
    counts = spine
    for part in (lead_counts, opp_counts, money):
        counts = counts.left_join(part, "segment").drop("segment_right")
    counts = counts.mutate(
        leads=counts.leads.fill_null(0),
        converted=counts.converted.fill_null(0),
        opportunities=counts.opportunities.fill_null(0),
        won=counts.won.fill_null(0),
        lost=counts.lost.fill_null(0),
        deals_won=counts.deals_won.fill_null(0),
        won_revenue=counts.won_revenue.fill_null(0.0),
        won_without_amount=counts.won_without_amount.fill_null(0),
    )
    counts = counts.mutate(open=counts.opportunities - counts.won - counts.lost)
    counts = counts.select(
        "segment",
        "leads",
        "converted",
        "opportunities",
        "won",
        "lost",
        "open",
        "deals_won",
        "won_revenue",
        "won_without_amount",
    ).order_by("segment")

    actuals = _actuals(tables, seg_leads, cur, qualified_stage, stages)
    everything = _deals(tables, Scope(), cur)
    lmax_all = leads.created_at.max()
    data_end = ibis.greatest(
        lmax_all,
        everything.created_at.max().fill_null(lmax_all),
        everything.closed_at.max().fill_null(lmax_all),
    )
    meta = (
        ibis.memtable({"__one": [1]})
        .mutate(as_of=horizon, data_end=data_end, lookback_start=start)
        .drop("__one")
    )
    return PlanQueries(
        counts=counts,
        lead_lags=lead_lags,
        win_lags=win_lags,
        deal_sizes=deal_sizes,
        actuals=actuals,
        meta=meta,
        segment=segment,
        lead_window_days=lead_window_days,
        win_window_days=win_window_days,
        lookback_months=lookback_months,
        reporting_currency=cur,
        segments=groups,
        qualified_stage=qualified_stage,
    )


def _with_segment(opp: ir.Table, seg_leads: ir.Table) -> ir.Table:
    """``opp`` with ``segment``: its lead's (by ``lead_id``, else the lead naming it)."""
    by_id = seg_leads.select(__lid=seg_leads.lead_id, __s1=seg_leads.segment)
    named = seg_leads.filter(seg_leads.opportunity_id.notnull())
    named = named.group_by(__oid=named.opportunity_id).aggregate(__s2=named.segment.min())
    j = opp.left_join(by_id, opp.lead_id == by_id.__lid).drop("__lid")
    j = j.left_join(named, j.opportunity_id == named.__oid).drop("__oid")
    return j.mutate(segment=ibis.coalesce(j.__s1, j.__s2, ibis.literal(NO_LEAD))).drop(
        "__s1", "__s2"
    )


def _actuals(
    tables: Mapping[str, ir.Table],
    seg_leads: ir.Table,
    cur: str,
    qualified_stage: str | None,
    stages: Sequence[str] | None,
) -> ir.Table:
    """Monthly leads, opportunities, deals won and won revenue per segment (all the data)."""
    opp = _deals(tables, Scope(), cur)
    opp = _qualified(opp, tables, Scope(), qualified_stage, stages)
    opp = _with_segment(opp, seg_leads)
    zero_i = ibis.literal(0, dt.int64)
    zero_f = ibis.literal(0.0, dt.float64)
    month = "month"
    lt = seg_leads.select(
        "segment",
        **{month: seg_leads.created_at.truncate("M").date()},
        leads=ibis.literal(1, dt.int64),
        opportunities=zero_i,
        deals_won=zero_i,
        won_revenue=zero_f,
    )
    ot = opp.select(
        "segment",
        **{month: opp.created_at.truncate("M").date()},
        leads=zero_i,
        opportunities=ibis.literal(1, dt.int64),
        deals_won=zero_i,
        won_revenue=zero_f,
    )
    w = opp.filter((opp.status == "won") & opp.closed_at.notnull())
    wt = w.select(
        "segment",
        **{month: w.closed_at.truncate("M").date()},
        leads=zero_i,
        opportunities=zero_i,
        deals_won=ibis.literal(1, dt.int64),
        won_revenue=w.amt.fill_null(0.0),
    )
    u = lt.union(ot).union(wt)
    return (
        u.group_by(["segment", month])
        .aggregate(
            leads=u.leads.sum(),
            opportunities=u.opportunities.sum(),
            deals_won=u.deals_won.sum(),
            won_revenue=u.won_revenue.sum(),
        )
        .order_by(["segment", month])
    )
