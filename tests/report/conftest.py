"""A tiny canonical company, small enough to attribute by hand.

Touchpoints (kind ``session`` unless said)::

    t1 p1 2024-01-02        Paid Search    brand       ad_click
    t2 p1 2024-01-05        Email          newsletter
    t3 p1 2024-01-06 09:00  Direct         -
    t4 p2 2024-01-10        Organic Search -
    t5 p2 2024-01-11 09:00  Paid Search    generic
    t6 p3 2024-02-03 09:00  Paid Social    launch
    t7 p3 2024-02-20        Email          newsletter
    t8 anon:a1 2024-01-15   Direct         -
    t9 anon:a2 2024-02-20   Organic Search -

Conversions: leads L1 (p1, 01-06 12:00), L2 (p2, 01-11 12:00), L3 (p3, 02-03 12:00),
L4 (p4, 02-05, no touch at all); opportunities O1 (p1, 01-20, 10,000), O2 (p2, 02-01,
5,000, lost), O3 (p3, 02-10, 20,000); won O1 (02-15) and O3 (03-01).
Spend: brand 1,000 and generic 2,000 (Paid Search, 01-01), launch 4,000 (Paid Social,
02-01), newsletter 500 (Email, 02-01).
"""

from __future__ import annotations

import pandas as pd
import pytest

import revloop
from revloop import report

T = pd.Timestamp


def make_company(con):
    """Create the touchpoints, conversions and spend tables in ``con``."""
    tp = pd.DataFrame(
        [
            ("t1", "p1", T("2024-01-02"), "Paid Search", "brand", "ad_click"),
            ("t2", "p1", T("2024-01-05"), "Email", "newsletter", "session"),
            ("t3", "p1", T("2024-01-06 09:00"), "Direct", None, "session"),
            ("t4", "p2", T("2024-01-10"), "Organic Search", None, "session"),
            ("t5", "p2", T("2024-01-11 09:00"), "Paid Search", "generic", "session"),
            ("t6", "p3", T("2024-02-03 09:00"), "Paid Social", "launch", "session"),
            ("t7", "p3", T("2024-02-20"), "Email", "newsletter", "session"),
            ("t8", "anon:a1", T("2024-01-15"), "Direct", None, "session"),
            ("t9", "anon:a2", T("2024-02-20"), "Organic Search", None, "session"),
        ],
        columns=["touchpoint_id", "person_id", "occurred_at", "channel", "campaign", "kind"],
    )
    lead_at = {
        "p1": T("2024-01-06 12:00"),
        "p2": T("2024-01-11 12:00"),
        "p3": T("2024-02-03 12:00"),
        "p4": T("2024-02-05 12:00"),
    }
    opp_at = {"p1": T("2024-01-20"), "p2": T("2024-02-01"), "p3": T("2024-02-10")}
    won_at = {"p1": T("2024-02-15"), "p3": T("2024-03-01")}
    rows = []
    for i, (p, at) in enumerate(lead_at.items(), start=1):
        rows.append((f"lead:L{i}", p, at, "lead", 0.0, at, pd.NaT, pd.NaT))
    amounts = {"p1": 10_000.0, "p2": 5_000.0, "p3": 20_000.0}
    for i, (p, at) in enumerate(opp_at.items(), start=1):
        rows.append((f"opportunity:O{i}", p, at, "opportunity", amounts[p], lead_at[p], at, pd.NaT))
    for p, at in won_at.items():
        i = list(opp_at).index(p) + 1
        rows.append((f"won:O{i}", p, at, "won", amounts[p], lead_at[p], opp_at[p], at))
    cv = pd.DataFrame(
        rows,
        columns=[
            "conversion_id",
            "person_id",
            "occurred_at",
            "kind",
            "value",
            "lead_created_at",
            "opportunity_created_at",
            "won_at",
        ],
    )
    sp = pd.DataFrame(
        [
            (T("2024-01-01").date(), "Paid Search", "brand", 1_000.0),
            (T("2024-01-01").date(), "Paid Search", "generic", 2_000.0),
            (T("2024-02-01").date(), "Paid Social", "launch", 4_000.0),
            (T("2024-02-01").date(), "Email", "newsletter", 500.0),
        ],
        columns=["date", "channel", "campaign", "amount"],
    )
    return (
        con.create_table("touchpoints", tp),
        con.create_table("conversions", cv),
        con.create_table("spend", sp),
    )


@pytest.fixture(scope="module")
def module_con():
    c = revloop.connect()
    yield c
    c.disconnect()


@pytest.fixture(scope="module")
def company(module_con):
    return make_company(module_con)


@pytest.fixture(scope="module")
def data(module_con, company):
    tp, cv, sp = company
    return report.collect(module_con, touchpoints=tp, conversions=cv, spend=sp, title="Tiny Co")


@pytest.fixture(scope="module")
def html(data):
    return report.render_html(data)
