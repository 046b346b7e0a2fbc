"""The lead probability counter: P(converts within h | unconverted at its age), from Kaplan–Meier."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest

import revloop
from revloop import engine
from revloop.exceptions import ConfigError, SchemaError
from revloop.forecast import lead_probability
from revloop.schema import schema
from revloop.synthetic import demo_company

DAY0 = pd.Timestamp("2026-01-01 12:00")
AS_OF = DAY0 + pd.Timedelta(days=100)


def _day(n: int) -> pd.Timestamp:
    return DAY0 + pd.Timedelta(days=n)


@pytest.fixture
def hand(con):
    """Seven leads of source A and two of source B; as_of is day 100.

    A: L1 converts on day 10, L2 on day 30, L3 (day 0) is open, L4 created on day 70
    (age 30), L5 on day 90 (age 10), L6 on day 95 (age 5), L7 (day 0) is Unqualified.
    B: L8 converts on day 50; L9 created on day 90 (age 10) is open.
    """
    leads = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(1, 10)],
            "person_id": [f"p{i}" for i in range(1, 10)],
            "created_at": [_day(d) for d in (0, 0, 0, 70, 90, 95, 0, 0, 90)],
            "source": ["A"] * 7 + ["B"] * 2,
            "status": [
                *("Converted", "Converted", "Working", "New", "New", "New", "Unqualified"),
                *("Converted", "New"),
            ],
            "opportunity_id": ["o1", "o2", None, None, None, None, None, "o8", None],
        }
    )
    opps = pd.DataFrame(
        {
            "opportunity_id": ["o1", "o2", "o8", "o_late"],
            "lead_id": ["L1", "L2", "L8", "L3"],
            # o_late (L3's) is created after as_of: unknown at as_of, so L3 is still open
            "created_at": [_day(10), _day(30), _day(50), _day(120)],
            "status": ["open"] * 4,
        }
    )
    return {
        "leads": con.create_table("leads", leads),
        "opportunities": con.create_table("opportunities", opps),
    }


def test_hand_computed_probabilities(hand, con):
    # Kaplan–Meier of A (whole days; events before censorings at a tie):
    #   times: L1 event 10, L2 event 30, L3 censored 100, L4 censored 30, L5 censored 10,
    #          L6 censored 5, L7 censored 100 (disqualified leads stay in the curve)
    #   t=5:  at risk 7, 0 events -> S = 1
    #   t=10: at risk 6 (all but L6), 1 event -> S = 5/6
    #   t=30: at risk 4 (L2, L3, L4, L7), 1 event -> S = 5/6 * 3/4 = 0.625
    #   S stays 0.625 until 100 (the last time)
    # h = 30:
    #   L6 (age 5):   (S(5) - S(35)) / S(5) = (1 - 0.625) / 1 = 0.375
    #   L5 (age 10):  (5/6 - 0.625) / (5/6) = 0.25
    #   L4 (age 30):  (0.625 - 0.625) / 0.625 = 0
    #   L3 (age 100): 0 (nothing after the last time)
    # B: L8 event 50, L9 censored 10: S(10) = 1 (no event yet), S(50) = 0 (1 at risk, 1 event)
    #   L9 (age 10): (S(10) - S(40)) / S(10) = (1 - 1) / 1 = 0 within 30 days,
    #   but within 40 days (S(50) = 0): 1.
    got = engine.to_pandas(lead_probability(hand, as_of=AS_OF, horizon_days=30), con)
    assert list(got.columns) == [
        "source",
        "lead_id",
        "created_at",
        "age_days",
        "p_convert",
        "survival",
        "segment_leads",
    ]
    g = got.set_index("lead_id")
    assert list(got.lead_id) == ["L6", "L5", "L4", "L3", "L9"]  # by source, then age
    assert "L7" not in g.index  # Unqualified: not open
    assert g.loc["L6", "p_convert"] == pytest.approx(0.375)
    assert g.loc["L5", "p_convert"] == pytest.approx(0.25)
    assert g.loc["L4", "p_convert"] == pytest.approx(0.0)
    assert g.loc["L3", "p_convert"] == pytest.approx(0.0)
    assert g.loc["L9", "p_convert"] == pytest.approx(0.0)
    assert g.loc["L5", "survival"] == pytest.approx(5 / 6)
    assert list(g.age_days[["L6", "L5", "L4", "L3"]]) == [5, 10, 30, 100]
    assert g.loc["L3", "segment_leads"] == 7
    assert g.loc["L9", "segment_leads"] == 2
    longer = engine.to_pandas(lead_probability(hand, as_of=AS_OF, horizon_days=40), con)
    assert longer.set_index("lead_id").loc["L9", "p_convert"] == pytest.approx(1.0)


def test_one_curve_and_disqualified_kept(hand, con):
    # by=None pools A and B: 9 leads; keeping 'Unqualified' leads open adds L7
    got = engine.to_pandas(
        lead_probability(hand, as_of=AS_OF, horizon_days=30, by=None, exclude_statuses=()), con
    )
    assert "source" not in got.columns
    assert set(got.lead_id) == {"L3", "L4", "L5", "L6", "L7", "L9"}
    assert (got.segment_leads == 9).all()
    # pooled KM: t=5 at risk 9 -> 1; t=10 at risk 8 (not L6), 1 event -> 7/8;
    # t=30 at risk 5 (L2, L3, L4, L7, L8), 1 event -> 7/8 * 4/5 = 0.7;
    # t=50 at risk 3 (L3, L7, L8), 1 event -> 0.7 * 2/3
    # L5 (age 10): (7/8 - 0.7) / (7/8) = 0.2
    assert got.set_index("lead_id").loc["L5", "p_convert"] == pytest.approx(0.2)


def test_bad_arguments(hand):
    with pytest.raises(ConfigError, match=r"horizon_days=0: expected a whole number"):
        lead_probability(hand, as_of=AS_OF, horizon_days=0)
    with pytest.raises(SchemaError, match=r"cannot group leads by 'channel'"):
        lead_probability(hand, as_of=AS_OF, by="channel")
    with pytest.raises(ConfigError, match=r"exclude_statuses='Unqualified'"):
        lead_probability(hand, as_of=AS_OF, exclude_statuses="Unqualified")
    with pytest.raises(SchemaError, match=r"needs the opportunities table"):
        lead_probability({"leads": hand["leads"]}, as_of=AS_OF)


def test_compiles_against_unbound_tables():
    t = {n: ibis.table(schema(n), name=n) for n in ("leads", "opportunities")}
    sql = engine.to_sql(lead_probability(t, as_of="2026-10-31", by="segment"), "postgres")
    assert "SELECT" in sql


# ----------------------------------------------------------------------------- demo company


@pytest.fixture(scope="module")
def demo():
    con = revloop.connect()
    company = demo_company(con, seed=11, n_people=30_000)
    yield con, company.tables()
    con.disconnect()


def test_probability_falls_with_age_beyond_the_usual_time(demo):
    con, tables = demo
    got = engine.to_pandas(
        lead_probability(tables, as_of="2026-10-31 23:59:59", by=None, horizon_days=90), con
    )
    assert got.p_convert.between(0, 1).all()
    buckets = pd.cut(got.age_days, [-1, 30, 90, 180, 365, 10_000])
    mean = got.groupby(buckets, observed=True).p_convert.mean()
    # young leads convert most; past the usual 90 days the chance keeps falling; the demo's
    # hazard stops after a year, so a lead older than that (and its horizon) has none left
    assert list(mean) == sorted(mean, reverse=True)
    assert mean.iloc[0] > 3 * mean.iloc[3]
    assert mean.iloc[-1] == pytest.approx(0.0, abs=1e-3)
    # the curve is a Kaplan–Meier survival: falls with age
    by_age = got.sort_values("age_days")
    assert (by_age.survival.diff().dropna() <= 1e-12).all()  # up to rounding of exp(Σ log)


def test_by_source_each_its_own_curve(demo):
    con, tables = demo
    got = engine.to_pandas(lead_probability(tables, as_of="2026-06-30"), con)
    assert got.source.nunique() > 5
    n = got.groupby("source").segment_leads.nunique()
    assert (n == 1).all()
    # outbound converts worse than partner referrals in the generator (log HR −0.9 vs +0.7)
    young = got[got.age_days <= 60].groupby("source").p_convert.mean()
    assert young["Outbound"] < young["Partner"]


def test_leak_free(demo):
    con, tables = demo
    as_of = "2026-02-28 23:59:59"
    cut = ibis.literal(as_of).cast("timestamp")
    early = {
        "leads": tables["leads"].filter(tables["leads"].created_at <= cut),
        "opportunities": tables["opportunities"].filter(tables["opportunities"].created_at <= cut),
    }
    full = engine.to_pandas(lead_probability(tables, as_of=as_of), con)
    trunc = engine.to_pandas(lead_probability(early, as_of=as_of), con)
    assert len(full) > 100
    pd.testing.assert_frame_equal(full, trunc)
    # a lead converted after as_of is open at as_of
    leads = engine.to_pandas(tables["leads"], con).set_index("lead_id")
    later = leads.loc[full.lead_id, "converted_at"] > pd.Timestamp(as_of)
    assert later.any()
