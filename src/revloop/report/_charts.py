"""Plotly figures of the report, rendered as ``<div>`` fragments without the library."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from revloop.attribution import UNATTRIBUTED
from revloop.report._collect import HEADLINE_MODELS, ReportData
from revloop.report._format import currency_symbol, fmt_count, fmt_money, fmt_pct, model_label

__all__ = [
    "FONT",
    "MODEL_COLORS",
    "channel_colors",
    "channel_order",
    "figure_div",
    "funnel_figure",
    "headline_figure",
    "monthly_figures",
]

FONT = '-apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'

MODEL_COLORS = {"first_touch": "#1f4e9c", "last_touch": "#e8833a"}

# distinct qualitative colours (Tableau 10, then darker extras); the unattributed
# bucket is always grey
_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#17becf",
    "#bcbd22",
    "#1f3b73",
    "#7f3c8d",
    "#11a579",
    "#e73f74",
    "#3969ac",
)
_GREY = "#b9b9b9"

_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d"]}


def _base_layout(height: int) -> dict[str, object]:
    return {
        "template": "plotly_white",
        "height": height,
        "font": {"family": FONT, "size": 13, "color": "#1f2933"},
        "margin": {"l": 10, "r": 20, "t": 40, "b": 10},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "hoverlabel": {"font": {"family": FONT}},
    }


def figure_div(fig: go.Figure, div_id: str) -> str:
    """The figure as an HTML fragment that expects Plotly to be loaded already."""
    return str(
        fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            include_mathjax=False,
            div_id=div_id,
            config=_CONFIG,
            default_width="100%",
        )
    )


def channel_order(data: ReportData) -> list[str]:
    """Channels by what first and last touch credit them (revenue, then pipeline, then
    leads), largest first; channels no model credits are left out; unattributed last."""
    ch = data.channels
    if ch.empty:
        return []
    head = ch[ch["model"].isin(HEADLINE_MODELS)]

    def total(frame: pd.DataFrame, kind: str, col: str) -> pd.Series:
        return frame[frame["kind"] == kind].groupby("channel")[col].sum()

    score = pd.DataFrame(
        {
            "revenue": total(head, "won", "value"),
            "pipeline": total(head, "opportunity", "value"),
            "leads": total(head, "lead", "conversions"),
            "any": ch.groupby("channel")["conversions"].sum(),
        }
    ).fillna(0.0)
    score = score[score.abs().sum(axis=1) > 1e-12]
    score = score.sort_values(
        ["revenue", "pipeline", "leads", "any"], ascending=False, kind="stable"
    )
    names = [str(c) for c in score.index if c != UNATTRIBUTED]
    return names + ([UNATTRIBUTED] if UNATTRIBUTED in score.index else [])


def channel_colors(channels: Sequence[str]) -> dict[str, str]:
    """A stable colour per channel (grey for unattributed)."""
    out: dict[str, str] = {}
    i = 0
    for c in channels:
        if c == UNATTRIBUTED:
            out[c] = _GREY
        else:
            out[c] = _PALETTE[i % len(_PALETTE)]
            i += 1
    return out


_HEADLINE_PANELS = (
    ("won", "value", "Won revenue", True),
    ("opportunity", "value", "Pipeline created", True),
    ("lead", "conversions", "Leads", False),
)


def headline_figure(data: ReportData, order: Sequence[str]) -> go.Figure | None:
    """Revenue, pipeline and leads by channel, first touch beside last touch.

    The unattributed bucket is left out (the report states it beside the chart):
    it is the same under both models and would squash the channels' bars.
    """
    channels = [c for c in order if c != UNATTRIBUTED]
    if not channels:
        return None
    ch = data.channels
    ch = ch[ch["model"].isin(HEADLINE_MODELS) & ch["channel"].isin(channels)]
    sym = currency_symbol(data.currency)
    fig = make_subplots(
        rows=1,
        cols=3,
        shared_yaxes=True,
        horizontal_spacing=0.035,
        subplot_titles=[p[2] for p in _HEADLINE_PANELS],
    )
    for col, (kind, measure, _title, money) in enumerate(_HEADLINE_PANELS, start=1):
        for model in HEADLINE_MODELS:
            sel = ch[(ch["model"] == model) & (ch["kind"] == kind)]
            values = sel.groupby("channel")[measure].sum().reindex(channels).fillna(0.0)
            text = [
                ""
                if abs(v) < 1e-9
                else (fmt_money(v, data.currency, compact=True) if money else fmt_count(v))
                for v in values
            ]
            fig.add_trace(
                go.Bar(
                    name=model_label(model),
                    legendgroup=model,
                    showlegend=col == 1,
                    orientation="h",
                    x=values.to_numpy(),
                    y=channels,
                    marker_color=MODEL_COLORS[model],
                    text=text,
                    textposition="outside",
                    cliponaxis=False,
                    textfont={"size": 11},
                    hovertemplate=(
                        f"%{{y}} · {model_label(model)}<br>"
                        + (f"{sym}%{{x:,.0f}}" if money else "%{x:,.1f} leads")
                        + "<extra></extra>"
                    ),
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(
            row=1,
            col=col,
            tickprefix=sym if money else "",
            tickformat="~s" if money else ",~g",
            showgrid=True,
            gridcolor="#eceff3",
            zeroline=True,
            zerolinecolor="#c5ccd6",
            rangemode="tozero",
        )
        # room for the outside labels
        sel = ch[ch["kind"] == kind]
        peak = float(sel[measure].max()) if len(sel) else 0.0
        if peak > 0:
            fig.update_xaxes(row=1, col=col, range=[0, peak * 1.3])
    height = max(300, 90 + 46 * len(channels))
    fig.update_layout(
        **_base_layout(height),
        barmode="group",
        bargap=0.25,
        bargroupgap=0.05,
        legend={"orientation": "h", "x": 0, "y": 0.995, "yanchor": "top", "yref": "container"},
    )
    fig.update_layout(margin={"l": 10, "r": 30, "t": 80, "b": 10})
    fig.update_yaxes(autorange="reversed", automargin=True, ticksuffix="  ")
    return fig


def funnel_figure(data: ReportData) -> tuple[go.Figure | None, bool]:
    """Sessions → visitors → leads → opportunities → won deals, and whether the bar
    widths are on a log scale (when the first step is over 20 times the last)."""
    f = data.funnel
    counts = [int(x) for x in f["count"]]
    if sum(counts) == 0:
        return None, False
    positive = [c for c in counts if c > 0]
    log = max(positive) > 20 * min(positive)
    widths = [math.log10(c) + 1 if c > 0 else 0.0 for c in counts] if log else counts
    text = []
    for i, c in enumerate(counts):
        prev = counts[i - 1] if i else 0
        share = f"<br>{fmt_pct(c / prev)} of previous" if i and prev else ""
        text.append(f"<b>{c:,}</b>{share}")
    fig = go.Figure(
        go.Funnel(
            y=list(f["label"]),
            x=widths,
            text=text,
            textinfo="text",
            textposition="inside",
            insidetextanchor="middle",
            textfont={"color": "#ffffff"},
            customdata=counts,
            marker={"color": ["#9bb7e0", "#6f97d1", "#4e79a7", "#2f5b8f", "#1f4e9c"]},
            connector={"fillcolor": "#eef2f8"},
            hovertemplate="%{y}: %{customdata:,}<extra></extra>",
        )
    )
    fig.update_layout(**_base_layout(380))
    fig.update_layout(margin={"l": 10, "r": 10, "t": 10, "b": 10})
    fig.update_yaxes(automargin=True, ticksuffix="  ")
    return fig, log


_MONTHLY = (
    ("lead", "conversions", "Leads", False),
    ("opportunity", "conversions", "Opportunities", False),
    ("opportunity", "value", "Pipeline created", True),
    ("won", "conversions", "Won deals", False),
    ("won", "value", "Won revenue", True),
)


def monthly_figures(
    data: ReportData, order: Sequence[str], colors: Mapping[str, str]
) -> list[tuple[str, str, go.Figure]]:
    """(key, title, figure) per measure: stacked monthly bars by channel, first touch
    on the left and last touch on the right."""
    m = data.monthly
    if m.empty:
        return []
    months = [pd.Timestamp(x) for x in sorted(pd.to_datetime(m["month"]).unique())]
    span = len(pd.period_range(months[0], months[-1], freq="M"))
    dtick = "M1" if span <= 8 else ("M3" if span <= 27 else "M6")
    sym = currency_symbol(data.currency)
    out: list[tuple[str, str, go.Figure]] = []
    for kind, measure, title, money in _MONTHLY:
        sel = m[m["kind"] == kind]
        if sel[measure].abs().sum() == 0:
            continue
        fig = make_subplots(
            rows=1,
            cols=2,
            shared_yaxes=True,
            horizontal_spacing=0.04,
            subplot_titles=[model_label(x) for x in HEADLINE_MODELS],
        )
        for col, model in enumerate(HEADLINE_MODELS, start=1):
            part = sel[sel["model"] == model]
            pivot = (
                part.pivot_table(index="month", columns="channel", values=measure, aggfunc="sum")
                .reindex(months)
                .fillna(0.0)
            )
            for channel in order:
                if channel not in pivot.columns or pivot[channel].abs().sum() == 0:
                    continue
                fig.add_trace(
                    go.Bar(
                        name=channel,
                        legendgroup=channel,
                        showlegend=False,
                        x=months,
                        xperiod="M1",
                        xperiodalignment="middle",
                        y=pivot[channel].to_numpy(),
                        marker_color=colors.get(channel, _GREY),
                        hovertemplate=(
                            f"{channel} · %{{x|%b %Y}}<br>"
                            + (f"{sym}%{{y:,.0f}}" if money else "%{y:,.1f}")
                            + "<extra></extra>"
                        ),
                    ),
                    row=1,
                    col=col,
                )
        fig.update_layout(
            **_base_layout(330),
            barmode="stack",
            bargap=0.2,
        )
        fig.update_layout(margin={"l": 10, "r": 10, "t": 40, "b": 10})
        fig.update_xaxes(type="date", dtick=dtick, tickformat="%b<br>%Y", ticklabelmode="period")
        fig.update_yaxes(
            tickprefix=sym if money else "",
            tickformat="~s" if money else ",~g",
            gridcolor="#eceff3",
            rangemode="tozero",
        )
        key = f"trend-{kind}-{measure}"
        out.append((key, title, fig))
    return out
