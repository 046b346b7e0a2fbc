"""As-of snapshots of the open pipeline, rebuilt from ``stage_history`` (compute layer).

A forecast made on a past date must see the pipeline as it was then: each open deal's
stage, amount and close date as recorded at that instant, never today's values
(``shared/reference/revops.md`` §3.6: "never use current values of amount, close_date,
stage or probability for past t"). :func:`snapshots` rebuilds that state for many
dates in one query, with the point-in-time features a win model reads (time in stage,
age, amount and its changes, close-date pushes, activity recency, owner, source,
segment) and, separately, the outcome labels the backtest scores against.

Every feature at ``as_of`` t is computed from rows dated at or before t only:
``stage_history`` rows with ``changed_at <= t``, ``activities`` with
``occurred_at <= t``, FX rates dated on or before t, and the deal counts as open when
it was created by t and had not closed by t. ``owner_id``, ``segment`` and the lead's
``source`` are taken from the current tables (they carry no history in the canonical
schema); they are attributes that rarely change, and the leakage test
(``tests/forecast/test_snapshots.py``) pins that nothing else can leak.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Literal, TypeAlias

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revloop.attribution import to_reporting_currency
from revloop.exceptions import ConfigError, SchemaError
from revloop.schema import conform

__all__ = [
    "FEATURES",
    "LABELS",
    "PeriodName",
    "period_bounds",
    "snapshot_dates",
    "snapshots",
    "stage_moves",
    "won_deals",
]

PeriodName: TypeAlias = Literal["month", "quarter", "year"]
DateLike: TypeAlias = str | _dt.date | _dt.datetime

_FOREVER = ibis.literal(_dt.datetime(9999, 12, 31), dt.timestamp)
_MONTHS = {"month": 1, "quarter": 3, "year": 12}
_UNIT = {"month": "M", "quarter": "Q", "year": "Y"}

#: Point-in-time feature columns of a snapshot (known at ``as_of``).
FEATURES: tuple[str, ...] = (
    "stage",
    "stage_order",
    "probability",
    "forecast_category",
    "amount",
    "amount_first",
    "amount_change",
    "close_date",
    "days_to_close",
    "close_in_period",
    "days_to_period_end",
    "age_days",
    "days_in_stage",
    "stage_changes",
    "regressions",
    "pushes",
    "days_pushed",
    "activities_30d",
    "activities_total",
    "days_since_activity",
    "owner_id",
    "segment",
    "source",
)

#: Outcome columns (known only later; never features).
LABELS: tuple[str, ...] = ("won_in_period", "status", "closed_at", "amount_won")


def period_bounds(ts: ir.TimestampValue, period: PeriodName) -> tuple[ir.Value, ir.Value]:
    """The start and (exclusive) end of the calendar ``period`` holding ``ts``."""
    start = ts.truncate(_UNIT[period])
    return start, start + ibis.interval(months=_MONTHS[period])


def snapshot_dates(start: DateLike, end: DateLike, *, every_days: int = 7) -> list[_dt.datetime]:
    """Snapshot instants from ``start`` (inclusive) to ``end`` (exclusive), every ``every_days``.

    >>> [d.date().isoformat() for d in snapshot_dates("2025-01-01", "2025-01-20")]
    ['2025-01-01', '2025-01-08', '2025-01-15']
    """
    if every_days < 1:
        raise ConfigError(f"every_days must be >= 1, got {every_days}.")
    a, b = _to_dt(start), _to_dt(end)
    out = []
    while a < b:
        out.append(a)
        a += _dt.timedelta(days=every_days)
    return out


def _to_dt(value: DateLike) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day)
    try:
        return _dt.datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError:
        raise ConfigError(f"not a date: {value!r}; write it as 2025-01-31.") from None


def _dates_table(dates: Sequence[DateLike] | ir.Table) -> ir.Table:
    if isinstance(dates, ir.Table):
        if "as_of" not in dates.columns:
            raise SchemaError("the dates table needs an as_of column (timestamp).")
        return dates.select(as_of=dates.as_of.cast(dt.timestamp)).distinct()
    values = sorted({_to_dt(d) for d in dates})
    if not values:
        raise ConfigError("snapshots need at least one as_of date.")
    return ibis.memtable({"as_of": values}, schema={"as_of": "timestamp"})


def _history(h: ir.Table, stage_order: Mapping[str, int] | None) -> ir.Table:
    """Each stage_history row with the running counters of its deal up to that row."""
    w = ibis.window(group_by=h.opportunity_id, order_by=[h.changed_at, h.stage])
    upto = ibis.window(group_by=h.opportunity_id, order_by=[h.changed_at, h.stage], rows=(None, 0))
    prev_stage = h.stage.lag().over(w)
    prev_close = h.close_date.lag().over(w)
    h = h.mutate(
        __new_run=prev_stage.isnull() | (prev_stage != h.stage),
        __push=(h.close_date.date() > prev_close.date()).fill_null(False),
        __push_days=ibis.ifelse(
            h.close_date.date() > prev_close.date(),
            _days(prev_close.truncate("D"), h.close_date.truncate("D")),
            0,
        ).fill_null(0.0),
        valid_to=h.changed_at.lead().over(w),
        amount_first=h.amount.first().over(
            ibis.window(group_by=h.opportunity_id, order_by=[h.changed_at, h.stage])
        ),
    )
    order = _order_expr(h.stage, stage_order)
    h = h.mutate(__order=order)
    prev_order = h.__order.lag().over(w)
    h = h.mutate(__regress=(h.__order < prev_order).fill_null(False))
    return h.mutate(
        stage_entered_at=ibis.ifelse(h.__new_run, h.changed_at, ibis.null(dt.timestamp))
        .max()
        .over(upto),
        stage_changes=h.__new_run.cast(dt.int64).sum().over(upto) - 1,
        regressions=h.__regress.cast(dt.int64).sum().over(upto),
        pushes=h.__push.cast(dt.int64).sum().over(upto),
        days_pushed=h.__push_days.sum().over(upto),
        stage_order=h.__order,
    )


def _days(earlier: ir.TimestampValue, later: ir.TimestampValue) -> ir.FloatingValue:
    """``later − earlier`` in days (fractional)."""
    return (later.epoch_seconds() - earlier.epoch_seconds()).cast(dt.float64) / 86400.0


def _order_expr(stage: ir.StringValue, stage_order: Mapping[str, int] | None) -> ir.IntegerValue:
    if stage_order is None:
        return ibis.null(dt.int64)
    cases = [(stage == name, ibis.literal(int(i))) for name, i in stage_order.items()]
    return ibis.cases(*cases, else_=ibis.null(dt.int64))


def snapshots(
    tables: Mapping[str, ir.Table],
    dates: Sequence[DateLike] | ir.Table,
    *,
    period: PeriodName = "quarter",
    stage_order: Mapping[str, int] | None = None,
    reporting_currency: str = "USD",
    labels: bool = True,
) -> ir.Table:
    """Every deal open at each ``as_of`` date, as it stood then, with its features.

    Parameters
    ----------
    tables
        Canonical tables: ``opportunities`` and ``stage_history`` (required);
        ``activities``, ``leads`` (for ``source``) and ``fx_rates`` (optional).
    dates
        The ``as_of`` instants (dates, datetimes or ISO strings), or a table with an
        ``as_of`` column.
    period
        The forecast period holding each ``as_of`` (its end bounds ``close_in_period``,
        ``days_to_period_end`` and the label ``won_in_period``).
    stage_order
        Funnel position of each open stage (``{"Discovery": 0, "Demo": 1, …}``): gives
        ``stage_order`` and counts moves backwards as ``regressions``. Without it both
        are null/0.
    reporting_currency
        Amounts are converted at the rate of the ``as_of`` day.
    labels
        Add the outcome columns (:data:`LABELS`), which look past ``as_of``: off for
        live forecasts.

    Returns
    -------
    ibis.Table
        One row per (``as_of``, open deal): ``as_of``, ``period_start``, ``period_end``,
        ``opportunity_id``, ``created_at`` and the :data:`FEATURES`; with ``labels`` also
        ``won_in_period`` (won with ``closed_at < period_end``), ``status``, ``closed_at``
        and ``amount_won`` (the amount at close in the reporting currency, when won).
        A deal open at ``as_of`` with no stage_history row yet keeps null stage and
        amount.
    """
    for name in ("opportunities", "stage_history"):
        if name not in tables:
            raise SchemaError(
                f"snapshots need the {name} table; add {name}.csv (see docs/data.md)."
            )
    if period not in _MONTHS:
        raise ConfigError(f"period must be one of {list(_MONTHS)}, got {period!r}.")
    opp = conform(tables["opportunities"], "opportunities")
    raw = conform(tables["stage_history"], "stage_history")
    keep = ["opportunity_id", "changed_at", "stage", "amount", "close_date", "forecast_category"]
    prob = (
        raw.probability.cast(dt.float64) if "probability" in raw.columns else ibis.null(dt.float64)
    )
    hist = _history(raw.select(*keep, probability=prob), stage_order)
    d = _dates_table(dates)

    # the deals open at each as_of
    o = opp.select(
        o_id=opp.opportunity_id,
        created_at=opp.created_at,
        o_closed_at=opp.closed_at,
        o_status=opp.status,
        owner_id=opp.owner_id,
        segment=opp.segment,
        o_lead_id=opp.lead_id,
        o_currency=opp.currency,
    )
    # plain comparisons (no OR): engines then pick a range join, not a nested loop
    o = o.mutate(o_until=o.o_closed_at.fill_null(_FOREVER))
    live = d.join(o, [o.created_at <= d.as_of, o.o_until > d.as_of])
    # the stage_history row in force at as_of
    st = hist.select(
        h_id=hist.opportunity_id,
        h_from=hist.changed_at,
        h_to=hist.valid_to.fill_null(_FOREVER),
        stage=hist.stage,
        probability=hist.probability,
        forecast_category=hist.forecast_category,
        h_amount=hist.amount,
        h_amount_first=hist.amount_first,
        close_date=hist.close_date,
        stage_entered_at=hist.stage_entered_at,
        stage_changes=hist.stage_changes,
        regressions=hist.regressions,
        pushes=hist.pushes,
        days_pushed=hist.days_pushed,
        stage_order=hist.stage_order,
    )
    s = live.left_join(
        st,
        [
            live.o_id == st.h_id,
            st.h_from <= live.as_of,
            st.h_to > live.as_of,
        ],
    )
    start, end = period_bounds(s.as_of, period)
    s = s.mutate(period_start=start, period_end=end)

    # money in the reporting currency at the as_of day
    s = s.mutate(__one=ibis.literal(1.0), currency=s.o_currency)
    s = to_reporting_currency(
        s, tables.get("fx_rates"), amount="__one", at="as_of", reporting_currency=reporting_currency
    )
    rate = s.amount_reporting
    s = s.mutate(
        amount=s.h_amount * rate,
        amount_first=s.h_amount_first * rate,
        amount_change=ibis.ifelse(
            s.h_amount_first > 0, s.h_amount / s.h_amount_first, ibis.null(dt.float64)
        ),
        days_to_close=_days(s.as_of, s.close_date),
        close_in_period=(s.close_date < s.period_end).fill_null(False),
        days_to_period_end=_days(s.as_of, s.period_end.cast(dt.timestamp)),
        age_days=_days(s.created_at, s.as_of),
        days_in_stage=_days(s.stage_entered_at, s.as_of),
        stage_changes=s.stage_changes.fill_null(0),
        regressions=s.regressions.fill_null(0),
        pushes=s.pushes.fill_null(0),
        days_pushed=s.days_pushed.fill_null(0.0),
    )

    # activity recency and counts up to as_of
    if "activities" in tables:
        act = conform(tables["activities"], "activities")
        act = act.filter(act.opportunity_id.notnull()).select(
            a_id=act.opportunity_id, a_at=act.occurred_at
        )
        keys = s.select(k_id=s.o_id, k_as_of=s.as_of)
        aj = keys.join(act, [keys.k_id == act.a_id, act.a_at <= keys.k_as_of])
        recent = aj.a_at > aj.k_as_of - ibis.interval(days=30)
        agg = aj.group_by(["k_id", "k_as_of"]).aggregate(
            activities_total=aj.count(),
            activities_30d=recent.cast(dt.int64).sum(),
            last_activity=aj.a_at.max(),
        )
        s = s.left_join(agg, [s.o_id == agg.k_id, s.as_of == agg.k_as_of])
        s = s.mutate(
            activities_total=s.activities_total.fill_null(0),
            activities_30d=s.activities_30d.fill_null(0),
            days_since_activity=_days(s.last_activity, s.as_of),
        )
    else:
        s = s.mutate(
            activities_total=ibis.literal(0, dt.int64),
            activities_30d=ibis.literal(0, dt.int64),
            days_since_activity=ibis.null(dt.float64),
        )

    if "leads" in tables:
        leads = conform(tables["leads"], "leads")
        src = leads.select(l_id=leads.lead_id, source=leads.source)
        s = s.left_join(src, s.o_lead_id == src.l_id)
    else:
        s = s.mutate(source=ibis.null(dt.string))

    cols = [
        "as_of",
        "period_start",
        "period_end",
        s.o_id.name("opportunity_id"),
        "created_at",
        *FEATURES,
    ]
    if labels:
        won = (s.o_status == "won") & (s.o_closed_at < s.period_end)
        s = s.mutate(
            won_in_period=won.fill_null(False),
            status=s.o_status,
            closed_at=s.o_closed_at,
        )
        cols += ["won_in_period", "status", "closed_at"]
    out = s.select(*cols)
    if labels:
        out = out.join(_won_amounts(opp, tables, reporting_currency), "opportunity_id", how="left")
        out = out.select(*[c for c in out.columns if not c.endswith("_right")])
    return out


def _won_amounts(
    opp: ir.Table, tables: Mapping[str, ir.Table], reporting_currency: str
) -> ir.Table:
    """Each won deal's amount at close, in the reporting currency at the close day."""
    won = opp.filter((opp.status == "won") & opp.closed_at.notnull())
    won = to_reporting_currency(
        won.select("opportunity_id", "amount", "currency", "closed_at"),
        tables.get("fx_rates"),
        at="closed_at",
        reporting_currency=reporting_currency,
    )
    return won.select("opportunity_id", amount_won=won.amount_reporting)


def stage_moves(tables: Mapping[str, ir.Table]) -> ir.Table:
    """Every move of a deal between stages, ending in ``won`` or ``lost``.

    One row per move: ``opportunity_id``, ``from_stage``, ``to_stage``, ``moved_at``.
    Moves between open stages come from consecutive runs of ``stage_history`` dated before
    the deal closed; the last open stage then moves to ``won`` or ``lost`` at
    ``closed_at`` (the deal's status decides, whatever the CRM named its closed stages).
    Filtering ``moved_at <= t`` gives the moves known at ``t`` (the absorbing-chain
    forecaster's input).
    """
    opp = conform(tables["opportunities"], "opportunities")
    h = conform(tables["stage_history"], "stage_history")
    o = opp.select(o_id=opp.opportunity_id, o_closed_at=opp.closed_at, o_status=opp.status)
    h = h.join(o, h.opportunity_id == o.o_id)
    h = h.filter(h.o_closed_at.isnull() | (h.changed_at < h.o_closed_at))
    w = ibis.window(group_by=h.opportunity_id, order_by=[h.changed_at, h.stage])
    h = h.mutate(__prev=h.stage.lag().over(w))
    runs = h.filter(h.__prev.isnull() | (h.__prev != h.stage))
    wr = ibis.window(group_by=runs.opportunity_id, order_by=[runs.changed_at, runs.stage])
    runs = runs.mutate(to_next=runs.stage.lead().over(wr), next_at=runs.changed_at.lead().over(wr))
    inner = runs.filter(runs.to_next.notnull()).select(
        "opportunity_id",
        from_stage=runs.stage,
        to_stage=runs.to_next,
        moved_at=runs.next_at,
    )
    last = runs.filter(
        runs.to_next.isnull() & runs.o_status.isin(("won", "lost")) & runs.o_closed_at.notnull()
    )
    final = last.select(
        "opportunity_id",
        from_stage=last.stage,
        to_stage=last.o_status,
        moved_at=last.o_closed_at,
    )
    return inner.union(final)


def won_deals(tables: Mapping[str, ir.Table], *, reporting_currency: str = "USD") -> ir.Table:
    """Won deals with ``created_at``, ``closed_at`` and ``amount_won`` (reporting currency).

    The period totals a forecast is scored against, and the history of deals created and
    won within one period (the not-yet-created pipeline of a forecast).
    """
    opp = conform(tables["opportunities"], "opportunities")
    won = opp.filter((opp.status == "won") & opp.closed_at.notnull())
    amounts = _won_amounts(opp, tables, reporting_currency)
    out = won.select("opportunity_id", "created_at", "closed_at", "segment").join(
        amounts, "opportunity_id"
    )
    return out.select("opportunity_id", "created_at", "closed_at", "segment", "amount_won")
