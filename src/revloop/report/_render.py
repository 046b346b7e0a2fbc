"""Turn :class:`ReportData` into one self-contained HTML file."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup

from revloop.attribution import UNATTRIBUTED
from revloop.exceptions import ConfigError
from revloop.report._charts import (
    channel_colors,
    channel_order,
    figure_div,
    funnel_figure,
    headline_figure,
    monthly_figures,
)
from revloop.report._collect import HEADLINE_MODELS, ReportData, Section
from revloop.report._format import (
    DASH,
    fmt_count,
    fmt_date,
    fmt_money,
    fmt_pct,
    fmt_ratio,
    model_label,
)

__all__ = ["render_html", "write_html"]

_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
_BUILTIN_KEYS = (
    "summary",
    "first-last",
    "models",
    "performance",
    "funnel",
    "trends",
    "policies",
    "data",
)


@functools.cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("revloop.report", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@functools.cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


# -- small helpers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cell:
    text: str
    sort: float | str | None = None
    style: str = ""
    title: str = ""
    cls: str = ""


def _num(x: object) -> float | None:
    if x is None:
        return None
    v = float(x)  # type: ignore[arg-type]
    return None if pd.isna(v) else v


def _blend(share: float) -> tuple[str, str]:
    """Background and text colour for a heat-map cell, ``share`` in [0, 1]."""
    s = min(max(share, 0.0), 1.0)
    lo, hi = (255, 255, 255), (31, 78, 156)
    r, g, b = (round(a + (b_ - a) * s) for a, b_ in zip(lo, hi, strict=True))
    return f"rgb({r},{g},{b})", "#ffffff" if s > 0.55 else "#1f2933"


# -- sections -------------------------------------------------------------------------------


def _funnel_dicts(data: ReportData) -> tuple[dict[str, float], dict[str, float]]:
    """Count and value of each funnel stage."""
    f = data.funnel
    count = {str(k): float(v) for k, v in zip(f["stage"], f["count"], strict=True)}
    value = {str(k): float(v) for k, v in zip(f["stage"], f["value"], strict=True)}
    return count, value


def _kpis(data: ReportData) -> list[dict[str, str]]:
    n, val = _funnel_dicts(data)
    cur = data.currency
    leads, opps, won = int(n["lead"]), int(n["opportunity"]), int(n["won"])
    pipeline, revenue = val["opportunity"], val["won"]
    perf = data.channel_performance
    spend = float(perf[perf["model"] == HEADLINE_MODELS[0]]["spend"].sum()) if len(perf) else 0.0
    ch = data.channels
    ft_won = ch[(ch["model"] == HEADLINE_MODELS[0]) & (ch["kind"] == "won")]
    unatt = float(ft_won[ft_won["channel"] == UNATTRIBUTED]["value"].sum())
    return [
        {"label": "Leads", "value": fmt_count(leads), "note": ""},
        {
            "label": "Opportunities",
            "value": fmt_count(opps),
            "note": f"{fmt_pct(opps / leads) if leads else DASH} of leads",
        },
        {"label": "Pipeline created", "value": fmt_money(pipeline, cur), "note": ""},
        {
            "label": "Won deals",
            "value": fmt_count(won),
            "note": f"avg {fmt_money(revenue / won, cur) if won else DASH}",
        },
        {"label": "Won revenue", "value": fmt_money(revenue, cur), "note": ""},
        {
            "label": "Marketing spend",
            "value": fmt_money(spend, cur),
            "note": f"blended ROAS {fmt_ratio(revenue / spend) if spend else DASH}",
        },
        {
            "label": "Unattributed revenue",
            "value": fmt_pct(unatt / revenue) if revenue else DASH,
            "note": "no touch in the lookback window",
        },
    ]


_HEAT_KINDS = (
    ("won", "value", "Won revenue", True),
    ("opportunity", "value", "Pipeline created", True),
    ("lead", "conversions", "Leads", False),
)


def _heat_tables(data: ReportData, order: Sequence[str]) -> list[dict[str, object]]:
    ch = data.channels
    models = data.model_names
    tables: list[dict[str, object]] = []
    for kind, measure, title, money in _HEAT_KINDS:
        sel = ch[ch["kind"] == kind]
        pivot = (
            sel.pivot_table(index="channel", columns="model", values=measure, aggfunc="sum")
            .reindex(index=list(order), columns=models)
            .fillna(0.0)
        )
        totals = pivot.sum(axis=0)
        if float(totals.abs().max() if len(totals) else 0.0) <= 0:
            tables.append({"key": kind, "title": title, "rows": [], "totals": []})
            continue
        share = pivot.div(totals.where(totals != 0), axis=1).fillna(0.0)
        # the colour scale spans the channels; the unattributed row stays grey
        attributed = share.drop(index=[UNATTRIBUTED], errors="ignore")
        peak = float(attributed.to_numpy().max()) if attributed.size else 0.0
        peak = peak or 1.0
        rows = []
        # channels no model credits with this kind of conversion are left out
        nonzero = pivot.abs().sum(axis=1) > 1e-12
        pivot, share = pivot[nonzero], share[nonzero]
        share_rows = share.to_dict(orient="index")
        value_rows = pivot.to_dict(orient="index")
        for channel in pivot.index:
            cells = []
            for model in models:
                s = float(share_rows[channel][model])
                v = float(value_rows[channel][model])
                bg, fg = ("#eceff3", "#3e4c59") if channel == UNATTRIBUTED else _blend(s / peak)
                absolute = fmt_money(v, data.currency) if money else f"{fmt_count(v)} leads"
                cells.append(
                    _Cell(
                        text=fmt_pct(s),
                        sort=s,
                        style=f"background:{bg};color:{fg}",
                        title=f"{channel} · {model_label(model)}: {absolute}",
                    )
                )
            shares = share.loc[channel]
            spread = float(shares.max() - shares.min())
            rows.append(
                {
                    "channel": channel,
                    "cells": cells,
                    "spread": _Cell(text=f"{spread * 100:.1f} pp", sort=spread),
                }
            )
        totals_txt = [
            fmt_money(t, data.currency, compact=True) if money else fmt_count(t) for t in totals
        ]
        tables.append({"key": kind, "title": title, "rows": rows, "totals": totals_txt})
    return tables


_PERF_COLUMNS = (
    ("spend", "Spend", "money"),
    ("leads", "Leads", "count"),
    ("opportunities", "Opps", "count"),
    ("pipeline", "Pipeline", "money"),
    ("deals", "Deals", "count"),
    ("revenue", "Revenue", "money"),
    ("roas", "ROAS", "ratio"),
    ("cost_per_lead", "Cost / lead", "cost"),
    ("cost_per_opportunity", "Cost / opp", "cost"),
    ("cost_per_deal", "Cost / deal", "cost"),
)


def _perf_cell(value: object, how: str, currency: str) -> _Cell:
    v = _num(value)
    if how == "cost" and v == 0:
        v = None  # no spend: a cost of 0 per lead would read as "free"
    if how == "cost":
        how = "money"
    if how == "money":
        return _Cell(fmt_money(v, currency), v, cls="num")
    if how == "ratio":
        return _Cell(fmt_ratio(v), v, cls="num")
    return _Cell(fmt_count(v), v, cls="num")


def _perf_table(frame: pd.DataFrame, key: str, currency: str) -> dict[str, object]:
    label = "Campaign" if key == "campaign" else "Channel"
    lead_cols = [label] + (["Channel"] if key == "campaign" else [])
    rows = []
    for _, r in frame.iterrows():
        first = [_Cell(str(r[key]), str(r[key]), cls="name")]
        if key == "campaign":
            first.append(_Cell(str(r["channel"]), str(r["channel"]), cls="muted"))
        rows.append(first + [_perf_cell(r[c], how, currency) for c, _, how in _PERF_COLUMNS])
    sums = {c: float(frame[c].sum()) for c in ("spend", "leads", "opportunities")}
    sums |= {c: float(frame[c].sum()) for c in ("pipeline", "deals", "revenue")}

    def div(a: float, b: float) -> float | None:
        return a / b if b > 0 else None

    total_values = {
        **sums,
        "roas": div(sums["revenue"], sums["spend"]),
        "cost_per_lead": div(sums["spend"], sums["leads"]),
        "cost_per_opportunity": div(sums["spend"], sums["opportunities"]),
        "cost_per_deal": div(sums["spend"], sums["deals"]),
    }
    total = [_Cell("Total", cls="name")] + ([_Cell("")] if key == "campaign" else [])
    total += [_perf_cell(total_values[c], how, currency) for c, _, how in _PERF_COLUMNS]
    return {
        "headers": lead_cols + [h for _, h, _ in _PERF_COLUMNS],
        "numeric_from": len(lead_cols),
        "rows": rows,
        "total": total,
    }


def _performance(data: ReportData) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for model in data.model_names:
        ch = data.channel_performance[data.channel_performance["model"] == model]
        cp = data.campaign_performance[data.campaign_performance["model"] == model]
        order = ["revenue", "pipeline", "leads", "spend"]
        ch = ch.sort_values(order, ascending=False, kind="stable")
        cp = cp.sort_values(order, ascending=False, kind="stable")
        out.append(
            {
                "model": model,
                "label": model_label(model),
                "channels": _perf_table(ch, "channel", data.currency),
                "campaigns": _perf_table(cp, "campaign", data.currency),
            }
        )
    return out


def _funnel_steps(data: ReportData) -> list[dict[str, str]]:
    n, val = _funnel_dicts(data)
    cur = data.currency

    def rate(a: str, b: str) -> str:
        return fmt_pct(n[b] / n[a]) if n[a] > 0 else DASH

    won, opps = val["won"], val["opportunity"]
    return [
        {
            "step": "Sessions per visitor",
            "value": f"{n['sessions'] / n['visitors']:.2f}" if n["visitors"] else DASH,
            "note": "",
        },
        {"step": "Visitor → lead", "value": rate("visitors", "lead"), "note": ""},
        {"step": "Lead → opportunity", "value": rate("lead", "opportunity"), "note": ""},
        {"step": "Opportunity → won (count)", "value": rate("opportunity", "won"), "note": ""},
        {
            "step": "Won revenue ÷ pipeline created",
            "value": fmt_pct(won / opps) if opps > 0 else DASH,
            "note": f"{fmt_money(won, cur)} of {fmt_money(opps, cur)}",
        },
        {"step": "Visitor → won deal", "value": rate("visitors", "won"), "note": ""},
    ]


def _unattributed_note(data: ReportData) -> str:
    """What the headline chart leaves out: first-touch credit of ``(unattributed)``."""
    ch = data.channels
    ft = ch[ch["model"] == HEADLINE_MODELS[0]]
    parts = []
    for kind, measure, what, money in (
        ("won", "value", "won revenue", True),
        ("opportunity", "value", "pipeline", True),
        ("lead", "conversions", "leads", False),
    ):
        sel = ft[ft["kind"] == kind]
        total = float(sel[measure].sum())
        part = float(sel[sel["channel"] == UNATTRIBUTED][measure].sum())
        if part > 0 and total > 0:
            amount = fmt_money(part, data.currency) if money else fmt_count(part)
            label = "lead" if what == "leads" and fmt_count(part) == "1" else what
            parts.append(f"{amount} {label} ({fmt_pct(part / total)})")
    if not parts:
        return ""
    return (
        f"Not shown: {UNATTRIBUTED}, " + ", ".join(parts) + ", the conversions with no touch "
        f"in their lookback window ({_lookbacks(data)}). They are in the tables below."
    )


def _param_text(value: object) -> str:
    if isinstance(value, list | tuple):
        if not value:
            return "none"
        return ", ".join(_param_text(v) for v in value)
    if isinstance(value, Mapping):
        name = value.get("name")
        chans = value.get("channels")
        if name is not None and isinstance(chans, list | tuple):
            return f"{name} ({', '.join(map(str, chans))})" if chans else str(name)
        return json.dumps(value, sort_keys=True, default=str)
    if value is None:
        return "no limit"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _policies(data: ReportData) -> list[dict[str, str]]:
    rows = []
    for m in data.models:
        name = str(m["model"])
        params = m.get("params")
        p = dict(params) if isinstance(params, Mapping) else {}
        lookback = _lookback_text(p.pop("lookback_days", None), p.pop("lookback_from", None))
        steps = p.pop("lookback_steps", None)
        transforms = p.pop("transforms", [])
        rows.append(
            {
                "label": model_label(name),
                "name": name,
                "lookback": lookback,
                "steps": "all" if steps is None else f"last {steps}",
                "transforms": _param_text(transforms),
                "params": "; ".join(f"{k} = {_param_text(v)}" for k, v in p.items()) or DASH,
            }
        )
    return rows


def _lookback_text(days: object, anchor: object) -> str:
    if days is None:
        return "no limit"
    start = {"lead_created": "lead creation", "conversion": "the conversion"}.get(
        str(anchor), "the conversion" if anchor is None else str(anchor)
    )
    return f"{_param_text(days)} days before {start}"


def _lookbacks(data: ReportData) -> str:
    values = set()
    for m in data.models:
        params = m.get("params")
        p = params if isinstance(params, Mapping) else {}
        values.add(_lookback_text(p.get("lookback_days"), p.get("lookback_from")))
    return "; ".join(sorted(values))


def _period(data: ReportData) -> str:
    if data.period_start is None or data.period_end is None:
        return "no conversions"
    return f"{fmt_date(data.period_start)} to {fmt_date(data.period_end)}"


def _window_text(data: ReportData) -> str:
    if data.window_start is None and data.window_end is None:
        return "all conversions"
    a = fmt_date(data.window_start) if data.window_start is not None else "the beginning"
    b = f"before {fmt_date(data.window_end)}" if data.window_end is not None else "onwards"
    return f"conversions from {a} {b}"


def _check_sections(sections: Sequence[Section]) -> None:
    seen = set(_BUILTIN_KEYS)
    for s in sections:
        if not _KEY.match(s.key) or s.key in seen:
            raise ConfigError(
                f"report section key {s.key!r} must be unique and made of letters, digits and "
                f"'-' (starting with a letter); taken: {sorted(seen)}."
            )
        seen.add(s.key)


def render_html(data: ReportData) -> str:
    """The report as one self-contained HTML document.

    Plotly's JavaScript is inlined once in the ``<head>``; nothing is loaded from
    the network (no CDN, no web fonts), so the file opens offline and can be mailed.

    Parameters
    ----------
    data
        What :func:`revloop.report.collect` returned.

    Returns
    -------
    str
        The HTML document.
    """
    _check_sections(data.sections)
    order = channel_order(data)
    colors = channel_colors(order)
    headline = headline_figure(data, order)
    funnel, funnel_log = funnel_figure(data)
    trends = [
        {"key": key, "title": title, "div": Markup(figure_div(fig, f"chart-{key}"))}
        for key, title, fig in monthly_figures(data, order, colors)
    ]
    nav = [
        ("summary", "Summary"),
        ("first-last", "First vs last touch"),
        ("models", "All models"),
        ("performance", "Spend & ROAS"),
        ("funnel", "Funnel"),
        ("trends", "Monthly trends"),
        *[(s.key, s.title) for s in data.sections],
        ("policies", "Policies"),
        ("data", "About the data"),
    ]
    context = {
        "title": data.title,
        "currency": data.currency,
        "period": _period(data),
        "window": _window_text(data),
        "generated_at": data.generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        "version": data.version,
        "nav": nav,
        "kpis": _kpis(data),
        "headline": None if headline is None else Markup(figure_div(headline, "chart-headline")),
        "heat_tables": _heat_tables(data, order),
        "model_labels": [model_label(m) for m in data.model_names],
        "performance": _performance(data),
        "funnel": None if funnel is None else Markup(figure_div(funnel, "chart-funnel")),
        "funnel_log": funnel_log,
        "unattributed_note": _unattributed_note(data),
        "trend_legend": [
            (c, colors[c]) for c in order if c in set(data.monthly["channel"].astype(str))
        ],
        "funnel_steps": _funnel_steps(data),
        "funnel_rows": [
            {
                "label": r.label,
                "count": fmt_count(r.count),
                "value": fmt_money(r.value, data.currency) if r.value else "",
            }
            for r in data.funnel.itertuples()
        ],
        "trends": trends,
        "sections": [
            {"key": s.key, "title": s.title, "html": Markup(s.html)} for s in data.sections
        ],
        "policies": _policies(data),
        "lookbacks": _lookbacks(data),
        "unattributed": UNATTRIBUTED,
        "row_counts": [
            (k.replace("_", " ").capitalize(), fmt_count(v)) for k, v in data.row_counts.items()
        ],
        "plotly_js": Markup(_plotly_js()),
    }
    return _env().get_template("report.html.j2").render(**context)


def write_html(data: ReportData, path: str | Path) -> Path:
    """Render the report and write it to ``path`` (UTF-8); returns the path.

    Parent folders are created when missing.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(data), encoding="utf-8")
    return out
