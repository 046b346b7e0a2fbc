"""Forecasters: the registry contract, hand-computed cases, and the backtest end to end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pytest

import revloop
from revloop.exceptions import ConfigError, SchemaError, UnknownModelError
from revloop.forecast._backtest import (
    BacktestData,
    backtest,
    backtest_dates,
    deal_scores,
    forecast,
    forecast_period,
    reliability,
)
from revloop.forecast._forecasters import (
    StageWeighted,
    TrainingSet,
    absorbing_win_probability,
    get_forecaster,
    list_forecasters,
)
from revloop.forecast._snapshots import snapshots, stage_moves, won_deals
from revloop.synthetic import demo_company

T = pd.Timestamp


_CRM = ("opportunities", "stage_history", "activities", "leads", "fx_rates")


@pytest.fixture(scope="module")
def company() -> Iterator[tuple[Any, dict[str, pd.DataFrame]]]:
    con = revloop.connect()
    tables = demo_company(con, seed=5, n_people=60_000, months=24).tables()
    yield con, {n: con.to_pandas(tables[n]) for n in _CRM}
    con.disconnect()


def _fetch(con: Any, frames: dict[str, pd.DataFrame], end: pd.Timestamp, *extra: T) -> BacktestData:
    tables = {n: ibis.memtable(f) for n, f in frames.items()}
    dates = [*backtest_dates(frames["opportunities"].created_at.min(), end), *extra]
    return BacktestData(
        snapshots=con.to_pandas(snapshots(tables, dates)),
        moves=con.to_pandas(stage_moves(tables)),
        won=con.to_pandas(won_deals(tables)),
    )


@pytest.fixture(scope="module")
def data(company) -> BacktestData:
    con, frames = company
    return _fetch(con, frames, frames["opportunities"].created_at.max())


def _snap(**cols: Any) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {"close_in_period": [True] * n}
    base.update(cols)
    return pd.DataFrame(base)


# --- contract: every registered forecaster ---------------------------------------------


@pytest.mark.parametrize("name", list_forecasters())
def test_contract(name, data):
    cutoff = T("2026-04-01")
    train = data.training(cutoff)
    m = get_forecaster(name)
    assert m.fit(train) is m
    test = data.snapshots[data.snapshots["as_of"] == cutoff]
    p = m.predict(test)
    assert p.shape == (len(test),)
    assert np.all((p >= 0) & (p <= 1))
    assert np.array_equal(p, get_forecaster(name).fit(train).predict(test))  # deterministic
    assert m.to_dict()["forecaster"] == name
    # nothing is known about later periods: the training set only holds ended ones
    assert (train.snapshots["period_end"] <= cutoff).all()
    assert (train.moves["moved_at"] <= cutoff).all()


def test_unknown_forecaster():
    with pytest.raises(UnknownModelError, match="calibrated_gbm"):
        get_forecaster("prophet")


# --- stage_weighted -----------------------------------------------------------------------


def test_stage_weighted_is_the_crm_forecast():
    # amount x probability, only for deals whose close date falls in the period:
    # 0.2 and 0.8 count; the third deal is expected next period -> 0
    s = _snap(
        stage=["Discovery", "Negotiation", "Negotiation"],
        probability=[0.2, 0.8, 0.8],
        close_in_period=[True, True, False],
    )
    assert StageWeighted().predict(s).tolist() == [0.2, 0.8, 0.0]


def test_stage_weighted_mapping_fills_missing_probability():
    s = _snap(stage=["A", "B"], probability=[np.nan, 0.5])
    assert StageWeighted({"A": 0.1}).predict(s).tolist() == [0.1, 0.5]
    with pytest.raises(ConfigError, match="stage_probabilities"):
        StageWeighted().predict(s)


# --- stage_conversion: the absorbing chain by hand ----------------------------------------


def test_absorbing_chain_by_hand():
    # A -> B (3), A -> lost (1); B -> C (2), B -> lost (2); C -> won (3), C -> B (1)
    # Q = [[0, .75, 0], [0, 0, .5], [0, .25, 0]], R_won = [0, 0, .75]
    # P(C) = .75 + .25 P(B); P(B) = .5 P(C)  ->  P(C) = .75 / (1 - .125) = 6/7
    # P(B) = 3/7; P(A) = .75 * 3/7 = 9/28
    moves = pd.DataFrame(
        {
            "from_stage": ["A"] * 4 + ["B"] * 4 + ["C"] * 4,
            "to_stage": ["B", "B", "B", "lost", "C", "C", "lost", "lost", "won", "won", "won", "B"],
        }
    )
    got = absorbing_win_probability(moves)
    assert got == pytest.approx({"A": 9 / 28, "B": 3 / 7, "C": 6 / 7})


def test_stage_conversion_unknown_stage_takes_overall_win_rate():
    moves = pd.DataFrame(
        {
            "from_stage": ["A", "A", "A", "A"],
            "to_stage": ["won", "lost", "lost", "lost"],
            "moved_at": [T("2025-01-01")] * 4,
        }
    )
    m = get_forecaster("stage_conversion").fit(TrainingSet(pd.DataFrame(), moves, T("2025-02-01")))
    p = m.predict(_snap(stage=["A", "Z", "A"], close_in_period=[True, True, False]))
    assert p.tolist() == [0.25, 0.25, 0.0]  # Z: 1 won of 4 closed


# --- calibrated_gbm ---------------------------------------------------------------------


def test_gbm_needs_both_outcomes():
    s = pd.DataFrame(
        {
            "as_of": [T("2025-01-01")] * 3,
            "period_start": [T("2025-01-01")] * 3,
            "opportunity_id": ["a", "b", "c"],
            "won_in_period": [False] * 3,
        }
    )
    with pytest.raises(ConfigError, match="both won and not-won"):
        get_forecaster("calibrated_gbm").fit(TrainingSet(s, pd.DataFrame(), T("2025-04-01")))
    with pytest.raises(ConfigError, match="fit"):
        get_forecaster("calibrated_gbm").predict(s)


# --- scores and the period distribution ---------------------------------------------------


def test_deal_scores_by_hand():
    # Brier: (.1² + .1² + .4² + .4²) / 4 = .085
    # log loss: -(ln .9 + ln .9 + ln .6 + ln .6) / 4 = .3081
    # ECE, 2 bins: [0, .5): p .1, .4 (mean .25) vs y 0, 0 -> .25 x 2/4; [.5, 1]: p .9, .6
    # (mean .75) vs y 1, 1 -> .25 x 2/4; total .25
    got = deal_scores([1, 0, 1, 0], [0.9, 0.1, 0.6, 0.4], bins=2)
    assert got == {"deals": 4.0, "brier": 0.085, "log_loss": 0.3081, "ece": 0.25}
    rel = reliability([1, 0, 1, 0], [0.9, 0.1, 0.6, 0.4], bins=2)
    assert rel["deals"].tolist() == [2, 2]
    assert rel["observed"].tolist() == [0.0, 1.0]


def test_forecast_period_totals():
    won = pd.DataFrame(
        {
            "created_at": [T("2024-12-01"), T("2025-01-05")],
            "closed_at": [T("2025-01-10"), T("2025-02-20")],
            "amount_won": [100.0, 50.0],
        }
    )
    snap = _snap(amount=[1000.0, 200.0, np.nan], stage=["A", "B", "C"])
    p = np.array([0.5, 1.0, 0.9])
    fc = forecast_period(
        "x",
        p,
        snap,
        won,
        as_of=T("2025-02-01"),
        period_start=T("2025-01-01"),
        new_deals=False,
        draws=4000,
    )
    # won so far: 100 (10 Jan; the 20 Feb deal is after as_of); pipeline .5 x 1000 + 200
    assert fc.won_so_far == 100.0
    assert fc.pipeline == pytest.approx(700.0)
    assert fc.mean == pytest.approx(800.0)
    # the 1000 deal is a coin toss: P10 = 300 (lost), P90 = 1300 (won)
    assert fc.p10 == pytest.approx(300.0)
    assert fc.p90 == pytest.approx(1300.0)


def test_backtest_dates_align_on_period_starts():
    got = backtest_dates("2025-02-15", "2025-07-10")
    # Q1 was under way: its weekly grid from 1 Jan, kept from 15 Feb (19 Feb = 1 Jan + 7 w)
    assert got[0] == T("2025-02-19")
    assert T("2025-04-01") in got  # then each quarter restarts the grid
    assert T("2025-04-08") in got
    assert got[-1] == T("2025-07-08")
    with pytest.raises(ConfigError, match="period"):
        backtest_dates("2025-01-01", "2025-02-01", period="week")


def test_backtest_input_checks():
    with pytest.raises(SchemaError, match="won"):
        BacktestData(
            pd.DataFrame(
                columns=["as_of", "period_start", "period_end", "amount", "won_in_period"]
            ),
            pd.DataFrame(columns=["from_stage", "to_stage", "moved_at"]),
            pd.DataFrame(),
        )


# --- the backtest on the demo company -----------------------------------------------------


def test_backtest_on_the_demo_company(data):
    res = backtest(data, draws=500)
    assert set(res.summary["forecaster"]) == set(list_forecasters())
    assert set(res.summary["week"]) == {1, 4, 8, 12}
    f = res.forecasts
    # every forecast is made from what was known then: at week w the won-so-far part
    # only counts deals closed before as_of
    assert (f["won_so_far"] <= f["actual"] + 1e-6).all()
    assert (f["p10"] <= f["p50"]).all()
    assert (f["p50"] <= f["p90"]).all()
    assert np.allclose(f["error"], f["forecast"] - f["actual"])
    d = res.deals.set_index("forecaster")
    # the calibrated model is better scored than the CRM's stage probabilities
    assert d.loc["calibrated_gbm", "brier"] < d.loc["stage_weighted", "brier"]
    # (< 0.05 on the documented demo of docs/forecasting.md; this company is 5x smaller)
    assert d.loc["calibrated_gbm", "ece"] < 0.1
    assert d.loc["calibrated_gbm", "ece"] < d.loc["stage_weighted", "ece"]
    assert res.settings["weeks"] == [1, 4, 8, 12]
    assert not res.reliability.empty


def test_live_forecast_is_leak_free(company, truncate):
    """A forecast as of a past date is the same whether or not later history exists."""
    con, frames = company
    at = T("2026-05-20 09:30")

    def run(fr: dict[str, pd.DataFrame]) -> Any:
        return forecast(_fetch(con, fr, at, at), as_of=at, draws=300)

    a, b = run(frames), run(truncate(frames, at))
    assert len(a.deals) > 50
    assert set(a.totals["forecaster"]) == set(list_forecasters())
    pd.testing.assert_frame_equal(a.totals, b.totals)
    pd.testing.assert_frame_equal(a.deals, b.deals)
    # the forecast is of the quarter holding as_of, and counts Q2's wins before it
    assert (a.totals["period"] == "2026Q2").all()
    won = frames["opportunities"]
    so_far = won.loc[
        (won.status == "won") & (won.closed_at >= T("2026-04-01")) & (won.closed_at < at)
    ]
    assert (a.totals["won_so_far"] > 0).all() == (len(so_far) > 0)


def test_forecast_needs_a_snapshot_at_as_of(data):
    with pytest.raises(ConfigError, match="no snapshot at"):
        forecast(data, as_of="2026-05-20 09:31")


def test_deal_probability_falls_with_time_in_stage(data):
    """The seed's probability counter: a deal that sits in its stage longer than usual
    is less likely to be won (the demo's advance hazard decays past the usual time)."""
    cutoff = T("2026-01-01")
    m = get_forecaster("calibrated_gbm").fit(data.training(cutoff))
    s = data.snapshots[data.snapshots["period_start"] >= cutoff].copy()
    usual = s.groupby("stage")["days_in_stage"].transform("median")
    for stage, g in s.assign(usual=usual).groupby("stage"):
        # the outcome: deals sitting 3x longer than their stage usually takes were won
        # less often, in every stage
        won_fresh = g.loc[g["days_in_stage"] <= g["usual"], "won_in_period"].mean()
        won_stale = g.loc[g["days_in_stage"] > 3 * g["usual"], "won_in_period"].mean()
        assert won_stale < won_fresh, (stage, won_fresh, won_stale)
    # the model: the same fresh deals, 60 more days in their stage, score lower
    fresh = s[s["days_in_stage"] <= usual]
    aged = fresh.assign(days_in_stage=fresh["days_in_stage"] + 60, age_days=fresh["age_days"] + 60)
    assert m.predict(aged).mean() < m.predict(fresh).mean()
