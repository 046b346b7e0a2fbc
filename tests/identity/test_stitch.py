"""Identity stitching: multi-device, shared computers, CRM ids, click ids."""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import ibis.expr.types as ir
import pytest

import revloop
import revloop.identity
from revloop.exceptions import ConfigError, SchemaError
from revloop.identity import stitch
from revloop.schema import schema

T0 = dt.datetime(2024, 5, 1, 9, 0, 0)


def _events(rows: list[dict[str, Any]]) -> ir.Table:
    spec = schema("events")
    full = []
    for i, r in enumerate(rows):
        r = dict(r)
        r["occurred_at"] = T0 + dt.timedelta(hours=r.pop("h"))
        r.setdefault("event_id", f"e{i + 1:02d}")
        r.setdefault("event_type", "page_view")
        full.append(r)
    return ibis.memtable({n: [r.get(n) for r in full] for n in spec.names}, schema=spec)


def _leads(rows: list[dict[str, Any]]) -> ir.Table:
    spec = schema("leads")
    full = [{"created_at": T0, **r} for r in rows]
    return ibis.memtable({n: [r.get(n) for r in full] for n in spec.names}, schema=spec)


LEADS = _leads(
    [
        {"lead_id": "L-ann", "person_id": "ann", "email_hash": "H-ANN"},
        {"lead_id": "L-bob", "person_id": "bob", "email_hash": "h-bob", "click_id": "gclid-bob"},
        {"lead_id": "1042", "person_id": "cat", "email_hash": "h-cat"},
    ]
)


def _rows(t: ir.Table) -> list[tuple[str, str, dt.datetime, str]]:
    out = revloop.engine.to_pandas(t.order_by("anonymous_id"))
    return [
        (r.anonymous_id, r.person_id, r.linked_at.to_pydatetime(), r.method)
        for r in out.itertuples()
    ]


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def test_one_person_many_devices_linked_at_first_sighting() -> None:
    ev = _events(
        [
            {"anonymous_id": "laptop", "h": 1},
            {"anonymous_id": "laptop", "h": 2, "event_type": "form_submit", "email_hash": "h-ann"},
            # a second form fill later does not move linked_at
            {"anonymous_id": "laptop", "h": 9, "event_type": "form_submit", "email_hash": "h-ann"},
            {"anonymous_id": "phone", "h": 5, "event_type": "identify", "email_hash": " h-ann "},
        ]
    )
    assert _rows(stitch(ev, LEADS)) == [
        ("laptop", "ann", at(2), "email"),  # hashes compared trimmed, case-insensitively
        ("phone", "ann", at(5), "email"),
    ]


@pytest.mark.parametrize(("conflict", "person", "hours"), [("first", "ann", 3), ("last", "bob", 7)])
def test_shared_computer_conflict_policy(conflict: Any, person: str, hours: int) -> None:
    ev = _events(
        [
            {"anonymous_id": "kiosk", "h": 3, "event_type": "form_submit", "email_hash": "h-ann"},
            {"anonymous_id": "kiosk", "h": 7, "event_type": "form_submit", "email_hash": "h-bob"},
            {"anonymous_id": "kiosk", "h": 8, "event_type": "form_submit", "email_hash": "h-ann"},
        ]
    )
    assert _rows(stitch(ev, LEADS, conflict=conflict)) == [("kiosk", person, at(hours), "email")]


def test_shared_computer_tie_goes_to_smaller_person_id() -> None:
    ev = _events(
        [
            {"anonymous_id": "kiosk", "h": 3, "event_type": "form_submit", "email_hash": "h-cat"},
            {"anonymous_id": "kiosk", "h": 3, "event_type": "form_submit", "email_hash": "h-bob"},
        ]
    )
    assert _rows(stitch(ev, LEADS)) == [("kiosk", "bob", at(3), "email")]
    assert _rows(stitch(ev, LEADS, conflict="last")) == [("kiosk", "bob", at(3), "email")]


def test_crm_id_from_identify_properties() -> None:
    ev = _events(
        [
            # $.crm_id naming a lead id, as a JSON number
            {
                "anonymous_id": "d1",
                "h": 1,
                "event_type": "identify",
                "properties": '{"crm_id": 1042}',
            },
            # $.person_id naming a person directly
            {
                "anonymous_id": "d2",
                "h": 2,
                "event_type": "identify",
                "properties": '{"person_id": "ann"}',
            },
            # $.crm_id wins over $.person_id
            {
                "anonymous_id": "d3",
                "h": 3,
                "event_type": "identify",
                "properties": '{"crm_id": "L-bob", "person_id": "ann"}',
            },
            # an id no lead has: ignored rather than inventing a person
            {
                "anonymous_id": "d4",
                "h": 4,
                "event_type": "identify",
                "properties": '{"crm_id": "zzz"}',
            },
            # only identify events are read
            {
                "anonymous_id": "d5",
                "h": 5,
                "event_type": "custom",
                "properties": '{"crm_id": "L-ann"}',
            },
        ]
    )
    assert _rows(stitch(ev, LEADS, methods=("crm_id",))) == [
        ("d1", "cat", at(1), "crm_id"),
        ("d2", "ann", at(2), "crm_id"),
        ("d3", "bob", at(3), "crm_id"),
    ]


def test_click_id_link() -> None:
    ev = _events(
        [
            {
                "anonymous_id": "b1",
                "h": 2,
                "url": "https://acme.com/?gclid=gclid-bob",
                "click_id": "gclid-bob",
            },
            {"anonymous_id": "b2", "h": 3, "click_id": "gclid-other"},
        ]
    )
    assert _rows(stitch(ev, LEADS)) == [("b1", "bob", at(2), "click_id")]
    assert _rows(stitch(ev, LEADS, methods=("email",))) == []


def test_method_of_the_earliest_sighting_then_methods_order() -> None:
    ev = _events(
        [
            {"anonymous_id": "b1", "h": 2, "click_id": "gclid-bob"},
            {"anonymous_id": "b1", "h": 4, "event_type": "form_submit", "email_hash": "h-bob"},
            {
                "anonymous_id": "b2",
                "h": 6,
                "event_type": "form_submit",
                "email_hash": "h-bob",
                "click_id": "gclid-bob",
            },
        ]
    )
    assert _rows(stitch(ev, LEADS)) == [
        ("b1", "bob", at(2), "click_id"),
        ("b2", "bob", at(6), "email"),
    ]
    assert _rows(stitch(ev, LEADS, methods=("click_id", "email")))[1] == (
        "b2",
        "bob",
        at(6),
        "click_id",
    )


def test_output_is_canonical_identities() -> None:
    ev = _events([{"anonymous_id": "x", "h": 1}])
    out = stitch(ev, LEADS)
    assert out.schema() == schema("identities")
    report = revloop.schema.validate(out, "identities")
    assert report.ok


def test_unknown_conflict_policy() -> None:
    with pytest.raises(ConfigError, match=r"unknown conflict policy 'newest'.*'first'"):
        stitch(_events([{"anonymous_id": "x", "h": 1}]), LEADS, conflict="newest")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("methods", "match"),
    [(("phone",), "unknown method 'phone'"), ((), "empty"), ("email", "string")],
)
def test_bad_methods(methods: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        stitch(_events([{"anonymous_id": "x", "h": 1}]), LEADS, methods=methods)


def test_missing_columns_are_named() -> None:
    ev = _events([{"anonymous_id": "x", "h": 1}])
    with pytest.raises(SchemaError, match=r"leads is missing column 'email_hash'.*methods="):
        stitch(ev, LEADS.drop("email_hash"))
    with pytest.raises(SchemaError, match="events is missing column 'anonymous_id'"):
        stitch(ev.drop("anonymous_id"), LEADS)
    # the column is only needed by the method that reads it
    assert _rows(stitch(ev, LEADS.drop("email_hash"), methods=("click_id",))) == []


def test_exported_names() -> None:
    public = {n for n in dir(revloop.identity) if not n.startswith("_")} - {"annotations"}
    assert set(revloop.identity.__all__) == public
