"""closed_loop(): from canonical tables to identities, touchpoints and conversions."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from revloop import attribution
from revloop._pipeline import closed_loop
from revloop.exceptions import SchemaError

T = pd.Timestamp


def _h(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()


@pytest.fixture
def tables(con):
    events = con.create_table(
        "events",
        pd.DataFrame(
            {
                "event_id": ["e1", "e2", "e3", "e4"],
                "anonymous_id": ["a1", "a1", "a2", "a9"],
                "occurred_at": [
                    T("2024-01-01 10:00"),
                    T("2024-01-03 09:00"),
                    T("2024-01-05 12:00"),
                    T("2024-01-02"),
                ],
                "event_type": ["page_view", "form_submit", "page_view", "page_view"],
                "url": [
                    "https://acme.test/?utm_source=google&utm_medium=cpc&utm_campaign=brand",
                    "https://acme.test/demo",
                    "https://acme.test/",
                    "https://acme.test/",
                ],
                "referrer": [None, "https://www.google.com/", None, None],
                "utm_source": ["google", None, None, None],
                "utm_medium": ["cpc", None, None, None],
                "utm_campaign": ["brand", None, None, None],
                "email_hash": [None, _h("ann@x.test"), None, None],
            }
        ),
    )
    leads = con.create_table(
        "leads",
        pd.DataFrame(
            {
                "lead_id": ["L1", "L2"],
                "person_id": ["p1", "p2"],
                "created_at": [T("2024-01-03 09:00"), T("2024-01-04")],
                "source": ["Inbound - Web", "Outbound"],
                "email_hash": [_h("ann@x.test"), _h("bob@y.test")],
            }
        ),
    )
    opps = con.create_table(
        "opportunities",
        pd.DataFrame(
            {
                "opportunity_id": ["O1", "O2"],
                "lead_id": ["L1", "L2"],
                "created_at": [T("2024-01-10"), T("2024-01-11")],
                "closed_at": [T("2024-02-01"), T("2024-02-02")],
                "status": ["won", "won"],
                "amount": [1000.0, 3000.0],
                "currency": ["USD", "USD"],
            }
        ),
    )
    return {"events": events, "leads": leads, "opportunities": opps}


def test_closed_loop_end_to_end(con, tables):
    loop = closed_loop(tables)
    tp = con.execute(loop.touchpoints).sort_values("touchpoint_id").reset_index(drop=True)
    # a1's two sessions belong to p1 (stitched by email at the form fill, before and after);
    # a2 and a9 stay anonymous (non-converting paths); the outbound lead L2 gets a CRM touch
    assert sorted(zip(tp.person_id, tp.channel, tp.kind, strict=True)) == [
        ("anon:a2", "Direct", "session"),
        ("anon:a9", "Direct", "session"),
        ("p1", "Organic Search", "session"),
        ("p1", "Paid Search", "session"),
        ("p2", "Outbound", "offline"),
    ]
    cv = con.execute(loop.conversions)
    assert sorted(cv.conversion_id) == [
        "lead:L1",
        "lead:L2",
        "opportunity:O1",
        "opportunity:O2",
        "won:O1",
        "won:O2",
    ]
    credits = attribution.get_model("first_touch").fit(loop.touchpoints).credit(loop.conversions)
    won = con.execute(attribution.summarize(credits.filter(credits.kind == "won")))
    assert {c: v for c, v in zip(won.channel, won.value, strict=True) if v} == {
        "Paid Search": 1000.0,
        "Outbound": 3000.0,
    }


def test_lead_source_touches_can_be_turned_off(con, tables):
    loop = closed_loop(tables, lead_source_touches=False)
    tp = con.execute(loop.touchpoints)
    assert "Outbound" not in set(tp.channel)
    credits = attribution.get_model("last_touch").fit(loop.touchpoints).credit(loop.conversions)
    won = con.execute(attribution.summarize(credits.filter(credits.kind == "won")))
    assert {c: v for c, v in zip(won.channel, won.value, strict=True) if v} == {
        "Organic Search": 1000.0,
        "(unattributed)": 3000.0,
    }


def test_given_tables_win(con, tables):
    tp = con.create_table(
        "touchpoints",
        pd.DataFrame(
            {
                "touchpoint_id": ["x"],
                "person_id": ["p1"],
                "occurred_at": [T("2024-01-02")],
                "channel": ["Email"],
            }
        ),
    )
    loop = closed_loop({**tables, "touchpoints": tp}, lead_source_touches=False)
    assert con.execute(loop.touchpoints).channel.tolist() == ["Email"]


def test_missing_tables_explain_what_is_needed(tables):
    with pytest.raises(
        SchemaError, match=r"no touchpoints: give a 'touchpoints' table, or web 'events'"
    ):
        closed_loop({"leads": tables["leads"]})
    with pytest.raises(
        SchemaError,
        match=r"no conversions: give a 'conversions' table, or 'leads' and 'opportunities'",
    ):
        closed_loop({"events": tables["events"]})
