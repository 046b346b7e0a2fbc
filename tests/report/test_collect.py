"""collect(): every figure of the tiny company of conftest.py, computed by hand."""

from __future__ import annotations

import pandas as pd
import pytest

import revloop
from revloop import attribution, report
from revloop.engine import to_pandas

T = pd.Timestamp


def _value(frame, **where):
    sel = frame
    for k, v in where.items():
        sel = sel[sel[k] == v]
    return sel


def _by_channel(data, model, kind, col="value"):
    sel = _value(data.channels, model=model, kind=kind)
    return {c: v for c, v in zip(sel.channel, sel[col], strict=True) if v != 0}


def test_funnel_counts_by_hand(data):
    f = data.funnel.set_index("stage")
    # 9 touchpoints, t1 is an ad click: 8 sessions of p1, p2, p3, anon:a1, anon:a2
    assert f["count"].to_dict() == {
        "sessions": 8,
        "visitors": 5,
        "lead": 4,
        "opportunity": 3,
        "won": 2,
    }
    assert f.at["opportunity", "value"] == pytest.approx(35_000.0)  # 10k + 5k + 20k
    assert f.at["won", "value"] == pytest.approx(30_000.0)  # O1 10k + O3 20k


def test_first_and_last_touch_by_hand(data):
    # won O1 (p1: t1 Paid Search, t2 Email, t3 Direct) and O3 (p3: t6 Paid Social, t7 Email)
    assert _by_channel(data, "first_touch", "won") == {
        "Paid Search": pytest.approx(10_000.0),
        "Paid Social": pytest.approx(20_000.0),
    }
    assert _by_channel(data, "last_touch", "won") == {
        "Direct": pytest.approx(10_000.0),
        "Email": pytest.approx(20_000.0),
    }
    # O2 (p2: t4 Organic Search, t5 Paid Search); O3 is created before t7
    assert _by_channel(data, "first_touch", "opportunity") == {
        "Organic Search": pytest.approx(5_000.0),
        "Paid Search": pytest.approx(10_000.0),
        "Paid Social": pytest.approx(20_000.0),
    }
    assert _by_channel(data, "last_touch", "opportunity") == {
        "Direct": pytest.approx(10_000.0),
        "Paid Search": pytest.approx(5_000.0),
        "Paid Social": pytest.approx(20_000.0),
    }
    # L4 (p4) has no touch at all
    assert _by_channel(data, "first_touch", "lead", "conversions") == {
        "(unattributed)": 1.0,
        "Organic Search": 1.0,
        "Paid Search": 1.0,
        "Paid Social": 1.0,
    }


def test_linear_shares_fractional_credit(data):
    # Email: a third of O1's 10,000 plus half of O3's 20,000
    assert _by_channel(data, "linear", "won")["Email"] == pytest.approx(10_000 / 3 + 10_000)


def test_channels_equal_summarize_many(module_con, company, data):
    tp, cv, _ = company
    models = [attribution.get_model(n) for n in attribution.RULE_BASED]
    want = to_pandas(attribution.summarize_many(models, tp, cv, by="channel"), module_con)
    key = ["model", "kind", "channel"]
    got = data.channels.sort_values(key, ignore_index=True)
    want = want.sort_values(key, ignore_index=True)[got.columns]
    pd.testing.assert_frame_equal(got, want, check_dtype=False, atol=1e-9)


def test_campaign_performance_by_hand(data):
    cp = data.campaign_performance.set_index(["model", "campaign"])
    brand = cp.loc[("first_touch", "brand")]
    assert brand.channel == "Paid Search"
    assert (brand.spend, brand.leads, brand.opportunities, brand.deals) == (1_000, 1, 1, 1)
    assert brand.pipeline == pytest.approx(10_000.0)
    assert brand.revenue == pytest.approx(10_000.0)
    assert brand.roas == pytest.approx(10.0)
    assert brand.cost_per_lead == pytest.approx(1_000.0)
    # generic only closes p2's journey: nothing under first touch, lead and opp under last
    generic_ft = cp.loc[("first_touch", "generic")]
    assert generic_ft.spend == 2_000
    assert generic_ft.leads == 0
    assert pd.isna(generic_ft.cost_per_lead)
    generic_lt = cp.loc[("last_touch", "generic")]
    assert (generic_lt.leads, generic_lt.pipeline) == (1, pytest.approx(5_000.0))
    assert generic_lt.cost_per_lead == pytest.approx(2_000.0)
    # touches without a campaign, and conversions without a touch
    assert cp.loc[("first_touch", "(no campaign)")].channel == "Direct, Organic Search"
    assert cp.loc[("first_touch", "(unattributed)")].leads == 1


def test_channel_performance_by_hand(data):
    ch = data.channel_performance.set_index(["model", "channel"])
    ps = ch.loc[("first_touch", "Paid Search")]
    assert ps.spend == pytest.approx(3_000.0)  # brand + generic
    assert ps.roas == pytest.approx(10_000 / 3_000)
    email = ch.loc[("last_touch", "Email")]
    assert (email.spend, email.revenue, email.roas) == (500, 20_000, pytest.approx(40.0))


def test_monthly_series_by_hand(data):
    m = data.monthly
    won_ft = _value(m, model="first_touch", kind="won")
    won_ft = won_ft[won_ft.value > 0]
    assert list(zip(won_ft.month, won_ft.channel, won_ft.value, strict=True)) == [
        (T("2024-02-01"), "Paid Search", 10_000.0),
        (T("2024-03-01"), "Paid Social", 20_000.0),
    ]
    jan_leads_lt = _value(m, model="last_touch", kind="lead", month=T("2024-01-01"))
    got = dict(zip(jan_leads_lt.channel, jan_leads_lt.conversions, strict=True))
    assert {k: v for k, v in got.items() if v} == {"Direct": 1.0, "Paid Search": 1.0}


def test_metadata(data):
    assert data.model_names == list(attribution.RULE_BASED)
    assert all(m["params"]["lookback_days"] == 90 for m in data.models)
    td = next(m for m in data.models if m["model"] == "time_decay")
    assert td["params"]["half_life"] == "7 days"
    assert data.period_start == T("2024-01-06 12:00")
    assert data.period_end == T("2024-03-01")
    assert data.version == revloop.__version__
    assert data.generated_at.tzinfo is not None
    assert data.row_counts == {
        "touchpoints": 9,
        "touchpoints_in_window": 9,
        "sessions": 8,
        "conversions": 9,
        "spend": 4,
    }


def test_window_filters_conversions_spend_and_sessions(module_con, company):
    tp, cv, sp = company
    d = report.collect(
        module_con,
        touchpoints=tp,
        conversions=cv,
        spend=sp,
        models=["linear"],
        start="2024-02-01",
        end="2024-03-01",
    )
    f = d.funnel.set_index("stage")["count"].to_dict()
    # sessions t6, t7, t9 (p3, anon:a2); L3, L4; O2, O3; won O1 (O3 is won on 03-01, excluded)
    assert f == {"sessions": 3, "visitors": 2, "lead": 2, "opportunity": 2, "won": 1}
    assert d.row_counts["spend"] == 2
    assert (d.period_start, d.period_end) == (T("2024-02-01"), T("2024-02-15"))
    # paths still reach back before the window: O1's first touch is t1 in January
    assert _by_channel(d, "first_touch", "won") == {"Paid Search": pytest.approx(10_000.0)}
    ps = d.channel_performance.set_index(["model", "channel"]).loc[("first_touch", "Paid Social")]
    assert ps.spend == pytest.approx(4_000.0)


def test_models_argument_adds_first_and_last_touch(module_con, company):
    tp, cv, _ = company
    d = report.collect(
        module_con,
        touchpoints=tp,
        conversions=cv,
        models=[attribution.get_model("time_decay", half_life="1 day")],
    )
    assert d.model_names == ["first_touch", "last_touch", "time_decay"]
    assert d.models[2]["params"]["half_life"] == "1 day"
    # no spend: every spend is 0 and ROAS is undefined
    assert (d.channel_performance.spend == 0).all()
    assert d.channel_performance.roas.isna().all()


def test_empty_models_is_an_error(module_con, company):
    tp, cv, _ = company
    with pytest.raises(revloop.RevloopError, match="empty list of models"):
        report.collect(module_con, touchpoints=tp, conversions=cv, models=[])
