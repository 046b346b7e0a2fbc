"""render_html(): one offline HTML file with Plotly inlined once, and the figures in it."""

from __future__ import annotations

import dataclasses
import re

import pytest
from plotly.offline import get_plotlyjs

from revloop import attribution, report
from revloop.exceptions import ConfigError


def test_no_network_access(html):
    # no external script, stylesheet, image, frame or font: nothing is fetched
    external = re.compile(
        r"""<(script|link|img|iframe|source)\b[^>]*\b(src|href)\s*=\s*["']?(https?:)?//""", re.I
    )
    assert not external.search(html)
    assert not re.search(r"@import|@font-face|url\(\s*['\"]?(https?:)?//", html)
    assert "fonts.googleapis" not in html


def test_plotly_inlined_exactly_once(html):
    assert html.count(get_plotlyjs()) == 1
    # and it comes before the first chart that needs it
    assert html.index(get_plotlyjs()) < html.index("Plotly.newPlot")


def test_charts_present(html):
    for div in ("chart-headline", "chart-funnel", "chart-trend-won-value"):
        assert f'id="{div}"' in html


def test_channels_and_figures_shown(html):
    for channel in ("Paid Search", "Paid Social", "Organic Search", "Email", "Direct"):
        assert channel in html
    # funnel and KPI figures, formatted for people
    assert "$35,000" in html  # pipeline created
    assert "$30,000" in html  # won revenue
    assert "75.0%" in html  # lead → opportunity: 3 of 4
    # first touch under brand: spend $1,000, ROAS 10
    assert "$1,000" in html
    assert "10.00×" in html
    # heat table: Paid Social gets 20,000 of 30,000 revenue under first touch
    assert "66.7%" in html


def test_policies_listed(html, data):
    section = html[html.index('<section id="policies">') :]
    for m in data.models:
        assert f"<code>{m['model']}</code>" in section
    assert "half_life = 7 days" in section
    assert "first = 0.225; lead = 0.225; opportunity = 0.225; won = 0.225" in section
    assert "direct_channels = Direct" in section
    assert "90 days before" in section
    assert "(unattributed)" in section


def test_header_has_title_and_period(html):
    head = html[html.index("<body>") : html.index("</header>")]
    assert "Tiny Co" in head
    assert "2024-01-06 to 2024-03-01" in head


def test_model_selector_lists_every_model(html):
    options = re.findall(r'<option value="([a-z_]+)"', html)
    assert options == list(attribution.RULE_BASED)
    # one panel per model; only the first (first touch) visible without script
    panels = re.findall(r'<div class="model-panel" data-model="([a-z_]+)"( hidden)?>', html)
    assert [p[0] for p in panels] == list(attribution.RULE_BASED)
    assert [bool(p[1]) for p in panels] == [False] + [True] * (len(panels) - 1)


def test_extra_sections(data):
    extra = report.Section("revops", "RevOps vital signs", "<p>speed to lead: 5 min</p>")
    html = report.render_html(dataclasses.replace(data, sections=(extra,)))
    assert '<a href="#revops">RevOps vital signs</a>' in html
    assert "<p>speed to lead: 5 min</p>" in html
    assert html.index('id="revops"') < html.index('id="policies"')


@pytest.mark.parametrize("key", ["policies", "1st", "has space"])
def test_bad_section_key(data, key):
    bad = report.Section(key, "x", "")
    with pytest.raises(ConfigError, match="section key"):
        report.render_html(dataclasses.replace(data, sections=(bad,)))


def test_user_text_is_escaped(data):
    html = report.render_html(dataclasses.replace(data, title="<b>Q3</b> & more"))
    assert "&lt;b&gt;Q3&lt;/b&gt; &amp; more" in html


def test_no_conversions_renders(module_con, company):
    tp, cv, sp = company
    d = report.collect(
        module_con, touchpoints=tp, conversions=cv, spend=sp, start="2030-01-01", models=["linear"]
    )
    assert d.period_start is None
    html = report.render_html(d)
    assert "no conversions" in html
    assert "No conversions in the period." in html


def test_write_html(tmp_path, data):
    out = report.write_html(data, tmp_path / "sub" / "report.html")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
