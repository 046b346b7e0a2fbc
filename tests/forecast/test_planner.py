"""The predictable-revenue planner: hand cases, Monte Carlo properties, inputs, errors and CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import ibis
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import revloop
from revloop import engine
from revloop.cli._plan import plan_cmd
from revloop.exceptions import ConfigError, SchemaError
from revloop.forecast import (
    PREDICTABLE_REVENUE_SEGMENTS,
    Capacity,
    ExpansionCredit,
    PlanInputs,
    Prior,
    parse_period,
    plan,
    plan_inputs,
    reverse_funnel,
)
from revloop.schema import schema
from revloop.synthetic import demo_company
from revloop.synthetic._web import lead_source_labels

CASES = json.loads((Path(__file__).parent / "cases" / "planner_cases.json").read_text())["cases"]
EXACT = Prior(strength=0)


def _inputs(spec: dict) -> PlanInputs:
    return PlanInputs(
        counts=pd.DataFrame(spec["counts"]),
        lead_lags=pd.DataFrame(spec["lead_lags"]),
        win_lags=pd.DataFrame(spec["win_lags"]),
        deal_sizes=pd.DataFrame(spec["deal_sizes"]),
        actuals=pd.DataFrame(spec.get("actuals", []), columns=list(_ACTUALS))
        if "actuals" in spec
        else pd.DataFrame(columns=list(_ACTUALS)),
        as_of=pd.Timestamp(spec["as_of"]),
    )


_ACTUALS = ("segment", "month", "leads", "opportunities", "deals_won", "won_revenue")


def _simple(
    *,
    leads: int = 1000,
    converted: int = 130,
    opportunities: int = 400,
    won: int = 100,
    amounts: tuple[float, ...] = (10_000.0, 25_000.0, 40_000.0),
    lead_lag: int = 1,
    win_lag: int = 1,
    as_of: str = "2026-10-31",
) -> PlanInputs:
    return PlanInputs(
        counts=pd.DataFrame(
            {
                "segment": ["all"],
                "leads": [leads],
                "converted": [converted],
                "opportunities": [opportunities],
                "won": [won],
                "won_revenue": [sum(amounts)],
            }
        ),
        lead_lags=pd.DataFrame(
            {"segment": ["all"], "lag_months": [lead_lag], "leads": [converted]}
        ),
        win_lags=pd.DataFrame({"segment": ["all"], "lag_months": [win_lag], "deals": [won]}),
        deal_sizes=pd.DataFrame({"segment": ["all"] * len(amounts), "amount": list(amounts)}),
        as_of=pd.Timestamp(as_of),
    )


# ----------------------------------------------------------------------------- hand cases


def test_reverse_funnel_of_the_reference():
    # revops.md §4: $2M new ARR / $25k ACV = 80 deals; ÷ 25% = 320 opportunities;
    # ÷ 50% = 640 meetings; and ÷ 13% (Implisit lead→opportunity) = 2461.54 leads
    out = reverse_funnel(2_000_000, 25_000, {"opportunities": 0.25, "meetings": 0.5})
    assert out == {"deals": 80.0, "opportunities": 320.0, "meetings": 640.0}
    leads = reverse_funnel(2_000_000, 25_000, {"opportunities": 0.25, "leads": 0.13})["leads"]
    assert leads == pytest.approx(320 / 0.13)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_hand_computed_plan(case):
    p = plan(_inputs(case["inputs"]), case["targets"], prior=EXACT, draws=200, seed=1)
    summary = p.summary.set_index("segment")
    for row in case["expected_summary"]:
        got = summary.loc[row["segment"]]
        for key, expected in row.items():
            if key == "segment":
                continue
            if key in ("leads_from", "leads_until"):
                assert str(got[key]) == expected, case["why"]
            else:
                assert got[key] == pytest.approx(expected, rel=1e-12), f"{key}: {case['why']}"
    cal = p.calendar.assign(month=p.calendar.month.astype(str)).set_index(["month", "segment"])
    listed = set()
    for row in case["expected_calendar"]:
        key = (row["month"], row["segment"])
        listed.add(key)
        got = cal.loc[key]
        for col, expected in row.items():
            if col in ("month", "segment"):
                continue
            if isinstance(expected, str):
                assert got[col] == expected, case["why"]
            else:
                assert got[col] == pytest.approx(expected, rel=1e-12, abs=1e-9), (
                    f"{key} {col}: {case['why']}"
                )
    flows = ["leads", "opportunities", "deals", "revenue"]
    segments = cal[cal.index.get_level_values("segment") != "total"]
    rest = segments[[k not in listed for k in segments.index]]
    assert (rest[flows].abs() < 1e-9).all().all(), case["why"]
    # every month's total row adds its segments up
    by_month = segments.groupby(level="month")[flows].sum()
    totals = cal.xs("total", level="segment")[flows]
    pd.testing.assert_frame_equal(totals, by_month.loc[totals.index], check_names=False)


def test_doctest_example_matches_the_case_file():
    # the docstring example of plan() is the first case: 2461.5 leads in January
    p = plan(_simple(amounts=(25_000.0,)), {"2027-03": 2_000_000}, prior=EXACT, draws=100)
    assert float(p.summary.iloc[0].leads) == pytest.approx(2461.538, abs=1e-3)


@pytest.mark.parametrize(
    ("text", "start", "months"),
    [
        ("2027Q1", "2027-01", 3),
        ("2027-q4", "2027-10", 3),
        ("2027-03", "2027-03", 1),
        ("2027-3", "2027-03", 1),
        ("2027", "2027-01", 12),
        (pd.Period("2027Q2", "Q"), "2027-04", 3),
    ],
)
def test_parse_period(text, start, months):
    p = parse_period(text)
    assert (str(p.start), p.months) == (start, months)


# ----------------------------------------------------------------------------- Monte Carlo


def test_same_seed_same_plan_and_another_seed_differs():
    inputs = _simple()
    a = plan(inputs, {"2027Q1": 1_000_000}, draws=600, seed=3)
    b = plan(inputs, {"2027Q1": 1_000_000}, draws=600, seed=3)
    c = plan(inputs, {"2027Q1": 1_000_000}, draws=600, seed=4)
    pd.testing.assert_frame_equal(a.summary, b.summary)
    pd.testing.assert_frame_equal(a.calendar, b.calendar)
    pd.testing.assert_frame_equal(a.rates, b.rates)
    assert not a.summary[["leads_p80", "leads_p90"]].equals(c.summary[["leads_p80", "leads_p90"]])


def test_higher_confidence_needs_more_leads():
    p = plan(_simple(), {"2027Q1": 1_000_000}, confidence=(0.5, 0.8, 0.9, 0.99), draws=2000)
    row = p.summary.iloc[0]
    qs = [row.leads_p50, row.leads_p80, row.leads_p90, row.leads_p99]
    assert qs == sorted(qs)
    assert len(set(qs)) == 4
    # the median is near the expected funnel (the mean-rate figure)
    assert row.leads_p50 == pytest.approx(row.leads, rel=0.15)
    # deals and opportunities too
    assert row.deals_p50 <= row.deals_p90
    assert row.opportunities_p50 < row.opportunities_p90
    # the calendar at confidence c is the expected calendar scaled to the c total
    cal = p.calendar[p.calendar.segment == "all"]
    assert cal.leads_p90.sum() == pytest.approx(row.leads_p90)
    assert (cal.leads_p90 >= cal.leads_p50 - 1e-9).all()


def test_confidence_quantile_definition():
    # with many draws, the share of draws needing at most leads_p80 leads is at least 0.8
    # (re-simulated independently with the same unknowns: another seed, more draws)
    inputs = _simple()
    p = plan(inputs, {"2027-01": 500_000}, confidence=(0.8,), draws=4000, seed=0)
    q = plan(inputs, {"2027-01": 500_000}, confidence=(0.75, 0.85), draws=4000, seed=9)
    p80 = p.summary.iloc[0].leads_p80
    assert q.summary.iloc[0].leads_p75 <= p80 <= q.summary.iloc[0].leads_p85


def test_more_data_narrows_the_plan():
    # the same rates from 10x the history: the 90% figure moves toward the expected one
    thin = plan(_simple(leads=200, converted=26, opportunities=80, won=20), {"2027Q1": 1e6})
    thick = plan(
        _simple(leads=20000, converted=2600, opportunities=8000, won=2000), {"2027Q1": 1e6}
    )
    gap = lambda p: p.summary.iloc[0].leads_p90 / p.summary.iloc[0].leads  # noqa: E731
    assert gap(thick) < gap(thin)


def test_thin_segment_is_pulled_toward_the_prior():
    counts = pd.DataFrame(
        {
            "segment": ["thin", "thick"],
            "leads": [5, 5000],
            "converted": [5, 2500],
            "opportunities": [2, 2000],
            "won": [2, 1000],
            "won_revenue": [50_000.0, 50_000.0],
        }
    )
    inputs = PlanInputs(
        counts=counts,
        lead_lags=pd.DataFrame(
            {"segment": ["thin", "thick"], "lag_months": [0, 0], "leads": [5, 2500]}
        ),
        win_lags=pd.DataFrame(
            {"segment": ["thin", "thick"], "lag_months": [0, 0], "deals": [2, 1000]}
        ),
        deal_sizes=pd.DataFrame({"segment": ["thin", "thick"], "amount": [25_000.0, 25_000.0]}),
        as_of=pd.Timestamp("2026-10-31"),
    )
    p = plan(inputs, {"2027Q1": 1e6}, draws=200)
    r = p.rates.set_index("segment")
    # thin: (5 + 20 × 0.13) ÷ (5 + 20) = 7.6 ÷ 25 = 0.304, far from its observed 100%
    assert r.loc["thin", "lead_to_opportunity"] == pytest.approx(7.6 / 25)
    assert r.loc["thin", "lead_to_opportunity_data_weight"] == pytest.approx(5 / 25)
    # win rate: (2 + 20 × 0.25) ÷ (2 + 20) = 7 ÷ 22
    assert r.loc["thin", "win_rate"] == pytest.approx(7 / 22)
    # thick: (2500 + 2.6) ÷ 5020 = 0.4985, its own 50% almost untouched
    assert r.loc["thick", "lead_to_opportunity"] == pytest.approx(2502.6 / 5020)
    assert r.loc["thick", "lead_to_opportunity_data_weight"] == pytest.approx(5000 / 5020)
    # and without a prior the thin segment keeps its own rate
    raw = plan(inputs, {"2027Q1": 1e6}, prior=Prior(strength=0), draws=200).rates
    assert raw.set_index("segment").loc["thin", "lead_to_opportunity"] == 1.0


def test_total_pools_segments_below_the_sum_of_their_quantiles():
    case = CASES[3]["inputs"]
    p = plan(_inputs(case), {"2027-02": 4_000_000}, draws=2000)
    s = p.summary.set_index("segment")
    seg_sum = s.loc[["seeds", "spears"], "leads_p90"].sum()
    assert s.loc["total", "leads_p90"] < seg_sum
    assert s.loc["total", "leads_p90"] > s.loc["total", "leads_p50"]


# ----------------------------------------------------------------------------- options


def test_capacity_with_ramp_flags_months_over_it():
    cap = Capacity(reps=1, per_rep=100, ramp_months=4, hires={"2027-01": 2})
    # a hire contributes 1/4, 2/4, 3/4, then 4/4 of a rep from the month they start
    assert cap.at(pd.Period("2026-12", "M")) == 100
    assert cap.at(pd.Period("2027-01", "M")) == 100 * (1 + 2 * 0.25)
    assert cap.at(pd.Period("2027-03", "M")) == 100 * (1 + 2 * 0.75)
    assert cap.at(pd.Period("2027-06", "M")) == 300
    p = plan(
        _simple(amounts=(25_000.0,), win_lag=0, lead_lag=0),
        {"2027-01": 2_000_000, "2027-04": 2_000_000},
        prior=EXACT,
        draws=100,
        capacity=cap,
    )
    tot = p.calendar[p.calendar.segment == "total"].set_index(
        p.calendar.month[p.calendar.segment == "total"].astype(str)
    )
    # 320 opportunities in January against 150 capacity; in April 320 against 300
    assert tot.loc["2027-01", "capacity"] == 150
    assert bool(tot.loc["2027-01", "over_capacity"])
    assert tot.loc["2027-04", "capacity"] == 300
    assert bool(tot.loc["2027-04", "over_capacity"])
    assert tot.loc["2027-01", "utilisation"] == pytest.approx(320 / 150)
    leads_cap = Capacity(reps=10, per_rep=1000, stage="leads")
    p2 = plan(_simple(), {"2027-01": 2_000_000}, draws=100, capacity=leads_cap)
    assert not p2.calendar.over_capacity.any()


def test_expansion_credit_reduces_new_bookings():
    credit = ExpansionCredit(nrr=1.1, base=1_000_000)
    p = plan(_simple(), {"2027": 500_000}, draws=100, expansion_credit=credit)
    row = p.summary[p.summary.segment == "total"].iloc[0]
    # a year at 110% NRR on a $1M base: 1M × (1.1 − 1) = 100k of growth; 400k new bookings
    assert row.expansion_credit == pytest.approx(100_000)
    assert row.new_bookings == pytest.approx(400_000)
    q = plan(_simple(), {"2027Q1": 300_000, "2027Q2": 300_000}, draws=100, expansion_credit=credit)
    s = q.summary[q.summary.segment == "total"].set_index("period")
    # Q1: 1M × (1.1^(3/12) − 1); Q2: 1M × (1.1^(6/12) − 1.1^(3/12)) (the base compounds)
    assert s.loc["2027Q1", "expansion_credit"] == pytest.approx(1e6 * (1.1**0.25 - 1))
    assert s.loc["2027Q2", "expansion_credit"] == pytest.approx(1e6 * (1.1**0.5 - 1.1**0.25))
    # churn (NRR < 1) adds to the bookings needed
    down = plan(_simple(), {"2027": 500_000}, draws=100, expansion_credit=ExpansionCredit(0.9, 1e6))
    assert down.summary.iloc[-1].new_bookings == pytest.approx(600_000)


def test_expansion_covering_the_target_needs_no_leads():
    p = plan(_simple(), {"2027": 50_000}, draws=100, expansion_credit=ExpansionCredit(1.2, 1e6))
    assert p.summary.iloc[-1].leads == 0
    assert any("covers the target" in n for n in p.notes)


def test_user_weights_override_the_revenue_share():
    p = plan(
        _inputs(CASES[3]["inputs"]),
        {"2027-02": 4e6},
        prior=EXACT,
        weights={"seeds": 1, "spears": 1},
        draws=100,
    )
    s = p.summary.set_index("segment")
    assert s.loc["seeds", "share"] == 0.5
    assert s.loc["spears", "new_bookings"] == 2e6
    assert p.policy["weights"] == {"seeds": 1, "spears": 1}


def test_plan_versus_actual():
    spec = dict(CASES[0]["inputs"])
    spec["as_of"] = "2026-12-31"
    inputs = PlanInputs(
        counts=pd.DataFrame(spec["counts"]),
        lead_lags=pd.DataFrame(spec["lead_lags"]),
        win_lags=pd.DataFrame(spec["win_lags"]),
        deal_sizes=pd.DataFrame(spec["deal_sizes"]),
        actuals=pd.DataFrame(
            {
                "segment": ["all", "all"],
                "month": pd.to_datetime(["2027-01-01", "2027-02-01"]),
                "leads": [2000, 10],
                "opportunities": [5, 300],
                "deals_won": [0, 1],
                "won_revenue": [0.0, 25_000.0],
            }
        ),
        as_of=pd.Timestamp("2026-12-31"),
        data_end=pd.Timestamp("2027-02-15"),
    )
    p = plan(inputs, {"2027-03": 2_000_000}, prior=EXACT, draws=100)
    v = p.vs_actual.assign(month=p.vs_actual.month.astype(str)).set_index(["month", "segment"])
    assert list(v.index) == [
        ("2027-01", "all"),
        ("2027-01", "total"),
        ("2027-02", "all"),
        ("2027-02", "total"),
    ]
    jan = v.loc[("2027-01", "all")]
    assert jan.leads_planned == pytest.approx(2461.538, abs=1e-3)
    assert jan.leads_actual == 2000
    assert bool(jan.complete)
    feb = v.loc[("2027-02", "total")]
    assert feb.opportunities_planned == pytest.approx(320)
    assert feb.opportunities_actual == 300
    assert not bool(feb.complete)  # the data ends mid-February


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("targets", "kwargs", "match"),
    [
        ({"2027Q1": 0}, {}, r"target for 2027Q1 is 0; expected a positive revenue"),
        ({"2027Q1": -5}, {}, r"expected a positive revenue"),
        ({"2027X1": 1e6}, {}, r"period '2027X1' is not a period .*quarter '2027Q1'"),
        ({"2027-13": 1e6}, {}, r"not a period"),
        ({"2027": 1e6, "2027Q2": 1e6}, {}, r"2027 and 2027Q2 overlap"),
        ({}, {}, r"targets is empty"),
        ({"2027Q1": 1e6}, {"confidence": (0.5, 1.0)}, r"confidence=.*\(0, 1\)"),
        ({"2027Q1": 1e6}, {"draws": 10}, r"draws=10"),
        ({"2027Q1": 1e6}, {"weights": {"nope": 1.0}}, r"weights name segment\(s\) \['nope'\]"),
    ],
)
def test_bad_input_names_the_fix(targets, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        plan(_simple(), targets, **kwargs)


def test_segment_without_won_deals_given_a_share_is_an_error():
    counts = pd.DataFrame(
        {
            "segment": ["a", "b"],
            "leads": [100, 100],
            "converted": [10, 10],
            "opportunities": [10, 10],
            "won": [3, 0],
            "won_revenue": [90_000.0, 0.0],
        }
    )
    inputs = PlanInputs(
        counts=counts,
        lead_lags=pd.DataFrame({"segment": ["a"], "lag_months": [0], "leads": [10]}),
        win_lags=pd.DataFrame({"segment": ["a"], "lag_months": [0], "deals": [3]}),
        deal_sizes=pd.DataFrame({"segment": ["a"] * 3, "amount": [30_000.0] * 3}),
        as_of=pd.Timestamp("2026-10-31"),
    )
    # by revenue share, b gets nothing, and the plan says so
    p = plan(inputs, {"2027Q1": 1e6}, draws=100)
    assert list(p.summary.segment) == ["a", "total"]
    assert any("'b' has no won revenue" in n for n in p.notes)
    # given a share, b's deal size is unknown
    with pytest.raises(ConfigError, match=r"segment 'b' has no won deal .* Give it weight 0"):
        plan(inputs, {"2027Q1": 1e6}, weights={"a": 1, "b": 1}, draws=100)


def test_no_won_revenue_at_all_is_an_error():
    inputs = _simple()
    inputs = PlanInputs(
        counts=inputs.counts.assign(won_revenue=0.0),
        lead_lags=inputs.lead_lags,
        win_lags=inputs.win_lags,
        deal_sizes=inputs.deal_sizes.iloc[:0],
        as_of=inputs.as_of,
    )
    with pytest.raises(ConfigError, match=r"no segment has won revenue .* lookback_months"):
        plan(inputs, {"2027Q1": 1e6})


def test_zero_conversions_without_a_prior_is_an_error():
    # no conversion at all: the lag distribution is unknown
    with pytest.raises(ConfigError, match=r"no lead converted .* Lengthen lookback_months"):
        plan(_simple(converted=0), {"2027Q1": 1e6})
    # one segment without conversions: its rate is 0 unless the prior has a strength
    inputs = PlanInputs(
        counts=pd.DataFrame(
            {
                "segment": ["a", "b"],
                "leads": [100, 100],
                "converted": [10, 0],
                "opportunities": [10, 10],
                "won": [3, 3],
                "won_revenue": [90_000.0, 90_000.0],
            }
        ),
        lead_lags=pd.DataFrame({"segment": ["a"], "lag_months": [0], "leads": [10]}),
        win_lags=pd.DataFrame({"segment": ["a", "b"], "lag_months": [0, 0], "deals": [3, 3]}),
        deal_sizes=pd.DataFrame({"segment": ["a", "b"], "amount": [30_000.0, 30_000.0]}),
        as_of=pd.Timestamp("2026-10-31"),
    )
    with pytest.raises(
        ConfigError, match=r"segment 'b': no lead conversions .*Prior\(strength=20\)"
    ):
        plan(inputs, {"2027Q1": 1e6}, prior=EXACT)
    # with the default prior, b borrows the benchmark: (0 + 2.6) ÷ (100 + 20)
    rates = plan(inputs, {"2027Q1": 1e6}, draws=100).rates.set_index("segment")
    assert rates.loc["b", "lead_to_opportunity"] == pytest.approx(2.6 / 120)


def test_inputs_missing_a_column():
    with pytest.raises(SchemaError, match=r"PlanInputs.counts is missing column\(s\) \['won'\]"):
        PlanInputs(
            counts=pd.DataFrame(
                {
                    "segment": [],
                    "leads": [],
                    "converted": [],
                    "opportunities": [],
                    "won_revenue": [],
                }
            ),
            lead_lags=pd.DataFrame(columns=["segment", "lag_months", "leads"]),
            win_lags=pd.DataFrame(columns=["segment", "lag_months", "deals"]),
            deal_sizes=pd.DataFrame(columns=["segment", "amount"]),
            as_of=pd.Timestamp("2026-10-31"),
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reps": -1, "per_rep": 10}, r"reps=-1"),
        ({"reps": 1, "per_rep": 0}, r"per_rep.*positive"),
        ({"reps": 1, "per_rep": 1, "stage": "deals"}, r"stage='deals'"),
    ],
)
def test_bad_capacity(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Capacity(**kwargs)


# ----------------------------------------------------------------------------- on the demo company


@pytest.fixture(scope="module")
def demo():
    con = revloop.connect()
    company = demo_company(con, seed=5, n_people=30_000)
    yield con, company.tables()
    con.disconnect()


def _fetch(con, queries) -> PlanInputs:
    frames = {k: engine.to_pandas(t, con) for k, t in queries.tables().items()}
    return PlanInputs.from_frames(frames, queries.params())


def test_default_mapping_covers_every_demo_source():
    mapped = [v for vals in PREDICTABLE_REVENUE_SEGMENTS.values() for v in vals]
    assert sorted(mapped) == sorted(lead_source_labels())
    assert len(mapped) == len(set(mapped))


def test_demo_plan_by_seeds_nets_spears(demo):
    con, tables = demo
    q = plan_inputs(tables, segments=PREDICTABLE_REVENUE_SEGMENTS)
    inputs = _fetch(con, q)
    counts = inputs.counts.set_index("segment")
    assert list(counts.index) == ["nets", "seeds", "spears"]  # no "other": every source mapped
    # the counts are those of mature cohorts: converted within leads, won + lost within opps
    assert (counts.converted <= counts.leads).all()
    assert (counts.won + counts.lost + counts.open == counts.opportunities).all()
    # the demo's true rates: about 13% of leads convert (Implisit), win rate about 25–30%
    rate = counts.converted.sum() / counts.leads.sum()
    win = counts.won.sum() / counts.opportunities.sum()
    assert 0.08 < rate < 0.2
    assert 0.18 < win < 0.4
    # outbound ("spears") converts worse than the rest (log hazard ratio −0.9 in the generator)
    r = counts.converted / counts.leads
    assert r["spears"] < r["seeds"]
    assert r["spears"] < r["nets"]
    p = plan(inputs, {"2027Q2": 2_000_000}, draws=1000)
    total = p.summary.set_index("segment").loc["total"]
    assert total.new_bookings == 2_000_000
    assert total.leads_p50 < total.leads_p80 < total.leads_p90
    # expected leads = Σ_s share_s × T ÷ (deal size_s × win_s × rate_s)
    rates = p.rates.set_index("segment")
    expected = sum(
        rates.loc[s, "share"]
        * 2e6
        / (
            rates.loc[s, "deal_size"]
            * rates.loc[s, "win_rate"]
            * rates.loc[s, "lead_to_opportunity"]
        )
        for s in rates.index
    )
    assert total.leads == pytest.approx(expected)
    assert p.calendar[p.calendar.segment == "total"].leads.sum() == pytest.approx(expected)
    # leads are needed before opportunities, opportunities before deals
    cal = p.calendar[p.calendar.segment == "total"].reset_index(drop=True)
    first = lambda col: cal.month[cal[col] > 1e-6].min()  # noqa: E731
    assert first("leads") <= first("opportunities") <= first("deals")
    assert str(first("deals")) == "2027-04"
    # the policy and the inputs' parameters are stated
    assert p.policy["lead_window_days"] == 180
    assert p.policy["seed"] == 0


def test_plan_inputs_are_leak_free(demo):
    con, tables = demo
    as_of = "2026-03-31 23:59:59"
    cut = ibis.literal(as_of).cast("timestamp")
    early = dict(tables)
    early["leads"] = tables["leads"].filter(tables["leads"].created_at <= cut)
    early["opportunities"] = tables["opportunities"].filter(
        tables["opportunities"].created_at <= cut
    )
    full = _fetch(con, plan_inputs(tables, as_of=as_of))
    trunc = _fetch(con, plan_inputs(early, as_of=as_of))
    for name in ("counts", "lead_lags", "win_lags", "deal_sizes"):
        pd.testing.assert_frame_equal(getattr(full, name), getattr(trunc, name), check_dtype=False)
    assert full.as_of == trunc.as_of == pd.Timestamp(as_of)
    # the actuals are not limited by as_of: they are what the plan is compared with
    assert full.actuals.leads.sum() > trunc.actuals.leads.sum()


def test_plan_inputs_one_segment_and_window_effects(demo):
    con, tables = demo
    one = _fetch(con, plan_inputs(tables, segment=None, lead_window_days=90))
    wide = _fetch(con, plan_inputs(tables, segment=None, lead_window_days=365))
    assert list(one.counts.segment) == ["all"]
    # a longer window counts later conversions but has fewer mature leads
    assert wide.counts.leads.iloc[0] < one.counts.leads.iloc[0]
    assert wide.lead_lags.lag_months.max() > one.lead_lags.lag_months.max()
    assert one.lead_lags.leads.sum() == one.counts.converted.iloc[0]
    assert one.win_lags.deals.sum() == one.counts.won.iloc[0]
    # qualified opportunities only (reached Demo or later, or won): fewer, same wins
    q = engine.to_pandas(plan_inputs(tables, segment=None, qualified_stage="Demo").counts, con)
    assert q.opportunities.iloc[0] < wide.counts.opportunities.iloc[0]
    assert q.won.iloc[0] == one.counts.won.iloc[0]


def test_plan_inputs_compile_against_unbound_tables():
    t = {n: ibis.table(schema(n), name=n) for n in ("leads", "opportunities", "fx_rates")}
    q = plan_inputs(t, as_of="2026-10-31", segments={"seeds": ["Partner"]})
    for name, expr in q.tables().items():
        sql = engine.to_sql(expr, "postgres")
        assert "SELECT" in sql.upper(), name


def test_plan_inputs_bad_arguments():
    t = {n: ibis.table(schema(n), name=n) for n in ("leads", "opportunities")}
    with pytest.raises(SchemaError, match=r"cannot segment leads by 'channel'"):
        plan_inputs(t, segment="channel")
    with pytest.raises(ConfigError, match=r"'Partner' is in both 'seeds' and 'nets'"):
        plan_inputs(t, segments={"seeds": ["Partner"], "nets": ["Partner"]})
    with pytest.raises(ConfigError, match=r"lookback_months=0"):
        plan_inputs(t, lookback_months=0)
    with pytest.raises(SchemaError, match=r"needs the opportunities table"):
        plan_inputs({"leads": t["leads"]})


# ----------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def folder(demo, tmp_path_factory):
    con, tables = demo
    out = tmp_path_factory.mktemp("plan_cli")
    for name in ("leads", "opportunities", "fx_rates"):
        engine.to_pandas(tables[name], con).to_csv(out / f"{name}.csv", index=False)
    return out


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:  # a group, so the command is invoked by name as in revloop
        pass

    app.command("plan")(plan_cmd)
    return app


runner = CliRunner()


def test_cli_table(folder):
    r = runner.invoke(
        _app(),
        [
            "plan",
            str(folder),
            "--target",
            "2000000",
            "--period",
            "2027Q2",
            "--segments",
            "seeds-nets-spears",
            "--draws",
            "500",
        ],
        env={"COLUMNS": "220"},
    )
    assert r.exit_code == 0, r.output
    assert "Plan for 2027Q2 2,000,000" in r.output
    assert "spears" in r.output
    assert "total" in r.output
    assert "Lead calendar" in r.output


def test_cli_json_and_csv(folder, tmp_path):
    r = runner.invoke(
        _app(),
        [
            "plan",
            str(folder),
            "--target",
            "1500000",
            "--period",
            "2027-05",
            "--segment",
            "none",
            "--format",
            "json",
            "--draws",
            "300",
            "--confidence",
            "0.9",
        ],
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["targets"] == {"2027-05": 1500000.0}
    assert doc["policy"]["confidence"] == [0.9]
    assert doc["policy"]["segment"] is None
    total = next(row for row in doc["summary"] if row["segment"] == "total")
    assert total["leads_p90"] > total["leads"] * 0.9
    out = tmp_path / "cal.csv"
    targets = tmp_path / "targets.csv"
    targets.write_text("period,target\n2027Q1,1000000\n2027Q2,1200000\n")
    r = runner.invoke(
        _app(),
        [
            "plan",
            str(folder),
            "--targets",
            str(targets),
            "--format",
            "csv",
            "--show",
            "summary",
            "-o",
            str(out),
            "--draws",
            "200",
        ],
    )
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out)
    assert set(df.period) == {"2027Q1", "2027Q2"}
    assert "leads_p80" in df.columns


def test_cli_errors_are_one_line(folder, tmp_path):
    r = runner.invoke(_app(), ["plan", str(folder), "--target", "1000"])
    assert r.exit_code == 1
    assert "give the revenue target and its period" in r.output
    r = runner.invoke(_app(), ["plan", str(folder), "--target", "1000", "--period", "Q1-2027"])
    assert r.exit_code == 1
    assert "not a period" in r.output
    r = runner.invoke(
        _app(), ["plan", str(folder), "--target", "1e6", "--period", "2027Q1", "--reps", "3"]
    )
    assert r.exit_code == 1
    assert "--per-rep" in r.output
    r = runner.invoke(_app(), ["plan", str(tmp_path), "--target", "1e6", "--period", "2027Q1"])
    assert r.exit_code == 1
    assert "has no leads or opportunities file" in r.output
    assert str(tmp_path) in r.output


def test_cli_capacity_and_expansion(folder):
    r = runner.invoke(
        _app(),
        [
            "plan", str(folder), "--target", "3000000", "--period", "2027Q2", "--segment", "none",
            "--reps", "2", "--per-rep", "10", "--ramp-months", "3", "--hire", "2027-01=2",
            "--nrr", "1.05", "--arr-base", "2000000", "--format", "json", "--draws", "200",
        ],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    total = next(row for row in doc["summary"] if row["segment"] == "total")
    assert total["expansion_credit"] == pytest.approx(2e6 * (1.05**0.25 - 1))
    months = [row for row in doc["calendar"] if row["segment"] == "total"]
    assert any(row["over_capacity"] for row in months)
    assert math.isclose(
        next(row for row in months if row["month"] == "2027-04")["capacity"], 10 * (2 + 2 * 1.0)
    )


def test_cli_expansion_measured(demo, folder, tmp_path):
    """``--nrr measured``: year-over-year NRR and ARR read from subscriptions.csv."""
    con, tables = demo
    r = runner.invoke(
        _app(), ["plan", str(folder), "--target", "3e6", "--period", "2027Q2", "--nrr", "measured"]
    )
    assert r.exit_code == 1
    assert "--nrr measured needs subscriptions.csv" in r.output
    with_subs = tmp_path / "with_subs"
    with_subs.mkdir()
    for f in folder.iterdir():
        (with_subs / f.name).write_bytes(f.read_bytes())
    subs = engine.to_pandas(tables["subscriptions"], con)
    subs.to_csv(with_subs / "subscriptions.csv", index=False)
    r = runner.invoke(
        _app(),
        ["plan", str(with_subs), "--target", "3e6", "--period", "2027Q2", "--segment", "none",
         "--nrr", "measured", "--format", "json", "--draws", "200"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    credit = json.loads(r.output)["policy"]["expansion_credit"]
    from revloop import metrics

    nrr = engine.to_pandas(metrics.compute("nrr", tables, variant="yoy").table, con)["value"][0]
    arr = engine.to_pandas(metrics.compute("arr", tables).table, con)["value"][0]
    assert credit["nrr"] == pytest.approx(nrr)
    assert credit["base"] == pytest.approx(arr)
    r = runner.invoke(
        _app(), ["plan", str(folder), "--target", "3e6", "--period", "2027Q2", "--nrr", "lots"]
    )
    assert r.exit_code == 1
    assert "an expansion credit needs both --nrr and --arr-base" in r.output
