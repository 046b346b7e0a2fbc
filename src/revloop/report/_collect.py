"""Run the queries a report needs and keep their small results as pandas frames."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pandas as pd

from revloop.attribution import (
    RULE_BASED,
    UNATTRIBUTED,
    AttributionModel,
    credit_many,
    get_model,
    performance,
    summarize_many,
)
from revloop.engine import Backend, to_pandas
from revloop.exceptions import ConfigError

__all__ = [
    "HEADLINE_MODELS",
    "KINDS",
    "NO_CAMPAIGN",
    "ReportData",
    "Section",
    "collect",
]

KINDS: tuple[str, ...] = ("lead", "opportunity", "won")
"""The conversion kinds a report shows, in funnel order."""

HEADLINE_MODELS: tuple[str, str] = ("first_touch", "last_touch")
"""The models the report leads with (first click and last click)."""

NO_CAMPAIGN = "(no campaign)"
"""Campaign label of credits and spend whose campaign is empty."""

DateLike = str | _dt.date | _dt.datetime


@dataclass(frozen=True)
class Section:
    """A block of ready-made HTML added to a report (RevOps metrics, forecasts...).

    Parameters
    ----------
    key
        Anchor id of the section (letters, digits and ``-``); unique in the report.
    title
        Heading shown in the report and its table of contents.
    html
        The section's body. It is inserted as is: escape any user text in it.
    """

    key: str
    title: str
    html: str


@dataclass(frozen=True, eq=False)
class ReportData:
    """Everything a report shows: small pandas frames and the metadata to read them.

    Built by :func:`collect`; rendered by :func:`revloop.report.render_html`.
    Values are in ``currency`` (the reporting currency of the conversions and spend).

    Attributes
    ----------
    title
        Report title.
    currency
        ISO 4217 code of every value.
    channels
        model, kind, channel, conversions (credited count), value (credited value):
        ``summarize_many(models, ..., by="channel")``.
    campaigns
        model, kind, campaign, conversions, value (``by="campaign"``); an empty
        campaign reads ``"(no campaign)"``, an unattributed conversion ``"(unattributed)"``.
    channel_performance, campaign_performance
        :func:`revloop.attribution.performance` by channel and by campaign: model,
        channel or campaign, leads, opportunities, pipeline, deals, revenue, spend,
        roas, cost_per_lead, cost_per_opportunity, cost_per_deal. The campaign frame
        also has ``channel``: the channels its credits and spend come from.
    funnel
        stage (sessions, visitors, lead, opportunity, won), label, count, value
        (pipeline for opportunities, revenue for won deals, else 0).
    monthly
        model (first_touch, last_touch), kind, month (first day), channel,
        conversions, value: conversions of each month credited by first and last touch.
    models
        Each model's ``to_dict()``: the policies the figures were computed with.
    period_start, period_end
        First and last conversion in the report (``None`` if there is none).
    window_start, window_end
        The requested half-open window ``[start, end)`` (``None``: open).
    row_counts
        Rows read: touchpoints, touchpoints_in_window, sessions, conversions
        (in the window), spend (in the window).
    version
        revloop version that built the data.
    generated_at
        When :func:`collect` ran (UTC).
    sections
        Extra sections rendered after the attribution sections, before the policies.
    """

    title: str
    currency: str
    channels: pd.DataFrame
    campaigns: pd.DataFrame
    channel_performance: pd.DataFrame
    campaign_performance: pd.DataFrame
    funnel: pd.DataFrame
    monthly: pd.DataFrame
    models: tuple[Mapping[str, object], ...]
    period_start: pd.Timestamp | None
    period_end: pd.Timestamp | None
    window_start: pd.Timestamp | None
    window_end: pd.Timestamp | None
    row_counts: Mapping[str, int]
    version: str
    generated_at: _dt.datetime
    sections: tuple[Section, ...] = field(default=())

    @property
    def model_names(self) -> list[str]:
        """Lookup names of the models, in report order."""
        return [str(m["model"]) for m in self.models]


def _ts(value: DateLike) -> ir.TimestampScalar:
    return ibis.literal(pd.Timestamp(value).to_pydatetime()).cast(dt.Timestamp())


def _window(table: ir.Table, column: str, start: DateLike | None, end: DateLike | None) -> ir.Table:
    col = table[column] if table[column].type().is_timestamp() else table[column].cast("timestamp")
    if start is not None:
        table = table.filter(col >= _ts(start))
    if end is not None:
        table = table.filter(col < _ts(end))
    return table


def _resolve_models(
    models: Sequence[AttributionModel | str] | None,
) -> list[AttributionModel]:
    if models is None:
        return [get_model(name) for name in RULE_BASED]
    built = [get_model(m) if isinstance(m, str) else m for m in models]
    if not built:
        raise ConfigError(
            "collect got an empty list of models; pass None for every rule-based model "
            "or e.g. ['first_touch', 'last_touch', 'linear']."
        )
    names = [m.lookup_name for m in built]
    # the report leads with first and last click: add them (defaults) when missing
    missing = [get_model(n) for n in HEADLINE_MODELS if n not in names]
    return missing + built


def _fill_campaign(campaign: pd.Series, channel: pd.Series) -> pd.Series:
    out = campaign.astype(object).where(campaign.notna(), NO_CAMPAIGN)
    return out.where(channel != UNATTRIBUTED, UNATTRIBUTED)


def _funnel(
    touchpoints: ir.Table, conversions: ir.Table, con: Backend
) -> tuple[pd.DataFrame, dict[str, int], pd.Timestamp | None, pd.Timestamp | None]:
    tp = touchpoints
    if "kind" in tp.columns:
        is_session = (tp.kind == "session").fill_null(False)
        agg = tp.aggregate(
            rows=tp.count(),
            sessions=tp.count(where=is_session),
            visitors_all=tp.person_id.nunique(),
            visitors_session=tp.person_id.nunique(where=is_session),
        )
    else:
        agg = tp.aggregate(
            rows=tp.count(),
            sessions=ibis.literal(0, type=dt.int64),
            visitors_all=tp.person_id.nunique(),
            visitors_session=ibis.literal(0, type=dt.int64),
        )
    t = to_pandas(agg, con).iloc[0]
    # sessions are the touchpoints of kind 'session'; without any, every touchpoint counts
    if int(t["sessions"]) > 0:
        sessions, visitors = int(t["sessions"]), int(t["visitors_session"])
    else:
        sessions, visitors = int(t["rows"]), int(t["visitors_all"])

    cv = conversions
    value = cv.value.cast("float64") if "value" in cv.columns else ibis.literal(0.0)
    by_kind = to_pandas(
        cv.group_by(kind=cv.kind.cast("string")).aggregate(
            n=cv.count(),
            value=value.sum(),
            first=cv.occurred_at.min(),
            last=cv.occurred_at.max(),
        ),
        con,
    ).set_index("kind")

    table = {col: by_kind[col].to_dict() for col in ("n", "value")}

    def get(kind: str, col: str) -> float:
        v = table[col].get(kind)
        return 0.0 if v is None or pd.isna(v) else float(v)

    rows = [
        ("sessions", "Sessions", sessions, 0.0),
        ("visitors", "Visitors", visitors, 0.0),
        ("lead", "Leads", int(get("lead", "n")), 0.0),
        ("opportunity", "Opportunities", int(get("opportunity", "n")), get("opportunity", "value")),
        ("won", "Won deals", int(get("won", "n")), get("won", "value")),
    ]
    funnel = pd.DataFrame(rows, columns=["stage", "label", "count", "value"])
    counts = {
        "touchpoints_in_window": int(t["rows"]),
        "sessions": sessions,
        "conversions": int(by_kind["n"].sum()) if len(by_kind) else 0,
    }
    first = by_kind["first"].min() if len(by_kind) else None
    last = by_kind["last"].max() if len(by_kind) else None
    return (
        funnel,
        counts,
        None if first is None or pd.isna(first) else pd.Timestamp(first),
        None if last is None or pd.isna(last) else pd.Timestamp(last),
    )


def collect(
    con: Backend,
    *,
    touchpoints: ir.Table,
    conversions: ir.Table,
    spend: ir.Table | None = None,
    models: Sequence[AttributionModel | str] | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    title: str = "revloop report",
    currency: str = "USD",
) -> ReportData:
    """Run every query of the HTML report and return its small results.

    Parameters
    ----------
    con
        The backend the tables live on (see :func:`revloop.connect`).
    touchpoints
        Canonical touchpoints (touchpoint_id, person_id, occurred_at, channel,
        campaign, kind).
    conversions
        Canonical conversions (conversion_id, person_id, occurred_at, kind ∈ lead,
        opportunity, won, value; optional milestones lead_created_at,
        opportunity_created_at, won_at), e.g. from
        :func:`revloop.attribution.conversions_from_crm`.
    spend
        Canonical spend (date, channel, campaign, amount) in the reporting currency.
    models
        Attribution models or lookup names (default: every model in
        :data:`revloop.attribution.RULE_BASED` with its default parameters).
        ``first_touch`` and ``last_touch`` are added with default parameters when
        missing, since the report leads with them.
    start, end
        Half-open window ``[start, end)`` of conversion times and spend dates
        (``None``: open). Paths still reach back before ``start`` (the lookback).
    title
        Report title.
    currency
        ISO 4217 code of conversion values and spend, for display.

    Returns
    -------
    ReportData

    Notes
    -----
    Three scans of the paths run: one aggregate for every model at once
    (:func:`~revloop.attribution.summarize_many` by channel and campaign), one
    for the monthly first/last-touch series, and the funnel counts. ROAS and cost
    per conversion come from :func:`~revloop.attribution.performance` applied to
    the (already aggregated) credited sums, so no per-touch credits are pulled.
    """
    import revloop  # late: revloop/__init__ may import this package

    ms = _resolve_models(models)
    conv = _window(conversions, "occurred_at", start, end)
    tp_window = _window(touchpoints, "occurred_at", start, end)
    sp = None if spend is None else _window(spend, "date", start, end)

    # one pass over the paths for every model: credited count and value by channel × campaign
    att = to_pandas(summarize_many(ms, touchpoints, conv, by=["channel", "campaign"]), con)
    att["campaign"] = _fill_campaign(att["campaign"], att["channel"])
    keys = ["model", "kind"]
    channels = att.groupby([*keys, "channel"], as_index=False, sort=False)[
        ["conversions", "value"]
    ].sum()
    campaigns = att.groupby([*keys, "campaign"], as_index=False, sort=False)[
        ["conversions", "value"]
    ].sum()

    # performance over the summed credits: a pre-aggregated credits table gives the same sums
    pseudo = att.rename(columns={"conversions": "weight"})[
        ["model", "kind", "channel", "campaign", "weight", "value"]
    ]
    pseudo_t = ibis.memtable(
        pseudo,
        schema={
            "model": "string",
            "kind": "string",
            "channel": "string",
            "campaign": "string",
            "weight": "float64",
            "value": "float64",
        },
    )
    spend_t = None
    if sp is not None:
        spend_t = sp.mutate(campaign=sp.campaign.cast("string").fill_null(NO_CAMPAIGN))
    ch_perf = to_pandas(performance(pseudo_t, spend_t, by="channel"), con)
    cp_perf = to_pandas(performance(pseudo_t, spend_t, by="campaign"), con)
    spend_rows = 0
    campaign_channels: dict[str, set[str]] = {}
    credited = att[att["conversions"] > 0]
    for camp, chan in zip(credited["campaign"], credited["channel"], strict=True):
        campaign_channels.setdefault(str(camp), set()).add(str(chan))
    if spend_t is not None:
        sp_pairs = to_pandas(
            spend_t.group_by(["campaign", "channel"]).aggregate(n=spend_t.count()), con
        )
        spend_rows = int(sp_pairs["n"].sum())
        for camp, chan in zip(sp_pairs["campaign"], sp_pairs["channel"], strict=True):
            campaign_channels.setdefault(str(camp), set()).add(str(chan))
    cp_perf.insert(
        2,
        "channel",
        [", ".join(sorted(campaign_channels.get(str(c), set()))) for c in cp_perf["campaign"]],
    )

    # monthly series under first and last touch
    headline = [m for m in ms if m.lookup_name in HEADLINE_MODELS]
    cr = credit_many(headline, touchpoints, conv)
    monthly = to_pandas(
        cr.group_by(
            ["model", "kind", cr.conversion_at.truncate("M").name("month"), "channel"]
        ).aggregate(conversions=cr.weight.sum(), value=cr.value.sum()),
        con,
    ).sort_values(["model", "kind", "month", "channel"], ignore_index=True)

    funnel, counts, first, last = _funnel(tp_window, conv, con)
    total_tp = int(to_pandas(touchpoints.aggregate(n=touchpoints.count()), con)["n"].iloc[0])
    row_counts = {"touchpoints": total_tp, **counts, "spend": spend_rows}

    return ReportData(
        title=title,
        currency=currency.upper(),
        channels=channels.sort_values([*keys, "channel"], ignore_index=True),
        campaigns=campaigns.sort_values([*keys, "campaign"], ignore_index=True),
        channel_performance=ch_perf,
        campaign_performance=cp_perf,
        funnel=funnel,
        monthly=monthly,
        models=tuple(m.to_dict() for m in ms),
        period_start=first,
        period_end=last,
        window_start=None if start is None else pd.Timestamp(start),
        window_end=None if end is None else pd.Timestamp(end),
        row_counts=row_counts,
        version=str(revloop.__version__),
        generated_at=_dt.datetime.now(_dt.UTC).replace(microsecond=0),
    )
