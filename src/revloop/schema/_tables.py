"""The canonical tables every part of revloop speaks (``shared/DESIGN.md``).

Each table is described once, as a :class:`TableSpec`: its columns with their
Ibis type, whether they are required, and the checks that apply (key, not null,
unique, not in the future, not negative, closed set of values). The Ibis schema,
the validator and the documentation are all derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import ibis
import ibis.expr.datatypes as dt

__all__ = ["TABLES", "Column", "TableSpec", "get_spec", "schema"]


@dataclass(frozen=True)
class Column:
    """One column of a canonical table.

    Attributes
    ----------
    name
        Canonical column name.
    dtype
        Ibis type name: ``string``, ``timestamp``, ``float64``, ``int64``, ``date``,
        ``boolean`` or ``json``. Timestamps are UTC.
    required
        Missing required columns block loading; missing optional ones are added as nulls.
    key
        Part of the table's identity: never null.
    not_null
        Must be present on every row (implied by ``key``).
    past
        A timestamp that records something that happened, so it cannot lie in the future.
    nonnegative
        Money or counts that cannot be below zero.
    at_least, at_most
        Bounds a value must lie within, if any (an ``interval_count`` of at least 1, a
        ``discount`` share of at most 1).
    values
        The closed set of allowed values, if any (checked case-sensitively).
    not_before
        Another timestamp column of the same row this one cannot precede (a subscription
        row's ``ends_at`` and its ``starts_at``), and ``order_fix``, what to do about rows
        where it does. ``order_severity``: ``error`` blocks loading, ``warning`` is
        reported and the metrics that read the pair say how they treat those rows.
        ``order_by_day``: compare the days only (a close *date* at midnight and a creation
        later that day are in order).
    doc
        What the column means.
    """

    name: str
    dtype: str
    required: bool = True
    key: bool = False
    not_null: bool = False
    past: bool = False
    nonnegative: bool = False
    at_least: float | None = None
    at_most: float | None = None
    values: tuple[str, ...] | None = None
    not_before: str | None = None
    order_by_day: bool = False
    order_fix: str = ""
    order_severity: Literal["error", "warning"] = "error"
    doc: str = ""

    @property
    def ibis_type(self) -> dt.DataType:
        return dt.dtype(self.dtype)

    @property
    def must_be_present(self) -> bool:
        return self.key or self.not_null


@dataclass(frozen=True)
class TableSpec:
    """A canonical table: its grain, columns and unique key."""

    name: str
    grain: str
    columns: tuple[Column, ...]
    unique: tuple[str, ...] = ()
    doc: str = ""
    _by_name: dict[str, Column] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update({c.name: c for c in self.columns})

    def column(self, name: str) -> Column:
        return self._by_name[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def schema(self) -> ibis.Schema:
        """The table's :class:`ibis.Schema`, columns in canonical order."""
        return ibis.schema({c.name: c.ibis_type for c in self.columns})


EVENT_TYPES = ("page_view", "form_submit", "identify", "custom")
IDENTITY_METHODS = ("email", "phone", "crm_id", "click_id", "cookie")
TOUCHPOINT_KINDS = ("session", "ad_click", "email_click", "call", "event", "offline")
ACTIVITY_KINDS = ("call", "email", "meeting", "sms", "linkedin", "other")
DIRECTIONS = ("outbound", "inbound")
OPPORTUNITY_STATUSES = ("open", "won", "lost")
CONVERSION_KINDS = ("lead", "opportunity", "won")
INTERVALS = ("day", "week", "month", "year")

_C = Column

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec(
            "events",
            "one tracked web event",
            (
                _C("event_id", "string", key=True),
                _C("anonymous_id", "string", not_null=True, doc="first-party visitor cookie id"),
                _C(
                    "session_id",
                    "string",
                    required=False,
                    doc="set by the tag; rebuilt by sessionize() when absent",
                ),
                _C("occurred_at", "timestamp", not_null=True, past=True),
                _C("event_type", "string", not_null=True, values=EVENT_TYPES),
                _C("url", "string", required=False),
                _C("referrer", "string", required=False),
                _C("utm_source", "string", required=False),
                _C("utm_medium", "string", required=False),
                _C("utm_campaign", "string", required=False),
                _C("utm_term", "string", required=False),
                _C("utm_content", "string", required=False),
                _C(
                    "click_id",
                    "string",
                    required=False,
                    doc="gclid / fbclid / li_fat_id / msclkid value",
                ),
                _C(
                    "email_hash",
                    "string",
                    required=False,
                    doc="sha256 of the lower-cased email, on form_submit and identify",
                ),
                _C("properties", "json", required=False),
            ),
            unique=("event_id",),
        ),
        TableSpec(
            "identities",
            "one link between an anonymous id and a person",
            (
                _C("anonymous_id", "string", key=True),
                _C("person_id", "string", key=True),
                _C("linked_at", "timestamp", not_null=True, past=True),
                _C("method", "string", not_null=True, values=IDENTITY_METHODS),
            ),
            unique=("anonymous_id", "person_id"),
        ),
        TableSpec(
            "touchpoints",
            "one marketing interaction of a person",
            (
                _C("touchpoint_id", "string", key=True),
                _C("person_id", "string", not_null=True),
                _C("occurred_at", "timestamp", not_null=True, past=True),
                _C("channel", "string", not_null=True),
                _C("source", "string", required=False),
                _C("medium", "string", required=False),
                _C("campaign", "string", required=False),
                _C("kind", "string", required=False, values=TOUCHPOINT_KINDS),
                _C("session_id", "string", required=False),
            ),
            unique=("touchpoint_id",),
        ),
        TableSpec(
            "leads",
            "one lead / contact",
            (
                _C("lead_id", "string", key=True),
                _C("person_id", "string", not_null=True),
                _C("created_at", "timestamp", not_null=True, past=True),
                _C("source", "string", required=False),
                _C("owner_id", "string", required=False),
                _C("status", "string", required=False),
                _C("converted_at", "timestamp", required=False, past=True),
                _C("opportunity_id", "string", required=False),
                _C("segment", "string", required=False),
                _C(
                    "email_hash",
                    "string",
                    required=False,
                    doc="sha256 of the lower-cased email: stitches web visits to the lead",
                ),
                _C(
                    "click_id",
                    "string",
                    required=False,
                    doc="ad click id captured with the form (gclid, fbclid, li_fat_id)",
                ),
            ),
            unique=("lead_id",),
        ),
        TableSpec(
            "activities",
            "one sales activity",
            (
                _C("activity_id", "string", key=True),
                _C("lead_id", "string", required=False),
                _C("opportunity_id", "string", required=False),
                _C("owner_id", "string", required=False),
                _C("occurred_at", "timestamp", not_null=True, past=True),
                _C("kind", "string", not_null=True, values=ACTIVITY_KINDS),
                _C("direction", "string", required=False, values=DIRECTIONS),
                _C("outcome", "string", required=False),
            ),
            unique=("activity_id",),
        ),
        TableSpec(
            "opportunities",
            "one deal",
            (
                _C("opportunity_id", "string", key=True),
                _C("lead_id", "string", required=False),
                _C("account_id", "string", required=False),
                _C("owner_id", "string", required=False),
                _C("created_at", "timestamp", not_null=True, past=True),
                _C(
                    "closed_at",
                    "timestamp",
                    required=False,
                    past=True,
                    not_before="created_at",
                    order_by_day=True,
                    order_severity="warning",
                    order_fix="A deal cannot close before it was created; check the export "
                    "(a Salesforce CloseDate entered after the fact is often backdated). "
                    "sales_cycle leaves those deals out of its statistics and counts them.",
                ),
                _C("status", "string", not_null=True, values=OPPORTUNITY_STATUSES),
                _C("amount", "float64", required=False, nonnegative=True),
                _C("currency", "string", required=False),
                _C("stage", "string", required=False),
                _C(
                    "close_date",
                    "timestamp",
                    required=False,
                    doc="expected close date; may lie ahead",
                ),
                _C("forecast_category", "string", required=False),
                _C("segment", "string", required=False),
                _C(
                    "probability",
                    "float64",
                    required=False,
                    nonnegative=True,
                    doc=(
                        "the CRM's win probability for the stage, 0-1 (Salesforce "
                        "Probability / 100; HubSpot stage metadata)"
                    ),
                ),
            ),
            unique=("opportunity_id",),
        ),
        TableSpec(
            "stage_history",
            "one change of a deal (its state from changed_at until the next row)",
            (
                _C("opportunity_id", "string", key=True),
                _C("changed_at", "timestamp", key=True, past=True),
                _C("stage", "string", not_null=True),
                _C("amount", "float64", required=False, nonnegative=True),
                _C("close_date", "timestamp", required=False),
                _C("forecast_category", "string", required=False),
                _C(
                    "probability",
                    "float64",
                    required=False,
                    nonnegative=True,
                    doc=(
                        "the CRM's win probability for the stage, 0-1 (Salesforce "
                        "Probability / 100; HubSpot stage metadata)"
                    ),
                ),
            ),
            unique=("opportunity_id", "changed_at"),
        ),
        TableSpec(
            "subscriptions",
            "one billed item over time",
            (
                _C("customer_id", "string", not_null=True),
                _C("subscription_id", "string", key=True),
                _C("item_id", "string", key=True),
                _C("starts_at", "timestamp", not_null=True),
                _C(
                    "ends_at",
                    "timestamp",
                    required=False,
                    not_before="starts_at",
                    order_fix="A row that ends before it starts is active in no month and "
                    "would drop out of every MRR figure; fix its dates or drop the row "
                    "before loading.",
                ),
                _C("cancelled_at", "timestamp", required=False, past=True),
                _C(
                    "amount",
                    "float64",
                    not_null=True,
                    nonnegative=True,
                    doc="price per interval, before discount",
                ),
                _C("interval", "string", not_null=True, values=INTERVALS),
                _C("interval_count", "int64", required=False, at_least=1),
                _C("quantity", "float64", required=False, nonnegative=True),
                _C("discount", "float64", required=False, nonnegative=True, at_most=1.0),
                _C("currency", "string", required=False),
                _C(
                    "status",
                    "string",
                    required=False,
                    doc="the row's billing status: trial statuses and unpaid, paused, "
                    "incomplete, incomplete_expired never count in MRR",
                ),
            ),
            unique=("subscription_id", "item_id", "starts_at"),
        ),
        TableSpec(
            "spend",
            "spend of a channel/campaign on a day",
            (
                _C("date", "date", key=True),
                _C("channel", "string", key=True),
                _C("campaign", "string", required=False),
                _C("amount", "float64", not_null=True, nonnegative=True),
                _C("currency", "string", required=False),
            ),
            unique=("date", "channel", "campaign"),
        ),
        TableSpec(
            "fx_rates",
            "a rate on a day",
            (
                _C("date", "date", key=True),
                _C("currency", "string", key=True),
                _C("rate_to_reporting", "float64", not_null=True, nonnegative=True),
            ),
            unique=("date", "currency"),
        ),
        TableSpec(
            "conversions",
            "one conversion of a person (derived from leads and opportunities, or given)",
            (
                _C("conversion_id", "string", key=True),
                _C("person_id", "string", not_null=True),
                _C("occurred_at", "timestamp", not_null=True, past=True),
                _C("kind", "string", required=False, values=CONVERSION_KINDS),
                _C(
                    "value",
                    "float64",
                    required=False,
                    nonnegative=True,
                    doc="in the reporting currency; 1.0 when absent",
                ),
                _C(
                    "lead_created_at",
                    "timestamp",
                    required=False,
                    doc="milestone for U/W/full-path models",
                ),
                _C(
                    "opportunity_created_at",
                    "timestamp",
                    required=False,
                    doc="milestone for W/full-path models",
                ),
                _C("won_at", "timestamp", required=False, doc="milestone for the full-path model"),
                _C("opportunity_id", "string", required=False),
            ),
            unique=("conversion_id",),
        ),
    )
}


def get_spec(name: str) -> TableSpec:
    """The :class:`TableSpec` of a canonical table, with a helpful error for a typo."""
    from revloop.exceptions import SchemaError

    try:
        return TABLES[name]
    except KeyError:
        raise SchemaError(
            f"unknown canonical table {name!r}. Expected one of: {sorted(TABLES)}."
        ) from None


def schema(name: str) -> ibis.Schema:
    """The :class:`ibis.Schema` of canonical table ``name``.

    Examples
    --------
    >>> schema("touchpoints")["occurred_at"]
    Timestamp(timezone=None, scale=None, nullable=True)
    """
    return get_spec(name).schema()
