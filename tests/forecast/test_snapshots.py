"""As-of snapshots: a hand-built deal, and the leakage test (later rows change nothing)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import ibis
import pandas as pd
import pytest

import revloop
from revloop.exceptions import ConfigError, SchemaError
from revloop.forecast._snapshots import FEATURES, snapshot_dates, snapshots
from revloop.synthetic import demo_company

D = dt.datetime


@pytest.fixture(scope="module")
def con() -> Iterator[Any]:
    c = revloop.connect()
    yield c
    c.disconnect()


def _tables() -> dict[str, ibis.Table]:
    # one deal: created 1 Jan in Discovery ($100, close 15 Feb); Demo on 10 Jan with the
    # close date pushed to 1 Mar; amount raised to $150 on 20 Jan; back to Discovery
    # on 1 Feb (a regression); won on 20 Feb at $150. A second deal is lost on 5 Jan.
    opps = ibis.memtable(
        {
            "opportunity_id": ["o1", "o2"],
            "lead_id": ["l1", None],
            "created_at": [D(2025, 1, 1), D(2025, 1, 2)],
            "closed_at": [D(2025, 2, 20), D(2025, 1, 5)],
            "status": ["won", "lost"],
            "amount": [150.0, 10.0],
            "currency": ["EUR", "USD"],
            "owner_id": ["u1", "u2"],
            "segment": ["SMB", "SMB"],
        }
    )
    hist = ibis.memtable(
        {
            "opportunity_id": ["o1", "o1", "o1", "o1", "o1", "o2", "o2"],
            "changed_at": [
                D(2025, 1, 1),
                D(2025, 1, 10),
                D(2025, 1, 20),
                D(2025, 2, 1),
                D(2025, 2, 20),
                D(2025, 1, 2),
                D(2025, 1, 5),
            ],
            "stage": [
                "Discovery",
                "Demo",
                "Demo",
                "Discovery",
                "Closed Won",
                "Demo",
                "Closed Lost",
            ],
            "amount": [100.0, 100.0, 150.0, 150.0, 150.0, 10.0, 10.0],
            "close_date": [
                D(2025, 2, 15),
                D(2025, 3, 1),
                D(2025, 3, 1),
                D(2025, 3, 1),
                D(2025, 2, 20),
                D(2025, 1, 31),
                D(2025, 1, 5),
            ],
            "probability": [0.1, 0.2, 0.2, 0.1, 1.0, 0.2, 0.0],
        }
    )
    acts = ibis.memtable(
        {
            "activity_id": ["a1", "a2", "a3"],
            "opportunity_id": ["o1", "o1", "o1"],
            "occurred_at": [D(2024, 12, 1), D(2025, 1, 12), D(2025, 1, 25)],
            "kind": ["call", "email", "meeting"],
        }
    )
    leads = ibis.memtable(
        {
            "lead_id": ["l1"],
            "person_id": ["p1"],
            "created_at": [D(2024, 12, 1)],
            "source": ["Partner"],
        }
    )
    fx = ibis.memtable(
        {"date": [dt.date(2025, 1, 1)], "currency": ["EUR"], "rate_to_reporting": [1.1]}
    )
    return {
        "opportunities": opps,
        "stage_history": hist,
        "activities": acts,
        "leads": leads,
        "fx_rates": fx,
    }


ORDER = {"Discovery": 0, "Demo": 1}


def test_hand_built_deal(con):
    s = con.to_pandas(
        snapshots(
            _tables(), ["2025-01-04", "2025-01-25", "2025-02-05", "2025-02-20"], stage_order=ORDER
        ).order_by(["as_of", "opportunity_id"])
    )
    # o2 is open on 4 Jan only; o1 on 4 Jan, 25 Jan and 5 Feb (closed on 20 Feb: not open)
    assert list(zip(s.as_of.dt.strftime("%m-%d"), s.opportunity_id, strict=True)) == [
        ("01-04", "o1"),
        ("01-04", "o2"),
        ("01-25", "o1"),
        ("02-05", "o1"),
    ]
    jan25 = s.iloc[2]
    assert jan25.stage == "Demo"
    assert jan25.probability == 0.2
    assert jan25.amount == pytest.approx(150 * 1.1)  # EUR at the 1 Jan rate
    assert jan25.amount_first == pytest.approx(100 * 1.1)
    assert jan25.amount_change == pytest.approx(1.5)
    assert jan25.days_in_stage == 15  # in Demo since 10 Jan (the 20 Jan row is the same run)
    assert jan25.age_days == 24
    assert jan25.stage_changes == 1
    assert jan25.pushes == 1  # 15 Feb -> 1 Mar
    assert jan25.days_pushed == 14
    assert jan25.days_to_close == 35  # 25 Jan -> 1 Mar
    assert jan25.close_in_period  # 1 Mar is before the quarter's end (1 Apr)
    assert jan25.days_to_period_end == 66  # 25 Jan -> 1 Apr
    assert jan25.activities_total == 3  # 1 Dec, 12 Jan, 25 Jan (at the instant counts)
    assert jan25.activities_30d == 2
    assert jan25.days_since_activity == 0
    assert jan25.source == "Partner"
    assert jan25.won_in_period  # won 20 Feb, before the quarter's end
    assert jan25.amount_won == pytest.approx(150 * 1.1)
    feb5 = s.iloc[3]
    assert feb5.stage == "Discovery"
    assert feb5.regressions == 1
    assert feb5.stage_changes == 2
    assert feb5.days_in_stage == 4
    jan4 = s.iloc[1]
    assert jan4.stage == "Demo"
    assert not jan4.won_in_period
    assert pd.isna(jan4.amount_won)
    assert set(FEATURES) <= set(s.columns)


def test_bad_input():
    t = _tables()
    with pytest.raises(SchemaError, match="stage_history"):
        snapshots({"opportunities": t["opportunities"]}, ["2025-01-01"])
    with pytest.raises(ConfigError, match="period"):
        snapshots(t, ["2025-01-01"], period="fortnight")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="not a date"):
        snapshots(t, ["01/02/2025"])
    with pytest.raises(ConfigError, match="at least one"):
        snapshots(t, [])


def test_no_leakage_from_later_history(con, truncate):
    company = demo_company(con, seed=11, n_people=15000, months=12)
    names = ("opportunities", "stage_history", "activities", "leads", "fx_rates")
    frames = {n: con.to_pandas(company.tables()[n]) for n in names}
    full = {n: ibis.memtable(f) for n, f in frames.items()}
    cols = ["as_of", "opportunity_id", *FEATURES]
    total = 0
    for day in ("2026-03-03", "2026-06-17 12:00", "2026-09-30"):
        cut = pd.Timestamp(day)
        early = {n: ibis.memtable(f) for n, f in truncate(frames, cut).items()}
        a = con.to_pandas(snapshots(full, [day], labels=False)).sort_values(cols[:2])
        b = con.to_pandas(snapshots(early, [day], labels=False)).sort_values(cols[:2])
        total += len(a)
        assert a.days_since_activity.notna().any()
        pd.testing.assert_frame_equal(
            a[cols].reset_index(drop=True), b[cols].reset_index(drop=True), check_dtype=False
        )
    assert total > 60


def test_snapshot_dates():
    got = snapshot_dates(dt.date(2025, 1, 1), "2025-01-03", every_days=1)
    assert got == [D(2025, 1, 1), D(2025, 1, 2)]
    with pytest.raises(ConfigError, match="every_days"):
        snapshot_dates("2025-01-01", "2025-02-01", every_days=0)
