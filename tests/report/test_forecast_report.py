"""The predictable-revenue sections of the report: the plan, the forecast and the backtest."""

from __future__ import annotations

import dataclasses
import html
import re

import ibis
import numpy as np
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

import revloop
from revloop import engine, report
from revloop.exceptions import ConfigError
from revloop.forecast import PREDICTABLE_REVENUE_SEGMENTS
from revloop.forecast._backtest import backtest, forecast
from revloop.forecast._snapshots import won_deals
from revloop.report._format import fmt_count, fmt_money, fmt_pct
from revloop.synthetic import demo_company

KEYS = ["forecast-plan", "forecast-current", "forecast-backtest"]
LABELS = {
    "stage_weighted": "Stage-weighted (CRM probability)",
    "stage_conversion": "Stage conversion (absorbing chain)",
    "calibrated_gbm": "Calibrated GBM",
}


@pytest.fixture(scope="module")
def demo():
    con = revloop.connect()
    # ~1,000 opportunities over 24 months to 2026-10-31: six quarters can be backtested
    company = demo_company(con, seed=7, n_people=60_000, months=24)
    yield con, dict(company.tables())
    con.disconnect()


@pytest.fixture(scope="module")
def fd(demo):
    con, tables = demo
    return report.collect_forecast(con, tables, segments=PREDICTABLE_REVENUE_SEGMENTS)


@pytest.fixture(scope="module")
def sections(fd):
    return {s.key: s for s in report.forecast_sections(fd)}


@pytest.fixture(scope="module")
def thin():
    con = revloop.connect()
    company = demo_company(con, seed=7, n_people=1_000, months=6)  # two quarters of history
    yield con, dict(company.tables())
    con.disconnect()


def rows(fragment: str, table_id: str) -> list[list[str]]:
    """The body cells of table ``table_id`` as text."""
    m = re.search(rf'<table class="data fc-table" id="{table_id}">(.*?)</table>', fragment, re.S)
    assert m is not None, f"no table {table_id}"
    body = re.search(r"<tbody>(.*?)</tbody>", m.group(1), re.S)
    assert body is not None
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)]
        for tr in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]


def by_first(table: list[list[str]]) -> dict[str, list[str]]:
    return {r[0]: r for r in table}


def test_three_sections_with_their_tables_and_charts(fd, sections):
    assert list(sections) == KEYS
    assert [s.title for s in sections.values()] == [
        "Revenue plan",
        "Pipeline forecast",
        "Forecast backtest",
    ]
    expect = {
        "forecast-plan": ["fc-plan-summary", "fc-plan-review", "chart-forecast-plan"],
        "forecast-current": ["fc-forecast-totals", "fc-forecast-deals", "chart-forecast-fan"],
        "forecast-backtest": [
            "fc-backtest-accuracy",
            "fc-backtest-deals",
            "fc-backtest-periods",
            "chart-forecast-accuracy",
            "chart-forecast-reliability",
        ],
    }
    for key, ids in expect.items():
        for i in ids:
            assert f'id="{i}"' in sections[key].html, (key, i)
    # every part ran on the demo company
    assert fd.plan_error is None
    assert fd.review_error is None
    assert dict(fd.forecast_skipped) == {}
    assert dict(fd.backtest_skipped) == {}
    assert "could not" not in "".join(s.html for s in sections.values())


def test_the_plan_is_next_quarter_with_the_stated_target(demo, fd, sections):
    con, tables = demo
    # as of the data's end (2026-10-31), the next quarter; the target is the won revenue
    # of the last full quarter x 1.3, in the reporting currency
    assert fd.forecast_period == "2026Q4"
    assert fd.plan_period == "2027Q1"
    won = engine.to_pandas(won_deals(tables), con)
    q3 = won[(won["closed_at"] >= "2026-07-01") & (won["closed_at"] < "2026-10-01")]
    assert fd.plan_target == pytest.approx(q3["amount_won"].sum() * 1.3, rel=1e-9)
    text = html.unescape(sections["forecast-plan"].html)
    assert f"assumed target: {fmt_money(fd.plan_target)} = won revenue of 2026Q3" in text
    assert "× 1.3" in text
    s = fd.plan.summary
    assert s.loc[s["segment"] == "total", "new_bookings"].iloc[0] == pytest.approx(fd.plan_target)


def test_plan_summary_table_matches_the_plan(fd, sections):
    table = by_first(rows(sections["forecast-plan"].html, "fc-plan-summary"))
    s = fd.plan.summary
    assert set(table) == set(s["segment"]) == {"seeds", "nets", "spears", "total"}
    for r in s.to_dict("records"):
        cells = table[r["segment"]]
        assert cells[1] == fmt_money(r["new_bookings"])
        assert cells[6] == f"{r['deals']:,.1f}"
        assert cells[7] == fmt_count(round(r["opportunities"]))
        assert cells[8] == fmt_count(round(r["leads"]))
        assert cells[9:12] == [fmt_count(r[f"leads_p{c}"]) for c in (50, 80, 90)]
        assert cells[12] == f"{r['leads_from']} – {r['leads_until']}"
    # more confidence needs more leads
    tot = s[s["segment"] == "total"].iloc[0]
    assert tot["leads_p50"] <= tot["leads_p80"] <= tot["leads_p90"]


def test_review_compares_last_quarter_plan_with_what_happened(demo, fd, sections):
    con, tables = demo
    assert fd.review_period == "2026Q3"
    table = rows(sections["forecast-plan"].html, "fc-plan-review")
    last = table[-1]
    assert last[0] == "2026Q3 in total"
    won = engine.to_pandas(won_deals(tables), con)
    q3 = won[(won["closed_at"] >= "2026-07-01") & (won["closed_at"] < "2026-10-01")]
    assert last[6] == fmt_count(len(q3))  # actual deals won
    assert last[8] == fmt_money(q3["amount_won"].sum())  # actual won revenue
    assert last[7] == fmt_money(fd.review_target)  # planned revenue = its target
    months = {r[0] for r in table}
    assert {"2026-07", "2026-08", "2026-09"} <= months


def test_forecast_totals_table_and_fan_match(fd, sections):
    t = fd.forecast.totals.set_index("forecaster")
    assert list(t.index) == list(LABELS)
    table = by_first(rows(sections["forecast-current"].html, "fc-forecast-totals"))
    for name, label in LABELS.items():
        r = t.loc[name]
        assert table[label][1:] == [
            fmt_money(r[c])
            for c in ("won_so_far", "pipeline", "new_deals", "forecast", "p10", "p50", "p90")
        ]
        assert r["p10"] <= r["p50"] <= r["p90"]
        # the fan ends on the as-of forecast, after weekly points of the quarter so far
        f = fd.fan[fd.fan["forecaster"] == name].sort_values("as_of")
        assert f["as_of"].iloc[-1] == fd.as_of
        assert f["forecast"].iloc[-1] == pytest.approx(r["forecast"])
        assert len(f) >= 2
        assert (f["as_of"] >= pd.Timestamp("2026-10-01")).all()
    # already won so far: the deals closed in the quarter before the as-of instant
    won = fd.forecast.totals["won_so_far"].iloc[0]
    assert won > 0


def test_forecasters_run_one_by_one_as_they_would_together(demo, fd):
    # collect_forecast runs each forecaster on its own; the figures equal a joint run
    con, tables = demo
    from revloop.report._forecast import _fetch

    data = _fetch(con, tables, at=fd.as_of, period="quarter", currency="USD")
    joint = forecast(data, list(LABELS), as_of=fd.as_of, draws=fd.draws, seed=fd.seed)
    pd.testing.assert_frame_equal(joint.totals, fd.forecast.totals)
    together = backtest(data, list(LABELS), draws=fd.draws, seed=fd.seed)
    got = fd.backtest.summary.sort_values(["forecaster", "week"], ignore_index=True)
    pd.testing.assert_frame_equal(
        together.summary.sort_values(["forecaster", "week"], ignore_index=True), got
    )


def test_top_deals_by_expected_value(fd, sections):
    table = rows(sections["forecast-current"].html, "fc-forecast-deals")
    deals = fd.forecast.deals
    # the headline forecaster is the one with the lowest Brier score in the backtest
    best = fd.backtest.deals.sort_values("brier").iloc[0]["forecaster"]
    assert f"Headline figures use {LABELS[best]}" in html.unescape(
        sections["forecast-current"].html
    )
    ev = deals["amount"] * deals[f"p_{best}"]
    top = deals.assign(ev=ev).sort_values("ev", ascending=False).head(10)
    assert [r[0] for r in table] == list(top["opportunity_id"])
    assert table[0][-1] == fmt_money(top["ev"].iloc[0])
    assert table[0][3] == fmt_money(top["amount"].iloc[0])


def test_backtest_tables_match_the_result(fd, sections):
    bt = fd.backtest
    body = sections["forecast-backtest"].html
    acc = rows(body, "fc-backtest-accuracy")
    s = bt.summary.set_index(["forecaster", "week"])
    assert [r[0].split(" (")[0] for r in acc] == ["week 1", "week 4", "week 8", "week 12"]
    names = list(LABELS)
    for r in acc:
        week = int(r[0].split()[1])
        for i, n in enumerate(names):
            x = s.loc[(n, week)]
            assert r[1 + i] == fmt_pct(x["wape"])
            assert r[4 + i] == f"{100 * x['bias']:+.1f}%"
            assert r[7 + i] == fmt_pct(x["coverage"], 0)
    per_deal = by_first(rows(body, "fc-backtest-deals"))
    d = bt.deals.set_index("forecaster")
    for n, label in LABELS.items():
        assert per_deal[label][1] == fmt_count(d.loc[n, "deals"])
        assert per_deal[label][2] == f"{d.loc[n, 'brier']:.4f}"
        assert per_deal[label][4] == f"{d.loc[n, 'ece']:.3f}"
    # the best WAPE of each checkpoint is marked
    for w in (1, 4, 8, 12):
        best = bt.summary[bt.summary["week"] == w].sort_values("wape").iloc[0]
        assert f'<td class="num best">{fmt_pct(best["wape"])}</td>' in body
    periods = sorted(bt.forecasts["period"].unique())
    assert f"on {len(periods)} past quarters ({periods[0]} to {periods[-1]})" in html.unescape(body)
    assert (
        len(rows(body, "fc-backtest-periods"))
        == bt.forecasts[["period", "week"]].drop_duplicates().shape[0]
    )


def test_reliability_diagram_draws_each_forecaster_and_the_diagonal(sections):
    body = sections["forecast-backtest"].html
    start = body.index('id="chart-forecast-reliability"')
    chart = body[start:]
    assert "perfect calibration" in chart
    for label in LABELS.values():
        assert label in chart


def test_thin_data_shows_the_reasons(thin):
    con, tables = thin
    fd = report.collect_forecast(con, tables, segments=PREDICTABLE_REVENUE_SEGMENTS)
    assert fd.backtest is None
    assert set(fd.backtest_skipped) == set(LABELS)
    sections = {s.key: s.html for s in report.forecast_sections(fd)}
    assert list(sections) == KEYS
    reason = next(iter(fd.backtest_skipped.values()))
    assert "no quarter could be backtested" in reason
    assert f"The backtest could not run: {html.escape(reason)}" in sections["forecast-backtest"]
    assert "chart-forecast-reliability" not in sections["forecast-backtest"]
    # the plan could not be made either, and says why
    assert fd.plan is None
    assert fd.plan_error
    assert html.escape(fd.plan_error) in sections["forecast-plan"]


def test_a_forecaster_that_cannot_run_is_listed_and_the_others_shown(thin):
    con, tables = thin
    sh = tables["stage_history"]
    no_probability = {**tables, "stage_history": sh.drop("probability")}
    fd = report.collect_forecast(
        con,
        no_probability,
        forecasters=["stage_weighted", "stage_conversion"],
        target=100_000.0,
        review=False,
    )
    assert "stage_weighted needs the CRM's probability" in fd.forecast_skipped["stage_weighted"]
    assert list(fd.forecast.totals["forecaster"]) == ["stage_conversion"]
    body = {s.key: s.html for s in report.forecast_sections(fd)}["forecast-current"]
    assert "Forecasters that could not forecast:" in body
    assert "<code>stage_weighted</code>" in body
    assert LABELS["stage_conversion"] in body


EVIL = '<script>alert("x")</script> & Co'


def test_user_text_is_escaped(fd):
    deals = fd.forecast.deals.assign(stage=EVIL, opportunity_id=EVIL + " id")
    summary = fd.plan.summary.replace({"segment": {"seeds": EVIL}})
    calendar = fd.plan.calendar.replace({"segment": {"seeds": EVIL}})
    evil = dataclasses.replace(
        fd,
        plan=dataclasses.replace(fd.plan, summary=summary, calendar=calendar, notes=(EVIL,)),
        forecast=dataclasses.replace(fd.forecast, deals=deals),
        target_note=EVIL,
        backtest_skipped={"stage_weighted": EVIL},
    )
    text = "".join(s.html for s in report.forecast_sections(evil))
    assert "<script>alert" not in text
    assert EVIL not in text
    assert html.escape(EVIL) in text
    assert html.escape(EVIL) + " id" in text


def test_no_network_and_plotly_inlined_once(data, sections):
    full = report.render_html(dataclasses.replace(data, sections=tuple(sections.values())))
    external = re.compile(
        r"""<(script|link|img|iframe|source)\b[^>]*\b(src|href)\s*=\s*["']?(https?:)?//""", re.I
    )
    assert not external.search(full)
    assert full.count(get_plotlyjs()) == 1
    for s in sections.values():
        assert "http://" not in s.html
        assert "https://" not in s.html
    for key in KEYS:
        assert f'<section id="{key}">' in full
        assert f'href="#{key}"' in full


def test_bad_arguments_raise_config_errors(thin):
    con, tables = thin
    with pytest.raises(ConfigError, match="period must be one of"):
        report.collect_forecast(con, tables, period="week")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="target must be a positive revenue"):
        report.collect_forecast(con, tables, target=-1.0)
    with pytest.raises(ConfigError, match="name one forecaster twice"):
        report.collect_forecast(con, tables, forecasters=["stage_weighted", "stage_weighted"])


def test_no_data_end_without_pipeline_tables():
    con = revloop.connect()
    empty = ibis.memtable(pd.DataFrame({"x": np.array([1])}))
    with pytest.raises(ConfigError, match="nothing to plan or forecast"):
        report.collect_forecast(con, {"spend": empty})
    con.disconnect()
