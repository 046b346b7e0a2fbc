"""From canonical tables to the closed loop: identities, touchpoints, conversions.

Compute layer: builds Ibis expressions, executes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revloop.attribution import conversions_from_crm
from revloop.exceptions import SchemaError
from revloop.identity import stitch
from revloop.schema import TABLES, conform
from revloop.touchpoints import GA4_RULES, RuleSet, from_events

__all__ = ["ClosedLoop", "closed_loop"]

_TOUCH_COLUMNS = (
    "touchpoint_id",
    "person_id",
    "occurred_at",
    "channel",
    "source",
    "medium",
    "campaign",
    "kind",
    "session_id",
)


def _lead_source_touches(leads: ir.Table, touchpoints: ir.Table) -> ir.Table:
    """One offline touchpoint per lead with no touch at or before its creation."""
    lead = conform(leads, "leads")
    tp = conform(touchpoints, "touchpoints")
    earlier = tp.select(tp_person=tp.person_id, tp_at=tp.occurred_at)
    orphan = lead.anti_join(
        earlier, [lead.person_id == earlier.tp_person, earlier.tp_at <= lead.created_at]
    )
    source = orphan.source.fill_null("(none)")
    return orphan.select(
        touchpoint_id=ibis.literal("crm:") + orphan.lead_id,
        person_id=orphan.person_id,
        occurred_at=orphan.created_at,
        channel=source,
        source=source,
        medium=ibis.literal("crm"),
        campaign=ibis.null(dt.string),
        kind=ibis.literal("offline"),
        session_id=ibis.null(dt.string),
    )


@dataclass(frozen=True)
class ClosedLoop:
    """The three derived tables attribution needs.

    Attributes
    ----------
    identities
        anonymous_id → person_id links (given, or stitched from events and leads).
    touchpoints
        One row per marketing touch of a person (given, or built from web events).
    conversions
        Lead, opportunity and won milestones (given, or built from leads and opportunities).
    """

    identities: ir.Table | None
    touchpoints: ir.Table
    conversions: ir.Table


def closed_loop(
    tables: Mapping[str, ir.Table],
    *,
    rules: RuleSet = GA4_RULES,
    reporting_currency: str = "USD",
    timeout_minutes: float = 30,
    internal_domains: Iterable[str] = (),
    lead_source_touches: bool = True,
) -> ClosedLoop:
    """Derive what attribution needs from whatever canonical tables are given.

    Tables the user gave win: ``touchpoints`` and ``conversions`` are used as they
    are when present. Otherwise identities are stitched from ``events`` and
    ``leads`` (:func:`revloop.identity.stitch`), touchpoints are one per web
    session (:func:`revloop.touchpoints.from_events`, GA4 channel rules), and
    conversions are the lead / opportunity / won milestones
    (:func:`revloop.attribution.conversions_from_crm`, amounts converted with
    ``fx_rates`` when given).

    Parameters
    ----------
    tables
        Canonical tables by name (a :class:`revloop.ingest.Dataset`, the
        ``DemoCompany.tables()`` of the demo, or a plain dict).
    rules
        Channel rule set for web sessions.
    reporting_currency
        ISO 4217 code for conversion values.
    timeout_minutes, internal_domains
        Sessionising options (see :func:`revloop.touchpoints.from_events`).
    lead_source_touches
        Give each lead that has no touchpoint at or before its creation (an
        outbound prospect, a partner referral, a trade-show list) one offline
        touchpoint at its creation, whose channel is the CRM's lead source, as
        HubSpot's "Offline sources". Without it those leads and their deals are
        credited to ``(unattributed)``.
    """
    # canonical form first: optional columns the user left out are typed nulls
    tables = {k: conform(v, k) if k in TABLES else v for k, v in tables.items()}
    identities = tables.get("identities")
    if "touchpoints" in tables:
        touchpoints = conform(tables["touchpoints"], "touchpoints")
    elif "events" in tables:
        if identities is None and "leads" in tables:
            identities = stitch(tables["events"], tables["leads"])
        touchpoints = conform(
            from_events(
                tables["events"],
                identities,
                rules=rules,
                timeout_minutes=timeout_minutes,
                internal_domains=internal_domains,
            ),
            "touchpoints",
        ).select(*_TOUCH_COLUMNS)
    else:
        raise SchemaError(
            "no touchpoints: give a 'touchpoints' table, or web 'events' (with 'leads' to "
            f"stitch visitors to people). Tables given: {sorted(tables)}."
        )
    if lead_source_touches and "leads" in tables:
        touchpoints = touchpoints.union(_lead_source_touches(tables["leads"], touchpoints))
    if "conversions" in tables:
        conversions = tables["conversions"]
    elif "leads" in tables and "opportunities" in tables:
        conversions = conversions_from_crm(
            tables["leads"],
            tables["opportunities"],
            fx_rates=tables.get("fx_rates"),
            reporting_currency=reporting_currency,
        )
    elif "leads" in tables:
        conversions = conversions_from_crm(tables["leads"], None, kinds=("lead",))
    else:
        raise SchemaError(
            "no conversions: give a 'conversions' table, or 'leads' and 'opportunities' to "
            f"build lead, opportunity and won milestones. Tables given: {sorted(tables)}."
        )
    return ClosedLoop(identities=identities, touchpoints=touchpoints, conversions=conversions)
