"""The predictable-revenue sections of the report: the plan, the forecast and its backtest.

:func:`collect_forecast` (edge layer: it runs the queries and fits the models) makes

- the **plan** of the next period: the leads, opportunities and deals its revenue target
  needs, month by month and per segment, with the leads needed for 50 / 80 / 90 %
  confidence (:func:`revloop.forecast.plan`), and a **review**: the last full period
  planned as of its start, beside what then happened;
- the **forecast** of the current period as of the data's end, for every forecaster: its
  total with P10 / P50 / P90 (:func:`revloop.forecast._backtest.forecast`), and the same
  forecast at each week of the period so far (the fan chart);
- the **backtest** of the forecasters over past periods: WAPE, signed bias and P10–P90
  coverage per checkpoint week, and per deal the Brier score, log loss, calibration
  error and reliability diagram.

Each part that the data cannot support (too short a history, no wins, no CRM stage
probability for ``stage_weighted`` …) is left out with the reason, which the report
shows; the rest still runs. :func:`forecast_sections` turns a :class:`ForecastData` into
three report :class:`~revloop.report.Section` objects. User documentation:
``docs/planning.md`` (section "Report").

Examples
--------
>>> from revloop import report
>>> fd = report.collect_forecast(con, tables, target_growth=0.3)  # doctest: +SKIP
>>> sections = report.forecast_sections(fd)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import datetime as _dt
import html
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from revloop.engine import Backend, to_pandas
from revloop.exceptions import ConfigError, RevloopError
from revloop.forecast._backtest import (
    BacktestData,
    BacktestResult,
    Forecast,
    backtest,
    backtest_dates,
    forecast,
    forecast_period,
)
from revloop.forecast._forecasters import Forecaster, get_forecaster
from revloop.forecast._plan_inputs import plan_inputs
from revloop.forecast._planner import Plan, PlanInputs, Prior, plan
from revloop.forecast._snapshots import snapshots, stage_moves, won_deals
from revloop.report._charts import _PALETTE, _base_layout, figure_div
from revloop.report._collect import Section
from revloop.report._format import DASH, currency_symbol, fmt_count, fmt_date, fmt_money, fmt_pct
from revloop.report._revops import latest_timestamp

__all__ = ["ForecastData", "collect_forecast", "forecast_sections"]

PeriodName: TypeAlias = Literal["month", "quarter", "year"]
DateLike: TypeAlias = str | _dt.date | _dt.datetime

DEFAULT_FORECASTERS: tuple[str, ...] = ("stage_weighted", "stage_conversion", "calibrated_gbm")
"""The forecasters the report compares, baseline first."""

_FREQ = {"month": "M", "quarter": "Q", "year": "Y"}
_LABELS = {
    "stage_weighted": "Stage-weighted (CRM probability)",
    "stage_conversion": "Stage conversion (absorbing chain)",
    "calibrated_gbm": "Calibrated GBM",
}
_SHORT = {
    "stage_weighted": "stage-weighted",
    "stage_conversion": "stage conversion",
    "calibrated_gbm": "calibrated GBM",
}
_COLORS = {"stage_weighted": "#7b8794", "stage_conversion": "#e8833a", "calibrated_gbm": "#1f4e9c"}
_TOTAL = "total"
_TOP_DEALS = 10
# a second past the latest timestamp: what happened at that instant is known
_AFTER = pd.Timedelta(seconds=1)


# -- collecting -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ForecastData:
    """The plan, the forecast and the backtest of a report, ready to render.

    Built by :func:`collect_forecast`; rendered by :func:`forecast_sections`. A part the
    data could not support is ``None`` and its ``*_error`` (or ``*_skipped``) says why.

    Attributes
    ----------
    currency
        Reporting currency of every amount.
    period
        The planning and forecast period (``"quarter"`` by default).
    as_of
        The instant the plan and the forecast are made at.
    data_end
        The latest timestamp of the leads, opportunities and stage history.
    forecasters
        Names of the forecasters compared, in report order.
    draws, plan_draws, seed
        Monte Carlo draws of the forecasts and of the plans, and the seed of both.
    plan
        The plan of ``plan_period`` (the period after the one holding ``as_of``).
    plan_period, plan_target, target_note
        Its label, revenue target and where the target comes from.
    plan_error
        Why there is no plan.
    review
        The last full period (``review_period``) planned as of its start with the same
        rules; its ``vs_actual`` compares the plan with what happened.
    review_period, review_target, review_note, review_error
        As for the plan.
    forecast
        The forecast of the period holding ``as_of``: ``totals`` (one row per forecaster)
        and ``deals`` (every open deal with ``p_<forecaster>``).
    fan
        One row per forecaster and snapshot of the current period up to ``as_of``:
        ``forecaster, as_of, won_so_far, pipeline, new_deals, forecast, p10, p50, p90``.
        Snapshots before ``as_of`` come from models fitted at the period's start (as in
        the backtest); the last row of each forecaster is its ``forecast`` total.
    forecast_skipped
        ``{forecaster: reason}`` for forecasters that could not forecast.
    backtest
        The backtest of every forecaster that could run (one result, frames stacked).
    backtest_skipped
        ``{forecaster: reason}`` for forecasters the backtest could not run.
    settings
        Every parameter in force (stated in the report).
    """

    currency: str
    period: PeriodName
    as_of: pd.Timestamp
    data_end: pd.Timestamp | None
    forecasters: tuple[str, ...]
    draws: int
    plan_draws: int
    seed: int
    plan: Plan | None = None
    plan_period: str | None = None
    plan_target: float | None = None
    target_note: str = ""
    plan_error: str | None = None
    review: Plan | None = None
    review_period: str | None = None
    review_target: float | None = None
    review_note: str = ""
    review_error: str | None = None
    forecast: Forecast | None = None
    fan: pd.DataFrame = field(default_factory=pd.DataFrame)
    forecast_skipped: Mapping[str, str] = field(default_factory=dict)
    backtest: BacktestResult | None = None
    backtest_skipped: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, object] = field(default_factory=dict)

    @property
    def forecast_period(self) -> str:
        """Label of the period holding ``as_of`` (``"2026Q4"``)."""
        return str(pd.Period(self.as_of, freq=_FREQ[self.period]))


def _data_end(con: Backend, tables: Mapping[str, ir.Table]) -> pd.Timestamp | None:
    """The latest timestamp of the leads, opportunities and stage history."""
    columns = {
        "leads": ("created_at",),
        "opportunities": ("created_at", "closed_at"),
        "stage_history": ("changed_at",),
    }
    return latest_timestamp(con, tables, columns)


def _name(f: str | Forecaster) -> str:
    return f if isinstance(f, str) else f.name


def _fresh(f: str | Forecaster) -> Forecaster:
    """A new forecaster: from its name, or a copy of the one given (never refit it)."""
    return get_forecaster(f) if isinstance(f, str) else copy.deepcopy(f)


def _won_in(actuals: pd.DataFrame, p: pd.Period) -> float:
    """Won revenue of the months of period ``p`` in the planner's monthly actuals."""
    if actuals.empty:
        return 0.0
    months = pd.to_datetime(actuals["month"])
    sel = (months >= p.start_time) & (months <= p.end_time)
    return float(pd.to_numeric(actuals.loc[sel, "won_revenue"]).fillna(0.0).sum())


@dataclass(frozen=True)
class _PlanPart:
    plan: Plan | None
    period: str | None
    target: float | None
    note: str
    error: str | None


def _plan_part(
    con: Backend,
    tables: Mapping[str, ir.Table],
    *,
    at: pd.Timestamp,
    target_period: pd.Period,
    target: float | None,
    target_growth: float,
    segment: str | None,
    segments: Mapping[str, Sequence[str]] | None,
    prior: Prior | None,
    draws: int,
    seed: int,
    currency: str,
    hint: str = ".",
) -> _PlanPart:
    """The plan of ``target_period`` made at ``at``; errors become the reason."""
    label = str(target_period)
    note = ""
    try:
        queries = plan_inputs(
            tables, segment=segment, segments=segments, as_of=at, reporting_currency=currency
        )
        frames = {k: to_pandas(t, con) for k, t in queries.tables().items()}
        inputs = PlanInputs.from_frames(frames, queries.params())
        if target is None:
            # the last full period before the plan is made
            base = pd.Period(at, freq=target_period.freqstr) - 1
            won = _won_in(inputs.actuals, base)
            if won <= 0:
                return _PlanPart(
                    None,
                    label,
                    None,
                    "",
                    f"no won revenue in {base} to derive {label}'s target from" + hint,
                )
            target = won * (1 + target_growth)
            note = (
                f"assumed target: {fmt_money(target, currency)} = won revenue of {base} "
                f"({fmt_money(won, currency)}) × {1 + target_growth:g}"
            )
        else:
            note = f"target given: {fmt_money(target, currency)}"
        result = plan(inputs, {label: target}, prior=prior, draws=draws, seed=seed)
    except RevloopError as exc:
        return _PlanPart(None, label, target, note, str(exc))
    return _PlanPart(result, label, target, note, None)


def _fetch(
    con: Backend,
    tables: Mapping[str, ir.Table],
    *,
    at: pd.Timestamp,
    period: PeriodName,
    currency: str,
) -> BacktestData:
    """Weekly snapshots on period starts up to ``at`` (and at ``at``), moves and won deals."""
    for name in ("opportunities", "stage_history"):
        if name not in tables:
            raise ConfigError(
                f"the forecast needs the {name} table; add {name}.csv (see docs/data.md)."
            )
    opp = tables["opportunities"]
    lo = to_pandas(opp.aggregate(lo=opp.created_at.cast("timestamp").min()), con)["lo"].iloc[0]
    if lo is None or pd.isna(lo):
        raise ConfigError("the opportunities table is empty: there is no pipeline to forecast.")
    dates = [d for d in backtest_dates(pd.Timestamp(lo), at, period=period) if d < at]
    dates.append(at.to_pydatetime())
    return BacktestData(
        snapshots=to_pandas(
            snapshots(tables, dates, period=period, reporting_currency=currency), con
        ),
        moves=to_pandas(stage_moves(tables), con),
        won=to_pandas(won_deals(tables, reporting_currency=currency), con),
    )


def _fan(
    data: BacktestData,
    forecasters: Sequence[str | Forecaster],
    *,
    at: pd.Timestamp,
    period: PeriodName,
    lookback: int,
    draws: int,
    seed: int,
    skip: Collection[str],
) -> pd.DataFrame:
    """Forecasts at each snapshot of the current period before ``at`` (models fitted at its start)."""
    start = pd.Period(at, freq=_FREQ[period]).start_time
    snaps = data.snapshots
    stamps = pd.to_datetime(snaps["as_of"])
    dates = sorted({pd.Timestamp(d) for d in stamps[(stamps >= start) & (stamps < at)]})
    rows: list[dict[str, object]] = []
    if not dates:
        return pd.DataFrame(rows)
    train = data.training(start)
    for f in forecasters:
        if _name(f) in skip:
            continue
        try:
            m = _fresh(f).fit(train)
            for d in dates:
                snap = snaps[stamps == d]
                fc = forecast_period(
                    m.name,
                    m.predict(snap),
                    snap,
                    data.won,
                    as_of=d,
                    period_start=start,
                    history=train.snapshots,
                    period=period,
                    lookback=lookback,
                    draws=draws,
                    seed=seed,
                )
                rows.append(
                    {
                        "forecaster": m.name,
                        "as_of": d,
                        **fc.figures(),
                    }
                )
        except RevloopError:
            # fitted at the period's start it may lack history it has at ``at``: the fan
            # then shows the as-of forecast alone
            rows = [r for r in rows if r["forecaster"] != _name(f)]
    return pd.DataFrame(rows)


def _forecast_part(
    data: BacktestData,
    forecasters: Sequence[str | Forecaster],
    *,
    at: pd.Timestamp,
    period: PeriodName,
    lookback: int,
    draws: int,
    seed: int,
) -> tuple[Forecast | None, pd.DataFrame, dict[str, str]]:
    """Each forecaster's forecast at ``at`` (one at a time: one failing spares the rest)."""
    skipped: dict[str, str] = {}
    results: list[Forecast] = []
    for f in forecasters:
        try:
            results.append(
                forecast(
                    data,
                    [_fresh(f)],
                    as_of=at,
                    period=period,
                    lookback=lookback,
                    draws=draws,
                    seed=seed,
                )
            )
        except RevloopError as exc:
            skipped[_name(f)] = str(exc)
    if not results:
        return None, pd.DataFrame(), skipped
    deals = results[0].deals.copy()
    fitted: dict[str, object] = {}
    for r in results:
        for c in r.deals.columns:
            if c.startswith("p_"):
                deals[c] = r.deals[c].to_numpy()
        got = r.settings.get("forecasters")
        if isinstance(got, dict):
            fitted.update(got)
    settings = {**results[0].settings, "forecasters": fitted}
    totals = pd.concat([r.totals for r in results], ignore_index=True)
    combined = Forecast(totals=totals, deals=deals, settings=settings)
    fan = _fan(
        data,
        forecasters,
        at=at,
        period=period,
        lookback=lookback,
        draws=draws,
        seed=seed,
        skip=set(skipped),
    )
    last = totals.assign(as_of=at)[
        [
            "forecaster",
            "as_of",
            "won_so_far",
            "pipeline",
            "new_deals",
            "forecast",
            "p10",
            "p50",
            "p90",
        ]
    ]
    fan = last if fan.empty else pd.concat([fan, last], ignore_index=True)
    return combined, fan, skipped


def _backtest_part(
    data: BacktestData,
    forecasters: Sequence[str | Forecaster],
    *,
    period: PeriodName,
    weeks: Sequence[int],
    min_train_periods: int,
    lookback: int,
    draws: int,
    seed: int,
) -> tuple[BacktestResult | None, dict[str, str]]:
    """The backtest of each forecaster on its own (same seed: as if run together)."""
    skipped: dict[str, str] = {}
    results: list[BacktestResult] = []
    for f in forecasters:
        try:
            results.append(
                backtest(
                    data,
                    [_fresh(f)],
                    period=period,
                    weeks=weeks,
                    min_train_periods=min_train_periods,
                    lookback=lookback,
                    draws=draws,
                    seed=seed,
                )
            )
        except RevloopError as exc:
            skipped[_name(f)] = str(exc)
    if not results:
        return None, skipped
    fitted: dict[str, object] = {}
    for r in results:
        got = r.settings.get("forecasters")
        if isinstance(got, dict):
            fitted.update(got)

    def stack(attr: str) -> pd.DataFrame:
        frames: list[pd.DataFrame] = [getattr(r, attr) for r in results]
        return pd.concat(frames, ignore_index=True)

    return (
        BacktestResult(
            forecasts=stack("forecasts"),
            summary=stack("summary"),
            deals=stack("deals"),
            reliability=stack("reliability"),
            settings={**results[0].settings, "forecasters": fitted},
        ),
        skipped,
    )


def collect_forecast(
    con: Backend,
    tables: Mapping[str, ir.Table],
    *,
    as_of: DateLike | None = None,
    target: float | None = None,
    target_growth: float = 0.3,
    period: PeriodName = "quarter",
    segment: str | None = "source",
    segments: Mapping[str, Sequence[str]] | None = None,
    prior: Prior | None = None,
    forecasters: Sequence[str | Forecaster] = DEFAULT_FORECASTERS,
    weeks: Sequence[int] = (1, 4, 8, 12),
    min_train_periods: int = 2,
    lookback: int = 4,
    review: bool = True,
    draws: int = 1000,
    plan_draws: int = 4000,
    seed: int = 0,
    currency: str = "USD",
    on_progress: Callable[[str], None] | None = None,
) -> ForecastData:
    """Make the next period's plan, forecast the current one and backtest the forecasters.

    Parameters
    ----------
    con
        The backend the tables live on.
    tables
        Canonical tables by name: ``leads`` and ``opportunities`` for the plan,
        ``opportunities`` and ``stage_history`` for the forecast and the backtest
        (optional: ``activities``, ``fx_rates``).
    as_of
        The instant the plan and the forecast are made at. Default: one second after the
        latest timestamp of the leads, opportunities and stage history (the data's end).
    target
        Revenue (new bookings) target of the next period. Default: the won revenue of the
        last full period before ``as_of`` × (1 + ``target_growth``); the report says so.
    target_growth
        Growth the derived targets assume (0.3: +30 %); also sets the review's target.
    period
        ``"quarter"`` (default), ``"month"`` or ``"year"``: the planned and forecast period.
    segment, segments
        How the plan splits leads (:func:`revloop.forecast.plan_inputs`): a column of
        ``leads`` and optional groups of its values, e.g.
        :data:`revloop.forecast.PREDICTABLE_REVENUE_SEGMENTS`.
    prior
        The planner's benchmark prior (default :class:`revloop.forecast.Prior`).
    forecasters
        Names or configured forecasters to compare (default: stage-weighted, stage
        conversion, calibrated gradient boosting).
    weeks, min_train_periods, lookback
        Of :func:`revloop.forecast._backtest.backtest`: checkpoints, ended periods needed
        before a tested one, ended periods the not-yet-created flow is estimated from.
    review
        Also plan the last full period as of its start and compare it with what happened.
    draws, plan_draws, seed
        Monte Carlo draws of each forecast (1000: the P10/P90 move by about 1 % between
        seeds) and of each plan (4000, the planner's default), and the seed of both.
    currency
        Reporting currency (ISO 4217) of every amount.
    on_progress
        Called with a short description before each step.

    Returns
    -------
    ForecastData

    Notes
    -----
    Each forecaster is forecast and backtested on its own, so one that cannot run (e.g.
    ``stage_weighted`` without ``stage_history.probability``) is listed with the reason
    while the others are shown. A backtest that cannot run at all (too short a history,
    no wins) leaves ``backtest`` as ``None`` with the reason per forecaster.
    """
    if period not in _FREQ:
        raise ConfigError(f"period must be one of {list(_FREQ)}, got {period!r}.")
    if target is not None and not (
        isinstance(target, int | float) and math.isfinite(target) and target > 0
    ):
        raise ConfigError(f"target must be a positive revenue, got {target!r}.")
    if not (isinstance(target_growth, int | float) and target_growth > -1):
        raise ConfigError(
            f"target_growth must be a number above -1 (0.3: +30 %), got {target_growth!r}."
        )
    if not forecasters:
        raise ConfigError("forecasters is empty; pass e.g. ['stage_weighted', 'calibrated_gbm'].")
    names = tuple(_name(f) for f in forecasters)
    if len(set(names)) != len(names):
        raise ConfigError(f"forecasters {list(names)} name one forecaster twice.")

    def step(text: str) -> None:
        if on_progress is not None:
            on_progress(text)

    cur = currency.upper()
    step("finding the data's end")
    end = _data_end(con, tables)
    if as_of is not None:
        at = pd.Timestamp(as_of)
    elif end is not None:
        at = end + _AFTER
    else:
        raise ConfigError(
            "no timestamp in leads, opportunities or stage_history: nothing to plan or "
            "forecast. Load those tables, or pass as_of."
        )
    freq = _FREQ[period]
    current = pd.Period(at, freq=freq)

    def plan_of(
        p: pd.Period, made_at: pd.Timestamp, given: float | None, hint: str = "."
    ) -> _PlanPart:
        return _plan_part(
            con,
            tables,
            at=made_at,
            target_period=p,
            target=given,
            target_growth=target_growth,
            segment=segment,
            segments=segments,
            prior=prior,
            draws=plan_draws,
            seed=seed,
            currency=cur,
            hint=hint,
        )

    step(f"planning {current + 1}")
    main = plan_of(current + 1, at, target, "; pass target= (revenue of the next period).")
    rv = _PlanPart(None, None, None, "", None)
    if review:
        step(f"reviewing the plan of {current - 1}")
        rv = plan_of(current - 1, (current - 1).start_time, None)

    fc: Forecast | None = None
    fan = pd.DataFrame()
    fc_skipped: dict[str, str] = {}
    bt: BacktestResult | None = None
    bt_skipped: dict[str, str] = {}
    try:
        step("rebuilding the weekly pipeline snapshots")
        data = _fetch(con, tables, at=at, period=period, currency=cur)
    except RevloopError as exc:
        fc_skipped = {n: str(exc) for n in names}
        bt_skipped = dict(fc_skipped)
    else:
        step(f"forecasting {current}")
        fc, fan, fc_skipped = _forecast_part(
            data, forecasters, at=at, period=period, lookback=lookback, draws=draws, seed=seed
        )
        step("backtesting the forecasters")
        bt, bt_skipped = _backtest_part(
            data,
            forecasters,
            period=period,
            weeks=weeks,
            min_train_periods=min_train_periods,
            lookback=lookback,
            draws=draws,
            seed=seed,
        )
    settings: dict[str, object] = {
        "as_of": str(at),
        "period": period,
        "target_growth": target_growth,
        "forecasters": list(names),
        "weeks": list(weeks),
        "min_train_periods": min_train_periods,
        "lookback": lookback,
        "draws": draws,
        "plan_draws": plan_draws,
        "seed": seed,
        "segment": segment,
        "segments": None if segments is None else {k: list(v) for k, v in segments.items()},
    }
    return ForecastData(
        currency=cur,
        period=period,
        as_of=at,
        data_end=end,
        forecasters=names,
        draws=draws,
        plan_draws=plan_draws,
        seed=seed,
        plan=main.plan,
        plan_period=main.period,
        plan_target=main.target,
        target_note=main.note,
        plan_error=main.error,
        review=rv.plan,
        review_period=rv.period,
        review_target=rv.target,
        review_note=rv.note,
        review_error=rv.error,
        forecast=fc,
        fan=fan,
        forecast_skipped=fc_skipped,
        backtest=bt,
        backtest_skipped=bt_skipped,
        settings=settings,
    )


# -- formatting -----------------------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _label(name: str) -> str:
    return _LABELS.get(name, name.replace("_", " ").capitalize())


def _short(name: str) -> str:
    return _SHORT.get(name, name.replace("_", " "))


def _color(name: str, i: int) -> str:
    return _COLORS.get(name, _PALETTE[i % len(_PALETTE)])


def _finite(x: object) -> float | None:
    if x is None or isinstance(x, str | bool):
        return None
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _signed_pct(x: object) -> str:
    v = _finite(x)
    return DASH if v is None else f"{v * 100:+.1f}%"


def _score(x: object, digits: int = 3) -> str:
    v = _finite(x)
    return DASH if v is None else f"{v:.{digits}f}"


def _deals(x: object) -> str:
    v = _finite(x)
    return DASH if v is None else f"{v:,.1f}"


def _month(x: object) -> str:
    return DASH if x is None or x is pd.NaT or str(x) == "NaT" else str(x)


@dataclass(frozen=True)
class _Cell:
    text: str
    best: bool = False


def _table(
    table_id: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str | _Cell]],
    *,
    caption: str = "",
    group: Sequence[tuple[str, int]] = (),
) -> str:
    """An HTML table: first column a name, the others numbers; every text escaped.

    ``group`` adds a header row of (label, span) over the columns; a :class:`_Cell` with
    ``best`` is shown in bold (the best forecaster of a column).
    """

    def cell(c: str | _Cell, first: bool) -> str:
        text, best = (c.text, c.best) if isinstance(c, _Cell) else (c, False)
        cls = "name" if first else ("num best" if best else "num")
        return f'<td class="{cls}">{_e(text)}</td>'

    top = ""
    if group:
        top = (
            "<tr>"
            + "".join(
                f'<th scope="colgroup" colspan="{span}" class="fc-group">{_e(label)}</th>'
                for label, span in group
            )
            + "</tr>"
        )
    head = "".join(
        f'<th scope="col"{" class=num" if i else ""}>{_e(h)}</th>' for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>" + "".join(cell(c, i == 0) for i, c in enumerate(r)) + "</tr>" for r in rows
    )
    cap = f"<caption>{_e(caption)}</caption>" if caption else ""
    return (
        f'<div class="table-wrap"><table class="data fc-table" id="{_e(table_id)}">{cap}'
        f"<thead>{top}<tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _kpis(items: Sequence[tuple[str, str, str]]) -> str:
    cards = "".join(
        f'<div class="kpi"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div><div class="note">{_e(note)}</div></div>'
        for label, value, note in items
    )
    return f'<div class="kpis fc-kpis">{cards}</div>'


def _reason(text: str) -> str:
    return f'<p class="fc-reason">{_e(text)}</p>'


def _skipped(skipped: Mapping[str, str], what: str) -> str:
    if not skipped:
        return ""
    items = "".join(
        f"<li><code>{_e(n)}</code> ({_e(_label(n))}): {_e(r)}</li>" for n, r in skipped.items()
    )
    return f'<div class="fc-skipped"><p>{_e(what)}</p><ul>{items}</ul></div>'


def _layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(**_base_layout(height))
    fig.update_layout(
        margin={"l": 10, "r": 10, "t": 36, "b": 10},
        legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom", "font": {"size": 11}},
        barmode="stack",
        bargap=0.2,
    )
    fig.update_yaxes(gridcolor="#eceff3", automargin=True)
    return fig


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


_CSS = """<style>
.fc-table { font-size: 12.5px; }
.fc-table td.best { font-weight: 700; color: var(--accent, #1f4e9c); }
.fc-table th.fc-group { text-align: center; border-bottom: 1px solid #cbd2d9; }
.fc-reason { color: #8a4b08; background: #fff4e5; border-radius: 6px; padding: 8px 12px;
  font-size: 13.5px; margin: 8px 0; }
.fc-skipped { color: var(--muted, #616e7c); font-size: 13px; }
.fc-notes { font-size: 13px; color: #3e4c59; }
.fc-policy { font-size: 12px; color: var(--muted, #616e7c); overflow-wrap: anywhere; }
.fc-kpis { margin: 6px 0 12px; }
details.fc-more summary { cursor: pointer; color: var(--accent, #1f4e9c); font-size: 14px; margin: 8px 0; }
</style>"""


# -- plan -----------------------------------------------------------------------------------


def _levels(p: Plan) -> list[float]:
    raw = p.policy.get("confidence", [])
    return [float(c) for c in raw] if isinstance(raw, list | tuple) else []


def _lab(c: float) -> str:
    return f"p{100 * c:g}".replace(".", "_")


def _calendar_figure(p: Plan, as_of: pd.Timestamp) -> go.Figure | None:
    cal = p.calendar
    if cal.empty:
        return None
    cal = cal.assign(x=[m.start_time for m in cal["month"]])
    segs = [str(s) for s in cal["segment"].unique() if s != _TOTAL]
    tot = cal[cal["segment"] == _TOTAL]
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=("Leads to create", "Opportunities to create", "Deals to win"),
    )
    for i, s in enumerate(segs):
        rows = cal[cal["segment"] == s]
        color = _PALETTE[i % len(_PALETTE)]
        for r, col in enumerate(("leads", "opportunities", "deals"), start=1):
            fig.add_trace(
                go.Bar(
                    x=rows["x"],
                    y=rows[col],
                    name=_e(s),
                    legendgroup=_e(s),
                    showlegend=r == 1,
                    marker_color=color,
                    hovertemplate=f"{_e(s)}: %{{y:,.1f}} {col}<extra></extra>",
                ),
                row=r,
                col=1,
            )
    dash = {0.8: "dash", 0.9: "dot"}
    for r, col in enumerate(("leads", "opportunities"), start=1):
        prev: str | None = None
        for c in (0.8, 0.9):
            key = f"{col}_{_lab(c)}"
            if key not in tot.columns:
                continue
            fig.add_trace(
                go.Scatter(
                    x=tot["x"],
                    y=tot[key],
                    mode="lines",
                    name=f"total for {c:.0%} confidence",
                    legendgroup=f"conf{c}",
                    showlegend=r == 1,
                    line={"color": "#1f2933", "dash": dash[c], "width": 1.5},
                    fill="tonexty" if prev is not None else None,
                    fillcolor="rgba(31,41,51,0.10)",
                    hovertemplate=f"{c:.0%} confidence: %{{y:,.0f}} {col}<extra></extra>",
                ),
                row=r,
                col=1,
            )
            prev = key
    now = pd.Timestamp(year=as_of.year, month=as_of.month, day=1)
    first = cal["x"].min()
    if first < now:
        fig.add_vrect(
            x0=first - pd.Timedelta(days=16),
            x1=now - pd.Timedelta(days=15),
            fillcolor="#7b8794",
            opacity=0.10,
            line_width=0,
            row="all",
            col=1,
        )
        fig.add_annotation(
            x=first,
            y=0.9,
            xref="x3",
            yref="y3 domain",
            text="shaded: months before the plan is made",
            showarrow=False,
            xanchor="left",
            yanchor="top",
            font={"size": 11, "color": "#616e7c"},
        )
    _layout(fig, 620)
    fig.update_xaxes(type="date", tickformat="%b<br>%Y", dtick="M1", showgrid=False)
    fig.update_yaxes(tickformat=",~g")
    return fig


def _plan_summary(p: Plan, currency: str) -> str:
    s = p.summary
    levels = _levels(p)
    headers = [
        "segment",
        "new bookings",
        "share",
        "deal size",
        "win rate",
        "lead → opp.",
        "deals",
        "opportunities",
        "leads",
        *[f"leads for {c:.0%}" for c in levels],
        "leads arrive",
    ]
    rows = []
    for r in s.to_dict("records"):
        rows.append(
            [
                str(r["segment"]),
                fmt_money(r["new_bookings"], currency),
                fmt_pct(r["share"], 0),
                fmt_money(r["deal_size"], currency),
                fmt_pct(r["win_rate"]),
                fmt_pct(r["lead_to_opportunity"]),
                _deals(r["deals"]),
                fmt_count(round(float(r["opportunities"]))),
                fmt_count(round(float(r["leads"]))),
                *[fmt_count(r[f"leads_{_lab(c)}"]) for c in levels],
                f"{_month(r['leads_from'])} – {_month(r['leads_until'])}",
            ]
        )
    return _table(
        "fc-plan-summary",
        headers,
        rows,
        caption="Reverse funnel per segment: expected figures from the posterior-mean rates, "
        "then the leads with which the target is met with 50 / 80 / 90 % probability",
    )


def _vs_actual_table(p: Plan, reviewed: str, currency: str) -> str:
    v = p.vs_actual
    v = v[v["segment"] == _TOTAL]
    cal = p.calendar[p.calendar["segment"] == _TOTAL]
    months = set(cal["month"])
    v = v[[m in months for m in v["month"]]]
    busy = (
        (v["leads_planned"] >= 0.5)
        | (v["opportunities_planned"] >= 0.5)
        | (v["deals_planned"] > 0)
        | (v["revenue_planned"] > 0)
    )
    v = v[busy.to_numpy()]
    if v.empty:
        return '<p class="empty">No month of this plan has ended in the data yet.</p>'
    rows = []
    for r in v.to_dict("records"):
        rows.append(
            [
                str(r["month"]) + ("" if r["complete"] else " (partial)"),
                fmt_count(round(float(r["leads_planned"]))),
                fmt_count(r["leads_actual"]),
                fmt_count(round(float(r["opportunities_planned"]))),
                fmt_count(r["opportunities_actual"]),
                _deals(r["deals_planned"]),
                fmt_count(r["deals_actual"]),
                fmt_money(r["revenue_planned"], currency),
                fmt_money(r["revenue_actual"], currency),
            ]
        )
    in_period = v[v["revenue_planned"] > 0]
    rows.append(
        [
            f"{reviewed} in total",
            DASH,
            DASH,
            DASH,
            DASH,
            _deals(in_period["deals_planned"].sum()),
            fmt_count(in_period["deals_actual"].sum()),
            fmt_money(in_period["revenue_planned"].sum(), currency),
            fmt_money(in_period["revenue_actual"].sum(), currency),
        ]
    )
    return _table(
        "fc-plan-review",
        [
            "month",
            "planned",
            "actual",
            "planned",
            "actual",
            "planned",
            "actual",
            "planned",
            "actual",
        ],
        rows,
        group=[("", 1), ("leads", 2), ("opportunities", 2), ("deals won", 2), ("won revenue", 2)],
        caption=f"Plan of {reviewed} versus what happened (all segments)",
    )


def _policy_line(p: Plan) -> str:
    pol = p.policy
    prior = pol.get("prior")
    bits = []
    if isinstance(prior, dict):
        bits.append(
            f"prior: lead→opportunity {prior['lead_to_opportunity']:g}, win rate "
            f"{prior['win_rate']:g}, strength {prior['strength']:g} pseudo-observations"
        )
    for k in ("lookback_months", "lead_window_days", "win_window_days", "draws", "seed"):
        if k in pol:
            bits.append(f"{k}={pol[k]}")
    bits.append(f"target split by {pol.get('weights')}")
    return f'<p class="fc-policy">{_e(" · ".join(bits))}</p>'


def _plan_section(d: ForecastData) -> Section:
    body = [_CSS]
    cur = d.currency
    if d.plan is None:
        body.append(
            f'<p class="lead">{_e(f"The plan of {d.plan_period} as of {fmt_date(d.as_of)}.")}</p>'
        )
        body.append(_reason(f"The plan could not be made: {d.plan_error}"))
    else:
        p = d.plan
        tot = p.summary[p.summary["segment"] == _TOTAL].iloc[0]
        segs = [str(s) for s in p.summary["segment"] if s != _TOTAL]
        levels = _levels(p)
        intro = (
            f"What {d.plan_period} needs, worked back from its revenue target "
            f"({d.target_note}) with the team's own conversion rates, deal sizes and "
            "lead → opportunity → won lags, per segment ("
            + ", ".join(segs)
            + f"), as known on {fmt_date(d.as_of)}. Rates are Beta posteriors shrunk toward "
            "a benchmark prior; the confidence figures come from a seeded Monte Carlo over "
            "those rates and a bootstrap of the deal sizes. The chart shows what must "
            "arrive each month (expected, stacked by segment) and the totals needed for "
            "80 % and 90 % confidence."
        )
        body.append(f'<p class="lead">{_e(intro)}</p>')
        hi = levels[-1] if levels else None
        kpis = [
            ("Target", fmt_money(d.plan_target, cur), f"new bookings in {d.plan_period}"),
            ("Deals", _deals(tot["deals"]), f"at {fmt_money(tot['deal_size'], cur)} average"),
            (
                "Opportunities",
                fmt_count(round(float(tot["opportunities"]))),
                f"win rate {fmt_pct(tot['win_rate'])}",
            ),
            (
                "Leads (expected)",
                fmt_count(round(float(tot["leads"]))),
                f"lead → opp. {fmt_pct(tot['lead_to_opportunity'])}",
            ),
        ]
        if hi is not None:
            kpis.append(
                (
                    f"Leads for {hi:.0%}",
                    fmt_count(tot[f"leads_{_lab(hi)}"]),
                    "confidence of meeting the target",
                )
            )
        kpis.append(
            (
                "Leads arrive",
                f"{_month(tot['leads_from'])} – {_month(tot['leads_until'])}",
                "middle 90 % of them",
            )
        )
        body.append(_kpis(kpis))
        fig = _calendar_figure(p, d.as_of)
        if fig is not None:
            body.append(figure_div(fig, "chart-forecast-plan"))
        body.append(_plan_summary(p, cur))
        if p.notes:
            notes = "".join(f"<li>{_e(n)}</li>" for n in p.notes)
            body.append(f'<ul class="fc-notes">{notes}</ul>')
        body.append(_policy_line(p))
    if d.review_period is not None:
        body.append(f"<h3>Plan versus actual: {_e(d.review_period)}</h3>")
        if d.review is None:
            body.append(_reason(f"No review: {d.review_error}"))
        else:
            made = pd.Period(d.review_period, freq=_FREQ[d.period]).start_time
            text = (
                f"{d.review_period} planned with the same rules as of its first day "
                f"({fmt_date(made)}; {d.review_note}), beside what then happened. Actual "
                "leads and opportunities are all those created in the month, whichever "
                "period they end up serving; a plan made on the period's first day asks for "
                "leads that had to arrive months before (the planner does not net out the "
                "pipeline that already existed)."
            )
            body.append(f'<p class="note">{_e(text)}</p>')
            body.append(_vs_actual_table(d.review, d.review_period, cur))
    return Section(key="forecast-plan", title="Revenue plan", html="\n".join(body))


# -- forecast -------------------------------------------------------------------------------


def _reference(d: ForecastData) -> str | None:
    """The forecaster the headline uses: lowest backtest Brier score, else the last listed."""
    if d.forecast is None:
        return None
    have = [str(n) for n in d.forecast.totals["forecaster"]]
    if d.backtest is not None and not d.backtest.deals.empty:
        scores = d.backtest.deals[d.backtest.deals["forecaster"].isin(have)]
        scores = scores.dropna(subset=["brier"])
        if not scores.empty:
            return str(scores.sort_values("brier").iloc[0]["forecaster"])
    return have[-1] if have else None


def _fan_figure(d: ForecastData) -> go.Figure | None:
    fan = d.fan
    if fan.empty:
        return None
    per = pd.Period(d.as_of, freq=_FREQ[d.period])
    fig = go.Figure()
    sym = currency_symbol(d.currency)
    for i, name in enumerate(d.forecasters):
        f = fan[fan["forecaster"] == name].sort_values("as_of")
        if f.empty:
            continue
        color = _color(name, i)
        label = _e(_label(name))
        if len(f) >= 2:
            fig.add_trace(
                go.Scatter(
                    x=f["as_of"],
                    y=f["p90"],
                    mode="lines",
                    line={"width": 0},
                    legendgroup=name,
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
            fig.add_trace(
                go.Scatter(
                    x=f["as_of"],
                    y=f["p10"],
                    mode="lines",
                    line={"width": 0},
                    fill="tonexty",
                    fillcolor=_rgba(color, 0.14),
                    legendgroup=name,
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
            err = None
        else:
            err = {
                "type": "data",
                "symmetric": False,
                "array": (f["p90"] - f["forecast"]).to_numpy(),
                "arrayminus": (f["forecast"] - f["p10"]).to_numpy(),
                "color": color,
            }
        fig.add_trace(
            go.Scatter(
                x=f["as_of"],
                y=f["forecast"],
                mode="lines+markers",
                name=f"{label}: expected, P10–P90 band",
                legendgroup=name,
                line={"color": color, "width": 2},
                error_y=err,
                customdata=np.stack([f["p10"], f["p90"]], axis=1),
                hovertemplate=(
                    f"{label}<br>%{{x|%Y-%m-%d}}: {sym}%{{y:,.0f}} "
                    f"(P10 {sym}%{{customdata[0]:,.0f}}, P90 {sym}%{{customdata[1]:,.0f}})"
                    "<extra></extra>"
                ),
            )
        )
    won = fan.drop_duplicates("as_of").sort_values("as_of")
    fig.add_trace(
        go.Scatter(
            x=won["as_of"],
            y=won["won_so_far"],
            mode="lines+markers",
            name="already won",
            line={"color": "#1f2933", "width": 2, "shape": "hv"},
            marker={"symbol": "square", "size": 6},
            hovertemplate=f"won by %{{x|%Y-%m-%d}}: {sym}%{{y:,.0f}}<extra></extra>",
        )
    )
    _layout(fig, 380)
    fig.update_xaxes(
        type="date",
        range=[per.start_time, (per + 1).start_time],
        showgrid=False,
        title_text=f"forecast made on (the {d.period} {per} runs to the right edge)",
    )
    fig.update_yaxes(
        tickprefix=sym, tickformat="~s", rangemode="tozero", title_text=f"won revenue in {per}"
    )
    return fig


def _totals_table(d: ForecastData) -> str:
    assert d.forecast is not None
    cur = d.currency
    rows = []
    t = d.forecast.totals
    for r in t.to_dict("records"):
        rows.append(
            [
                _label(str(r["forecaster"])),
                fmt_money(r["won_so_far"], cur),
                fmt_money(r["pipeline"], cur),
                fmt_money(r["new_deals"], cur),
                fmt_money(r["forecast"], cur),
                fmt_money(r["p10"], cur),
                fmt_money(r["p50"], cur),
                fmt_money(r["p90"], cur),
            ]
        )
    return _table(
        "fc-forecast-totals",
        ["forecaster", "won so far", "open pipeline", "new deals", "forecast", "P10", "P50", "P90"],
        rows,
        caption=f"Forecast of {d.forecast_period} as of {fmt_date(d.as_of)}: expected "
        "values and the Monte Carlo quantiles of the period total",
    )


def _deals_table(d: ForecastData, ref: str) -> str:
    assert d.forecast is not None
    deals = d.forecast.deals
    col = f"p_{ref}"
    if deals.empty or col not in deals.columns:
        return ""
    amount = pd.to_numeric(deals["amount"], errors="coerce").fillna(0.0)
    ev = amount * deals[col]
    top = deals.assign(__ev=ev).sort_values(["__ev", "opportunity_id"], ascending=[False, True])
    top = top[top["__ev"] > 0].head(_TOP_DEALS)
    if top.empty:
        return ""
    pcols = [c for c in deals.columns if c.startswith("p_")]
    headers = ["deal", "stage", "segment", "amount", "close date"]
    headers += [f"P(won) {_short(c[2:])}" for c in pcols]
    headers.append("expected value")
    rows = []
    for r in top.to_dict("records"):
        rows.append(
            [
                str(r["opportunity_id"]),
                str(r.get("stage", DASH)),
                str(r.get("segment", DASH)),
                fmt_money(r["amount"], d.currency),
                fmt_date(r.get("close_date")),
                *[fmt_pct(r[c], 0) for c in pcols],
                fmt_money(r["__ev"], d.currency),
            ]
        )
    return _table(
        "fc-forecast-deals",
        headers,
        rows,
        caption=f"Top open deals by expected value (amount × P(won by the {d.period}'s end) "
        f"of {_label(ref)})",
    )


def _forecast_section(d: ForecastData) -> Section:
    body = [_CSS]
    cur = d.currency
    per = d.forecast_period
    if d.forecast is None:
        body.append(
            f'<p class="lead">{_e(f"The forecast of {per} as of {fmt_date(d.as_of)}.")}</p>'
        )
        reasons = set(d.forecast_skipped.values())
        if len(reasons) == 1:
            body.append(_reason(f"The forecast could not be made: {reasons.pop()}"))
        else:
            body.append(_reason("The forecast could not be made."))
            body.append(_skipped(d.forecast_skipped, "Reasons per forecaster:"))
        return Section(key="forecast-current", title="Pipeline forecast", html="\n".join(body))
    ref = _reference(d)
    deals = d.forecast.deals
    open_amount = pd.to_numeric(deals["amount"], errors="coerce").fillna(0.0).sum()
    start = pd.Period(d.as_of, freq=_FREQ[d.period])
    left = max(0, ((start + 1).start_time - d.as_of).days)
    intro = (
        f"How much {per} will close, as known on {fmt_date(d.as_of)} ({left} days left): "
        "won so far + Σ over the open deals of amount × P(won before the period's end) + the "
        "expected revenue of deals not created yet (from the same point of recent periods). "
        f"Each forecaster's P10–P90 range comes from {d.draws:,} seeded Monte Carlo draws "
        "(the deals win or lose independently, with a common period shock). The fan shows "
        "the forecast made at each week of the period so far, with models fitted at its "
        "start (as in the backtest); its last point is the forecast as of the data's end."
    )
    body.append(f'<p class="lead">{_e(intro)}</p>')
    t = d.forecast.totals.set_index("forecaster")
    if ref is not None and ref in t.index:
        r = t.loc[ref]
        body.append(
            _kpis(
                [
                    ("Won so far", fmt_money(r["won_so_far"], cur), f"closed in {per}"),
                    ("Forecast", fmt_money(r["forecast"], cur), _label(ref)),
                    (
                        "P10 – P90",
                        f"{fmt_money(r['p10'], cur, compact=True)} – {fmt_money(r['p90'], cur, compact=True)}",
                        f"median {fmt_money(r['p50'], cur, compact=True)}",
                    ),
                    ("Open deals", fmt_count(len(deals)), f"{fmt_money(open_amount, cur)} listed"),
                ]
            )
        )
    fig = _fan_figure(d)
    if fig is not None:
        body.append(figure_div(fig, "chart-forecast-fan"))
    body.append(_totals_table(d))
    if ref is not None:
        body.append(_deals_table(d, ref))
        why = (
            "the forecaster with the lowest Brier score in the backtest"
            if d.backtest is not None
            else "the last forecaster listed (no backtest to choose by)"
        )
        body.append(f'<p class="note">{_e(f"Headline figures use {_label(ref)}: {why}.")}</p>')
    body.append(_skipped(d.forecast_skipped, "Forecasters that could not forecast:"))
    return Section(key="forecast-current", title="Pipeline forecast", html="\n".join(body))


# -- backtest -------------------------------------------------------------------------------


def _best(values: Sequence[float | None], key: Callable[[float], float]) -> set[int]:
    got = [(key(v), i) for i, v in enumerate(values) if v is not None]
    if not got:
        return set()
    lo = min(k for k, _ in got)
    return {i for k, i in got if abs(k - lo) < 1e-12}


def _accuracy_table(d: ForecastData, bt: BacktestResult) -> str:
    s = bt.summary
    names = [n for n in d.forecasters if n in set(s["forecaster"])]
    weeks = sorted(int(w) for w in s["week"].unique())
    rows: list[list[str | _Cell]] = []
    for w in weeks:
        part = s[s["week"] == w].set_index("forecaster")
        row: list[str | _Cell] = [f"week {w}"]
        for metric, fmt, key in (
            ("wape", fmt_pct, abs),
            ("bias", _signed_pct, abs),
            ("coverage", lambda x: fmt_pct(x, 0), lambda v: abs(v - 0.8)),
        ):
            vals = [_finite(part.loc[n, metric]) if n in part.index else None for n in names]
            best = _best(vals, key)
            row += [_Cell(fmt(v), i in best) for i, v in enumerate(vals)]
        rows.append(row)
    labels = [_short(n) for n in names]
    return _table(
        "fc-backtest-accuracy",
        ["checkpoint", *labels, *labels, *labels],
        rows,
        group=[
            ("", 1),
            ("WAPE of the period total", len(names)),
            ("signed bias", len(names)),
            ("P10–P90 coverage", len(names)),
        ],
        caption=f"Period totals over {int(s['periods'].max())} tested periods: "
        "WAPE = Σ|forecast − actual| ÷ Σ actual; bias = Σ(forecast − "
        "actual) ÷ Σ actual; coverage = share of periods whose actual fell in [P10, P90] "
        "(80 % is calibrated). Best in bold.",
    )


def _deal_table(d: ForecastData, bt: BacktestResult) -> str:
    t = bt.deals.set_index("forecaster")
    names = [n for n in d.forecasters if n in t.index]
    cols = [("brier", 4), ("log_loss", 3), ("ece", 3)]
    best = {c: _best([_finite(t.loc[n, c]) for n in names], lambda v: v) for c, _ in cols}
    rows: list[list[str | _Cell]] = []
    for i, n in enumerate(names):
        rows.append(
            [
                _label(n),
                fmt_count(t.loc[n, "deals"]),
                *[_Cell(_score(t.loc[n, c], k), i in best[c]) for c, k in cols],
            ]
        )
    return _table(
        "fc-backtest-deals",
        ["forecaster", "deal snapshots", "Brier score", "log loss", "calibration error (ECE)"],
        rows,
        caption="Per deal, over every checkpoint: P(won in period) against what happened "
        "(lower is better; ECE over 10 equal-width bins). Best in bold.",
    )


def _accuracy_figure(d: ForecastData, bt: BacktestResult) -> go.Figure:
    s = bt.summary
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("WAPE of the period total", "Signed bias"),
        horizontal_spacing=0.1,
    )
    for i, n in enumerate(d.forecasters):
        f = s[s["forecaster"] == n].sort_values("week")
        if f.empty:
            continue
        color = _color(n, i)
        for col, metric in ((1, "wape"), (2, "bias")):
            fig.add_trace(
                go.Scatter(
                    x=f["week"],
                    y=f[metric],
                    mode="lines+markers",
                    name=_e(_label(n)),
                    legendgroup=n,
                    showlegend=col == 1,
                    line={"color": color, "width": 2},
                    hovertemplate=f"{_e(_label(n))}<br>week %{{x}}: %{{y:.1%}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.add_hline(y=0, line={"color": "#9aa5b1", "width": 1}, row=1, col=2)
    _layout(fig, 330)
    fig.update_layout(margin={"t": 80}, legend={"y": 1.14})
    fig.update_xaxes(title_text="week of the period", tickvals=sorted(s["week"].unique()))
    fig.update_yaxes(tickformat=".0%")
    return fig


def _reliability_figure(d: ForecastData, bt: BacktestResult) -> go.Figure:
    rel = bt.reliability
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfect calibration",
            line={"color": "#9aa5b1", "dash": "dash", "width": 1},
            hoverinfo="skip",
        )
    )
    biggest = float(rel["deals"].max()) if not rel.empty else 1.0
    for i, n in enumerate(d.forecasters):
        f = rel[rel["forecaster"] == n].sort_values("mean_p")
        if f.empty:
            continue
        size = 6 + 18 * np.sqrt(f["deals"].to_numpy(dtype=float) / max(biggest, 1.0))
        fig.add_trace(
            go.Scatter(
                x=f["mean_p"],
                y=f["observed"],
                mode="lines+markers",
                name=_e(_label(n)),
                line={"color": _color(n, i), "width": 1.5},
                marker={"size": size},
                customdata=f["deals"],
                hovertemplate=(
                    f"{_e(_label(n))}<br>predicted %{{x:.0%}}, won %{{y:.0%}} "
                    "(%{customdata:,} deal snapshots)<extra></extra>"
                ),
            )
        )
    _layout(fig, 380)
    fig.update_xaxes(
        title_text="predicted P(won in period), bin mean", range=[0, 1], tickformat=".0%"
    )
    fig.update_yaxes(title_text="observed share won", range=[0, 1], tickformat=".0%")
    return fig


def _periods_table(d: ForecastData, bt: BacktestResult) -> str:
    f = bt.forecasts
    names = [n for n in d.forecasters if n in set(f["forecaster"])]
    rows: list[list[str | _Cell]] = []
    for (per, week), g in f.groupby(["period", "week"], sort=True):
        g = g.set_index("forecaster")
        actual = float(g["actual"].iloc[0])
        row: list[str | _Cell] = [f"{per} week {week}", fmt_money(actual, d.currency)]
        for n in names:
            if n not in g.index:
                row.append(DASH)
                continue
            x = g.loc[n]
            mark = "" if bool(x["covered"]) else " ✗"
            row.append(
                f"{fmt_money(x['forecast'], d.currency, compact=True)} "
                f"[{fmt_money(x['p10'], d.currency, compact=True)}–"
                f"{fmt_money(x['p90'], d.currency, compact=True)}]{mark}"
            )
        rows.append(row)
    return _table(
        "fc-backtest-periods",
        ["period, checkpoint", "actual", *[_label(n) for n in names]],
        rows,
        caption="Every backtest forecast: expected [P10–P90]; ✗ when the actual fell outside",
    )


def _backtest_section(d: ForecastData) -> Section:
    body = [_CSS]
    bt = d.backtest
    if bt is None:
        body.append(f'<p class="lead">{_e("The forecasters side by side on past periods.")}</p>')
        reasons = set(d.backtest_skipped.values())
        if len(reasons) == 1:
            body.append(_reason(f"The backtest could not run: {reasons.pop()}"))
        else:
            body.append(_reason("The backtest could not run."))
            body.append(_skipped(d.backtest_skipped, "Reasons per forecaster:"))
        return Section(key="forecast-backtest", title="Forecast backtest", html="\n".join(body))
    periods = sorted(bt.forecasts["period"].unique())
    span = periods[0] if len(periods) == 1 else f"{periods[0]} to {periods[-1]}"
    intro = (
        f"The forecasters side by side on {len(periods)} past {d.period}s ({span}). Temporal "
        f"splits only: for each {d.period} the forecasters are fitted at its start on the "
        "periods that had ended (every label known then) and forecast at weeks "
        + ", ".join(str(int(w)) for w in sorted(bt.summary["week"].unique()))
        + " from the pipeline as it stood on those dates, rebuilt from the stage history; "
        f"nothing after a forecast's date reaches it. {d.draws:,} Monte Carlo draws, seed "
        f"{d.seed}."
    )
    body.append(f'<p class="lead">{_e(intro)}</p>')
    if len(periods) < 8:
        body.append(
            f'<p class="note">{_e(f"Only {len(periods)} tested periods: coverage moves in steps of {1 / len(periods):.0%} and every score is noisy.")}</p>'
        )
    body.append(_accuracy_table(d, bt))
    body.append(figure_div(_accuracy_figure(d, bt), "chart-forecast-accuracy"))
    body.append(_deal_table(d, bt))
    body.append(figure_div(_reliability_figure(d, bt), "chart-forecast-reliability"))
    body.append(
        '<details class="fc-more"><summary>Every backtest forecast</summary>'
        + _periods_table(d, bt)
        + "</details>"
    )
    body.append(_skipped(d.backtest_skipped, "Forecasters the backtest could not run:"))
    return Section(key="forecast-backtest", title="Forecast backtest", html="\n".join(body))


def forecast_sections(data: ForecastData) -> list[Section]:
    """The predictable-revenue report sections: the plan, the forecast and the backtest.

    Parameters
    ----------
    data
        What :func:`collect_forecast` returned.

    Returns
    -------
    list[Section]
        Keys ``forecast-plan`` ("Revenue plan": the lead calendar chart, the reverse-funnel
        table per segment and the plan versus actual of the last full period),
        ``forecast-current`` ("Pipeline forecast": the fan chart, the totals per forecaster
        and the top open deals) and ``forecast-backtest`` ("Forecast backtest": WAPE, bias
        and coverage per checkpoint, per-deal scores and the reliability diagram). A part
        that could not be computed shows the reason instead.
    """
    return [_plan_section(data), _forecast_section(data), _backtest_section(data)]
