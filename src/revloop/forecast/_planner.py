"""The predictable-revenue planner: from a revenue target back to leads, by month (compute layer).

Ross & Tyler's reverse funnel (*Predictable Revenue*, 2011; revops.md §4)::

    deals         = target ÷ average deal size
    opportunities = deals ÷ win rate
    leads         = opportunities ÷ lead→opportunity rate

done per segment (the book's seeds, nets and spears, or any lead column), time-phased
backwards with the *empirical* lag distributions (not their means), and with its
uncertainty: Beta posteriors on both rates (the team's counts shrunk toward a benchmark
prior), the deal-size distribution by bootstrap, and a seeded Monte Carlo that turns
them into "leads needed for 50 / 80 / 90 % confidence".

Everything here is numpy/pandas over the small frames that
:func:`revloop.forecast.plan_inputs` describes and the edge layer fetches; nothing runs a
query. User documentation: ``docs/planning.md``.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from revloop.exceptions import ConfigError, SchemaError

__all__ = [
    "Capacity",
    "ExpansionCredit",
    "Plan",
    "PlanInputs",
    "Prior",
    "TargetPeriod",
    "parse_period",
    "plan",
    "reverse_funnel",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_TOTAL = "total"
_PERIOD_RES = (
    (re.compile(r"^(\d{4})-?[Qq]([1-4])$"), "quarter"),
    (re.compile(r"^(\d{4})-(\d{1,2})$"), "month"),
    (re.compile(r"^(\d{4})$"), "year"),
)
_CHUNK = 500  # Monte Carlo draws whose unknowns are drawn at once
_CELLS = 2_000_000  # draws x simulated opportunities held in memory at once
_MAX_EVENTS = 20_000_000  # opportunities per draw beyond which the target is an input error


# ----------------------------------------------------------------------------- the funnel


def reverse_funnel(target: float, deal_size: float, rates: Mapping[str, float]) -> dict[str, float]:
    """The static reverse funnel: deals for ``target``, then each earlier stage in turn.

    ``rates`` maps each earlier stage, from the deal backwards, to the conversion rate
    from it into the next stage; every count is the next one divided by its rate.

    Parameters
    ----------
    target
        Revenue (new bookings) to reach, > 0.
    deal_size
        Average deal size, > 0.
    rates
        Stage name → conversion rate into the following stage, in (0, 1].

    Returns
    -------
    dict
        ``{"deals": target ÷ deal_size, stage: previous ÷ rate, ...}`` in funnel order.

    Examples
    --------
    The worked example of revops.md §4: $2M at $25k, 25 % win rate, 50 % of meetings
    become opportunities, 13 % of leads (Implisit) take a meeting.

    >>> reverse_funnel(2_000_000, 25_000, {"opportunities": 0.25, "meetings": 0.5})
    {'deals': 80.0, 'opportunities': 320.0, 'meetings': 640.0}
    >>> round(reverse_funnel(2_000_000, 25_000, {"opportunities": 0.25, "leads": 0.13})["leads"], 1)
    2461.5

    References
    ----------
    Ross & Tyler, *Predictable Revenue* (2011); revops.md §4 "Reverse-funnel calculator".
    """
    _positive("target", target)
    _positive("deal_size", deal_size)
    out = {"deals": float(target) / float(deal_size)}
    last = out["deals"]
    for stage, rate in rates.items():
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
            raise ConfigError(
                f"reverse_funnel: rate of {stage!r} is {rate!r}; expected a share in (0, 1], "
                "e.g. 0.25 for 25 %."
            )
        last = last / float(rate)
        out[stage] = last
    return out


def _positive(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.integer | np.floating)
        or not math.isfinite(float(value))
        or not float(value) > 0
    ):
        raise ConfigError(f"{name}={value!r}: expected a positive amount, e.g. 2000000.")
    return float(value)


# ----------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Prior:
    """The benchmark prior each segment's rates are shrunk toward.

    Each rate gets a Beta(``strength`` × p0, ``strength`` × (1 − p0)) prior, i.e.
    ``strength`` pseudo-observations at the benchmark rate p0; a segment with n observed
    leads (or opportunities) weighs its own rate n ÷ (n + ``strength``). The same
    strength shrinks a segment's lag distributions toward the pooled ones.
    ``strength=0`` uses the data alone.

    Attributes
    ----------
    lead_to_opportunity
        0.13: Implisit, ~500 US B2B companies, "13 % of leads convert to opportunities"
        (revops.md §2.3, via pmg360.com and venncomm.com; secondary source).
    win_rate
        0.25: the worked example of the reverse-funnel calculators (revops.md §4,
        ``predictable-revenue/references/pipeline-math.md``), in the typical 15-30 %
        range of revops.md §2.3.
    strength
        20 pseudo-observations: a segment with 20 leads sits halfway between its own rate
        and the benchmark; one with 200 is 91 % its own.
    """

    lead_to_opportunity: float = 0.13
    win_rate: float = 0.25
    strength: float = 20.0

    def __post_init__(self) -> None:
        for name in ("lead_to_opportunity", "win_rate"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 1:
                raise ConfigError(f"Prior({name}={v!r}): expected a share in (0, 1), e.g. 0.13.")
        s = self.strength
        if isinstance(s, bool) or not isinstance(s, int | float) or not s >= 0:
            raise ConfigError(f"Prior(strength={s!r}): expected pseudo-observations >= 0, e.g. 20.")


@dataclass(frozen=True)
class Capacity:
    """Rep capacity the plan is checked against, month by month.

    Capacity in month m = ``per_rep`` × (``reps`` + Σ hires × ramp), where a rep hired in
    month h contributes min(1, (m − h + 1) ÷ ``ramp_months``) from month h on (a linear
    ramp: ¼, ½, ¾, 1 with a four-month ramp) and ``reps`` are fully ramped.

    Attributes
    ----------
    reps
        Fully ramped reps at the start of the plan.
    per_rep
        What one ramped rep handles per month: new opportunities (AEs) or new leads (SDRs).
    ramp_months
        Months from a hire's first month to full productivity (0: productive at once).
        Ross & Tyler's "Competitor A" ramps AEs in four months (revops.md §4).
    hires
        Month (``"2027-01"``) → reps starting that month.
    stage
        ``"opportunities"`` (AE capacity, the default) or ``"leads"`` (SDR capacity).
    """

    reps: int
    per_rep: float
    ramp_months: int = 0
    hires: Mapping[str, int] = field(default_factory=dict)
    stage: Literal["opportunities", "leads"] = "opportunities"

    def __post_init__(self) -> None:
        if isinstance(self.reps, bool) or not isinstance(self.reps, int) or self.reps < 0:
            raise ConfigError(f"Capacity(reps={self.reps!r}): expected a whole number >= 0.")
        _positive("Capacity(per_rep)", self.per_rep)
        r = self.ramp_months
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            raise ConfigError(f"Capacity(ramp_months={r!r}): expected a whole number >= 0.")
        if self.stage not in ("opportunities", "leads"):
            raise ConfigError(
                f"Capacity(stage={self.stage!r}): expected 'opportunities' or 'leads'."
            )

    def at(self, month: pd.Period) -> float:
        """Capacity in ``month``."""
        total = float(self.reps)
        for start, n in self.hires.items():
            elapsed = _month_ordinal(month) - _month_ordinal(parse_period(start).start)
            if elapsed < 0:  # not hired yet
                continue
            ramp = 1.0 if self.ramp_months == 0 else min(1.0, (elapsed + 1) / self.ramp_months)
            total += n * ramp
        return total * float(self.per_rep)


@dataclass(frozen=True)
class ExpansionCredit:
    """Expected net expansion of existing customers, credited against a growth target.

    Use it when the target is *growth of recurring revenue* (net new ARR): growth = new
    bookings + net expansion, so new bookings required = target − expected net expansion
    (revops.md §4, "Capacity"). With ``nrr`` measured over ``months`` and constant, the
    base grows by ``base`` × nrr^(t ÷ months) after t months, so a target period from
    month k to k + p after the first period's start is credited
    ``base`` × (nrr^((k + p) ÷ months) − nrr^(k ÷ months)). An NRR below 1 gives a
    negative credit: churn to replace. Do not use it with a new-bookings target.

    Attributes
    ----------
    nrr
        Net revenue retention as a ratio (1.08 = 108 %), e.g. ``revloop metrics
        --metric nrr`` (cohort / trailing-twelve-month NRR, revops.md §1.6).
    base
        Recurring revenue of existing customers at the start of the first target period.
    months
        The window ``nrr`` is measured over (12 for TTM NRR).
    """

    nrr: float
    base: float
    months: int = 12

    def __post_init__(self) -> None:
        _positive("ExpansionCredit(nrr)", self.nrr)
        _positive("ExpansionCredit(base)", self.base)
        m = self.months
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ConfigError(f"ExpansionCredit(months={m!r}): expected a whole number >= 1.")


@dataclass(frozen=True)
class TargetPeriod:
    """A target period: its label, first month and length in months."""

    label: str
    start: pd.Period
    months: int

    @property
    def month_list(self) -> list[pd.Period]:
        return [self.start + i for i in range(self.months)]


def parse_period(value: str | pd.Period) -> TargetPeriod:
    """A quarter (``2027Q1``, ``2027-Q1``), month (``2027-03``) or year (``2027``).

    Examples
    --------
    >>> p = parse_period("2027Q1")
    >>> str(p.start), p.months
    ('2027-01', 3)
    >>> str(parse_period("2027-03").start), parse_period("2027").months
    ('2027-03', 12)
    """
    if isinstance(value, pd.Period):
        freq = value.freqstr[0]
        months = {"M": 1, "Q": 3, "Y": 12, "A": 12}.get(freq)
        if months is None:
            raise ConfigError(f"period {value!r}: use a month, quarter or year period.")
        return TargetPeriod(str(value), value.asfreq("M", how="start"), months)
    text = str(value).strip()
    for rx, kind in _PERIOD_RES:
        m = rx.match(text)
        if m is None:
            continue
        year = int(m.group(1))
        if kind == "quarter":
            q = int(m.group(2))
            return TargetPeriod(f"{year}Q{q}", pd.Period(year=year, month=3 * q - 2, freq="M"), 3)
        if kind == "month":
            month = int(m.group(2))
            if not 1 <= month <= 12:
                break
            return TargetPeriod(
                f"{year}-{month:02d}", pd.Period(year=year, month=month, freq="M"), 1
            )
        return TargetPeriod(str(year), pd.Period(year=year, month=1, freq="M"), 12)
    raise ConfigError(
        f"period {value!r} is not a period revloop knows; use a quarter '2027Q1', a month "
        "'2027-03' or a year '2027'."
    )


def _month_ordinal(p: pd.Period) -> int:
    return int(p.year) * 12 + int(p.month) - 1


def _month(ordinal: int) -> pd.Period:
    return pd.Period(year=ordinal // 12, month=ordinal % 12 + 1, freq="M")


# ----------------------------------------------------------------------------- inputs


_FRAMES: dict[str, tuple[str, ...]] = {
    "counts": ("segment", "leads", "converted", "opportunities", "won", "won_revenue"),
    "lead_lags": ("segment", "lag_months", "leads"),
    "win_lags": ("segment", "lag_months", "deals"),
    "deal_sizes": ("segment", "amount"),
}
_ACTUALS = ("segment", "month", "leads", "opportunities", "deals_won", "won_revenue")


@dataclass(frozen=True)
class PlanInputs:
    """The fetched history the planner reads (the frames of :class:`PlanQueries`).

    Attributes
    ----------
    counts, lead_lags, win_lags, deal_sizes, actuals
        pandas frames with the columns :func:`revloop.forecast.plan_inputs` documents
        (``actuals`` may be empty: no plan-versus-actual then).
    as_of
        The instant the estimates stop; months before its month are "past" in the plan.
    data_end
        The latest timestamp in the data: the last month of actuals is complete only
        when it ends by then.
    params
        The parameters the frames were built with (stated in the plan).
    """

    counts: pd.DataFrame
    lead_lags: pd.DataFrame
    win_lags: pd.DataFrame
    deal_sizes: pd.DataFrame
    as_of: pd.Timestamp
    actuals: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(_ACTUALS)))
    data_end: pd.Timestamp | None = None
    params: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, cols in {**_FRAMES, "actuals": _ACTUALS}.items():
            df = getattr(self, name)
            missing = [c for c in cols if c not in df.columns]
            if missing:
                raise SchemaError(
                    f"PlanInputs.{name} is missing column(s) {missing}; found "
                    f"{list(df.columns)}. Build it with revloop.forecast.plan_inputs."
                )

    @classmethod
    def from_frames(
        cls, frames: Mapping[str, pd.DataFrame], params: Mapping[str, object] | None = None
    ) -> PlanInputs:
        """From the fetched tables of :meth:`PlanQueries.tables` (``meta`` gives as_of)."""
        missing = [k for k in (*_FRAMES, "actuals", "meta") if k not in frames]
        if missing:
            raise SchemaError(
                f"PlanInputs.from_frames is missing {missing}; fetch every table of "
                "plan_inputs(...).tables()."
            )
        meta = frames["meta"]
        if len(meta) != 1 or pd.isna(meta["as_of"].iloc[0]):
            raise SchemaError(
                "PlanInputs.from_frames: meta has no as_of (are leads empty?). "
                "Check that the leads table has rows."
            )
        end = meta["data_end"].iloc[0] if "data_end" in meta.columns else None
        return cls(
            counts=frames["counts"],
            lead_lags=frames["lead_lags"],
            win_lags=frames["win_lags"],
            deal_sizes=frames["deal_sizes"],
            actuals=frames["actuals"],
            as_of=pd.Timestamp(meta["as_of"].iloc[0]),
            data_end=None if end is None or pd.isna(end) else pd.Timestamp(end),
            params=dict(params or {}),
        )


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    """A time-phased plan from revenue targets to leads, per segment.

    Attributes
    ----------
    summary
        One row per target period and segment, plus a ``total`` row per period:
        ``period, segment, target, expansion_credit, new_bookings, share, deal_size,
        win_rate, lead_to_opportunity, deals, opportunities, leads`` (expected, from the
        posterior-mean rates and the mean deal size), and for each confidence c
        ``deals_pC, opportunities_pC, leads_pC`` (the c-quantiles of the Monte Carlo;
        see :func:`plan`), ``leads_from`` and ``leads_until`` (the months the middle 90 %
        of the expected leads must arrive in: where their running total first reaches 5 %
        and 95 %).
    calendar
        One row per month and segment plus ``total`` rows: ``month, segment, status``
        (past / current / future relative to as_of), ``leads, opportunities, deals,
        revenue`` (expected: what must *arrive* that month: leads created, opportunities
        created, deals won, new bookings), ``leads_pC, opportunities_pC`` (the expected
        month scaled to the confidence-c total of its segment and period); with capacity,
        on total rows, ``capacity``, ``utilisation`` and ``over_capacity``.
    rates
        One row per segment: observed counts and rates, the Beta posterior of each rate
        (``*_a``, ``*_b``, mean, 5 % and 95 % quantiles), ``*_data_weight`` (n ÷ (n +
        strength)), mean and median deal size, ``deal_sample``, ``won_revenue``, ``share``.
    vs_actual
        Months of the calendar up to the end of the data: ``month, segment, complete``
        and for leads, opportunities, deals and revenue the ``*_planned`` and
        ``*_actual`` columns.
    policy
        Every parameter in force (prior, draws, seed, confidence, lags, windows).
    notes
        What the plan left out or assumed, for a report to show.
    """

    summary: pd.DataFrame
    calendar: pd.DataFrame
    rates: pd.DataFrame
    vs_actual: pd.DataFrame
    policy: dict[str, object]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready document: policy, notes and each frame as records."""
        import json

        def records(df: pd.DataFrame) -> object:
            out = df.copy()
            for c in out.columns:
                if isinstance(out[c].dtype, pd.PeriodDtype):
                    out[c] = [None if pd.isna(v) else str(v) for v in out[c]]
            return json.loads(out.to_json(orient="records", date_format="iso"))

        return {
            "policy": self.policy,
            "notes": list(self.notes),
            "summary": records(self.summary),
            "calendar": records(self.calendar),
            "rates": records(self.rates),
            "vs_actual": records(self.vs_actual),
        }


@dataclass
class _Segment:
    name: str
    share: float
    leads: int
    converted: int
    opportunities: int
    won: int
    won_revenue: float
    amounts: FloatArray
    r_a: float
    r_b: float
    w_a: float
    w_b: float
    lead_pmf: FloatArray
    win_pmf: FloatArray

    @property
    def r_mean(self) -> float:
        return self.r_a / (self.r_a + self.r_b)

    @property
    def w_mean(self) -> float:
        return self.w_a / (self.w_a + self.w_b)

    @property
    def deal_size(self) -> float:
        return float(self.amounts.mean())


def _posterior(k: int, n: int, p0: float, s: float, what: str, seg: str) -> tuple[float, float]:
    a = k + s * p0
    b = (n - k) + s * (1.0 - p0)
    if a + b <= 0:
        raise ConfigError(
            f"segment {seg!r} has no {what} history and the prior has strength 0. "
            "Give the prior a strength (Prior(strength=20)), or segment differently."
        )
    if a <= 0:
        raise ConfigError(
            f"segment {seg!r}: no {what} conversions in its history and the prior has "
            "strength 0, so its rate is 0 and no number of leads reaches the target. "
            "Give the prior a strength (Prior(strength=20)) or give the segment weight 0."
        )
    return a, b


def _pmf(hist: pd.DataFrame, col: str, seg: str, pooled: FloatArray, s: float) -> FloatArray:
    """Lag distribution of ``seg``: its histogram shrunk toward ``pooled`` by ``s``."""
    h = hist[hist["segment"] == seg]
    counts = np.zeros(len(pooled))
    for lag, n in zip(h["lag_months"].astype(int), h[col].astype(float), strict=True):
        counts[max(lag, 0)] += n
    n_s = counts.sum()
    if n_s + s <= 0:
        return pooled.copy()
    out: FloatArray = (counts + s * pooled) / (n_s + s)
    return out


def _pooled(hist: pd.DataFrame, col: str, what: str) -> FloatArray:
    if hist.empty or float(hist[col].sum()) <= 0:
        raise ConfigError(
            f"no {what} in the mature cohorts of the history, so its lag distribution is "
            "unknown. Lengthen lookback_months or the window (plan_inputs(..., "
            "lead_window_days=..., win_window_days=...)), or pass an earlier as_of."
        )
    lags = hist["lag_months"].astype(int).clip(lower=0)
    out = np.zeros(int(lags.max()) + 1)
    np.add.at(out, lags.to_numpy(), hist[col].astype(float).to_numpy())
    pmf: FloatArray = out / out.sum()
    return pmf


def _parse_targets(
    targets: Mapping[str, float] | Mapping[pd.Period, float] | pd.Series,
) -> list[tuple[TargetPeriod, float]]:
    items = list(targets.items())
    if not items:
        raise ConfigError("targets is empty; pass e.g. {'2027Q1': 2_000_000}.")
    out: list[tuple[TargetPeriod, float]] = []
    for key, value in items:
        p = parse_period(key if isinstance(key, pd.Period) else str(key))
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float | np.integer | np.floating)
            or not math.isfinite(float(value))
            or not float(value) > 0
        ):
            raise ConfigError(
                f"target for {p.label} is {value!r}; expected a positive revenue, e.g. 2000000."
            )
        out.append((p, float(value)))
    out.sort(key=lambda x: _month_ordinal(x[0].start))
    for (a, _), (b, _) in itertools.pairwise(out):
        if _month_ordinal(a.start) + a.months > _month_ordinal(b.start):
            raise ConfigError(
                f"target periods {a.label} and {b.label} overlap; give each month one target."
            )
    return out


def _check_confidence(confidence: Sequence[float]) -> tuple[float, ...]:
    levels = tuple(float(c) for c in confidence)
    if not levels or any(not 0 < c < 1 for c in levels) or len(set(levels)) != len(levels):
        raise ConfigError(
            f"confidence={tuple(confidence)!r}: expected distinct probabilities in (0, 1), "
            "e.g. (0.5, 0.8, 0.9)."
        )
    return tuple(sorted(levels))


def _label(c: float) -> str:
    pct = c * 100
    return f"p{pct:g}".replace(".", "_")


def _segments(
    inputs: PlanInputs,
    prior: Prior,
    weights: Mapping[str, float] | None,
) -> tuple[list[_Segment], list[str]]:
    counts = inputs.counts.copy()
    counts["segment"] = counts["segment"].astype(str)
    notes: list[str] = []
    sizes = inputs.deal_sizes.copy()
    sizes["segment"] = sizes["segment"].astype(str)
    sizes = sizes[sizes["amount"].astype(float) > 0]
    known = list(counts["segment"])
    if weights is not None:
        unknown = sorted(set(weights) - set(known))
        if unknown:
            raise ConfigError(
                f"weights name segment(s) {unknown} that the history does not have; "
                f"its segments are {sorted(known)}."
            )
        bad = {
            k: v
            for k, v in weights.items()
            if isinstance(v, bool)
            or not isinstance(v, int | float | np.integer | np.floating)
            or not v >= 0
        }
        if bad or sum(float(v) for v in weights.values()) <= 0:
            raise ConfigError(
                f"weights={dict(weights)!r}: expected shares >= 0 with a positive sum, "
                "e.g. {'seeds': 0.5, 'nets': 0.3, 'spears': 0.2}."
            )
        raw = {k: float(weights.get(k, 0.0)) for k in known}
    else:
        raw = {k: float(v) for k, v in zip(known, counts["won_revenue"].astype(float), strict=True)}
        if sum(raw.values()) <= 0:
            raise ConfigError(
                "no segment has won revenue in the lookback window, so the target cannot be "
                "split by history and no deal size is known. Lengthen lookback_months, or "
                "pass weights and check that won opportunities have amounts."
            )
    total = sum(raw.values())
    lead_pool = _pooled(inputs.lead_lags, "leads", "lead converted to an opportunity")
    win_pool = _pooled(inputs.win_lags, "deals", "opportunity won")
    s = prior.strength
    out: list[_Segment] = []
    for _, row in counts.sort_values("segment").iterrows():
        name = str(row["segment"])
        share = raw[name] / total
        if share <= 0:
            if weights is None:
                notes.append(
                    f"segment {name!r} has no won revenue in the lookback window: it gets no "
                    "share of the target (pass weights to give it one)."
                )
            continue
        amounts = sizes.loc[sizes["segment"] == name, "amount"].to_numpy(dtype=np.float64)
        if amounts.size == 0:
            raise ConfigError(
                f"segment {name!r} has no won deal with an amount in the lookback window, so "
                "its deal size is unknown. Give it weight 0, merge it into another segment "
                "(segments={...}), or lengthen lookback_months."
            )
        n_l, k_l = int(row["leads"]), int(row["converted"])
        n_o, k_o = int(row["opportunities"]), int(row["won"])
        r_a, r_b = _posterior(k_l, n_l, prior.lead_to_opportunity, s, "lead", name)
        w_a, w_b = _posterior(k_o, n_o, prior.win_rate, s, "opportunity", name)
        out.append(
            _Segment(
                name=name,
                share=share,
                leads=n_l,
                converted=k_l,
                opportunities=n_o,
                won=k_o,
                won_revenue=float(row["won_revenue"]),
                amounts=amounts,
                r_a=r_a,
                r_b=r_b,
                w_a=w_a,
                w_b=w_b,
                lead_pmf=_pmf(inputs.lead_lags, "leads", name, lead_pool, s),
                win_pmf=_pmf(inputs.win_lags, "deals", name, win_pool, s),
            )
        )
    return out, notes


@dataclass(frozen=True)
class _Draws:
    """One chunk of Monte Carlo draws of a segment's unknowns: rates and a bootstrap."""

    r: FloatArray
    w: FloatArray
    boot: IntArray


def _draw_params(seg: _Segment, rng: np.random.Generator, m: int) -> _Draws:
    r = rng.beta(seg.r_a, seg.r_b, size=m) if seg.r_b > 0 else np.full(m, 1.0)
    w = rng.beta(seg.w_a, seg.w_b, size=m) if seg.w_b > 0 else np.full(m, 1.0)
    boot = rng.integers(0, seg.amounts.size, size=(m, seg.amounts.size))
    return _Draws(np.clip(r, 1e-12, 1.0), np.clip(w, 1e-12, 1.0), boot)


def _passage(
    rng: np.random.Generator,
    parts: Sequence[tuple[_Segment, _Draws, float, float]],
    target: float,
) -> tuple[IntArray, IntArray, IntArray]:
    """Per draw: leads, opportunities and deals until won revenue first reaches ``target``.

    ``parts`` holds, per segment, its draws, its share π of the leads and the expected
    number of its opportunities (to size the first batch). Each segment's opportunities
    arrive after Geometric(r) leads each (a lead converts with probability r), each is
    won with probability w and then brings a deal size drawn from that draw's bootstrap
    resample. With several segments the leads are split in the shares π, so a segment's
    k-th opportunity arrives when the total lead count reaches its own count ÷ π; events
    of all segments are merged in that order. Returns the total leads (rounded up),
    opportunities and deals at the first time won revenue reaches ``target``.
    """
    m = parts[0][1].r.size
    leads = np.zeros(m, dtype=np.int64)
    opps = np.zeros(m, dtype=np.int64)
    deals = np.zeros(m, dtype=np.int64)
    todo = np.arange(m)
    scale = 1.0
    while todo.size:
        sizes = [math.ceil((2.0 * k_exp + 30.0) * scale) for _, _, _, k_exp in parts]
        if sum(sizes) > _MAX_EVENTS:
            raise ConfigError(
                f"reaching {target:,.0f} would take more than {_MAX_EVENTS:,} opportunities "
                "in some draws; check the target, the rates and that won deals have amounts."
            )
        batch = max(1, _CELLS // sum(sizes))
        unfinished: list[IntArray] = []
        for lo in range(0, todo.size, batch):
            rows = todo[lo : lo + batch]
            times, values, wins, horizon = [], [], [], np.full(rows.size, np.inf)
            for (seg, d, share, _), k in zip(parts, sizes, strict=True):
                gaps = rng.geometric(d.r[rows, None], size=(rows.size, k))
                t = np.cumsum(gaps, axis=1) / share
                won = rng.random((rows.size, k)) < d.w[rows, None]
                pick = rng.integers(0, seg.amounts.size, size=(rows.size, k))
                x = seg.amounts[np.take_along_axis(d.boot[rows], pick, axis=1)] * won
                times.append(t)
                values.append(x)
                wins.append(won)
                horizon = np.minimum(horizon, t[:, -1])
            tt = np.concatenate(times, axis=1)
            order = np.argsort(tt, axis=1, kind="stable")
            tt = np.take_along_axis(tt, order, axis=1)
            cs = np.cumsum(
                np.take_along_axis(np.concatenate(values, axis=1), order, axis=1), axis=1
            )
            ww = np.cumsum(np.take_along_axis(np.concatenate(wins, axis=1), order, axis=1), axis=1)
            crossed = cs >= target
            first = crossed.argmax(axis=1)
            at = np.arange(rows.size)
            t_cross = tt[at, first]
            ok = crossed[at, first] & (t_cross <= horizon + 1e-9)
            leads[rows[ok]] = np.ceil(t_cross[ok] - 1e-9).astype(np.int64)
            opps[rows[ok]] = first[ok] + 1
            deals[rows[ok]] = ww[at, first][ok]
            unfinished.append(rows[~ok])
        todo = np.concatenate(unfinished)
        scale *= 2.0
    return leads, opps, deals


def _quantile(x: IntArray, q: float) -> float:
    """The smallest value whose empirical CDF reaches ``q`` (an observed value)."""
    return float(np.quantile(x, q, method="inverted_cdf"))


def _expansion(
    periods: Sequence[tuple[TargetPeriod, float]], e: ExpansionCredit | None
) -> list[float]:
    if e is None:
        return [0.0 for _ in periods]
    first = _month_ordinal(periods[0][0].start)
    out = []
    for p, _ in periods:
        k = _month_ordinal(p.start) - first
        out.append(e.base * (e.nrr ** ((k + p.months) / e.months) - e.nrr ** (k / e.months)))
    return out


def plan(
    inputs: PlanInputs,
    targets: Mapping[str, float] | Mapping[pd.Period, float] | pd.Series,
    *,
    confidence: Sequence[float] = (0.5, 0.8, 0.9),
    prior: Prior | None = None,
    draws: int = 4000,
    seed: int = 0,
    weights: Mapping[str, float] | None = None,
    capacity: Capacity | None = None,
    expansion_credit: ExpansionCredit | None = None,
) -> Plan:
    """Work back from revenue targets to the deals, opportunities and leads they need, by month.

    Steps, per segment s with share σ_s of each period's new bookings T:

    1. **Rates.** Lead→opportunity r_s ~ Beta(k + S·p0, n − k + S·(1 − p0)) from the
       mature lead cohort (n leads, k converted within the window) and the prior
       (benchmark p0, strength S); the win rate w_s likewise from the mature
       opportunity cohort. Deal size: the won amounts of the lookback window.
    2. **Expected funnel** (posterior-mean rates, mean deal size): deals = σ_s·T ÷ deal
       size, opportunities = deals ÷ E[w_s], leads = opportunities ÷ E[r_s].
    3. **Time-phasing** with the empirical lag distributions (calendar months, shrunk
       toward the pooled ones with the same strength S): deals are spread evenly over
       the months of their period; opportunities created in month m =
       Σ_k deals(m + k) ÷ E[w_s] × P(win lag = k); leads created in month m =
       Σ_k opportunities(m + k) ÷ E[r_s] × P(lead lag = k).
    4. **Confidence.** In each of ``draws`` Monte Carlo draws both rates are drawn from
       their posteriors and the deal-size distribution is a bootstrap resample of the won
       amounts. Leads then arrive one by one: each becomes an opportunity with
       probability r, each opportunity is won with probability w and brings a deal size
       from the resample. *The number of leads the segment needs*, L, is the count at
       which its won revenue first reaches σ_s·T. **Leads needed for confidence c** is
       the c-quantile of L: the smallest number of leads with P(L ≤ it) ≥ c, i.e. with
       that many leads the target is met with probability at least c (given the history
       and the prior). Opportunities and deals for confidence c are the c-quantiles of
       their counts at that moment. For the ``total`` row, leads are split between
       segments in the expected mix and revenue is pooled: the c-quantile of the total
       number of leads at which the whole period target is first met (less than the sum
       of the segments' figures, because one segment's surplus covers another's
       shortfall).

    Parameters
    ----------
    inputs
        The fetched history (``PlanInputs.from_frames(...)`` over
        :func:`revloop.forecast.plan_inputs`).
    targets
        Revenue target (new bookings, reporting currency) per period: ``{"2027Q1":
        2_000_000}``, months ``"2027-03"`` or years ``"2027"`` (a pandas Series too).
    confidence
        Probabilities of meeting the target to plan for. Default (0.5, 0.8, 0.9).
    prior
        Benchmark prior and its strength (default :class:`Prior`: 13 % lead→opportunity,
        25 % win rate, 20 pseudo-observations).
    draws, seed
        Monte Carlo draws (default 4000) and the seed: the same seed, inputs and
        parameters give the same plan.
    weights
        Share of the target per segment (normalised). Default: each segment's share of
        won revenue in the lookback window.
    capacity
        Rep capacity to check the plan against (:class:`Capacity`); months whose expected
        need exceeds it are flagged.
    expansion_credit
        Expected net expansion (:class:`ExpansionCredit`, from the measured NRR)
        subtracted from each period's target, for a target of recurring-revenue growth.

    Returns
    -------
    Plan
        ``summary``, ``calendar``, ``rates``, ``vs_actual``, ``policy`` and ``notes``.

    Examples
    --------
    >>> import pandas as pd
    >>> inputs = PlanInputs(
    ...     counts=pd.DataFrame({"segment": ["all"], "leads": [1000], "converted": [130],
    ...                          "opportunities": [400], "won": [100], "won_revenue": [2.5e6]}),
    ...     lead_lags=pd.DataFrame({"segment": ["all"], "lag_months": [1], "leads": [130]}),
    ...     win_lags=pd.DataFrame({"segment": ["all"], "lag_months": [1], "deals": [100]}),
    ...     deal_sizes=pd.DataFrame({"segment": ["all"] * 4, "amount": [25_000.0] * 4}),
    ...     as_of=pd.Timestamp("2026-10-31"))
    >>> p = plan(inputs, {"2027-03": 2_000_000}, prior=Prior(strength=0), draws=200)
    >>> row = p.summary.iloc[0]
    >>> float(row.deals), float(row.opportunities), round(float(row.leads), 1)
    (80.0, 320.0, 2461.5)
    >>> cal = p.calendar[p.calendar.segment == "all"].set_index("month")
    >>> round(float(cal.loc[pd.Period("2027-01", "M"), "leads"]), 1)  # two months ahead
    2461.5

    References
    ----------
    Ross & Tyler, *Predictable Revenue* (2011); revops.md §2.3 (Implisit 13 %), §4.
    """
    prior = Prior() if prior is None else prior
    levels = _check_confidence(confidence)
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 100:
        raise ConfigError(f"draws={draws!r}: expected a whole number >= 100, e.g. 4000.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed={seed!r}: expected a whole number >= 0.")
    periods = _parse_targets(targets)
    credits = _expansion(periods, expansion_credit)
    bookings = [max(t - c, 0.0) for (_, t), c in zip(periods, credits, strict=True)]
    notes: list[str] = []
    for (p, t), c, b in zip(periods, credits, bookings, strict=True):
        if b <= 0:
            notes.append(
                f"{p.label}: expected net expansion ({c:,.0f}) covers the target ({t:,.0f}); "
                "no new bookings are needed."
            )
    segs, seg_notes = _segments(inputs, prior, weights)
    notes.extend(seg_notes)
    as_of_ord = _month_ordinal(pd.Timestamp(inputs.as_of).to_period("M"))

    # ---- expected funnel and calendar, per segment and period
    first_ord = _month_ordinal(periods[0][0].start)
    max_lag = max(len(s.lead_pmf) + len(s.win_pmf) for s in segs)
    lo_ord = first_ord - max_lag
    hi_ord = _month_ordinal(periods[-1][0].start) + periods[-1][0].months - 1
    span = hi_ord - lo_ord + 1
    flows = ("leads", "opportunities", "deals", "revenue")
    # exp[i][s] = expected monthly arrays of segment s for target period i
    exp: list[dict[str, dict[str, FloatArray]]] = []
    funnels: list[dict[str, dict[str, float]]] = []
    for i, (p, _) in enumerate(periods):
        per: dict[str, dict[str, FloatArray]] = {}
        fun: dict[str, dict[str, float]] = {}
        start = _month_ordinal(p.start) - lo_ord
        for seg in segs:
            target_s = bookings[i] * seg.share
            deals_m = np.zeros(span)
            rev_m = np.zeros(span)
            deals_m[start : start + p.months] = target_s / p.months / seg.deal_size
            rev_m[start : start + p.months] = target_s / p.months
            opps_m = _phase(deals_m, seg.win_pmf) / seg.w_mean
            per[seg.name] = {
                "leads": _phase(opps_m, seg.lead_pmf) / seg.r_mean,
                "opportunities": opps_m,
                "deals": deals_m,
                "revenue": rev_m,
            }
            fun[seg.name] = (
                reverse_funnel(
                    target_s, seg.deal_size, {"opportunities": seg.w_mean, "leads": seg.r_mean}
                )
                if target_s > 0
                else {"deals": 0.0, "opportunities": 0.0, "leads": 0.0}
            )
        exp.append(per)
        funnels.append(fun)

    # ---- Monte Carlo, in chunks of draws; unknowns shared by every period of a segment
    sims: dict[tuple[int, str], list[tuple[IntArray, IntArray, IntArray]]] = {}
    r_all: dict[str, list[FloatArray]] = {s.name: [] for s in segs}
    w_all: dict[str, list[FloatArray]] = {s.name: [] for s in segs}
    for ci, lo in enumerate(range(0, draws, _CHUNK)):
        m = min(draws, lo + _CHUNK) - lo
        params = {
            s.name: _draw_params(s, np.random.default_rng([seed, 0, si, ci]), m)
            for si, s in enumerate(segs)
        }
        for s in segs:
            r_all[s.name].append(params[s.name].r)
            w_all[s.name].append(params[s.name].w)
        for i in range(len(periods)):
            if bookings[i] <= 0:
                continue
            for si, s in enumerate(segs):
                k_exp = funnels[i][s.name]["opportunities"]
                rng = np.random.default_rng([seed, 1, i, ci, si + 1])
                res = _passage(rng, [(s, params[s.name], 1.0, k_exp)], bookings[i] * s.share)
                sims.setdefault((i, s.name), []).append(res)
            total_leads = sum(funnels[i][s.name]["leads"] for s in segs)
            parts = [
                (
                    s,
                    params[s.name],
                    funnels[i][s.name]["leads"] / total_leads,
                    funnels[i][s.name]["opportunities"],
                )
                for s in segs
                if funnels[i][s.name]["leads"] > 0
            ]
            if len(parts) == 1:  # one segment: the total is that segment's simulation
                sims.setdefault((i, _TOTAL), []).append(sims[(i, parts[0][0].name)][-1])
                continue
            rng = np.random.default_rng([seed, 1, i, ci, 0])
            sims.setdefault((i, _TOTAL), []).append(_passage(rng, parts, bookings[i]))

    # ---- summary and calendar
    names = [s.name for s in segs]
    summary_rows: list[dict[str, object]] = []
    cal: dict[str, dict[str, FloatArray]] = {
        n: {k: np.zeros(span) for k in _calendar_keys(levels)} for n in [*names, _TOTAL]
    }
    for i, (p, t) in enumerate(periods):
        rows: list[dict[str, object]] = []
        total_arrays = {f: sum((exp[i][n][f] for n in names), np.zeros(span)) for f in flows}
        for name in [*names, _TOTAL]:
            seg_obj = next((s for s in segs if s.name == name), None)
            arrays = total_arrays if seg_obj is None else exp[i][name]
            if seg_obj is None:
                deals = sum(funnels[i][n]["deals"] for n in names)
                opps = sum(funnels[i][n]["opportunities"] for n in names)
                leads = sum(funnels[i][n]["leads"] for n in names)
                share = 1.0
                booked = bookings[i]
                deal_size = booked / deals if deals > 0 else float("nan")
                win = deals / opps if opps > 0 else float("nan")
                l2o = opps / leads if leads > 0 else float("nan")
            else:
                deals = funnels[i][name]["deals"]
                opps = funnels[i][name]["opportunities"]
                leads = funnels[i][name]["leads"]
                share = seg_obj.share
                booked = bookings[i] * share
                deal_size, win, l2o = seg_obj.deal_size, seg_obj.w_mean, seg_obj.r_mean
            row: dict[str, object] = {
                "period": p.label,
                "segment": name,
                "target": t * share,
                "expansion_credit": credits[i] * share,
                "new_bookings": booked,
                "share": share,
                "deal_size": deal_size,
                "win_rate": win,
                "lead_to_opportunity": l2o,
                "deals": deals,
                "opportunities": opps,
                "leads": leads,
                "leads_from": _lead_month(arrays["leads"], 0.05, lo_ord),
                "leads_until": _lead_month(arrays["leads"], 0.95, lo_ord),
            }
            chunks = sims.get((i, name))
            sim = None
            if chunks:
                sim = tuple(np.concatenate([c[k] for c in chunks]) for k in range(3))
            for f in flows:
                cal[name][f] += arrays[f]
            for c in levels:
                lab = _label(c)
                if sim is None:
                    q_l = q_o = q_d = 0.0
                else:
                    q_l, q_o, q_d = (_quantile(sim[k], c) for k in range(3))
                row[f"deals_{lab}"] = q_d
                row[f"opportunities_{lab}"] = q_o
                row[f"leads_{lab}"] = q_l
                so, sl = float(arrays["opportunities"].sum()), float(arrays["leads"].sum())
                cal[name][f"opportunities_{lab}"] += arrays["opportunities"] * (
                    q_o / so if so > 0 else 0.0
                )
                cal[name][f"leads_{lab}"] += arrays["leads"] * (q_l / sl if sl > 0 else 0.0)
            rows.append(row)
        summary_rows.extend(rows)

    summary = pd.DataFrame(summary_rows)
    for col in ("leads_from", "leads_until"):
        summary[col] = pd.PeriodIndex([pd.NaT if m is None else m for m in summary[col]], freq="M")
    calendar = _calendar_frame(cal, lo_ord, as_of_ord, capacity)
    past = calendar[(calendar.segment == _TOTAL) & (calendar.status == "past")]
    if float(past["leads"].sum()) > 0.5:
        notes.append(
            f"{past['leads'].sum():,.0f} of the leads needed should have arrived before "
            f"{_month(as_of_ord)} (status 'past'): the plan does not net out the pipeline "
            "that already exists; compare with vs_actual."
        )
    rates = pd.DataFrame(
        [
            _rate_row(s, prior, np.concatenate(r_all[s.name]), np.concatenate(w_all[s.name]))
            for s in segs
        ]
    )
    policy: dict[str, object] = {
        "confidence": list(levels),
        "prior": {
            "lead_to_opportunity": prior.lead_to_opportunity,
            "win_rate": prior.win_rate,
            "strength": prior.strength,
        },
        "draws": draws,
        "seed": seed,
        "weights": "won revenue share" if weights is None else dict(weights),
        "deal_size": "mean of won amounts (bootstrap resample per draw for confidence)",
        "lags": "empirical, calendar months, shrunk toward the pooled lags by prior.strength",
        "as_of": str(pd.Timestamp(inputs.as_of)),
        "expansion_credit": None
        if expansion_credit is None
        else {
            "nrr": expansion_credit.nrr,
            "base": expansion_credit.base,
            "months": expansion_credit.months,
        },
        "capacity": None
        if capacity is None
        else {
            "reps": capacity.reps,
            "per_rep": capacity.per_rep,
            "ramp_months": capacity.ramp_months,
            "hires": dict(capacity.hires),
            "stage": capacity.stage,
        },
        **dict(inputs.params),
    }
    return Plan(
        summary=summary,
        calendar=calendar,
        rates=rates,
        vs_actual=_vs_actual(calendar, inputs),
        policy=policy,
        notes=tuple(notes),
    )


def _lead_month(leads: FloatArray, q: float, lo_ord: int) -> pd.Period | None:
    """The month the running total of ``leads`` first reaches share ``q`` of their sum."""
    total = float(leads.sum())
    if total <= 0:
        return None
    i = int(np.argmax(np.cumsum(leads) >= q * total - 1e-9 * total))
    return _month(i + lo_ord)


def _calendar_keys(levels: Sequence[float]) -> list[str]:
    keys = ["leads", "opportunities", "deals", "revenue"]
    keys += [f"leads_{_label(c)}" for c in levels]
    keys += [f"opportunities_{_label(c)}" for c in levels]
    return keys


def _phase(later: FloatArray, pmf: FloatArray) -> FloatArray:
    """``out[m] = Σ_k later[m + k] × pmf[k]``: what must start in m to land in m + k."""
    out = np.zeros_like(later)
    n = len(later)
    for k, p in enumerate(pmf):
        if p == 0 or k >= n:
            continue
        out[: n - k] += later[k:] * p
    return out


def _rate_row(seg: _Segment, prior: Prior, r: FloatArray, w: FloatArray) -> dict[str, object]:
    s = prior.strength
    return {
        "segment": seg.name,
        "share": seg.share,
        "leads": seg.leads,
        "converted": seg.converted,
        "lead_to_opportunity_observed": seg.converted / seg.leads if seg.leads else float("nan"),
        "lead_to_opportunity": seg.r_mean,
        "lead_to_opportunity_p5": float(np.quantile(r, 0.05)),
        "lead_to_opportunity_p95": float(np.quantile(r, 0.95)),
        "lead_to_opportunity_a": seg.r_a,
        "lead_to_opportunity_b": seg.r_b,
        "lead_to_opportunity_data_weight": seg.leads / (seg.leads + s) if seg.leads + s else 1.0,
        "opportunities": seg.opportunities,
        "won": seg.won,
        "win_rate_observed": seg.won / seg.opportunities if seg.opportunities else float("nan"),
        "win_rate": seg.w_mean,
        "win_rate_p5": float(np.quantile(w, 0.05)),
        "win_rate_p95": float(np.quantile(w, 0.95)),
        "win_rate_a": seg.w_a,
        "win_rate_b": seg.w_b,
        "win_rate_data_weight": seg.opportunities / (seg.opportunities + s)
        if seg.opportunities + s
        else 1.0,
        "deal_size": seg.deal_size,
        "deal_size_median": float(np.median(seg.amounts)),
        "deal_sample": int(seg.amounts.size),
        "won_revenue": seg.won_revenue,
        "lead_lag_months": float(np.dot(np.arange(len(seg.lead_pmf)), seg.lead_pmf)),
        "win_lag_months": float(np.dot(np.arange(len(seg.win_pmf)), seg.win_pmf)),
    }


def _calendar_frame(
    cal: Mapping[str, Mapping[str, FloatArray]],
    lo_ord: int,
    as_of_ord: int,
    capacity: Capacity | None,
) -> pd.DataFrame:
    """The calendar frame: months where anything is needed, each segment then the total."""
    frames = []
    for name, arrays in cal.items():
        df = pd.DataFrame(dict(arrays))
        df.insert(0, "segment", name)
        df.insert(0, "__ord", np.arange(len(df)) + lo_ord)
        frames.append(df)
    long = pd.concat(frames, ignore_index=True)
    value_cols = [c for c in long.columns if c not in ("__ord", "segment")]
    total = long[long["segment"] == _TOTAL].set_index("__ord")[value_cols]
    needed = total.index[total.abs().sum(axis=1) > 1e-9]
    long = long[long["__ord"].isin(needed)].copy()
    long["month"] = pd.PeriodIndex([_month(int(o)) for o in long["__ord"]], freq="M")
    long["status"] = np.select(
        [long["__ord"] < as_of_ord, long["__ord"] == as_of_ord], ["past", "current"], "future"
    )
    cols = ["month", "segment", "status", *value_cols]
    if capacity is not None:
        is_total = (long["segment"] == _TOTAL).to_numpy()
        cap = np.array([capacity.at(m) for m in long["month"]], dtype=float)
        need = long[capacity.stage].to_numpy(dtype=float)
        util = np.divide(need, cap, out=np.full(len(need), np.inf), where=cap > 0)
        long["capacity"] = np.where(is_total, cap, np.nan)
        long["utilisation"] = np.where(is_total, util, np.nan)
        long["over_capacity"] = is_total & (need > cap + 1e-9)
        cols += ["capacity", "utilisation", "over_capacity"]
    long["__is_total"] = long["segment"] == _TOTAL  # each month's segments, then its total
    long = long.sort_values(["__ord", "__is_total", "segment"])
    return long[cols].reset_index(drop=True)


def _vs_actual(calendar: pd.DataFrame, inputs: PlanInputs) -> pd.DataFrame:
    cols = [
        "month",
        "segment",
        "complete",
        "leads_planned",
        "leads_actual",
        "opportunities_planned",
        "opportunities_actual",
        "deals_planned",
        "deals_actual",
        "revenue_planned",
        "revenue_actual",
    ]
    act = inputs.actuals
    if calendar.empty or act.empty:
        return pd.DataFrame(columns=cols)
    a = act.copy()
    a["month"] = pd.to_datetime(a["month"]).dt.to_period("M")
    a["segment"] = a["segment"].astype(str)
    a = a.groupby(["month", "segment"], as_index=False)[
        ["leads", "opportunities", "deals_won", "won_revenue"]
    ].sum()
    tot = a.groupby("month", as_index=False)[
        ["leads", "opportunities", "deals_won", "won_revenue"]
    ].sum()
    tot["segment"] = _TOTAL
    a = pd.concat([a, tot], ignore_index=True)
    last = a["month"].max()
    planned = calendar[calendar["month"] <= last]
    if planned.empty:
        return pd.DataFrame(columns=cols)
    m = planned[["month", "segment", "leads", "opportunities", "deals", "revenue"]].merge(
        a, on=["month", "segment"], how="left", suffixes=("_planned", "_actual")
    )
    end = inputs.data_end
    if end is None:
        complete = m["month"] < last
    else:
        end_p = pd.Timestamp(end)
        complete = pd.Series([(mm + 1).start_time <= end_p for mm in m["month"]], index=m.index)
    out = pd.DataFrame(
        {
            "month": m["month"],
            "segment": m["segment"],
            "complete": complete.to_numpy(dtype=bool),
            "leads_planned": m["leads_planned"],
            "leads_actual": m["leads_actual"].fillna(0).astype(int),
            "opportunities_planned": m["opportunities_planned"],
            "opportunities_actual": m["opportunities_actual"].fillna(0).astype(int),
            "deals_planned": m["deals"],
            "deals_actual": m["deals_won"].fillna(0).astype(int),
            "revenue_planned": m["revenue"],
            "revenue_actual": m["won_revenue"].fillna(0.0),
        }
    )
    return out.reset_index(drop=True)
