"""Stitch anonymous visitor ids to the people they turn out to be (compute layer)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Literal, assert_never, get_args

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from revloop.exceptions import ConfigError, SchemaError

__all__ = ["CRM_ID_PROPERTIES", "METHODS", "Conflict", "Method", "stitch"]

Method = Literal["email", "crm_id", "click_id"]
Conflict = Literal["first", "last"]

METHODS: tuple[str, ...] = get_args(Method)
_CONFLICTS: tuple[str, ...] = get_args(Conflict)

#: Keys of an identify event's ``properties`` read as a CRM id, in priority order.
CRM_ID_PROPERTIES: tuple[str, ...] = ("crm_id", "person_id")

_OUT = ibis.schema(
    {"anonymous_id": "string", "person_id": "string", "linked_at": "timestamp", "method": "string"}
)


def _require(table: ir.Table, name: str, columns: Mapping[str, str], purpose: str) -> None:
    schema = table.schema()
    problems = []
    for col, kind in columns.items():
        if col not in schema:
            problems.append(f"{name} is missing column {col!r} ({kind}), needed by {purpose}")
            continue
        actual = schema[col]
        ok = (
            actual.is_null()
            or (kind == "timestamp" and actual.is_timestamp())
            or (kind == "string" and actual.is_string())
            or (kind == "json" and (actual.is_json() or actual.is_string()))
        )
        if not ok:
            problems.append(f"{name}.{col} is {actual}, expected {kind} (needed by {purpose})")
    if problems:
        raise SchemaError(
            "; ".join(problems) + f". Found columns: {list(schema.names)}. Add or cast the column "
            f"(revloop.schema.conform({name}, {name!r}, column_map=...)), or leave the method out "
            f"of methods=."
        )


def _clean(col: ir.Value) -> ir.StringValue:
    return col.cast("string").strip().nullif("")


def _methods(methods: Iterable[str]) -> tuple[Method, ...]:
    if isinstance(methods, str):
        raise ConfigError(
            f"methods must be a tuple of method names, got the string {methods!r}. "
            f"Pass methods=({methods!r},)."
        )
    out: list[Method] = []
    for m in methods:
        if m not in METHODS:
            raise ConfigError(
                f"stitch: unknown method {m!r}. Expected a subset of {list(METHODS)}."
            )
        if m not in out:
            out.append(m)  # type: ignore[arg-type]  # narrowed by the check above
    if not out:
        raise ConfigError(f"stitch: methods is empty. Pass at least one of {list(METHODS)}.")
    return tuple(out)


def _email_links(events: ir.Table, leads: ir.Table) -> ir.Table:
    _require(events, "events", {"email_hash": "string"}, "stitch method 'email'")
    _require(leads, "leads", {"email_hash": "string"}, "stitch method 'email'")
    ev = events.select(
        anonymous_id=events.anonymous_id.cast("string"),
        seen_at=events.occurred_at,
        key=_clean(events.email_hash).lower(),
    )
    ld = leads.select(
        person_id=leads.person_id.cast("string"), key=_clean(leads.email_hash).lower()
    )
    ev = ev.filter(ev.key.notnull())
    ld = ld.filter(ld.key.notnull(), ld.person_id.notnull()).distinct()
    j = ev.join(ld, "key")
    return j.select("anonymous_id", "person_id", "seen_at", method=ibis.literal("email"))


def _property(props: ir.Value, key: str) -> ir.StringValue:
    # Read with a regex on the JSON text rather than Ibis's JSON unwrap ops: on
    # PySpark those compile to a pandas UDF (Python workers, pandas needed on every
    # executor); the regex runs natively on DuckDB and Spark alike (checked equal).
    # A string id ("L-1") or an integer one (1042), at the first occurrence of the key.
    pattern = rf'"{re.escape(key)}"\s*:\s*"?([^",}}\s]+)'
    return props.cast("string").re_extract(pattern, 1).nullif("")


def _crm_links(events: ir.Table, leads: ir.Table) -> ir.Table:
    _require(events, "events", {"properties": "json", "event_type": "string"}, "stitch 'crm_id'")
    ids = events.filter(events.event_type == "identify")
    crm = ibis.coalesce(*[_property(ids.properties, k) for k in CRM_ID_PROPERTIES])
    ev = ids.select(
        anonymous_id=ids.anonymous_id.cast("string"), seen_at=ids.occurred_at, crm_id=crm
    )
    ev = ev.filter(ev.crm_id.notnull())
    # one lookup of every id a CRM may send -> person: the person id itself, and the lead id
    lookup = leads.select(crm_id=_clean(leads.person_id), person_id=leads.person_id.cast("string"))
    if "lead_id" in leads.columns:
        by_lead = leads.select(
            crm_id=_clean(leads.lead_id), person_id=leads.person_id.cast("string")
        )
        lookup = lookup.union(by_lead, distinct=False)
    lookup = lookup.filter(lookup.crm_id.notnull(), lookup.person_id.notnull()).distinct()
    j = ev.join(lookup, "crm_id")
    return j.select("anonymous_id", "person_id", "seen_at", method=ibis.literal("crm_id"))


def _click_links(events: ir.Table, leads: ir.Table) -> ir.Table:
    _require(events, "events", {"click_id": "string"}, "stitch method 'click_id'")
    _require(leads, "leads", {"click_id": "string"}, "stitch method 'click_id'")
    ev = events.select(
        anonymous_id=events.anonymous_id.cast("string"),
        seen_at=events.occurred_at,
        key=_clean(events.click_id),
    )
    ld = leads.select(person_id=leads.person_id.cast("string"), key=_clean(leads.click_id))
    ev = ev.filter(ev.key.notnull())
    ld = ld.filter(ld.key.notnull(), ld.person_id.notnull()).distinct()
    j = ev.join(ld, "key")
    return j.select("anonymous_id", "person_id", "seen_at", method=ibis.literal("click_id"))


def stitch(
    events: ir.Table,
    leads: ir.Table,
    *,
    methods: Iterable[Method] = ("email", "crm_id", "click_id"),
    conflict: Conflict = "first",
) -> ir.Table:
    """Link anonymous visitor ids to people: the canonical ``identities`` table.

    Links are found three ways (``methods``):

    - ``"email"``: an event carrying an ``email_hash`` (a form fill or an
      ``identify`` call; any event type counts) whose hash equals a lead's
      ``email_hash`` (compared trimmed, lower-cased) -> that lead's ``person_id``;
    - ``"crm_id"``: an ``identify`` event whose ``properties`` JSON has
      ``$.crm_id`` or else ``$.person_id`` (a string or an integer) equal to a
      lead's ``person_id`` or ``lead_id`` -> that lead's ``person_id``. Ids that
      match no lead are ignored, so a typo cannot invent a person;
    - ``"click_id"``: an event whose ``click_id`` equals a lead's ``click_id`` (the
      gclid / li_fat_id captured with the form) -> that lead's ``person_id``.

    One person may have many anonymous ids (laptop, phone, a cleared cookie): each
    gets its own row. One anonymous id seen with several people (a shared
    computer, a forwarded email) keeps **one** person, chosen by ``conflict``:

    - ``"first"`` (default): the person linked earliest keeps the device, so every
      visit on it (before and after) is credited to them — the visits that led to
      the first conversion stay with it;
    - ``"last"``: the person linked most recently.

    Ties (same ``linked_at``) go to the smaller ``person_id``. The other links are
    dropped (they would credit the same visits twice).

    Input: canonical ``events`` (``anonymous_id``, ``occurred_at``, and per method
    ``email_hash`` / ``event_type`` + ``properties`` / ``click_id``) and canonical
    ``leads`` (``person_id``, and ``email_hash`` / ``lead_id`` / ``click_id``).
    Output: ``anonymous_id``, ``person_id``, ``linked_at`` (when the link was
    first seen: the earliest matching event), ``method`` (the method of that
    earliest event; on a tie, the earlier one in ``methods``). One row per
    ``anonymous_id``.

    Raises
    ------
    ConfigError
        For an unknown method or conflict policy.
    SchemaError
        If a column a requested method needs is missing.

    Examples
    --------
    >>> import revloop, datetime as dt
    >>> t0 = dt.datetime(2024, 5, 1, 9, 0)
    >>> ev = ibis.memtable({
    ...     "event_id": ["e1", "e2", "e3"], "anonymous_id": ["laptop", "phone", "laptop"],
    ...     "occurred_at": [t0, t0 + dt.timedelta(days=1), t0 + dt.timedelta(days=2)],
    ...     "event_type": ["form_submit", "form_submit", "page_view"],
    ...     "email_hash": ["h-ann", "h-ann", None], "click_id": [None, None, None],
    ...     "properties": [None, None, None],
    ... }, schema={"event_id": "string", "anonymous_id": "string", "occurred_at": "timestamp",
    ...            "event_type": "string", "email_hash": "string", "click_id": "string",
    ...            "properties": "json"})
    >>> leads = ibis.memtable({"lead_id": ["L1"], "person_id": ["ann"], "email_hash": ["h-ann"],
    ...                        "click_id": [None]}, schema={"lead_id": "string",
    ...                        "person_id": "string", "email_hash": "string", "click_id": "string"})
    >>> out = revloop.engine.to_pandas(stitch(ev, leads).order_by("anonymous_id"))
    >>> out[["anonymous_id", "person_id", "method"]].values.tolist()
    [['laptop', 'ann', 'email'], ['phone', 'ann', 'email']]
    """
    chosen = _methods(methods)
    if conflict not in _CONFLICTS:
        raise ConfigError(
            f"stitch: unknown conflict policy {conflict!r}. Expected one of {list(_CONFLICTS)}: "
            "'first' keeps the person linked earliest to a shared anonymous id, 'last' the latest."
        )
    _require(
        events,
        "events",
        {"anonymous_id": "string", "occurred_at": "timestamp"},
        "stitch",
    )
    _require(leads, "leads", {"person_id": "string"}, "stitch")

    parts: list[ir.Table] = []
    for m in chosen:
        if m == "email":
            part = _email_links(events, leads)
        elif m == "crm_id":
            part = _crm_links(events, leads)
        elif m == "click_id":
            part = _click_links(events, leads)
        else:
            assert_never(m)
        parts.append(part.mutate(priority=ibis.literal(chosen.index(m), type=dt.int64)))
    links = parts[0]
    for p in parts[1:]:
        links = links.union(p, distinct=False)
    links = links.filter(links.anonymous_id.notnull(), links.seen_at.notnull())

    # one row per (anonymous id, person): the first time the link was seen, and how
    pair = ibis.window(
        group_by=[links.anonymous_id, links.person_id], order_by=[links.seen_at, links.priority]
    )
    links = links.mutate(_rl_rank=ibis.row_number().over(pair))
    pairs = links.filter(links._rl_rank == 0).select(
        "anonymous_id", "person_id", linked_at="seen_at", method="method"
    )

    # one person per anonymous id
    if conflict == "first":
        order = [pairs.linked_at.asc(), pairs.person_id.asc()]
    elif conflict == "last":
        order = [pairs.linked_at.desc(), pairs.person_id.asc()]
    else:
        assert_never(conflict)
    device = ibis.window(group_by=pairs.anonymous_id, order_by=order)
    pairs = pairs.mutate(_rl_rank=ibis.row_number().over(device))
    out = pairs.filter(pairs._rl_rank == 0)
    return out.select(
        anonymous_id=out.anonymous_id.cast("string"),
        person_id=out.person_id.cast("string"),
        linked_at=out.linked_at.cast(_OUT["linked_at"]),
        method=out.method.cast("string"),
    )
