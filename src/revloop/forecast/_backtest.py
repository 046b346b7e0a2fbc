"""Period forecasts with P10/P50/P90, and the leak-free backtest of the forecasters.

A forecast of period P made at ``as_of`` is

    already won in [P.start, as_of)
  + Σ over deals open at as_of of amount × P(won before P.end)        (a forecaster)
  + revenue of deals not yet created that will be won before P.end    (the flow)

and its distribution comes from a seeded Monte Carlo: each open deal is won with its
probability (independent Bernoulli draws, a Poisson-binomial total), and the flow is a
compound Poisson whose rate and deal sizes are those of the same offset into the
recent ended periods (IBM's "invisible opportunities", ``revops.md`` §3.5).

The backtest (``revops.md`` §3.6) walks over past periods. For each period the
forecasters are fitted once at its start, on snapshots whose period had ended by then
(every label known) and on the stage moves dated before it; they then forecast at
weeks 1, 4, 8 and 12 from the snapshots as of those dates, which were rebuilt from
history (:func:`revloop.forecast.snapshots`). Nothing after a forecast's date reaches
it. Scores: WAPE and signed bias of the period total per checkpoint, coverage of the
P10–P90 range, and per deal the Brier score, log loss and expected calibration error
with its reliability diagram.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from revloop.exceptions import ConfigError, SchemaError
from revloop.forecast._forecasters import Forecaster, TrainingSet, get_forecaster

__all__ = [
    "BacktestData",
    "BacktestResult",
    "Forecast",
    "PeriodForecast",
    "backtest",
    "backtest_dates",
    "deal_scores",
    "forecast",
    "forecast_period",
    "reliability",
]

F64 = npt.NDArray[np.float64]
_FREQ = {"month": "M", "quarter": "Q", "year": "Y"}
_EPS = 1e-6
# log-sd of the period shock when fewer than two past periods can measure it
_DEFAULT_SIGMA = 0.15
# the measured spread is shrunk toward the default as if the default were worth this
# many periods, and capped: 2-4 periods (a company's ramp-up among them) measure it badly
_SIGMA_PRIOR_PERIODS = 2.0
_SIGMA_MAX = 0.5
# the flow's growth factor is kept within these bounds (a ramp-up quarter with two open
# deals would otherwise multiply the flow tenfold)
_GROWTH_BOUNDS = (0.5, 2.0)


def _period(ts: pd.Timestamp, period: str) -> pd.Period:
    return pd.Period(ts, freq=_FREQ[period])


def backtest_dates(
    start: str | _dt.date | pd.Timestamp,
    end: str | _dt.date | pd.Timestamp,
    *,
    period: str = "quarter",
    every_days: int = 7,
) -> list[_dt.datetime]:
    """Snapshot dates aligned on period starts: each period's start, then every week.

    The grid of every period that overlaps ``[start, end)``, keeping the dates inside
    it (a period under way at ``start`` contributes its later weeks).

    >>> [d.date().isoformat() for d in backtest_dates("2025-01-01", "2025-01-20")][:3]
    ['2025-01-01', '2025-01-08', '2025-01-15']
    """
    if period not in _FREQ:
        raise ConfigError(f"period must be one of {list(_FREQ)}, got {period!r}.")
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    out: list[_dt.datetime] = []
    p = _period(lo, period)
    while p.start_time < hi:
        d = p.start_time
        while d < min(p.end_time, hi):
            if d >= lo:  # the first period's grid dates from ``start`` on
                out.append(d.to_pydatetime())
            d += pd.Timedelta(days=every_days)
        p = p + 1
    return out


@dataclass(frozen=True, eq=False)
class BacktestData:
    """The fetched inputs: labelled snapshots, stage moves and won deals (pandas)."""

    snapshots: pd.DataFrame
    moves: pd.DataFrame
    won: pd.DataFrame

    def __post_init__(self) -> None:
        need = {
            "snapshots": ("as_of", "period_start", "period_end", "amount", "won_in_period"),
            "moves": ("from_stage", "to_stage", "moved_at"),
            "won": ("created_at", "closed_at", "amount_won"),
        }
        for name, cols in need.items():
            frame = getattr(self, name)
            missing = [c for c in cols if c not in frame.columns]
            if missing:
                raise SchemaError(
                    f"backtest {name} lacks {missing}; fetch it with revloop.forecast."
                )
        # engines return rows in any order: sort, so that fits and draws are reproducible
        order = {
            "snapshots": ("as_of", "opportunity_id"),
            "moves": ("moved_at", "opportunity_id", "from_stage", "to_stage"),
            "won": ("closed_at", "opportunity_id"),
        }
        for name, by in order.items():
            frame = getattr(self, name)
            keys = [c for c in by if c in frame.columns]
            if keys:
                frame = frame.sort_values(keys, kind="stable", ignore_index=True)
            object.__setattr__(self, name, frame)

    def training(self, cutoff: pd.Timestamp) -> TrainingSet:
        """What was known at ``cutoff``: ended periods' snapshots, moves before it."""
        s = self.snapshots
        m = self.moves
        return TrainingSet(
            snapshots=s[s["period_end"] <= cutoff],
            moves=m[m["moved_at"] <= cutoff],
            cutoff=cutoff,
        )


@dataclass(frozen=True)
class PeriodForecast:
    """One forecaster's forecast of one period's won revenue at one instant."""

    forecaster: str
    as_of: pd.Timestamp
    period_start: pd.Timestamp
    won_so_far: float
    pipeline: float
    new_deals: float
    mean: float
    p10: float
    p50: float
    p90: float

    def figures(self) -> dict[str, float]:
        """The forecast's figures under their table names (``forecast`` is the mean)."""
        return {
            "won_so_far": self.won_so_far,
            "pipeline": self.pipeline,
            "new_deals": self.new_deals,
            "forecast": self.mean,
            "p10": self.p10,
            "p50": self.p50,
            "p90": self.p90,
        }


@dataclass(frozen=True)
class _History:
    """What past periods say about a forecast made ``offset`` into a period."""

    flow_rate: float  # deals created after the offset and won in-period, per period
    flow_amounts: F64  # their amounts (the bootstrap pool)
    growth: float  # open deals now ÷ open deals at the same offset, recent periods
    sigma: float  # period-to-period dispersion (log) of the open pipeline's conversion
    realisation: float  # amount at close ÷ amount in the pipeline, of deals won in-period


def _history(
    snapshots: pd.DataFrame,
    won: pd.DataFrame,
    *,
    period_start: pd.Timestamp,
    as_of: pd.Timestamp,
    open_now: int,
    period: str,
    lookback: int,
) -> _History:
    """Flow, growth and conversion dispersion from the ``lookback`` ended periods.

    For each of them, Q: the deals created after Q.start + offset and won before Q's end
    (the not-yet-created flow); the open deals in Q's snapshot nearest that offset
    (growth); and the share of that open amount won within Q (its log spread across
    the periods is the common shock of the Monte Carlo).
    """
    offset = as_of - period_start
    p = _period(period_start, period)
    counts: list[int] = []
    amounts: list[F64] = []
    opens: list[int] = []
    conv: list[float] = []
    usable = not snapshots.empty and "as_of" in snapshots.columns
    dates = (
        np.sort(snapshots["as_of"].unique().astype("datetime64[ns]"))
        if usable
        else np.array([], dtype="datetime64[ns]")
    )
    for k in range(1, lookback + 1):
        q = p - k
        qs, qe = q.start_time, (q + 1).start_time
        sel = (won["created_at"] > qs + offset) & (won["closed_at"] >= qs) & (won["closed_at"] < qe)
        a = won.loc[sel, "amount_won"].dropna().to_numpy(dtype=np.float64)
        counts.append(len(a))
        amounts.append(a)
        inside = dates[(dates >= np.datetime64(qs)) & (dates < np.datetime64(qe))]
        if len(inside) == 0:
            continue
        near = inside[np.argmin(np.abs(inside - np.datetime64(qs + offset)))]
        snap = snapshots[snapshots["as_of"] == near]
        opens.append(len(snap))
        total = snap["amount"].fillna(0.0).sum()
        got = snap.loc[snap["won_in_period"].astype(bool), "amount_won"].fillna(0.0).sum()
        if total > 0 and got > 0:
            conv.append(float(got / total))
    pool = np.sort(np.concatenate(amounts)) if amounts else np.zeros(0)
    realisation = 1.0
    if usable:
        w = snapshots[snapshots["won_in_period"].astype(bool)]
        listed = w["amount"].fillna(0.0).sum()
        closed = w["amount_won"].fillna(0.0).sum()
        if listed > 0 and closed > 0:
            realisation = float(closed / listed)
    growth = float(open_now / np.mean(opens)) if opens and np.mean(opens) > 0 else 1.0
    growth = float(np.clip(growth, *_GROWTH_BOUNDS))
    sigma = _DEFAULT_SIGMA
    if len(conv) >= 2:
        k = len(conv) - 1  # degrees of freedom of the sample variance
        var = (k * np.var(np.log(conv), ddof=1) + _SIGMA_PRIOR_PERIODS * _DEFAULT_SIGMA**2) / (
            k + _SIGMA_PRIOR_PERIODS
        )
        sigma = float(min(np.sqrt(var), _SIGMA_MAX))
    return _History(
        flow_rate=float(np.mean(counts)) if counts else 0.0,
        flow_amounts=pool,
        growth=growth,
        sigma=sigma,
        realisation=realisation,
    )


def forecast_period(
    name: str,
    p: F64,
    snapshot: pd.DataFrame,
    won: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    period_start: pd.Timestamp,
    history: pd.DataFrame | None = None,
    period: str = "quarter",
    lookback: int = 4,
    draws: int = 2000,
    seed: int = 0,
    new_deals: bool = True,
) -> PeriodForecast:
    """The period total and its P10/P50/P90 from deal probabilities ``p``.

    ``history`` holds labelled snapshots of ended periods (the training snapshots):
    they give the growth factor of the not-yet-created flow, the spread of the
    period-level shock, and the realisation ratio (what won deals closed at ÷ the amount
    they showed in the pipeline: negotiation discounts), applied to open amounts. Each
    Monte Carlo draw multiplies the open pipeline's probabilities and the flow by one
    common log-normal factor (mean 1, log-sd the periods' spread) before the
    independent draws: deals of one period win or lose together with the market,
    which independent Bernoulli draws alone ignore.
    """
    period_end = (_period(period_start, period) + 1).start_time
    amount = snapshot["amount"].fillna(0.0).to_numpy(dtype=np.float64)
    so_far = float(
        won.loc[(won["closed_at"] >= period_start) & (won["closed_at"] < as_of), "amount_won"].sum()
    )
    hist = _history(
        history if history is not None else snapshot.iloc[0:0],
        won,
        period_start=period_start,
        as_of=as_of,
        open_now=len(snapshot),
        period=period,
        lookback=lookback,
    )
    rng = np.random.default_rng(seed)
    shock = np.exp(rng.normal(-0.5 * hist.sigma**2, hist.sigma, size=draws))
    keep = (p > 0) & (amount > 0)
    pk, ak = p[keep], amount[keep] * hist.realisation
    totals = np.zeros(draws)
    chunk = max(1, 4_000_000 // max(1, len(pk)))
    for i in range(0, draws, chunk):
        j = min(draws, i + chunk)
        pj = np.clip(pk[None, :] * shock[i:j, None], 0.0, 1.0)
        totals[i:j] = (rng.random((j - i, len(pk))) < pj) @ ak
    flow_mean = 0.0
    if new_deals and as_of < period_end and hist.flow_rate > 0 and len(hist.flow_amounts):
        lam = hist.flow_rate * hist.growth
        flow_mean = lam * float(hist.flow_amounts.mean())
        n = rng.poisson(lam * shock)
        picks = rng.choice(hist.flow_amounts, size=int(n.sum()))
        sums = np.zeros(draws)
        np.add.at(sums, np.repeat(np.arange(draws), n), picks)
        totals += sums
    totals += so_far
    q10, q50, q90 = np.quantile(totals, [0.1, 0.5, 0.9])
    pipe = float(pk @ ak)
    return PeriodForecast(
        forecaster=name,
        as_of=as_of,
        period_start=period_start,
        won_so_far=so_far,
        pipeline=pipe,
        new_deals=flow_mean,
        mean=so_far + pipe + flow_mean,
        p10=float(q10),
        p50=float(q50),
        p90=float(q90),
    )


def deal_scores(y: npt.ArrayLike, p: npt.ArrayLike, *, bins: int = 10) -> dict[str, float]:
    """Brier score, log loss and expected calibration error of probabilities ``p``.

    ECE = Σ_b (n_b / n) · |mean p_b − mean y_b| over ``bins`` equal-width bins.

    >>> deal_scores([1, 0, 1, 0], [0.9, 0.1, 0.6, 0.4], bins=2)
    {'deals': 4.0, 'brier': 0.085, 'log_loss': 0.3081, 'ece': 0.25}
    """
    yv = np.asarray(y, dtype=np.float64)
    pv = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    if len(yv) == 0:
        return {"deals": 0.0, "brier": np.nan, "log_loss": np.nan, "ece": np.nan}
    pc = np.clip(pv, _EPS, 1 - _EPS)
    rel = reliability(yv, pv, bins=bins)
    ece = float((rel["deals"] * (rel["mean_p"] - rel["observed"]).abs()).sum() / len(yv))
    return {
        "deals": float(len(yv)),
        "brier": round(float(np.mean((pv - yv) ** 2)), 6),
        "log_loss": round(float(-np.mean(yv * np.log(pc) + (1 - yv) * np.log(1 - pc))), 4),
        "ece": round(ece, 6),
    }


def reliability(y: npt.ArrayLike, p: npt.ArrayLike, *, bins: int = 10) -> pd.DataFrame:
    """The reliability diagram: per probability bin, deals, mean p and observed win share."""
    yv = np.asarray(y, dtype=np.float64)
    pv = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    b = np.minimum((pv * bins).astype(np.int64), bins - 1)
    df = pd.DataFrame({"bin": b, "p": pv, "y": yv})
    g = df.groupby("bin").agg(deals=("y", "size"), mean_p=("p", "mean"), observed=("y", "mean"))
    g = g.reset_index()
    g["lower"] = g["bin"] / bins
    g["upper"] = (g["bin"] + 1) / bins
    return g[["lower", "upper", "deals", "mean_p", "observed"]]


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Everything the backtest measured.

    Attributes
    ----------
    forecasts
        One row per (forecaster, period, week): as_of, won_so_far, pipeline, new_deals,
        forecast (the mean), p10, p50, p90, actual, error (forecast − actual), covered.
    summary
        Per (forecaster, week): periods, wape (Σ|error| ÷ Σ actual), bias (Σ error ÷ Σ
        actual), coverage (share of periods whose actual lies in [p10, p90]).
    deals
        Per forecaster: deals, brier, log_loss, ece over every checkpoint snapshot.
    reliability
        Per forecaster and probability bin: deals, mean_p, observed.
    settings
        The backtest's parameters and each forecaster's :meth:`Forecaster.to_dict`.
    """

    forecasts: pd.DataFrame
    summary: pd.DataFrame
    deals: pd.DataFrame
    reliability: pd.DataFrame
    settings: dict[str, object]


def backtest(
    data: BacktestData,
    forecasters: Sequence[str | Forecaster] = (
        "stage_weighted",
        "stage_conversion",
        "calibrated_gbm",
    ),
    *,
    period: str = "quarter",
    weeks: Sequence[int] = (1, 4, 8, 12),
    min_train_periods: int = 2,
    lookback: int = 4,
    draws: int = 2000,
    seed: int = 0,
    on_period: Callable[[pd.Timestamp], None] | None = None,
) -> BacktestResult:
    """Backtest ``forecasters`` over every past period the data allows (see module).

    Parameters
    ----------
    data
        Labelled snapshots on :func:`backtest_dates`, stage moves and won deals.
    forecasters
        Names (default parameters) or configured :class:`Forecaster` objects.
    period
        The forecast period (a quarter by default).
    weeks
        Checkpoints: week w is the snapshot ``7 · (w − 1)`` days after the period start.
    min_train_periods
        Ended periods of snapshots needed before a period is tested.
    lookback
        Ended periods the not-yet-created flow is estimated from.
    draws, seed
        Monte Carlo draws and seed of the P10/P50/P90.
    """
    if period not in _FREQ:
        raise ConfigError(f"period must be one of {list(_FREQ)}, got {period!r}.")
    snaps = data.snapshots
    if snaps.empty:
        raise ConfigError("no snapshots to backtest on: widen the date range.")
    first = snaps["period_start"].min()
    last_date = snaps["as_of"].max()
    p = _period(first, period) + min_train_periods
    rows: list[dict[str, object]] = []
    scored: dict[str, list[tuple[F64, F64]]] = {}
    fitted: dict[str, dict[str, object]] = {}
    while (p + 1).start_time <= last_date + pd.Timedelta(days=7):
        start, end = p.start_time, (p + 1).start_time
        train = data.training(start)
        if on_period is not None:
            on_period(start)
        models = [get_forecaster(f) if isinstance(f, str) else f for f in forecasters]
        for m in models:
            m.fit(train)
            fitted[m.name] = m.to_dict()
        actual = float(
            data.won.loc[
                (data.won["closed_at"] >= start) & (data.won["closed_at"] < end), "amount_won"
            ].sum()
        )
        for w in weeks:
            as_of = start + pd.Timedelta(days=7 * (w - 1))
            snap = snaps[snaps["as_of"] == as_of]
            if as_of >= end or (snap.empty and as_of > last_date):
                continue
            y = np.asarray(snap["won_in_period"].astype("float64"), dtype=np.float64)
            for m in models:
                prob = m.predict(snap)
                fc = forecast_period(
                    m.name,
                    prob,
                    snap,
                    data.won,
                    as_of=as_of,
                    period_start=start,
                    history=train.snapshots,
                    period=period,
                    lookback=lookback,
                    draws=draws,
                    seed=seed,
                )
                scored.setdefault(m.name, []).append((y, prob))
                rows.append(
                    {
                        "forecaster": m.name,
                        "period": str(p),
                        "week": w,
                        "as_of": as_of,
                        **fc.figures(),
                        "actual": actual,
                        "error": fc.mean - actual,
                        "covered": fc.p10 <= actual <= fc.p90,
                    }
                )
        p = p + 1
    if not rows:
        raise ConfigError(
            f"no {period} could be backtested: the snapshots need {min_train_periods} ended "
            f"{period}s of history before a tested one. Give a longer history."
        )
    forecasts = pd.DataFrame(rows)
    g = forecasts.groupby(["forecaster", "week"])
    forecasts["abs_error"] = forecasts["error"].abs()
    summary = g.agg(
        periods=("actual", "size"),
        actual=("actual", "sum"),
        error=("error", "sum"),
        abs_error=("abs_error", "sum"),
        coverage=("covered", "mean"),
    ).reset_index()
    summary["wape"] = summary["abs_error"] / summary["actual"]
    summary["bias"] = summary["error"] / summary["actual"]
    summary = summary[["forecaster", "week", "periods", "wape", "bias", "coverage"]]
    forecasts = forecasts.drop(columns="abs_error")
    deal_rows: list[dict[str, object]] = []
    rel_rows = []
    for name, parts in scored.items():
        yy = np.concatenate([a for a, _ in parts])
        pp = np.concatenate([b for _, b in parts])
        scores: dict[str, object] = dict(deal_scores(yy, pp))
        scores["deals"] = len(yy)
        deal_rows.append({"forecaster": name, **scores})
        r = reliability(yy, pp)
        r.insert(0, "forecaster", name)
        rel_rows.append(r)
    settings: dict[str, object] = {
        "period": period,
        "weeks": list(weeks),
        "min_train_periods": min_train_periods,
        "lookback": lookback,
        "draws": draws,
        "seed": seed,
        "forecasters": fitted,
    }
    return BacktestResult(
        forecasts=forecasts,
        summary=summary,
        deals=pd.DataFrame(deal_rows),
        reliability=pd.concat(rel_rows, ignore_index=True),
        settings=settings,
    )


@dataclass(frozen=True, eq=False)
class Forecast:
    """A live forecast of the period holding ``as_of``.

    Attributes
    ----------
    totals
        One row per forecaster: won_so_far, pipeline, new_deals, forecast (the mean),
        p10, p50, p90.
    deals
        Every deal open at ``as_of`` with its stage, amount, close date and, per
        forecaster, ``p_<name>``: P(won before the period's end).
    settings
        as_of, period and each forecaster's :meth:`Forecaster.to_dict`.
    """

    totals: pd.DataFrame
    deals: pd.DataFrame
    settings: dict[str, object]


def forecast(
    data: BacktestData,
    forecasters: Sequence[str | Forecaster] = (
        "stage_weighted",
        "stage_conversion",
        "calibrated_gbm",
    ),
    *,
    as_of: str | _dt.date | pd.Timestamp,
    period: str = "quarter",
    lookback: int = 4,
    draws: int = 2000,
    seed: int = 0,
) -> Forecast:
    """Forecast the period holding ``as_of`` from what was known at ``as_of``.

    ``data.snapshots`` must hold the snapshot taken at ``as_of`` (the deals to score)
    and labelled snapshots of earlier periods (training); the forecasters are fitted at
    ``as_of`` on the periods ended by then and the moves dated before it.
    """
    if period not in _FREQ:
        raise ConfigError(f"period must be one of {list(_FREQ)}, got {period!r}.")
    at = pd.Timestamp(as_of)
    snap = data.snapshots[data.snapshots["as_of"] == at]
    if snap.empty:
        raise ConfigError(
            f"no snapshot at {at}: build the snapshots with this as_of among the dates "
            "(no deal was open then, or the date is outside the data)."
        )
    start = _period(at, period).start_time
    train = data.training(at)
    keep = [
        c
        for c in ("opportunity_id", "stage", "amount", "close_date", "owner_id", "segment")
        if c in snap.columns
    ]
    deals = snap[keep].reset_index(drop=True)
    rows = []
    fitted: dict[str, object] = {}
    for f in forecasters:
        m = get_forecaster(f) if isinstance(f, str) else f
        m.fit(train)
        fitted[m.name] = m.to_dict()
        p = m.predict(snap)
        deals[f"p_{m.name}"] = p
        fc = forecast_period(
            m.name,
            p,
            snap,
            data.won,
            as_of=at,
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
                "period": str(_period(at, period)),
                **fc.figures(),
            }
        )
    settings: dict[str, object] = {
        "as_of": str(at),
        "period": period,
        "lookback": lookback,
        "draws": draws,
        "seed": seed,
        "forecasters": fitted,
    }
    return Forecast(totals=pd.DataFrame(rows), deals=deals, settings=settings)
