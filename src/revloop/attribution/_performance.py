"""Attributed leads, pipeline and revenue beside spend: ROAS and cost per lead, opportunity, deal."""

from __future__ import annotations

import datetime as _dt

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revloop.exceptions import ConfigError

__all__ = ["performance"]


def _ts(value: str | _dt.date | _dt.datetime) -> ir.TimestampScalar:
    return ibis.literal(value).cast(dt.Timestamp())


def performance(
    credits: ir.Table,
    spend: ir.Table | None = None,
    *,
    by: str = "channel",
    start: str | _dt.date | _dt.datetime | None = None,
    end: str | _dt.date | _dt.datetime | None = None,
) -> ir.Table:
    """Per model and ``by`` (channel or campaign): what marketing brought, and what it cost.

    Credits are counted for conversions in ``[start, end)`` and spend for days
    in the same window, so ROAS compares like with like (Snowplow instead takes
    spend from the 90 days before each conversion; ``attribution.md`` §3.1).

    Parameters
    ----------
    credits
        A credits table (:meth:`AttributionModel.credit` or :func:`credit_many`) over
        conversions of kinds ``lead``, ``opportunity`` and ``won``.
    spend
        Canonical spend table (date, channel, campaign, amount), in the reporting currency.
    by
        ``"channel"`` or ``"campaign"``.
    start, end
        Half-open reporting window; ``None`` leaves that side open.

    Returns
    -------
    ibis.Table
        model, ``by``, leads, opportunities, pipeline, deals, revenue, spend,
        roas (revenue ÷ spend), cost_per_lead, cost_per_opportunity, cost_per_deal
        (null where the denominator is 0).
    """
    if by not in ("channel", "campaign"):
        raise ConfigError(f"performance is reported by 'channel' or 'campaign', not {by!r}.")
    c = credits
    if start is not None:
        c = c.filter(c.conversion_at >= _ts(start))
    if end is not None:
        c = c.filter(c.conversion_at < _ts(end))

    def credited(kind: str, col: ir.Value) -> ir.Value:
        return ibis.cases((c.kind == kind, col), else_=ibis.literal(0.0, type=dt.float64)).sum()

    att = c.group_by(["model", by]).aggregate(
        leads=credited("lead", c.weight),
        opportunities=credited("opportunity", c.weight),
        pipeline=credited("opportunity", c.value),
        deals=credited("won", c.weight),
        revenue=credited("won", c.value),
    )
    zero = ibis.literal(0.0, type=dt.float64)
    if spend is None:
        out = att.mutate(spend=zero)
    else:
        s = spend
        if start is not None:
            s = s.filter(s.date.cast(dt.Timestamp()) >= _ts(start))
        if end is not None:
            s = s.filter(s.date.cast(dt.Timestamp()) < _ts(end))
        s = s.group_by(s[by].name("__key")).aggregate(spend=s.amount.sum())
        models = att.select("model").distinct()
        # every model sees every spend row, even for a channel it credits nothing
        keys = (
            att.select("model", __key=att[by])
            .union(models.cross_join(s.select("__key")))
            .distinct()
        )
        out = (
            keys.left_join(att, [keys.model == att.model, keys.__key == att[by]])
            .left_join(s, keys.__key == s.__key)
            .select(
                keys.model,
                keys.__key.name(by),
                *[
                    att[k].fill_null(0.0).name(k)
                    for k in ("leads", "opportunities", "pipeline", "deals", "revenue")
                ],
                s.spend.fill_null(0.0).name("spend"),
            )
        )

    def ratio(num: ir.NumericValue, den: ir.NumericValue) -> ir.NumericValue:
        return ibis.cases((den > 0, num / den), else_=ibis.null(dt.float64))

    return out.mutate(
        roas=ratio(out.revenue, out.spend),
        cost_per_lead=ratio(out.spend, out.leads),
        cost_per_opportunity=ratio(out.spend, out.opportunities),
        cost_per_deal=ratio(out.spend, out.deals),
    ).order_by(["model", ibis.desc("revenue"), by])
