"""The RevOps sections of the report: every metric, its policies, benchmarks and trend."""

from __future__ import annotations

import dataclasses
import html
import re
from typing import Any

import ibis
import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

import revloop
from revloop import engine, metrics, report
from revloop.exceptions import ConfigError
from revloop.synthetic import demo_company

ROW_METRICS = {
    "cohort_retention",
    "conversion_by_response_time",
    "pipeline_waterfall",
    "stage_conversion",
    "time_in_stage",
}


@pytest.fixture(scope="module")
def demo():
    con = revloop.connect()
    company = demo_company(con, seed=7, n_people=3000)  # history ends 2026-10-31
    yield con, dict(company.tables())
    con.disconnect()


@pytest.fixture(scope="module")
def rv(demo):
    con, tables = demo
    return report.collect_revops(con, tables, target_growth=0.3)


@pytest.fixture(scope="module")
def sections(rv):
    return report.revops_sections(rv)


@pytest.fixture(scope="module")
def body(sections):
    return "\n".join(s.html for s in sections)


@pytest.fixture(scope="module")
def full_html(data, sections):
    # the tiny attribution report of conftest, with the RevOps sections added
    return report.render_html(dataclasses.replace(data, sections=tuple(sections)))


def card(body: str, name: str) -> str:
    m = re.search(
        rf'<article class="rv-card" id="[^"]*" data-metric="{name}">(.*?)</article>', body, re.S
    )
    assert m is not None, f"no card for {name}"
    return m.group(1)


def headline(body: str, name: str) -> tuple[float | None, str]:
    m = re.search(
        r'<div class="rv-value"(?: data-value="([^"]*)")?>([^<]*)</div>', card(body, name)
    )
    assert m is not None
    return (None if m.group(1) is None else float(m.group(1))), html.unescape(m.group(2))


def plain(fragment: str) -> str:
    """The text of an HTML fragment, tags dropped and entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def frame(rv, name: str, role: str = "headline") -> pd.DataFrame:
    return rv.frames[name][role].frame


def test_one_section_per_family(sections):
    assert [(s.key, s.title) for s in sections] == [
        ("revops-lead", "Lead handling"),
        ("revops-pipeline", "Pipeline"),
        ("revops-subscription", "Subscription revenue"),
    ]


@pytest.mark.parametrize("name", metrics.list_metrics())
def test_every_registered_metric_is_shown_in_its_family_section(rv, sections, name):
    family = metrics.get_metric(name).family
    section = next(s for s in sections if s.key == f"revops-{family}")
    if name in rv.skipped:
        assert f"<code>{name}</code>" in section.html
        assert html.escape(rv.skipped[name]) in section.html
    else:
        assert f'data-metric="{name}"' in section.html
        others = [s for s in sections if s is not section]
        assert all(f'data-metric="{name}"' not in s.html for s in others)


def test_the_demo_computes_every_metric(rv):
    # the demo has every table, a derived target and a bridge window: nothing is skipped
    assert dict(rv.skipped) == {}
    assert set(rv.frames) == set(metrics.list_metrics())


@pytest.mark.parametrize(
    "name", [n for n in metrics.list_metrics() if metrics.get_metric(n).benchmarks]
)
def test_benchmarks_shown_with_their_source(body, name):
    text = card(body, name)
    for b in metrics.get_metric(name).benchmarks:
        assert html.escape(b.label) in text
        assert html.escape(b.source) in text


@pytest.mark.parametrize("name", metrics.list_metrics())
def test_policies_in_force_are_stated(rv, body, name):
    policy = rv.frames[name]["headline"].result.policy
    line = re.search(r'<p class="rv-policy">(.*?)</p>', card(body, name), re.S)
    assert line is not None
    text = html.unescape(line.group(1))
    assert text.startswith('<span class="rv-k">policies</span> ')
    for key in policy:
        assert f"{key}=" in text
    assert text.count(" · ") == len(policy) - 1


def test_policy_text_is_compact(body):
    text = html.unescape(card(body, "speed_to_lead"))
    assert (
        "clock=wall · calendar=Mon-Fri 09:00-17:00 · timezone=UTC · holidays=none · "
        "percentile=linear · output=summary" in text
    )
    assert "basis=count · variant=period · estimator=naive" in html.unescape(card(body, "win_rate"))


@pytest.mark.parametrize("name", [n for n in metrics.list_metrics() if n not in ROW_METRICS])
def test_headline_value_is_the_computed_figure(rv, body, name):
    value, text = headline(body, name)
    expected = frame(rv, name)["value"].iloc[0]
    if pd.isna(expected) or (name == "quick_ratio" and frame(rv, name)["lost"].iloc[0] < 0.005):
        assert value is None
        assert text == "–"
    else:
        assert value == pytest.approx(float(expected), rel=1e-12)


def test_headlines_formatted_by_unit(rv, body):
    v = float(frame(rv, "win_rate")["value"].iloc[0])
    assert headline(body, "win_rate")[1] == f"{v * 100:.1f}%"
    v = float(frame(rv, "mrr")["value"].iloc[0])
    assert headline(body, "mrr")[1] == f"${v:,.0f}"
    v = float(frame(rv, "sales_cycle")["value"].iloc[0])
    assert headline(body, "sales_cycle")[1] == f"{v:.1f} days"
    v = float(frame(rv, "pipeline_velocity")["value"].iloc[0])
    assert headline(body, "pipeline_velocity")[1] == f"${v:,.0f}/day"
    v = float(frame(rv, "speed_to_lead")["value"].iloc[0])  # minutes
    hours, minutes = divmod(round(v), 60)
    assert 60 <= v < 48 * 60
    assert headline(body, "speed_to_lead")[1] == f"{hours} h {minutes:02d} min"
    v = float(frame(rv, "pipeline_coverage")["value"].iloc[0])
    assert headline(body, "pipeline_coverage")[1] == f"{v:,.2f}×"


def test_headline_agrees_with_the_metric_computed_alone(demo, body):
    con, tables = demo
    alone = engine.to_pandas(metrics.compute("win_rate", tables).table, con)
    assert headline(body, "win_rate")[0] == pytest.approx(float(alone["value"].iloc[0]))
    mrr = engine.to_pandas(metrics.compute("mrr", tables).table, con)
    assert headline(body, "mrr")[0] == pytest.approx(float(mrr["value"].iloc[0]))


def test_row_metric_headlines_by_hand(rv, body):
    # the lead-response curve: conversion of leads reached within 5 min ÷ after 24 h
    df = frame(rv, "conversion_by_response_time").set_index("response_bucket")
    fast = df.loc["0-5m", "converted"] / df.loc["0-5m", "leads"]
    slow = df.loc["24h+", "converted"] / df.loc["24h+", "leads"]
    assert headline(body, "conversion_by_response_time")[0] == pytest.approx(fast / slow)
    # stage conversion: deals won ÷ deals entering the first stage
    sc = frame(rv, "stage_conversion").sort_values("position")
    won_share = sc["advanced"].iloc[-1] / sc["entered"].iloc[0]
    assert headline(body, "stage_conversion")[0] == pytest.approx(won_share)
    # time in stage: open deals stalled, summed over stages
    assert headline(body, "time_in_stage")[0] == frame(rv, "time_in_stage")["stalled"].sum()
    # waterfall: pipeline won over the bridge window
    assert headline(body, "pipeline_waterfall")[0] == frame(rv, "pipeline_waterfall")["won"].sum()
    # cohort retention: MRR at age 12 ÷ the cohorts' first-month MRR, pooled
    cr = frame(rv, "cohort_retention")
    at12 = cr[cr["age"] == 12]
    assert len(at12) > 0
    pooled = at12["mrr"].sum() / at12["cohort_mrr"].sum()
    assert headline(body, "cohort_retention")[0] == pytest.approx(pooled)


def test_comparable_figures_beside_benchmarks(rv, body):
    text = plain(card(body, "lead_to_opportunity_rate"))
    v = float(frame(rv, "lead_to_opportunity_rate")["value"].iloc[0])
    assert f"benchmark 13.0% leads that convert to opportunities · yours {v * 100:.1f}%" in text
    # NRR's benchmarks are year over year: the report compares the YoY variant
    yoy = rv.frames["nrr"]["yoy"]
    assert yoy.result.policy["variant"] == "yoy"
    y = float(yoy.frame["value"].iloc[0])
    assert f"yours (year over year) {y * 100:.1f}%" in plain(card(body, "nrr"))


@pytest.mark.parametrize("name", metrics.list_metrics())
def test_each_metric_has_a_chart(body, name):
    assert f'id="chart-revops-{name.replace("_", "-")}"' in card(body, name)


def test_trend_is_monthly_and_benchmark_dashed_where_units_match(rv, body):
    trend = rv.frames["win_rate"]["trend"]
    assert trend.request.period == "month"
    assert len(trend.frame) > 12
    # lead → opportunity: the 13% benchmark is a dashed line on the share axis
    shapes = re.findall(r'"shapes":\[(.*?)\]', card(body, "lead_to_opportunity_rate"))
    assert len(shapes) == 1
    assert '"dash":"dash"' in shapes[0]
    assert '"y0":0.13,' in shapes[0]
    # speed to lead: minutes drawn in hours on a log axis, 42 h average at log10(42)
    shapes = re.findall(r'"shapes":\[(.*?)\]', card(body, "speed_to_lead"))
    assert '"y0":1.6232492903979006' in shapes[0]  # log10(2520 / 60)
    # MRR has no benchmark: no line
    assert '"shapes"' not in card(body, "mrr")


def test_coverage_target_derivation_is_stated(demo, rv, sections):
    con, tables = demo
    # won revenue of the 12 full months before the horizon (2026-10-31), × 1.3 ÷ 12
    won = metrics.compute("average_deal_size", tables, start="2025-11-01", end="2026-11-01")
    total = float(engine.to_pandas(won.table, con)["won_amount"].iloc[0])
    assert rv.target == pytest.approx(total / 12 * 1.3)
    assert rv.frames["pipeline_coverage"]["headline"].result.policy["target"] == rv.target
    pipeline = html.unescape(next(s.html for s in sections if s.key == "revops-pipeline"))
    assert f"won revenue of the 12 months 2025-11-01 to 2026-10-31 (${total:,.0f}) ÷ 12 × 1.3" in (
        pipeline
    )
    # the headline looks at the next month after the data ends
    assert rv.coverage_start == pd.Timestamp("2026-11-01")
    assert "expected to close in November 2026" in pipeline


def test_waterfall_bridges_the_last_six_full_months(rv, body):
    assert (rv.bridge_start, rv.bridge_end) == (
        pd.Timestamp("2026-05-01"),
        pd.Timestamp("2026-11-01"),
    )
    wf = frame(rv, "pipeline_waterfall").sort_values("period")
    assert [pd.Timestamp(p).strftime("%Y-%m") for p in wf["period"]] == [
        "2026-05",
        "2026-06",
        "2026-07",
        "2026-08",
        "2026-09",
        "2026-10",
    ]
    # the bridge table shows each month, reconciled
    text = html.unescape(card(body, "pipeline_waterfall"))
    assert "May 2026" in text
    assert "Oct 2026" in text
    assert (wf["check"].abs() < 1e-6).all()


def test_no_network_and_plotly_inlined_once(full_html):
    external = re.compile(
        r"""<(script|link|img|iframe|source)\b[^>]*\b(src|href)\s*=\s*["']?(https?:)?//""", re.I
    )
    assert not external.search(full_html)
    assert full_html.count(get_plotlyjs()) == 1
    for key in ("revops-lead", "revops-pipeline", "revops-subscription"):
        assert f'<section id="{key}">' in full_html
        assert f'href="#{key}"' in full_html


EVIL = '<script>alert("x")</script> & Demo'


def test_user_text_is_escaped(demo):
    con, tables = demo
    sh, opp = tables["stage_history"], tables["opportunities"]
    evil = {
        **tables,
        "stage_history": sh.mutate(stage=ibis.ifelse(sh.stage == "Demo", EVIL, sh.stage)),
        "opportunities": opp.mutate(stage=ibis.ifelse(opp.stage == "Demo", EVIL, opp.stage)),
    }
    stages = ["Discovery", EVIL, "Proposal", "Negotiation"]
    rv = report.collect_revops(
        con,
        evil,
        names=["stage_conversion", "time_in_stage"],
        params={"stage_conversion": {"stages": stages}},
    )
    text = "".join(s.html for s in report.revops_sections(rv))
    assert EVIL not in text
    assert "<script>alert" not in text
    assert html.escape(EVIL) in text  # the stage table and the policy line
    assert f"stages=Discovery,{html.escape(EVIL)},Proposal" in text


def test_skipped_metrics_listed_with_their_reason(demo):
    con, tables = demo
    no_billing = {k: v for k, v in tables.items() if k != "subscriptions"}
    rv = report.collect_revops(
        con, no_billing, names=["mrr", "win_rate", "pipeline_coverage", "pipeline_waterfall"]
    )
    assert dict(rv.skipped) == {
        "mrr": "needs the table(s) subscriptions",
        "pipeline_coverage": "needs a revenue target per period",
    }
    sections = {s.key: s.html for s in report.revops_sections(rv)}
    assert set(sections) == {"revops-pipeline", "revops-subscription"}
    assert (
        "<code>mrr</code> (MRR): needs the table(s) subscriptions"
        in sections["revops-subscription"]
    )
    assert "needs a revenue target per period" in sections["revops-pipeline"]
    assert 'data-metric="win_rate"' in sections["revops-pipeline"]


def test_bad_arguments_raise_config_errors(demo):
    con, tables = demo
    with pytest.raises(ConfigError, match="bridge_months must be at least 1"):
        report.collect_revops(con, tables, bridge_months=0)
    with pytest.raises(ConfigError, match="target must be a positive amount"):
        report.collect_revops(con, tables, target=-5.0)


def test_every_benchmark_column_is_an_output_column_of_its_variant(demo):
    """A benchmark names the column the user's own figure is read from (the report and
    the CLI show it beside the benchmark): that column exists, under the benchmark's
    variant."""
    _, tables = demo
    named = 0
    for name in metrics.list_metrics():
        for b in metrics.get_metric(name).benchmarks:
            if b.column is None:
                continue
            params: dict[str, Any] = {"variant": b.variant} if b.variant else {}
            if name == "pipeline_coverage":
                params["target"] = 1.0
            columns = metrics.compute(name, tables, **params).table.columns
            assert b.column in columns, (name, b.label, b.column, columns)
            named += 1
    assert named >= 15
