"""The RevOps sections of the report: every registered metric, its monthly trend and benchmarks.

:func:`collect_revops` computes the metric panel (:func:`revloop.metrics.panel`) in one
batch (:func:`revloop.engine.compute_metrics`) and keeps the small frames in a
:class:`RevOpsData`; :func:`revops_sections` turns them into report
:class:`~revloop.report.Section` objects, one per metric family (lead handling,
pipeline, subscription revenue), to pass to the report as ``ReportData.sections``.

Each metric shows its headline figure, the statistics beside it, every policy in force,
the published benchmarks with their sources (and the user's comparable figure), and its
monthly trend with the benchmark drawn as a dashed line where the units agree. Metrics
whose figure is a table of rows get their own chart: the lead-response curve, stage
conversion, time in stage, the pipeline bridge and the cohort retention heat map.

Examples
--------
>>> from revloop import report
>>> rv = report.collect_revops(con, tables, target_growth=0.3)  # doctest: +SKIP
>>> data = dataclasses.replace(data, sections=tuple(report.revops_sections(rv)))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import html
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, assert_never

import ibis.expr.types as ir
import pandas as pd
import plotly.graph_objects as go

from revloop import metrics
from revloop.engine import Backend, MetricFrame, compute_metrics, to_pandas
from revloop.exceptions import ConfigError
from revloop.metrics import Benchmark, Request
from revloop.report._charts import _base_layout, figure_div
from revloop.report._collect import Section
from revloop.report._format import (
    DASH,
    currency_symbol,
    fmt_count,
    fmt_date,
    fmt_money,
    fmt_pct,
    fmt_ratio,
)

__all__ = ["RevOpsData", "collect_revops", "revops_sections"]

DateLike: TypeAlias = str | _dt.date | _dt.datetime
Unit: TypeAlias = Literal[
    "money", "velocity", "share", "minutes", "days", "ratio", "count", "number"
]
Family: TypeAlias = Literal["lead", "pipeline", "subscription"]

FAMILIES: tuple[tuple[Family, str, str], ...] = (
    ("lead", "revops-lead", "Lead handling"),
    ("pipeline", "revops-pipeline", "Pipeline"),
    ("subscription", "revops-subscription", "Subscription revenue"),
)
"""(family, section key, section title) in report order."""

#: Frame roles in :attr:`RevOpsData.frames`.
HEADLINE, TREND, YOY, YOY_TREND = "headline", "trend", "yoy", "yoy_trend"

_YOY_METRICS = ("nrr", "grr")  # benchmarks are year over year; the default variant is not


# -- what each metric shows -----------------------------------------------------------------


@dataclass(frozen=True)
class _Stat:
    column: str
    label: str
    unit: Unit


@dataclass(frozen=True)
class _Spec:
    """How the report shows one metric."""

    title: str
    unit: Unit
    what: str
    stats: tuple[_Stat, ...] = ()
    #: further columns drawn on the trend beside ``value``
    trend_extra: tuple[_Stat, ...] = ()
    chart: Literal["line", "bars", "movements", "coverage"] = "line"
    #: (column, threshold): the figure is undefined where the column is below it
    #: (a quick ratio with less than a cent lost is a division by float residue)
    undefined_below: tuple[str, float] | None = None
    note: str = ""


def _s(column: str, label: str, unit: Unit) -> _Stat:
    return _Stat(column, label, unit)


_HBR = "HBR, 'The Short Life of Online Sales Leads'"

_SPECS: dict[str, _Spec] = {
    # lead handling
    "speed_to_lead": _Spec(
        "Speed to lead",
        "minutes",
        "median time from a lead's creation to the first rep-initiated touch (contacted leads)",
        (
            _s("p90", "p90", "minutes"),
            _s("mean", "mean", "minutes"),
            _s("km_median", "Kaplan–Meier median", "minutes"),
            _s("within_5m", "within 5 min", "share"),
            _s("within_1h", "within 1 h", "share"),
            _s("within_24h", "within 24 h", "share"),
            _s("never_contacted_share", "never contacted", "share"),
            _s("leads", "leads", "count"),
        ),
        trend_extra=(_s("mean", "mean", "minutes"),),
    ),
    "lead_contact_rate": _Spec(
        "Lead contact rate",
        "share",
        "leads reached within the window after creation ÷ mature leads",
        (
            _s("attempts_per_lead", "attempts per lead", "number"),
            _s("never_attempted_share", "never attempted", "share"),
            _s("pickup_rate", "call pickup rate", "share"),
            _s("leads", "mature leads", "count"),
            _s("immature_leads", "immature leads", "count"),
        ),
        trend_extra=(_s("never_attempted_share", "never attempted", "share"),),
    ),
    "lead_to_opportunity_rate": _Spec(
        "Lead → opportunity rate",
        "share",
        "leads that became an opportunity within the window ÷ mature leads, by creation month",
        (
            _s("converted", "converted", "count"),
            _s("leads", "mature leads", "count"),
            _s("mean_days_to_opportunity", "mean time to opportunity", "days"),
            _s("immature_leads", "immature leads", "count"),
        ),
    ),
    "conversion_by_response_time": _Spec(
        "Conversion by response time",
        "ratio",
        "lead → opportunity rate of leads reached within 5 minutes ÷ that of leads reached "
        "after 24 hours (the lead-response curve)",
    ),
    # pipeline
    "win_rate": _Spec(
        "Win rate",
        "share",
        "deals won ÷ deals closed (won + lost), by close month",
        (
            _s("won", "won", "count"),
            _s("lost", "lost", "count"),
            _s("won_amount", "won amount", "money"),
        ),
    ),
    "sales_cycle": _Spec(
        "Sales cycle",
        "days",
        "days from creation to close of won deals",
        (
            _s("p75", "p75", "days"),
            _s("p90", "p90", "days"),
            _s("mean", "mean", "days"),
            _s("deals", "won deals", "count"),
        ),
    ),
    "average_deal_size": _Spec(
        "Average deal size",
        "money",
        "amount of won deals, by close month",
        (_s("deals", "won deals", "count"), _s("won_amount", "won amount", "money")),
    ),
    "pipeline_velocity": _Spec(
        "Pipeline velocity",
        "velocity",
        "opportunities × win rate × average deal size ÷ sales cycle",
        note=(
            "The headline counts the opportunities of the whole window, so it grows with "
            "the window's length; compare a month with a month."
        ),
        stats=(
            _s("opportunities", "opportunities", "count"),
            _s("win_rate", "win rate", "share"),
            _s("average_deal_size", "deal size", "money"),
            _s("cycle_days", "cycle", "days"),
        ),
    ),
    "pipeline_coverage": _Spec(
        "Pipeline coverage",
        "ratio",
        "open pipeline expected to close in the month ÷ the month's revenue target",
        (
            _s("open_pipeline", "open pipeline", "money"),
            _s("open_deals", "open deals", "count"),
            _s("target", "target", "money"),
            _s("win_rate", "win rate", "share"),
            _s("required_coverage", "required (1 ÷ win rate)", "ratio"),
        ),
        trend_extra=(_s("required_coverage", "required (1 ÷ win rate)", "ratio"),),
        chart="coverage",
    ),
    "pipeline_waterfall": _Spec(
        "Pipeline waterfall",
        "money",
        "open pipeline due in the window, bridged month by month: "
        "start + new + pulled in − pushed − won − lost + changed = end",
    ),
    "stage_conversion": _Spec(
        "Stage conversion",
        "share",
        "of the deals that entered the first stage, the share won",
    ),
    "time_in_stage": _Spec(
        "Time in stage",
        "count",
        "open deals stalled: in their stage longer than won deals usually stay there",
    ),
    "slippage": _Spec(
        "Slippage",
        "number",
        "close-date pushes per deal, by month of the first close date",
        (
            _s("pushes", "pushes", "count"),
            _s("slipped_deals", "deals that slipped", "count"),
            _s("repeat_slip_share", "slipped again", "share"),
            _s("pushed_out_share", "pushed out of period", "share"),
            _s("deals", "deals", "count"),
        ),
    ),
    # subscription revenue
    "mrr": _Spec(
        "MRR",
        "money",
        "monthly recurring revenue at the end of the period",
        (_s("customers", "paying customers", "count"),),
    ),
    "arr": _Spec("ARR", "money", "12 × MRR", (_s("customers", "paying customers", "count"),)),
    "mrr_movements": _Spec(
        "MRR movements",
        "money",
        "net new MRR: new + expansion + reactivation − contraction − churn",
        (
            _s("new", "new", "money"),
            _s("expansion", "expansion", "money"),
            _s("reactivation", "reactivation", "money"),
            _s("contraction", "contraction", "money"),
            _s("churn", "churn", "money"),
            _s("fx", "FX (not a movement)", "money"),
        ),
        chart="movements",
    ),
    "net_new_mrr": _Spec(
        "Net new MRR",
        "money",
        "new + expansion + reactivation − contraction − churn (FX excluded)",
        (
            _s("new", "new", "money"),
            _s("expansion", "expansion", "money"),
            _s("contraction", "contraction", "money"),
            _s("churn", "churn", "money"),
        ),
        chart="bars",
    ),
    "customer_churn_rate": _Spec(
        "Customer churn rate",
        "share",
        "customers lost in the month ÷ customers at its start",
        (_s("churned", "churned", "count"), _s("customers", "customers at start", "count")),
    ),
    "mrr_churn_rate": _Spec(
        "MRR churn rate",
        "share",
        "MRR lost to churn and contraction ÷ MRR at the start of the month",
        (
            _s("gross", "gross", "share"),
            _s("net", "net of expansion", "share"),
            _s("start_mrr", "start MRR", "money"),
        ),
        trend_extra=(_s("gross", "gross", "share"),),
    ),
    "quick_ratio": _Spec(
        "SaaS quick ratio",
        "ratio",
        "MRR gained (new, expansion, reactivation) ÷ MRR lost (contraction, churn)",
        (_s("gained", "gained", "money"), _s("lost", "lost", "money")),
        undefined_below=("lost", 0.005),
        note="Months that lost less than a cent of MRR have no quick ratio (nothing lost).",
    ),
    "nrr": _Spec(
        "Net revenue retention",
        "share",
        "MRR at the end of the period of customers paying at its start ÷ their start MRR",
        (
            _s("start_mrr", "start MRR", "money"),
            _s("retained_mrr", "retained MRR", "money"),
            _s("customers", "customers", "count"),
        ),
    ),
    "grr": _Spec(
        "Gross revenue retention",
        "share",
        "as NRR with each customer's MRR capped at its start MRR",
        (
            _s("start_mrr", "start MRR", "money"),
            _s("retained_capped", "retained MRR (capped)", "money"),
            _s("customers", "customers", "count"),
        ),
    ),
    "arpa": _Spec(
        "ARPA",
        "money",
        "MRR ÷ paying customers at the end of the period",
        (_s("customers", "paying customers", "count"),),
    ),
    "asp": _Spec(
        "Average sale price",
        "money",
        "new-business MRR ÷ new customers",
        (_s("new_customers", "new customers", "count"), _s("new_mrr", "new MRR", "money")),
    ),
    "ltv": _Spec(
        "Customer lifetime value",
        "money",
        "ARPA ÷ customer churn rate (null while no customer churned)",
        (_s("arpa", "ARPA", "money"), _s("churn_rate", "churn rate", "share")),
    ),
    "cohort_retention": _Spec(
        "Cohort retention",
        "share",
        "retention 12 months after the first paid month, pooled over the cohorts that old",
    ),
}

_ORDER = {name: i for i, name in enumerate(_SPECS)}
_ROW_METRICS = frozenset(
    {
        "cohort_retention",
        "conversion_by_response_time",
        "pipeline_waterfall",
        "stage_conversion",
        "time_in_stage",
    }
)


def _spec(name: str) -> _Spec:
    found = _SPECS.get(name)
    if found is not None:
        return found
    # a metric registered after this module was written still shows, plainly
    return _Spec(name.replace("_", " ").capitalize(), "number", metrics.get_metric(name).doc)


# -- collecting -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RevOpsData:
    """The computed RevOps metrics of a report, ready to render.

    Built by :func:`collect_revops`; rendered by :func:`revops_sections`.

    Attributes
    ----------
    frames
        ``{metric: {role: MetricFrame}}``; roles are ``headline`` (one figure, or the
        rows of a per-stage/per-bucket/per-cohort metric), ``trend`` (per month), and
        for NRR and GRR ``yoy``/``yoy_trend`` (the year-over-year variant their
        benchmarks are quoted in).
    skipped
        ``{metric: reason}`` for the metrics not computed.
    currency
        Reporting currency of every amount.
    start, end, as_of
        The window ``[start, end)`` of the figures (``None``: open) and the as-of instant.
    horizon
        The latest instant in the pipeline data (or ``as_of``): "now" for coverage.
    bridge_start, bridge_end
        The window of the pipeline waterfall (``None`` when it was skipped).
    coverage_start
        First day of the month the headline pipeline coverage looks at.
    target, target_note
        Monthly revenue target used for coverage, and where it comes from.
    """

    frames: Mapping[str, Mapping[str, MetricFrame]]
    skipped: Mapping[str, str]
    currency: str
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    as_of: pd.Timestamp | None = None
    horizon: pd.Timestamp | None = None
    bridge_start: pd.Timestamp | None = None
    bridge_end: pd.Timestamp | None = None
    coverage_start: pd.Timestamp | None = None
    target: float | None = None
    target_note: str = ""

    @property
    def names(self) -> list[str]:
        """Every metric of the data, computed or skipped, in report order."""
        return _ordered([*self.frames, *self.skipped])


def _ordered(names: Collection[str]) -> list[str]:
    return sorted(set(names), key=lambda n: (_ORDER.get(n, len(_ORDER)), n))


def _ts(value: DateLike | None) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value)


def _month_start(ts: pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(year=ts.year, month=ts.month, day=1)


def latest_timestamp(
    con: Backend, tables: Mapping[str, ir.Table], columns: Mapping[str, Sequence[str]]
) -> pd.Timestamp | None:
    """The latest value of the timestamp ``columns`` of each table present, or ``None``."""
    latest: list[pd.Timestamp] = []
    for name, cols in columns.items():
        if name not in tables:
            continue
        t = tables[name]
        aggs = {c: t[c].cast("timestamp").max() for c in cols if c in t.columns}
        if not aggs:
            continue
        row = to_pandas(t.aggregate(**aggs), con).iloc[0]
        latest += [pd.Timestamp(v) for v in row if v is not None and not pd.isna(v)]
    return max(latest) if latest else None


def _horizon(con: Backend, tables: Mapping[str, ir.Table]) -> pd.Timestamp | None:
    """The latest instant of the pipeline data (opportunities and stage history)."""
    columns = {"opportunities": ("created_at", "closed_at"), "stage_history": ("changed_at",)}
    return latest_timestamp(con, tables, columns)


def _full_months_end(horizon: pd.Timestamp) -> pd.Timestamp:
    """The first day after the last full month of data ending at ``horizon``."""
    nxt = (horizon + pd.Timedelta(days=1)).normalize()
    return _month_start(nxt)


def collect_revops(
    con: Backend,
    tables: Mapping[str, ir.Table],
    *,
    start: DateLike | None = None,
    end: DateLike | None = None,
    as_of: DateLike | None = None,
    target: float | None = None,
    target_growth: float | None = None,
    bridge_months: int = 6,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    names: Collection[str] | None = None,
    currency: str = "USD",
    on_progress: Callable[[int, int, str], None] | None = None,
) -> RevOpsData:
    """Compute every registered metric the tables allow, as one figure and per month.

    Parameters
    ----------
    con
        The backend the tables live on.
    tables
        Canonical tables by name (leads, activities, opportunities, stage_history,
        subscriptions, fx_rates …); metrics whose tables are missing are skipped with
        the reason.
    start, end, as_of
        Half-open window of every figure and trend (``None``: all the data), and the
        instant the figures are known at.
    target
        Revenue target per month (``currency``) for pipeline coverage.
    target_growth
        Without ``target``: derive one from the data, as the won revenue of the
        12 full months before the pipeline horizon ÷ 12 × (1 + ``target_growth``).
        The report states the assumption. Neither: coverage is skipped.
    bridge_months
        The pipeline waterfall covers ``[start, end)`` when both are given, else the last
        ``bridge_months`` full calendar months of the pipeline data.
    params
        Policies per metric (``{"win_rate": {"basis": "amount"}}``); defaults otherwise.
        ``reporting_currency`` defaults to ``currency``.
    names
        Only these metrics (default: every registered one).
    currency
        Reporting currency (ISO 4217) of every amount.
    on_progress
        Called after each computed frame with (done, total, metric name).

    Returns
    -------
    RevOpsData

    Notes
    -----
    Pipeline coverage is about the pipeline open *now* (at ``as_of``, else the latest
    instant in the pipeline data): its headline is the coverage of the next calendar
    month after that instant, its trend one bar per month of expected close date.
    NRR and GRR are also computed year over year (``variant="yoy"``) when their policy
    is not already that, because their benchmarks are quoted year over year.
    """
    if bridge_months < 1:
        raise ConfigError(f"bridge_months must be at least 1, got {bridge_months!r}.")
    if target is not None and not (isinstance(target, int | float) and target > 0):
        raise ConfigError(f"target must be a positive amount per month, got {target!r}.")
    cur = currency.upper()
    chosen = metrics.list_metrics() if names is None else _ordered(names)
    for n in chosen:
        metrics.get_metric(n)  # unknown names raise, listing the registered ones
    base: dict[str, dict[str, Any]] = {}
    for n in chosen:
        kw = dict((params or {}).get(n, {}))
        if any(p.name == "reporting_currency" for p in metrics.get_metric(n).policies):
            kw.setdefault("reporting_currency", cur)
        base[n] = kw

    t_start, t_end, t_as_of = _ts(start), _ts(end), _ts(as_of)
    needs_pipeline = any(n in chosen for n in ("pipeline_coverage", "pipeline_waterfall"))
    horizon = t_as_of
    if horizon is None and needs_pipeline:
        horizon = _horizon(con, tables)
    skipped: dict[str, str] = {}

    # the monthly revenue target behind coverage
    note = ""
    if "pipeline_coverage" in chosen and "target" not in base["pipeline_coverage"]:
        if target is not None:
            note = f"target given: {fmt_money(target, cur)} per month"
        elif target_growth is not None and horizon is not None and "opportunities" in tables:
            t_end_12 = _full_months_end(horizon)
            t_start_12 = t_end_12 - pd.DateOffset(months=12)
            won = metrics.compute(
                "average_deal_size",
                tables,
                start=t_start_12,
                end=t_end_12,
                as_of=as_of,
                reporting_currency=cur,
            )
            won_amount = to_pandas(won.table, con)["won_amount"].sum()
            if won_amount > 0:
                target = float(won_amount) / 12 * (1 + target_growth)
                note = (
                    f"assumed target: {fmt_money(target, cur)} per month = won revenue of the "
                    f"12 months {fmt_date(t_start_12)} to {fmt_date(t_end_12 - pd.Timedelta(days=1))} "
                    f"({fmt_money(won_amount, cur)}) ÷ 12 × {1 + target_growth:g}"
                )
            else:
                skipped["pipeline_coverage"] = (
                    "no won revenue in the 12 months before the pipeline horizon to derive "
                    "a target from; pass a target"
                )
    elif "pipeline_coverage" in chosen:
        note = f"target given: {fmt_money(base['pipeline_coverage']['target'], cur)} per month"

    # the bridge window: the report window, else the last full months of pipeline data
    bridge_start = bridge_end = None
    if t_start is not None and t_end is not None:
        bridge_start, bridge_end = t_start, t_end
    elif horizon is not None:
        bridge_end = _full_months_end(horizon) if t_end is None else t_end
        bridge_start = bridge_end - pd.DateOffset(months=bridge_months)
        if t_start is not None:
            bridge_start = max(bridge_start, t_start)

    p = metrics.panel(
        tables.keys(),
        period="month",
        start=start,
        end=end,
        as_of=as_of,
        target=target,
        params=base,
        names=[n for n in chosen if n not in skipped and n != "pipeline_waterfall"],
    )
    skipped.update(p.skipped)
    requests: list[tuple[str, Request]] = []
    coverage_start = None
    for r in p.requests:
        if r.name == "pipeline_coverage" and r.period is None and horizon is not None:
            # the headline looks at the next month after "now"
            coverage_start = _month_start(horizon) + pd.DateOffset(months=1)
            r = dataclasses.replace(
                r, start=coverage_start, end=coverage_start + pd.DateOffset(months=1)
            )
        requests.append((HEADLINE if r.period is None else TREND, r))
    if "pipeline_waterfall" in chosen:
        if bridge_start is None or bridge_end is None:
            skipped["pipeline_waterfall"] = "needs a window: no pipeline data to place it in"
        else:
            wf = metrics.panel(
                tables.keys(),
                period="month",
                start=bridge_start,
                end=bridge_end,
                as_of=as_of,
                params=base,
                names=["pipeline_waterfall"],
            )
            skipped.update(wf.skipped)
            requests += [(HEADLINE, r) for r in wf.requests]
    for n in _YOY_METRICS:
        headline = [r for role, r in requests if role == HEADLINE and r.name == n]
        if headline and headline[0].params.get("variant", "interval") != "yoy":
            kw = {**headline[0].params, "variant": "yoy"}
            r = dataclasses.replace(headline[0], params=kw)
            requests += [(YOY, r), (YOY_TREND, dataclasses.replace(r, period="month"))]

    total = len(requests)
    count = [0]

    def done(f: MetricFrame) -> None:
        count[0] += 1
        if on_progress is not None:
            on_progress(count[0], total, f.request.name)

    computed = compute_metrics(con, tables, [r for _, r in requests], on_done=done)
    frames: dict[str, dict[str, MetricFrame]] = {}
    for (role, _), f in zip(requests, computed, strict=True):
        frames.setdefault(f.request.name, {})[role] = f
    return RevOpsData(
        frames=frames,
        skipped=skipped,
        currency=cur,
        start=t_start,
        end=t_end,
        as_of=t_as_of,
        horizon=horizon,
        bridge_start=bridge_start if "pipeline_waterfall" in frames else None,
        bridge_end=bridge_end if "pipeline_waterfall" in frames else None,
        coverage_start=coverage_start,
        target=target,
        target_note=note,
    )


# -- formatting -----------------------------------------------------------------------------


def _num(x: object) -> float | None:
    if x is None or isinstance(x, str):
        return None
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def fmt_minutes(x: object) -> str:
    """A duration in minutes for people: ``"42 min"``, ``"2 h 06 min"``, ``"3.1 days"``.

    Examples
    --------
    >>> fmt_minutes(4.25), fmt_minutes(126.13), fmt_minutes(2520), fmt_minutes(2813)
    ('4.2 min', '2 h 06 min', '42 h', '46 h 53 min')
    >>> fmt_minutes(5000), fmt_minutes(None)
    ('3.5 days', '–')
    """
    v = _num(x)
    if v is None:
        return DASH
    if v < 10:
        return f"{v:.1f} min"
    if v < 60:
        return f"{v:.0f} min"
    if v < 48 * 60:
        h, m = divmod(round(v), 60)
        return f"{h} h" if m == 0 else f"{h} h {m:02d} min"
    return f"{v / 1440:.1f} days"


def _fmt(x: object, unit: Unit, currency: str, per: str = "day") -> str:
    if unit == "money":
        return fmt_money(_num(x), currency)
    if unit == "velocity":
        v = _num(x)
        return DASH if v is None else f"{fmt_money(v, currency)}/{per}"
    if unit == "share":
        return fmt_pct(_num(x))
    if unit == "minutes":
        return fmt_minutes(x)
    if unit == "days":
        v = _num(x)
        return DASH if v is None else f"{v:,.1f} days"
    if unit == "ratio":
        return fmt_ratio(_num(x))
    if unit == "count":
        return fmt_count(_num(x))
    if unit == "number":
        v = _num(x)
        return DASH if v is None else f"{v:,.2f}"
    assert_never(unit)


def _fmt_benchmark(b: Benchmark, currency: str) -> str:
    """A benchmark's figure in its own unit (``13.0%``, ``over 60×``, ``42 h``)."""
    unit = b.unit.strip()
    over = unit.endswith("(over)")
    base = unit.removesuffix("(over)").strip()
    if base == "share":
        text = fmt_pct(b.value)
    elif base == "+share":
        text = "+" + fmt_pct(b.value, 0)
    elif base == "x":
        text = f"{b.value:g}×"
    elif base == "minutes":
        text = fmt_minutes(b.value)
    elif base == "days":
        text = f"{b.value:g} days"
    elif base in ("money", currency):
        text = fmt_money(b.value, currency)
    else:
        text = f"{b.value:g} {base}"
    return f"over {text}" if over else text


def _policy_text(policy: Mapping[str, Any]) -> str:
    """``clock=wall · percentile=linear``; lists joined with commas, None as ``none``."""

    def one(v: Any) -> str:
        if v is None:
            return "none"
        if isinstance(v, list | tuple):
            return ",".join(one(x) for x in v) or "none"
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        if isinstance(v, float):
            return f"{v:.6g}"
        return str(v)

    return " · ".join(f"{k}={one(v)}" for k, v in policy.items())


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


# -- charts ---------------------------------------------------------------------------------

_INK = "#1f4e9c"
_SECOND = "#e8833a"
_BENCH = "#7b8794"
_GOOD, _BAD, _TOTAL = "#3f9c5a", "#d1495b", "#1f4e9c"


def _axis(unit: Unit, currency: str) -> dict[str, object]:
    if unit == "money" or unit == "velocity":
        return {"tickprefix": currency_symbol(currency), "tickformat": "~s"}
    if unit == "share":
        return {"tickformat": ".0%"}
    if unit == "minutes":
        return {"type": "log", "ticksuffix": " h", "tickformat": "~g"}
    if unit == "days":
        return {"ticksuffix": " d", "tickformat": ",~g"}
    if unit == "ratio":
        return {"ticksuffix": "×", "tickformat": ",~g"}
    if unit == "count" or unit == "number":
        return {"tickformat": ",~g"}
    assert_never(unit)


def _scale(unit: Unit) -> float:
    """Chart values are shown in hours for minutes (log axis), as is otherwise."""
    return 1 / 60 if unit == "minutes" else 1.0


def _small_layout(fig: go.Figure, height: int = 250) -> go.Figure:
    fig.update_layout(**_base_layout(height))
    fig.update_layout(
        margin={"l": 10, "r": 10, "t": 28, "b": 10},
        showlegend=True,
        legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "font": {"size": 11}},
        bargap=0.25,
    )
    fig.update_yaxes(gridcolor="#eceff3", automargin=True)
    return fig


def _months_axis(fig: go.Figure) -> None:
    fig.update_xaxes(type="date", tickformat="%b<br>%Y", ticklabelmode="period", showgrid=False)


def _hover(unit: Unit, currency: str) -> str:
    if unit in ("money", "velocity"):
        return f"{currency_symbol(currency)}%{{y:,.0f}}"
    if unit == "share":
        return "%{y:.1%}"
    if unit == "minutes":
        return "%{y:,.1f} h"
    if unit == "days":
        return "%{y:,.1f} days"
    if unit == "ratio":
        return "%{y:,.2f}×"
    return "%{y:,.2f}"


def _benchmark_lines(
    fig: go.Figure, marks: Sequence[tuple[Benchmark, Unit]], currency: str
) -> None:
    for i, (b, unit) in enumerate(marks):
        y = b.value * _scale(unit)
        if unit == "minutes":  # a log axis: shapes take log10 coordinates
            y = math.log10(y) if y > 0 else 0.0
        fig.add_hline(
            y=y,
            line={"dash": "dash", "color": _BENCH, "width": 1.4},
            annotation_text=f"benchmark {_fmt_benchmark(b, currency)}",
            annotation_position="top right" if i % 2 == 0 else "bottom right",
            annotation_font={"size": 10.5, "color": "#52606d"},
        )


def _trend_figure(
    name: str,
    spec: _Spec,
    trend: pd.DataFrame,
    marks: Mapping[str, Sequence[tuple[Benchmark, Unit]]],
    currency: str,
    yoy: pd.DataFrame | None = None,
) -> go.Figure | None:
    """The metric per month: its value (and a few related columns), benchmarks dashed."""
    if trend.empty or "period" not in trend.columns or "value" not in trend.columns:
        return None
    df = trend.sort_values("period")
    if spec.undefined_below is not None and spec.undefined_below[0] in df.columns:
        col, low = spec.undefined_below
        df = df.assign(value=df["value"].where(df[col].astype(float) >= low))
    x = pd.to_datetime(df["period"])
    fig = go.Figure()
    unit = spec.unit
    k = _scale(unit)
    if spec.chart == "movements":
        parts = [
            ("new", "new", 1, "#3f9c5a"),
            ("expansion", "expansion", 1, "#8cc084"),
            ("reactivation", "reactivation", 1, "#4e79a7"),
            ("contraction", "contraction", -1, "#f2a65a"),
            ("churn", "churn", -1, "#d1495b"),
        ]
        for col, label, sign, color in parts:
            if col in df.columns and df[col].abs().sum() > 0:
                fig.add_bar(
                    x=x,
                    y=sign * df[col].to_numpy(dtype=float),
                    name=label,
                    marker_color=color,
                    xperiod="M1",
                    xperiodalignment="middle",
                    hovertemplate=f"{label} %{{x|%b %Y}}: {_hover(unit, currency)}<extra></extra>",
                )
        fig.add_scatter(
            x=x,
            y=df["value"].to_numpy(dtype=float),
            name="net new MRR",
            mode="lines+markers",
            line={"color": "#1f2933", "width": 2},
            xperiod="M1",
            xperiodalignment="middle",
            hovertemplate=f"net %{{x|%b %Y}}: {_hover(unit, currency)}<extra></extra>",
        )
        fig.update_layout(barmode="relative")
    else:
        values = df["value"].to_numpy(dtype=float) * k
        kind = "bars" if spec.chart in ("bars", "coverage") else "line"
        label = spec.title if spec.chart != "coverage" else "coverage"
        if kind == "bars":
            fig.add_bar(
                x=x,
                y=values,
                name=label,
                marker_color=_INK,
                xperiod="M1",
                xperiodalignment="middle",
                hovertemplate=f"%{{x|%b %Y}}: {_hover(unit, currency)}<extra></extra>",
            )
        else:
            symbols: str | list[str] = "circle"
            if "immature_leads" in df.columns:
                symbols = [
                    "circle-open" if (n or 0) > 0 else "circle"
                    for n in df["immature_leads"].fillna(0)
                ]
            fig.add_scatter(
                x=x,
                y=values,
                name=label + (" (month over month)" if yoy is not None else ""),
                mode="lines+markers",
                line={"color": _INK, "width": 2},
                marker={"symbol": symbols, "size": 7},
                hovertemplate=f"%{{x|%b %Y}}: {_hover(unit, currency)}<extra></extra>",
            )
        for extra in spec.trend_extra:
            if extra.column not in df.columns:
                continue
            ys = df[extra.column].to_numpy(dtype=float) * _scale(extra.unit)
            if pd.Series(ys).equals(pd.Series(values)):
                continue  # the same series as value (e.g. gross churn under variant=gross)
            fig.add_scatter(
                x=x,
                y=ys,
                name=extra.label,
                mode="lines",
                line={"color": _SECOND, "width": 1.6, "dash": "dot"},
                hovertemplate=f"{extra.label} %{{x|%b %Y}}: {_hover(extra.unit, currency)}"
                "<extra></extra>",
            )
        if yoy is not None and not yoy.empty and "period" in yoy.columns:
            y2 = yoy.sort_values("period")
            fig.add_scatter(
                x=pd.to_datetime(y2["period"]),
                y=y2["value"].to_numpy(dtype=float),
                name="year over year",
                mode="lines+markers",
                line={"color": _SECOND, "width": 2},
                marker={"size": 6},
                hovertemplate=f"YoY %{{x|%b %Y}}: {_hover(unit, currency)}<extra></extra>",
            )
    lines = [m for col in marks for m in marks[col]]
    _benchmark_lines(fig, lines, currency)
    _small_layout(fig)
    _months_axis(fig)
    fig.update_yaxes(**_axis(unit, currency))
    if unit != "minutes" and spec.chart != "movements":
        fig.update_yaxes(rangemode="tozero")
        # shapes do not widen the axis: keep every benchmark line inside the plot
        drawn = [y for trace in fig.data for y in (trace.y if trace.y is not None else ())]
        finite = [float(y) for y in drawn if y is not None and math.isfinite(float(y))]
        top = max([*finite, *(b.value * _scale(u) for b, u in lines), 0.0])
        if lines and top > 0:
            fig.update_yaxes(range=[min([*finite, 0.0]), top * 1.12])
    return fig


# -- per-metric blocks ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """One metric's card: headline, notes and its chart/table HTML."""

    headline: str
    value: float | None
    what: str
    stats: list[tuple[str, str]]
    benchmarks: list[str]
    warnings: list[str]
    body: str


def _first(frame: pd.DataFrame) -> Mapping[str, Any]:
    return {} if frame.empty else dict(frame.iloc[0])


def _compared(b: Benchmark) -> str | None:
    """The column of the headline frame ``b`` compares with (``"value@yoy"``: the headline of
    the year-over-year variant), from :attr:`Benchmark.column` and ``variant``."""
    if b.column is None:
        return None
    return f"{b.column}@{b.variant}" if b.variant else b.column


def _benchmark_items(
    name: str,
    spec: _Spec,
    bench: Sequence[Benchmark],
    row: Mapping[str, Any],
    yoy_row: Mapping[str, Any],
    currency: str,
    yours: Mapping[str, float | None] | None = None,
) -> list[str]:
    units = {"value": spec.unit, **{s.column: s.unit for s in spec.stats}}
    items = []
    for b in bench:
        col = _compared(b)
        mine = ""
        if yours is not None and b.label in yours:
            v = yours[b.label]
            mine = f"yours {_fmt(v, 'ratio', currency)}" if v is not None else ""
        elif col == "value@yoy":
            v = _num(yoy_row.get("value"))
            mine = f"yours (year over year) {_fmt(v, spec.unit, currency)}" if yoy_row else ""
        elif col is not None and col in row:
            mine = f"yours {_fmt(row[col], units.get(col, 'number'), currency)}"
        items.append(
            f'<li><span class="rv-bfig">benchmark {_e(_fmt_benchmark(b, currency))}</span> '
            f"{_e(b.label)}"
            + (f' · <span class="rv-yours">{_e(mine)}</span>' if mine else "")
            + f' <span class="rv-src">({_e(b.source)})</span></li>'
        )
    return items


def _warnings(name: str, frame: pd.DataFrame) -> list[str]:
    """A sentence per column counting rows a figure left out (:func:`metrics.left_out`)."""
    return [f"{fmt_count(n)} {text} ({col})." for col, n, text in metrics.left_out(name, frame)]


def _marks(
    spec: _Spec, bench: Sequence[Benchmark], plotted: Mapping[str, Unit]
) -> dict[str, list[tuple[Benchmark, Unit]]]:
    """Benchmarks to draw on the trend: those compared with a plotted column."""
    out: dict[str, list[tuple[Benchmark, Unit]]] = {}
    for b in bench:
        col = _compared(b)
        if col is not None and col in plotted:
            out.setdefault(col, []).append((b, plotted[col]))
    return out


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "") -> str:
    head = "".join(
        f'<th scope="col"{" class=num" if i else ""}>{_e(h)}</th>' for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="name">{_e(c)}</td>' if i == 0 else f'<td class="num">{_e(c)}</td>'
            for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    return (
        f'<div class="table-wrap"><table class="data rv-table">{cap}'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _chart(fig: go.Figure | None, name: str, suffix: str = "") -> str:
    if fig is None:
        return '<p class="empty">No monthly figures in the window.</p>'
    return figure_div(fig, f"chart-revops-{name.replace('_', '-')}{suffix}")


def _plain_block(name: str, data: RevOpsData) -> _Block:
    spec = _spec(name)
    roles = data.frames[name]
    head = roles.get(HEADLINE)
    frame = head.frame if head is not None else pd.DataFrame()
    row = _first(frame)
    policy = head.result.policy if head is not None else {}
    per = str(policy.get("per", "day"))
    value = _num(row.get("value"))
    if spec.undefined_below is not None:
        col, low = spec.undefined_below
        below = _num(row.get(col))
        if below is not None and below < low:
            value = None
    bench = head.result.benchmarks if head is not None else ()
    yoy = roles.get(YOY)
    yoy_row = _first(yoy.frame) if yoy is not None else {}
    stats = [
        (s.label, _fmt(row[s.column], s.unit, data.currency, per))
        for s in spec.stats
        if s.column in row
    ]
    trend = roles.get(TREND)
    yoy_trend = roles.get(YOY_TREND)
    plotted: dict[str, Unit] = {"value": spec.unit}
    plotted.update({s.column: s.unit for s in spec.trend_extra})
    if yoy_trend is not None:
        plotted["value@yoy"] = spec.unit
    fig = None
    if trend is not None:
        fig = _trend_figure(
            name,
            spec,
            trend.frame,
            _marks(spec, bench, plotted),
            data.currency,
            yoy=None if yoy_trend is None else yoy_trend.frame,
        )
    what = spec.what
    if name == "pipeline_coverage" and data.coverage_start is not None:
        what = (
            f"open pipeline expected to close in {data.coverage_start:%B %Y} (the month after "
            f"{fmt_date(data.horizon)}) ÷ the month's revenue target"
        )
    notes = f'<p class="note">{_e(spec.note)}</p>' if spec.note else ""
    if trend is not None and "immature_leads" in trend.frame.columns:
        notes += (
            '<p class="note">Hollow points: months whose leads are not all mature yet '
            "(their window has not closed); their rate covers the mature leads only.</p>"
        )
    if name == "pipeline_coverage":
        notes += (
            '<p class="note">One bar per month of expected close date of the deals open at '
            f"{_e(fmt_date(data.horizon))}. {_e(data.target_note.capitalize())}.</p>"
        )
    return _Block(
        headline=_fmt(value, spec.unit, data.currency, per),
        value=value,
        what=what,
        stats=stats,
        benchmarks=_benchmark_items(name, spec, bench, row, yoy_row, data.currency),
        warnings=_warnings(name, frame),
        body=_chart(fig, name) + notes,
    )


def _rate(frame: pd.DataFrame, buckets: Sequence[str]) -> float | None:
    sel = frame[frame["response_bucket"].isin(buckets)]
    leads = float(sel["leads"].sum())
    return float(sel["converted"].sum()) / leads if leads > 0 else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b is not None and b > 0 else None


_BUCKETS = ("0-5m", "5-30m", "30-60m", "1-24h", "24h+", "never")
_BUCKET_LABELS = {
    "0-5m": "≤ 5 min",
    "5-30m": "5–30 min",
    "30-60m": "30–60 min",
    "1-24h": "1–24 h",
    "24h+": "> 24 h",
    "never": "never",
}


def _response_block(name: str, data: RevOpsData) -> _Block:
    spec = _spec(name)
    mf = data.frames[name][HEADLINE]
    df = mf.frame
    if df.empty or "response_bucket" not in df.columns:
        return _Block(
            DASH, None, spec.what, [], [], _warnings(name, df), '<p class="empty">No leads.</p>'
        )
    order = [b for b in _BUCKETS if b in set(df["response_bucket"])]
    order += sorted(set(df["response_bucket"]) - set(order))
    df = df.set_index("response_bucket").loc[order].reset_index()
    fast, slow = _rate(df, ["0-5m"]), _rate(df, ["24h+"])
    within_1h = _rate(df, ["0-5m", "5-30m", "30-60m"])
    value = _ratio(fast, slow)
    yours = {
        "odds of qualifying when called within 5 vs 30 minutes": _ratio(fast, _rate(df, ["5-30m"])),
        "likelihood of qualifying, within 1 hour vs an hour later": _ratio(
            within_1h, _rate(df, ["1-24h"])
        ),
        "likelihood of qualifying, within 1 hour vs after 24 hours or more": _ratio(
            within_1h, slow
        ),
    }
    labels = [_BUCKET_LABELS.get(str(b), str(b)) for b in df["response_bucket"]]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=df["value"].to_numpy(dtype=float),
            marker_color=[_BENCH if b == "never" else _INK for b in df["response_bucket"]],
            text=[
                f"{fmt_count(c)} of {fmt_count(n)}"
                for c, n in zip(df["converted"], df["leads"], strict=True)
            ],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="reached %{x}: %{y:.1%} became opportunities<extra></extra>",
            name="lead → opportunity",
        )
    )
    _small_layout(fig, 260)
    fig.update_layout(showlegend=False)
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    fig.update_xaxes(title_text="first rep touch after creation", title_font={"size": 11})
    peak = float(df["value"].max()) if len(df) else 0.0
    if peak > 0:
        fig.update_yaxes(range=[0, peak * 1.25])
    clock = mf.result.policy.get("clock", "wall")
    stats = [
        ("reached ≤ 5 min", fmt_pct(fast)),
        ("reached > 24 h", fmt_pct(slow)),
        ("reached ≤ 1 h", fmt_pct(within_1h)),
        ("leads", fmt_count(df["leads"].sum())),
    ]
    body = _chart(fig, name) + (
        f'<p class="note">Lead → opportunity rate (mature leads) by time to the first rep '
        f"touch ({_e(clock)} clock); “yours” figures are ratios of these rates.</p>"
    )
    return _Block(
        headline=_fmt(value, "ratio", data.currency),
        value=value,
        what=spec.what,
        stats=stats,
        benchmarks=_benchmark_items(
            name, spec, mf.result.benchmarks, {}, {}, data.currency, yours=yours
        ),
        warnings=_warnings(name, df),
        body=body,
    )


def _stage_order(data: RevOpsData) -> list[str]:
    sc = data.frames.get("stage_conversion", {}).get(HEADLINE)
    if sc is None or sc.frame.empty:
        return []
    return [str(s) for s in sc.frame.sort_values("position")["stage"]]


def _stage_conversion_block(name: str, data: RevOpsData) -> _Block:
    spec = _spec(name)
    mf = data.frames[name][HEADLINE]
    df = mf.frame
    if df.empty:
        return _Block(DASH, None, spec.what, [], [], [], '<p class="empty">No stage history.</p>')
    df = df.sort_values("position")
    first, last = df.iloc[0], df.iloc[-1]
    value = float(last["advanced"]) / float(first["entered"]) if first["entered"] else None
    stages = [str(s) for s in df["stage"]]
    fig = go.Figure(
        go.Bar(
            y=stages,
            x=df["value"].to_numpy(dtype=float),
            orientation="h",
            marker_color=_INK,
            text=[
                f"{fmt_pct(v)} · {fmt_count(a)} of {fmt_count(n)}"
                for v, a, n in zip(df["value"], df["advanced"], df["entered"], strict=True)
            ],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.1%} moved on<extra></extra>",
        )
    )
    _small_layout(fig, max(200, 70 + 38 * len(stages)))
    fig.update_layout(showlegend=False, margin={"l": 10, "r": 30, "t": 20, "b": 10})
    fig.update_xaxes(tickformat=".0%", range=[0, 1.3], tickvals=[0, 0.25, 0.5, 0.75, 1.0])
    fig.update_yaxes(autorange="reversed", ticksuffix="  ")
    rows = [
        [
            str(r.stage),
            fmt_count(r.entered),
            fmt_count(r.advanced),
            fmt_pct(r.value),
            fmt_count(r.skipped),
            fmt_count(r.regressed),
        ]
        for r in df.itertuples()
    ]
    table = _table(["Stage", "Entered", "Moved on", "Conversion", "Skipped", "Regressed"], rows)
    what = f"of the deals that entered {stages[0]}, the share won (every stage passed)"
    return _Block(
        headline=fmt_pct(value),
        value=value,
        what=what,
        stats=[("weakest stage", _weakest(df))],
        benchmarks=_benchmark_items(name, spec, mf.result.benchmarks, {}, {}, data.currency),
        warnings=[],
        body=_chart(fig, name) + table,
    )


def _weakest(df: pd.DataFrame) -> str:
    low = df.loc[df["value"].astype(float).idxmin()]
    return f"{low['stage']} ({fmt_pct(low['value'])})"


def _time_in_stage_block(name: str, data: RevOpsData) -> _Block:
    spec = _spec(name)
    mf = data.frames[name][HEADLINE]
    df = mf.frame
    if df.empty:
        return _Block(DASH, None, spec.what, [], [], [], '<p class="empty">No stage history.</p>')
    order = _stage_order(data)
    rank = {s: i for i, s in enumerate(order)}
    df = df.assign(_rank=[rank.get(str(s), len(rank)) for s in df["stage"]])
    df = df.sort_values(["_rank", "stage"])
    stages = [str(s) for s in df["stage"]]
    fig = go.Figure()
    for col, label, color in (
        ("value", "median", _INK),
        ("p75", "p75", "#6f97d1"),
        ("p90", "p90", "#b7cbe8"),
    ):
        fig.add_bar(
            y=stages,
            x=df[col].to_numpy(dtype=float),
            orientation="h",
            name=label,
            marker_color=color,
            hovertemplate=f"%{{y}} {label}: %{{x:,.1f}} days<extra></extra>",
        )
    _small_layout(fig, max(220, 80 + 46 * len(stages)))
    fig.update_layout(barmode="group", bargap=0.3)
    fig.update_xaxes(ticksuffix=" d", rangemode="tozero")
    fig.update_yaxes(autorange="reversed", ticksuffix="  ")
    stalled = float(pd.to_numeric(df["stalled"], errors="coerce").fillna(0).sum())
    rows = [
        [
            str(r.stage),
            _fmt(r.value, "days", data.currency),
            _fmt(r.p75, "days", data.currency),
            _fmt(r.p90, "days", data.currency),
            fmt_count(r.deals),
            fmt_count(r.censored),
            _fmt(r.stall_threshold, "days", data.currency),
            fmt_count(r.stalled),
            fmt_count(r.past_close_date),
        ]
        for r in df.itertuples()
    ]
    table = _table(
        [
            "Stage",
            "Median",
            "p75",
            "p90",
            "Deals",
            "Still in it",
            "Stall after",
            "Stalled",
            "Past close date",
        ],
        rows,
    )
    pct = mf.result.policy.get("stall_percentile", "p75")
    what = (
        f"open deals stalled: in their stage longer than the {pct} of won deals' time "
        "there (Kaplan–Meier medians, open deals censored)"
    )
    past = float(pd.to_numeric(df["past_close_date"], errors="coerce").fillna(0).sum())
    return _Block(
        headline=fmt_count(stalled),
        value=stalled,
        what=what,
        stats=[("past their close date", fmt_count(past)), ("stages", fmt_count(len(df)))],
        benchmarks=_benchmark_items(name, spec, mf.result.benchmarks, {}, {}, data.currency),
        warnings=[],
        body=_chart(fig, name) + table,
    )


_BRIDGE = (
    ("new", "New", 1),
    ("pulled_in", "Pulled in", 1),
    ("pushed", "Pushed", -1),
    ("won", "Won", -1),
    ("lost", "Lost", -1),
    ("changed", "Changed", 1),
)


def _waterfall_block(name: str, data: RevOpsData) -> _Block:
    spec = _spec(name)
    mf = data.frames[name][HEADLINE]
    df = mf.frame.sort_values("period") if not mf.frame.empty else mf.frame
    cur = data.currency
    if df.empty:
        return _Block(DASH, None, spec.what, [], [], [], '<p class="empty">No pipeline.</p>')
    start, end = float(df["start"].iloc[0]), float(df["end"].iloc[-1])
    totals = {col: float(df[col].sum()) for col, _, _ in _BRIDGE}
    won = totals["won"]
    labels = ["Start", *[label for _, label, _ in _BRIDGE], "End"]
    ys = [start, *[sign * totals[col] for col, _, sign in _BRIDGE], end]
    fig = go.Figure(
        go.Waterfall(
            x=labels,
            y=ys,
            measure=["absolute", *["relative"] * len(_BRIDGE), "total"],
            increasing={"marker": {"color": _GOOD}},
            decreasing={"marker": {"color": _BAD}},
            totals={"marker": {"color": _TOTAL}},
            connector={"line": {"color": "#c5ccd6", "width": 1}},
            text=[fmt_money(v, cur, compact=True) for v in ys],
            textposition="auto",
            hovertemplate="%{x}: " + currency_symbol(cur) + "%{y:,.0f}<extra></extra>",
        )
    )
    _small_layout(fig, 280)
    fig.update_layout(showlegend=False)
    levels = pd.Series(ys[:-1]).cumsum()
    top = max(float(levels.max()), end, 0.0)
    fig.update_yaxes(tickprefix=currency_symbol(cur), tickformat="~s")
    if top > 0:
        fig.update_yaxes(range=[min(0.0, float(levels.min())), top * 1.12])
    b0, b1 = data.bridge_start, data.bridge_end
    window = (
        f"{fmt_date(b0)} to {fmt_date(None if b1 is None else b1 - pd.Timedelta(days=1))}"
        if b0 is not None
        else "the window"
    )
    rows = [
        [
            pd.Timestamp(r["period"]).strftime("%b %Y"),
            fmt_money(r["start"], cur),
            *[fmt_money(r[col], cur) for col, _, _ in _BRIDGE],
            fmt_money(r["end"], cur),
            fmt_count(r["deals_end"]),
        ]
        for _, r in df.iterrows()
    ]
    table = _table(
        ["Month", "Start", *[label for _, label, _ in _BRIDGE], "End", "Deals at end"], rows
    )
    close = mf.result.policy.get("close_window", "scope")
    scope_note = (
        "open deals expected to close inside the window"
        if close == "scope"
        else "all open pipeline, whatever its close date"
    )
    body = (
        _chart(fig, name)
        + f'<p class="note">Bridge of {_e(window)}: {_e(scope_note)}; each month starts '
        "where the previous one ended (won and lost at the deal's amount at the month's "
        "start).</p>" + table
    )
    return _Block(
        headline=fmt_money(won, cur),
        value=won,
        what=f"pipeline won from {window}, of {fmt_money(start, cur)} open and due in it "
        "at its start, plus what was created or pulled in",
        stats=[
            ("start", fmt_money(start, cur)),
            ("new", fmt_money(totals["new"], cur)),
            ("lost", fmt_money(totals["lost"], cur)),
            ("pushed", fmt_money(totals["pushed"], cur)),
            ("end", fmt_money(end, cur)),
        ],
        benchmarks=_benchmark_items(name, spec, mf.result.benchmarks, {}, {}, cur),
        warnings=_warnings(name, df),
        body=body,
    )


def _cohort_block(name: str, data: RevOpsData) -> _Block:
    spec = _spec(name)
    mf = data.frames[name][HEADLINE]
    df = mf.frame
    if df.empty:
        return _Block(
            DASH, None, spec.what, [], [], [], '<p class="empty">No paying customers.</p>'
        )
    basis = str(mf.result.policy.get("basis", "revenue"))
    weight = "cohort_mrr" if basis == "revenue" else "cohort_customers"
    ages = sorted(int(a) for a in df["age"].unique())
    age = 12 if 12 in ages else max(a for a in ages if a <= 12)
    at = df[df["age"] == age]
    w = at[weight].astype(float)
    value = float((at["value"].astype(float) * w).sum() / w.sum()) if w.sum() > 0 else None
    cohorts = [pd.Timestamp(c) for c in sorted(df["cohort"].unique())]
    pivot = df.pivot_table(index="cohort", columns="age", values="value", aggfunc="sum")
    pivot = pivot.reindex(index=cohorts, columns=ages)
    z = pivot.to_numpy(dtype=float)
    text = [[("" if math.isnan(v) else f"{v * 100:.0f}") for v in line] for line in z]
    sizes = df[df["age"] == 0].set_index("cohort")["cohort_customers"].reindex(cohorts)
    ylab = [f"{c:%b %Y} ({fmt_count(n)})" for c, n in zip(cohorts, sizes.fillna(0), strict=True)]
    finite = z[~pd.isna(z)]
    zmax = max(1.0, min(1.5, float(finite.max()) if finite.size else 1.0))
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(a) for a in ages],
            y=ylab,
            text=text,
            texttemplate="%{text}",
            textfont={"size": 9},
            colorscale=[
                [0, "#fbe3d6"],
                [0.5 / zmax, "#f7f7f7"],
                [1 / zmax, "#9bb7e0"],
                [1, "#1f4e9c"],
            ],
            zmin=0,
            zmax=zmax,
            colorbar={"tickformat": ".0%", "thickness": 10, "len": 0.8},
            hovertemplate="cohort %{y}, month %{x}: %{z:.1%}<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    _small_layout(fig, max(260, 60 + 19 * len(cohorts)))
    fig.update_layout(showlegend=False)
    fig.update_xaxes(
        title_text="months since the first paid month", title_font={"size": 11}, side="top"
    )
    fig.update_yaxes(autorange="reversed", tickfont={"size": 10})
    label = "revenue" if basis == "revenue" else "logo"
    what = (
        f"{label} retention {age} months after the first paid month, pooled over the "
        f"{len(at)} cohorts observed that long (weighted by {'starting MRR' if basis == 'revenue' else 'customers'})"
    )
    body = _chart(fig, name) + (
        f'<p class="note">Each row is the cohort of customers whose first paid month it '
        f"is (customers in brackets); each cell its {label} retention that many months "
        "later, in %.</p>"
    )
    return _Block(
        headline=fmt_pct(value),
        value=value,
        what=what,
        stats=[("cohorts", fmt_count(len(cohorts))), ("customers", fmt_count(sizes.sum()))],
        benchmarks=_benchmark_items(name, spec, mf.result.benchmarks, {}, {}, data.currency),
        warnings=[],
        body=body,
    )


_ROW_BLOCKS: dict[str, Callable[[str, RevOpsData], _Block]] = {
    "conversion_by_response_time": _response_block,
    "stage_conversion": _stage_conversion_block,
    "time_in_stage": _time_in_stage_block,
    "pipeline_waterfall": _waterfall_block,
    "cohort_retention": _cohort_block,
}


def _card(name: str, data: RevOpsData) -> str:
    spec = _spec(name)
    builder = _ROW_BLOCKS.get(name, _plain_block)
    block = builder(name, data)
    head = data.frames[name].get(HEADLINE)
    policy = head.result.policy if head is not None else {}
    value_attr = "" if block.value is None else f' data-value="{block.value!r}"'
    stats = "".join(f'<li><span class="rv-k">{_e(k)}</span> {_e(v)}</li>' for k, v in block.stats)
    parts = [
        f'<article class="rv-card" id="revops-{_e(name.replace("_", "-"))}" data-metric="{_e(name)}">',
        '<div class="rv-text">',
        f"<h3>{_e(spec.title)} <code>{_e(name)}</code></h3>",
        f'<div class="rv-value"{value_attr}>{_e(block.headline)}</div>',
        f'<p class="rv-what">{_e(block.what)}</p>',
        f'<ul class="rv-stats">{stats}</ul>' if stats else "",
        f'<p class="rv-policy"><span class="rv-k">policies</span> '
        f"{_e(_policy_text(policy)) or 'none'}</p>",
        f'<ul class="rv-bench">{"".join(block.benchmarks)}</ul>' if block.benchmarks else "",
        "".join(f'<p class="rv-warn">{_e(w)}</p>' for w in block.warnings),
        "</div>",
        f'<div class="rv-chart">{block.body}</div>',
        "</article>",
    ]
    return "".join(parts)


_CSS = """<style>
.rv-card { display: grid; grid-template-columns: minmax(0, 5fr) minmax(0, 7fr); gap: 20px;
  border-top: 1px solid var(--line, #e4e7eb); padding: 16px 0 10px; align-items: start; }
@media (max-width: 1000px) { .rv-card { grid-template-columns: 1fr; } }
.rv-card h3 { margin: 0 0 2px; font-size: 16px; }
.rv-card h3 code { font-weight: 400; font-size: 11.5px; color: var(--muted, #616e7c); }
.rv-value { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; }
.rv-what { margin: 0 0 6px; color: var(--muted, #616e7c); font-size: 13px; }
.rv-stats { list-style: none; margin: 0 0 6px; padding: 0; display: flex; flex-wrap: wrap;
  gap: 2px 14px; font-size: 13px; font-variant-numeric: tabular-nums; }
.rv-k { color: var(--muted, #616e7c); }
.rv-policy { font-size: 12px; margin: 4px 0; color: #3e4c59; overflow-wrap: anywhere; }
.rv-bench { margin: 6px 0 0; padding-left: 18px; font-size: 12.5px; }
.rv-bench li { margin: 3px 0; }
.rv-bfig { font-weight: 600; color: #52606d; }
.rv-yours { font-weight: 600; color: var(--accent, #1f4e9c); }
.rv-src { color: var(--muted, #616e7c); font-size: 11.5px; }
.rv-warn { color: #8a4b08; background: #fff4e5; border-radius: 6px; padding: 4px 8px;
  font-size: 12.5px; margin: 6px 0 0; }
.rv-table { font-size: 12.5px; }
.rv-skipped { color: var(--muted, #616e7c); font-size: 13px; }
</style>"""


def _intro(family: Family, data: RevOpsData) -> str:
    if data.start is None and data.end is None:
        window = "all the data"
    else:
        a = fmt_date(data.start) if data.start is not None else "the beginning"
        b = f"before {fmt_date(data.end)}" if data.end is not None else "onwards"
        window = f"{a} {b}"
    as_of = f", as known at {fmt_date(data.as_of)}" if data.as_of is not None else ""
    common = (
        f"Headline figures cover {window}{as_of}; the charts show each month. Every figure "
        "states the policies it was computed with; published benchmarks are listed with "
        "their source and drawn as dashed lines where the units agree."
    )
    extra = ""
    if family == "lead":
        extra = (
            " Rates of a month are those of the leads created in it, counted once their "
            "window has closed."
        )
    elif family == "pipeline":
        bits = []
        if data.target_note:
            bits.append(f"Coverage: {data.target_note}.")
        if data.bridge_start is not None and data.bridge_end is not None:
            last = data.bridge_end - pd.Timedelta(days=1)
            bits.append(f"The waterfall bridges {fmt_date(data.bridge_start)} to {fmt_date(last)}.")
        extra = " " + " ".join(bits) if bits else ""
        extra += f" Amounts in {data.currency}."
    else:
        extra = (
            f" From the customer-grain MRR ledger, in {data.currency}; a month's figure is "
            "taken at its end."
        )
    return f'<p class="lead">{_e(common + extra)}</p>'


def revops_sections(data: RevOpsData) -> list[Section]:
    """The RevOps report sections: one per metric family with at least one metric.

    Parameters
    ----------
    data
        What :func:`collect_revops` returned.

    Returns
    -------
    list[Section]
        Keys ``revops-lead``, ``revops-pipeline``, ``revops-subscription`` (titles
        "Lead handling", "Pipeline", "Subscription revenue"), for
        ``ReportData.sections``. Every metric of ``data`` appears in its family's section:
        computed (a card with its figure, policies, benchmarks and chart) or in the list
        of metrics not computed, with the reason.
    """
    out: list[Section] = []
    names = data.names
    for family, key, title in FAMILIES:
        mine = [n for n in names if metrics.get_metric(n).family == family]
        if not mine:
            continue
        cards = [_card(n, data) for n in mine if n in data.frames]
        skipped = [n for n in mine if n not in data.frames]
        body = [_CSS, _intro(family, data), *cards]
        if skipped:
            items = "".join(
                f"<li><code>{_e(n)}</code> ({_e(_spec(n).title)}): "
                f"{_e(data.skipped.get(n, 'not computed'))}</li>"
                for n in skipped
            )
            body.append(f'<div class="rv-skipped"><h3>Not computed</h3><ul>{items}</ul></div>')
        out.append(Section(key=key, title=title, html="\n".join(body)))
    return out
