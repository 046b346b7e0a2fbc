"""Pipeline forecasters: P(won by the period's end) for every open deal of a snapshot.

One registry, one contract. A forecaster is fitted on labelled snapshots whose outcome
was known at the cutoff (:class:`TrainingSet`) and returns, for each row of a snapshot
taken at or after the cutoff, the probability that the deal is won before its
period's end. The period total adds what is already won and the expected revenue of
deals not yet created (:mod:`revloop.forecast._totals`).

The three families (``shared/reference/revops.md`` §3.5, "recommended model family"):

- ``stage_weighted`` — the CRM's forecast: amount × the CRM stage probability, for deals
  whose close date falls in the period (Salesforce ``ExpectedRevenue``, HubSpot's
  weighted pipeline, §3.1–3.2). Nothing is learned.
- ``stage_conversion`` — the empirical stage conversion: an absorbing Markov chain over
  the stages with won and lost absorbing, P(won | stage) = (N · R)[stage, won] with
  N = (I − Q)⁻¹ from the moves known at the cutoff; counted, like the CRM's, for deals
  whose close date falls in the period. It ignores time in stage (its known weakness).
- ``calibrated_gbm`` — gradient-boosted trees (scikit-learn's
  ``HistGradientBoostingClassifier``) on the point-in-time features of
  :data:`revloop.forecast.FEATURES`, then isotonic calibration fitted on a quarter of
  the training deals, drawn across every period and week, that the trees never saw.

These modules work on pandas frames fetched by the edge layer; they never run queries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from revloop.exceptions import ConfigError, SchemaError, UnknownModelError

__all__ = [
    "CalibratedGBM",
    "Forecaster",
    "StageConversion",
    "StageWeighted",
    "TrainingSet",
    "get_forecaster",
    "list_forecasters",
]

F64 = npt.NDArray[np.float64]
# calibrated probabilities stay inside [1 %, 99 %]
_P_FLOOR = 0.01

NUMERIC: tuple[str, ...] = (
    "stage_order",
    "probability",
    "amount",
    "amount_change",
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
)
CATEGORICAL: tuple[str, ...] = ("stage", "forecast_category", "segment", "source", "owner_id")


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """What a forecaster may learn from at ``cutoff``.

    Attributes
    ----------
    snapshots
        Labelled snapshots (:func:`revloop.forecast.snapshots`) whose period ended by the
        cutoff, so every label was known then.
    moves
        Stage moves (:func:`revloop.forecast.stage_moves`) dated at or before the cutoff.
    cutoff
        The instant the forecaster is fitted at.
    """

    snapshots: pd.DataFrame
    moves: pd.DataFrame
    cutoff: pd.Timestamp


class Forecaster:
    """The contract: ``fit(training) -> self``; ``predict(snapshot) -> P(won in period)``."""

    name: ClassVar[str] = ""

    def fit(self, training: TrainingSet) -> Forecaster:
        raise NotImplementedError

    def predict(self, snapshot: pd.DataFrame) -> F64:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The forecaster's name and parameters (what a report states)."""
        return {"forecaster": self.name}


_REGISTRY: dict[str, Callable[..., Forecaster]] = {}


def _register(cls: type[Forecaster]) -> type[Forecaster]:
    _REGISTRY[cls.name] = cls
    return cls


def list_forecasters() -> list[str]:
    """Names of the registered forecasters."""
    return sorted(_REGISTRY)


def get_forecaster(name: str, **params: Any) -> Forecaster:
    """A new, unfitted forecaster ``name`` with ``params``."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown forecaster {name!r}. Registered: {list_forecasters()}."
        ) from None
    return factory(**params)


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(
            f"{what} lacks the column(s) {missing}; build it with revloop.forecast.snapshots."
        )


def _in_period(snapshot: pd.DataFrame) -> F64:
    return snapshot["close_in_period"].fillna(False).to_numpy(dtype=np.float64)


@_register
@dataclass
class StageWeighted(Forecaster):
    """Amount × the CRM's stage probability, for deals expected to close in the period.

    Parameters
    ----------
    stage_probabilities
        Stage → probability (0–1), used where the snapshot has no ``probability`` (the
        CRM column). Without either, the forecaster cannot run.
    """

    name: ClassVar[str] = "stage_weighted"
    stage_probabilities: Mapping[str, float] | None = None

    def fit(self, training: TrainingSet) -> StageWeighted:
        return self

    def predict(self, snapshot: pd.DataFrame) -> F64:
        _require(snapshot, ("stage", "close_in_period"), "the snapshot")
        p = (
            snapshot["probability"].astype("float64")
            if "probability" in snapshot.columns
            else pd.Series(np.nan, index=snapshot.index)
        )
        if self.stage_probabilities is not None:
            mapped = snapshot["stage"].map(dict(self.stage_probabilities)).astype("float64")
            p = p.fillna(mapped)
        if p.isna().any():
            stages = sorted(snapshot.loc[p.isna(), "stage"].dropna().unique().tolist())
            raise ConfigError(
                f"stage_weighted needs the CRM's probability of every stage; none for "
                f"{stages[:5]}. Load stage_history.probability, or pass "
                f"stage_probabilities={{'{stages[0] if stages else 'Stage'}': 0.2, ...}}."
            )
        return np.clip(p.to_numpy(dtype=np.float64), 0.0, 1.0) * _in_period(snapshot)

    def to_dict(self) -> dict[str, Any]:
        sp = None if self.stage_probabilities is None else dict(self.stage_probabilities)
        return {"forecaster": self.name, "stage_probabilities": sp}


def absorbing_win_probability(moves: pd.DataFrame) -> dict[str, float]:
    """P(eventually won | stage) of the absorbing chain estimated from ``moves``.

    Transition probabilities are the shares of each stage's moves; ``won`` and
    ``lost`` absorb. B = (I − Q)⁻¹ R; a stage with no move out yet is absent.

    >>> m = pd.DataFrame({"from_stage": ["A", "A", "A", "B", "B"],
    ...                   "to_stage": ["B", "B", "lost", "won", "lost"]})
    >>> {k: round(v, 4) for k, v in absorbing_win_probability(m).items()}
    {'A': 0.3333, 'B': 0.5}
    """
    if moves.empty:
        return {}
    counts = moves.groupby(["from_stage", "to_stage"]).size()
    stages = sorted(set(moves["from_stage"]) - {"won", "lost"})
    idx = {s: i for i, s in enumerate(stages)}
    n = len(stages)
    q = np.zeros((n, n))
    r = np.zeros(n)
    total = np.zeros(n)
    for (src_key, dst_key), c in zip(counts.index.to_list(), counts.to_list(), strict=True):
        src, dst = str(src_key), str(dst_key)
        i = idx[src]
        total[i] += c
        if dst == "won":
            r[i] += c
        elif dst in idx:
            q[i, idx[dst]] += c
        # moves to lost, or to a stage never left, absorb without a win
    q = q / total[:, None]
    r = r / total
    won = np.linalg.solve(np.eye(n) - q, r)
    return {s: float(won[idx[s]]) for s in stages}


@_register
@dataclass
class StageConversion(Forecaster):
    """P(won | stage) of the absorbing stage chain, for deals expected to close in the period."""

    name: ClassVar[str] = "stage_conversion"
    win_probability: dict[str, float] = field(default_factory=dict)
    fallback: float = 0.0

    def fit(self, training: TrainingSet) -> StageConversion:
        _require(training.moves, ("from_stage", "to_stage"), "the moves")
        self.win_probability = absorbing_win_probability(training.moves)
        ends = training.moves["to_stage"].isin(["won", "lost"])
        won = (training.moves["to_stage"] == "won").sum()
        self.fallback = float(won / ends.sum()) if ends.any() else 0.0
        return self

    def predict(self, snapshot: pd.DataFrame) -> F64:
        _require(snapshot, ("stage", "close_in_period"), "the snapshot")
        p = snapshot["stage"].map(self.win_probability).astype("float64").fillna(self.fallback)
        return p.to_numpy(dtype=np.float64) * _in_period(snapshot)

    def to_dict(self) -> dict[str, Any]:
        return {"forecaster": self.name, "win_probability": dict(self.win_probability)}


@_register
@dataclass
class CalibratedGBM(Forecaster):
    """Gradient-boosted P(won by period end) on point-in-time features, isotonic-calibrated.

    Parameters
    ----------
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf
        Of scikit-learn's ``HistGradientBoostingClassifier``.
    max_train_rows
        Training snapshots kept (a seeded sample of deals when there are more).
    calibration
        ``isotonic`` (default) or ``none``.
    holdout
        Share of the training deals kept out of the trees to fit the isotonic map.
    top_owners
        Owners kept as categories; the rest share one (trees split on ≤ 255 levels).
    seed
        Seeds the sample and the trees.
    """

    name: ClassVar[str] = "calibrated_gbm"
    max_iter: int = 200
    learning_rate: float = 0.06
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 40
    max_train_rows: int = 400_000
    calibration: str = "isotonic"
    holdout: float = 0.25
    top_owners: int = 100
    seed: int = 0
    _model: Any = field(default=None, init=False, repr=False)
    _iso: Any = field(default=None, init=False, repr=False)
    _levels: dict[str, list[str]] = field(default_factory=dict, init=False, repr=False)
    _numeric: list[str] = field(default_factory=list, init=False, repr=False)

    def _frame(self, snapshot: pd.DataFrame) -> pd.DataFrame:
        x = pd.DataFrame(index=snapshot.index)
        for c in self._numeric:
            x[c] = (
                pd.to_numeric(snapshot[c], errors="coerce").astype("float64")
                if c in snapshot.columns
                else np.nan
            )
        if "amount" in x.columns:
            x["amount"] = np.log1p(x["amount"].clip(lower=0))
        for c in CATEGORICAL:
            values = (
                snapshot[c].astype("object")
                if c in snapshot.columns
                else pd.Series(None, index=snapshot.index, dtype="object")
            )
            levels = self._levels[c]
            if c == "owner_id":
                values = values.where(values.isin(levels[:-1]), "(other)")
            x[c] = pd.Categorical(values, categories=levels)
        return x

    def fit(self, training: TrainingSet) -> CalibratedGBM:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.isotonic import IsotonicRegression

        if self.calibration not in ("isotonic", "none"):
            raise ConfigError(f"calibration must be 'isotonic' or 'none', got {self.calibration!r}")
        s = training.snapshots
        _require(s, ("as_of", "period_start", "won_in_period", "opportunity_id"), "training")
        if s.empty or s["won_in_period"].nunique() < 2:
            raise ConfigError(
                "calibrated_gbm needs training snapshots with both won and not-won deals; "
                "give more history (at least two ended periods with wins)."
            )
        rng = np.random.default_rng(self.seed)
        if len(s) > self.max_train_rows:
            deals = s["opportunity_id"].unique()
            keep = rng.choice(
                deals, size=int(len(deals) * self.max_train_rows / len(s)), replace=False
            )
            s = s[s["opportunity_id"].isin(keep)]
        # a feature the data never fills (no CRM probability loaded) is left out
        self._numeric = [
            c
            for c in NUMERIC
            if c in s.columns and pd.to_numeric(s[c], errors="coerce").notna().any()
        ]
        self._levels = {}
        for c in CATEGORICAL:
            col = s[c].astype("object") if c in s.columns else pd.Series(dtype="object")
            if c == "owner_id":
                top = col.value_counts().index[: self.top_owners].astype(str).tolist()
                self._levels[c] = [*sorted(top), "(other)"]
            else:
                self._levels[c] = sorted(col.dropna().astype(str).unique().tolist())
        y = s["won_in_period"].astype(bool).to_numpy()
        # calibration hold-out: a seeded share of the deals (every snapshot of a deal on
        # one side), drawn across all periods and weeks, which the trees never see
        hold = np.zeros(len(s), dtype=bool)
        if self.calibration == "isotonic":
            deals = np.sort(s["opportunity_id"].unique())
            held = rng.choice(deals, size=max(1, int(len(deals) * self.holdout)), replace=False)
            hold = s["opportunity_id"].isin(held).to_numpy()
        fit_rows = ~hold
        if len(np.unique(y[fit_rows])) < 2:
            fit_rows = np.ones(len(s), dtype=bool)
            hold = np.zeros(len(s), dtype=bool)
        x = self._frame(s)
        model = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            categorical_features="from_dtype",
            random_state=self.seed,
        )
        model.fit(x[fit_rows], y[fit_rows])
        self._model = model
        self._iso = None
        if hold.any() and len(np.unique(y[hold])) == 2:
            raw = model.predict_proba(x[hold])[:, 1]
            self._iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
                raw, y[hold]
            )
        return self

    def predict(self, snapshot: pd.DataFrame) -> F64:
        if self._model is None:
            raise ConfigError("calibrated_gbm: call fit() before predict().")
        if snapshot.empty:
            return np.zeros(0)
        raw = self._model.predict_proba(self._frame(snapshot))[:, 1]
        p = raw if self._iso is None else self._iso.predict(raw)
        # an isotonic step can reach 0 or 1 exactly; no open deal is certain either way
        p = np.clip(p, _P_FLOOR, 1.0 - _P_FLOOR)
        return np.asarray(p, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "forecaster": self.name,
            "max_iter": self.max_iter,
            "learning_rate": self.learning_rate,
            "max_leaf_nodes": self.max_leaf_nodes,
            "min_samples_leaf": self.min_samples_leaf,
            "calibration": self.calibration,
            "calibrated": self._iso is not None,
        }
