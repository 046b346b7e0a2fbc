"""Conversions at the three B2B milestones, built from the CRM tables.

- ``lead``: a lead is created (value 0: leads are counted, not valued);
- ``opportunity``: a deal is created (value: its amount, i.e. pipeline);
- ``won``: a deal is closed-won (value: its amount, i.e. revenue).

Amounts are converted to the reporting currency with the latest ``fx_rates``
row at or before the conversion's date. Deals reach a person through their lead
(``opportunities.lead_id`` → ``leads.person_id``), so a deal's journey holds every
touch of the person who became the lead, before and after the form fill.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revloop.exceptions import ConfigError
from revloop.schema import conform

__all__ = ["conversions_from_crm", "to_reporting_currency"]

_KINDS = ("lead", "opportunity", "won")


def to_reporting_currency(
    table: ir.Table,
    fx_rates: ir.Table | None,
    *,
    amount: str = "amount",
    currency: str = "currency",
    at: str = "occurred_at",
    reporting_currency: str = "USD",
) -> ir.Table:
    """Add ``amount_reporting``: ``amount`` × the rate of ``currency`` on the day of ``at``.

    The rate is the latest ``fx_rates`` row (date, currency, rate_to_reporting)
    dated at or before that day (ChartMogul converts transactions at the transaction
    date; ``shared/reference/revops.md`` §1.8). Rows already in ``reporting_currency``,
    or without a currency, keep their amount; rows whose currency has no rate by then
    get a null, which :func:`revloop.schema.validate` and the report flag.

    The lookup never joins the table to the rates on an inequality: the distinct
    (currency, day) pairs are placed among the rate dates of their currency and take
    the latest one (a running ``max`` over a sorted window, which every engine has),
    and the table then meets those few pairs on equality. Rows are neither added nor
    dropped.
    """
    cur = table[currency].upper()
    same = cur.isnull() | (cur == reporting_currency.upper())
    if fx_rates is None:
        return table.mutate(
            amount_reporting=ibis.cases((same, table[amount]), else_=ibis.null(dt.float64))
        )
    fx = fx_rates.select(
        c=fx_rates.currency.cast(dt.string).upper(),
        d=fx_rates.date.cast(dt.date),
        rate=fx_rates.rate_to_reporting.cast(dt.float64),
    )
    fx = fx.group_by(["c", "d"]).aggregate(rate=fx.rate.max())
    kept = [c for c in table.columns if c != "amount_reporting"]
    keyed = table.select(*kept, __fx_cur=cur, __fx_day=table[at].date())
    pairs = keyed.filter(~same & keyed.__fx_day.notnull())
    pairs = pairs.select(c=pairs.__fx_cur, d=pairs.__fx_day).distinct()
    probe = pairs.mutate(fx_d=ibis.null(dt.date), probe=ibis.literal(1))
    known = fx.select("c", "d", fx_d=fx.d, probe=ibis.literal(0))
    both = probe.union(known)
    # rates dated the probe's own day sort first (probe 0 < 1), so they count
    upto = ibis.window(group_by=both.c, order_by=[both.d, both.probe], rows=(None, 0))
    both = both.mutate(fx_d=both.fx_d.max().over(upto))
    found = both.filter(both.probe == 1).select("c", "d", "fx_d")
    found = found.left_join(fx, [found.c == fx.c, found.fx_d == fx.d]).select(
        __fx_c=found.c, __fx_d=found.d, __fx_rate=fx.rate
    )
    out = keyed.left_join(found, [keyed.__fx_cur == found.__fx_c, keyed.__fx_day == found.__fx_d])
    converted = ibis.cases((same, out[amount]), else_=out[amount] * out.__fx_rate)
    out = out.mutate(amount_reporting=converted)
    return out.select(*kept, "amount_reporting")


def conversions_from_crm(
    leads: ir.Table,
    opportunities: ir.Table | None,
    *,
    fx_rates: ir.Table | None = None,
    reporting_currency: str = "USD",
    kinds: Sequence[str] = _KINDS,
) -> ir.Table:
    """The canonical conversions table from leads and opportunities.

    Parameters
    ----------
    leads, opportunities
        Canonical tables (see :mod:`revloop.schema`); ``opportunities`` may be
        ``None`` when only lead conversions are asked for.
    fx_rates
        Canonical fx_rates; needed when deals are in more than one currency.
    reporting_currency
        ISO 4217 code values are reported in.
    kinds
        Which milestones to emit, any of ``"lead"``, ``"opportunity"``, ``"won"``.

    Returns
    -------
    ibis.Table
        conversion_id (``lead:<id>``, ``opportunity:<id>``, ``won:<id>``), person_id,
        occurred_at, kind, value, lead_created_at, opportunity_created_at, won_at,
        opportunity_id. Opportunities with no lead (or a lead with no person) have no
        journey and are left out; count them with
        ``opportunities.filter(opportunities.lead_id.isnull())``.
    """
    bad = [k for k in kinds if k not in _KINDS]
    if bad or not kinds:
        raise ConfigError(f"kinds must be a non-empty subset of {list(_KINDS)}, got {list(kinds)}.")
    if opportunities is None and ("opportunity" in kinds or "won" in kinds):
        raise ConfigError(
            "opportunity and won conversions need the opportunities table; pass it, "
            "or kinds=('lead',)."
        )
    lead = conform(leads, "leads")
    parts: list[ir.Table] = []
    null_ts = ibis.null(dt.Timestamp())
    if "lead" in kinds:
        parts.append(
            lead.select(
                conversion_id=ibis.literal("lead:") + lead.lead_id,
                person_id=lead.person_id,
                occurred_at=lead.created_at,
                kind=ibis.literal("lead"),
                value=ibis.literal(0.0, type=dt.float64),
                lead_created_at=lead.created_at,
                opportunity_created_at=null_ts,
                won_at=null_ts,
                opportunity_id=ibis.null(dt.string),
            )
        )
    if opportunities is not None and ("opportunity" in kinds or "won" in kinds):
        opp = conform(opportunities, "opportunities")
        lk = lead.select(
            l_lead_id=lead.lead_id, l_person_id=lead.person_id, l_created_at=lead.created_at
        )
        o = opp.join(lk, opp.lead_id == lk.l_lead_id)
        o = o.filter(o.l_person_id.notnull())
        won = o.filter((o.status == "won") & o.closed_at.notnull())
        for kind, deals, at in (("opportunity", o, "created_at"), ("won", won, "closed_at")):
            if kind not in kinds:
                continue
            c = to_reporting_currency(deals, fx_rates, at=at, reporting_currency=reporting_currency)
            parts.append(
                c.select(
                    conversion_id=ibis.literal(f"{kind}:") + c.opportunity_id,
                    person_id=c.l_person_id,
                    occurred_at=c[at],
                    kind=ibis.literal(kind),
                    value=c.amount_reporting,
                    lead_created_at=c.l_created_at,
                    opportunity_created_at=c.created_at,
                    won_at=c.closed_at if kind == "won" else null_ts,
                    opportunity_id=c.opportunity_id,
                )
            )
    return parts[0] if len(parts) == 1 else ibis.union(*parts)
