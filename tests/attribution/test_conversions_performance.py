"""Conversions from the CRM tables, FX conversion, and spend/ROAS, by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from revloop import attribution
from revloop.exceptions import ConfigError

T = pd.Timestamp


@pytest.fixture
def crm(con):
    leads = con.create_table(
        "leads",
        pd.DataFrame(
            {
                "lead_id": ["L1", "L2", "L3"],
                "person_id": ["p1", "p2", "p3"],
                "created_at": [T("2024-01-05"), T("2024-01-10"), T("2024-02-01")],
            }
        ),
    )
    opps = con.create_table(
        "opportunities",
        pd.DataFrame(
            {
                "opportunity_id": ["O1", "O2", "O3"],
                "lead_id": ["L1", "L2", None],
                "created_at": [T("2024-01-20"), T("2024-01-25"), T("2024-02-03")],
                "closed_at": [T("2024-03-01"), T("2024-03-05"), pd.NaT],
                "status": ["won", "lost", "open"],
                "amount": [10_000.0, 5_000.0, 7_000.0],
                "currency": ["EUR", "USD", "USD"],
            }
        ),
    )
    fx = con.create_table(
        "fx_rates",
        pd.DataFrame(
            {
                "date": pd.to_datetime(["2024-01-01", "2024-02-15", "2024-03-02"]).date,
                "currency": ["EUR", "EUR", "EUR"],
                "rate_to_reporting": [1.10, 1.08, 1.20],
            }
        ),
    )
    return leads, opps, fx


def test_conversions_from_crm_by_hand(con, crm):
    leads, opps, fx = crm
    got = con.execute(attribution.conversions_from_crm(leads, opps, fx_rates=fx)).set_index(
        "conversion_id"
    )
    # 3 leads; 2 opportunities with a lead (O3 has none: no journey); 1 won
    assert sorted(got.index) == sorted(
        ["lead:L1", "lead:L2", "lead:L3", "opportunity:O1", "opportunity:O2", "won:O1"]
    )
    # O1 created 2024-01-20 in EUR: latest rate on or before is 2024-01-01's 1.10 → 11,000
    assert got.loc["opportunity:O1", "value"] == pytest.approx(11_000.0)
    # O1 won 2024-03-01: the 2024-03-02 rate is later, so 2024-02-15's 1.08 → 10,800
    assert got.loc["won:O1", "value"] == pytest.approx(10_800.0)
    assert got.loc["opportunity:O2", "value"] == pytest.approx(5_000.0)  # already USD
    assert got.loc["lead:L1", "value"] == 0.0
    won = got.loc["won:O1"]
    assert won.person_id == "p1"
    assert won.lead_created_at == T("2024-01-05")
    assert won.opportunity_created_at == T("2024-01-20")
    assert won.won_at == T("2024-03-01")
    assert won.kind == "won"


def test_conversions_currency_without_rate_is_null_not_dropped(con, crm):
    leads, opps, _ = crm
    got = con.execute(attribution.conversions_from_crm(leads, opps, kinds=["opportunity"]))
    got = got.set_index("conversion_id")
    assert len(got) == 2
    assert pd.isna(got.loc["opportunity:O1", "value"])  # EUR, no rates given


def test_conversions_bad_kind(crm):
    leads, opps, _ = crm
    with pytest.raises(
        ConfigError, match=r"kinds must be a non-empty subset of \['lead', 'opportunity', 'won'\]"
    ):
        attribution.conversions_from_crm(leads, opps, kinds=["deal"])


def test_performance_roas_and_costs_by_hand(con):
    credits = con.create_table(
        "credits",
        pd.DataFrame(
            {
                "model": ["linear"] * 5,
                "conversion_id": ["lead:1", "lead:1", "opportunity:1", "won:1", "won:2"],
                "kind": ["lead", "lead", "opportunity", "won", "won"],
                "conversion_at": [T("2024-01-02")] * 3 + [T("2024-01-20"), T("2024-03-01")],
                "channel": ["Paid Search", "Email", "Paid Search", "Paid Search", "Paid Search"],
                "campaign": ["brand", None, "brand", "brand", "brand"],
                "weight": [0.5, 0.5, 1.0, 1.0, 1.0],
                "value": [0.0, 0.0, 8_000.0, 6_000.0, 9_999.0],
            }
        ),
    )
    spend = con.create_table(
        "spend",
        pd.DataFrame(
            {
                "date": pd.to_datetime(
                    ["2024-01-01", "2024-01-15", "2024-02-20", "2024-01-03"]
                ).date,
                "channel": ["Paid Search", "Paid Search", "Paid Search", "Display"],
                "campaign": ["brand", "brand", "brand", "retarget"],
                "amount": [1_000.0, 500.0, 10_000.0, 300.0],
            }
        ),
    )
    got = con.execute(
        attribution.performance(credits, spend, start="2024-01-01", end="2024-02-01")
    ).set_index("channel")
    ps = got.loc["Paid Search"]
    # window Jan 2024: won:2 (March) and the Feb spend are outside
    assert ps.leads == 0.5
    assert ps.opportunities == 1.0
    assert ps.pipeline == 8_000.0
    assert ps.deals == 1.0
    assert ps.revenue == 6_000.0
    assert ps.spend == 1_500.0  # 1,000 + 500
    assert ps.roas == pytest.approx(6_000 / 1_500)  # 4.0
    assert ps.cost_per_lead == pytest.approx(1_500 / 0.5)  # 3,000
    assert ps.cost_per_deal == pytest.approx(1_500.0)
    # Display spent 300 and was credited nothing: it still shows, ROAS 0
    d = got.loc["Display"]
    assert d.spend == 300.0
    assert d.revenue == 0.0
    assert d.roas == 0.0
    assert pd.isna(d.cost_per_lead)
    email = got.loc["Email"]
    assert email.spend == 0.0
    assert pd.isna(email.roas)
