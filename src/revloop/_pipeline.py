"""From canonical tables to the closed loop: identities, touchpoints, conversions.

Compute layer: builds Ibis expressions, executes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import ibis.expr.types as ir

from revloop.attribution import conversions_from_crm
from revloop.exceptions import SchemaError
from revloop.identity import stitch
from revloop.touchpoints import GA4_RULES, RuleSet, from_events

__all__ = ["ClosedLoop", "closed_loop"]


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
    """
    identities = tables.get("identities")
    if "touchpoints" in tables:
        touchpoints = tables["touchpoints"]
    elif "events" in tables:
        if identities is None and "leads" in tables:
            identities = stitch(tables["events"], tables["leads"])
        touchpoints = from_events(
            tables["events"],
            identities,
            rules=rules,
            timeout_minutes=timeout_minutes,
            internal_domains=internal_domains,
        )
    else:
        raise SchemaError(
            "no touchpoints: give a 'touchpoints' table, or web 'events' (with 'leads' to "
            f"stitch visitors to people). Tables given: {sorted(tables)}."
        )
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
