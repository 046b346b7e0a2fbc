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
    key: str,
) -> ir.Table:
    """Add ``amount_reporting``: ``amount`` × the rate of ``currency`` on the day of ``at``.

    The rate is the latest ``fx_rates`` row (date, currency, rate_to_reporting)
    dated at or before that day. Rows already in ``reporting_currency``, or
    without a currency, keep their amount; rows whose currency has no rate get a
    null, which :func:`revloop.schema.validate` and the report flag.
    ``key`` must identify the rows of ``table`` uniquely.
    """
    cur = table[currency].upper()
    same = cur.isnull() | (cur == reporting_currency.upper())
    if fx_rates is None:
        return table.mutate(
            amount_reporting=ibis.cases((same, table[amount]), else_=ibis.null(dt.float64))
        )
    fx = fx_rates.select(
        fx_date=fx_rates.date.cast(dt.date),
        fx_currency=fx_rates.currency.upper(),
        rate=fx_rates.rate_to_reporting.cast(dt.float64),
    )
    day = table[at].date()
    cand = table.left_join(fx, [cur == fx.fx_currency, fx.fx_date <= day])
    latest = ibis.window(group_by=cand[key], order_by=ibis.desc(cand.fx_date))
    cand = cand.mutate(__rn=ibis.row_number().over(latest)).filter(lambda t: t.__rn == 0)
    converted = ibis.cases((same, cand[amount]), else_=cand[amount] * cand.rate)
    out = cand.mutate(amount_reporting=converted)
    helpers = {"__rn", "fx_date", "fx_currency", "rate"}
    return out.select(*[c for c in out.columns if c not in helpers])


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
            c = to_reporting_currency(
                deals, fx_rates, at=at, reporting_currency=reporting_currency, key="opportunity_id"
            )
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
