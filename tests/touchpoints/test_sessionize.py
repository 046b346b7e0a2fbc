"""Hand-computed sessionization cases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import ibis
import ibis.expr.types as ir
import pytest

import revloop
from revloop.exceptions import ConfigError, SchemaError
from revloop.touchpoints import sessionize

Events = Callable[[list[dict[str, Any]]], ir.Table]


def _sessions(t: ir.Table, **kw: Any) -> list[tuple[str, str, int]]:
    out = revloop.engine.to_pandas(sessionize(t, **kw).order_by("event_id"))
    return list(zip(out.event_id, out.session_id, out.session_index, strict=True))


def test_timeout_boundary_is_inclusive(events: Events) -> None:
    # gaps: 30:00 (stays), 30:00 (stays), 30:01 (new session)
    t = events(
        [
            {"m": 0},
            {"m": 30},
            {"m": 60},
            {"occurred_at": dt.datetime(2024, 5, 1, 10, 30, 1)},
        ]
    )
    assert _sessions(t) == [
        ("e01", "a:1", 1),
        ("e02", "a:1", 1),
        ("e03", "a:1", 1),
        ("e04", "a:2", 2),
    ]


def test_custom_timeout(events: Events) -> None:
    t = events([{"m": 0}, {"m": 10}, {"m": 21}])
    assert [s for _, s, _ in _sessions(t, timeout_minutes=10)] == ["a:1", "a:1", "a:2"]


def test_campaign_change_mid_session_splits_like_universal_analytics(events: Events) -> None:
    rows = [
        {"m": 0},  # direct arrival
        {"m": 5, "utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "may"},
        {"m": 10},  # no parameters: never splits
        # reload of the landing URL, different case: same parameters, same session
        {"m": 12, "utm_source": "Newsletter ", "utm_medium": "EMAIL", "utm_campaign": "may"},
        {"m": 15, "utm_source": "google", "utm_medium": "cpc", "click_id": "g-1"},
        {"m": 16, "utm_source": "google", "utm_medium": "cpc", "click_id": "g-2"},  # new click
    ]
    t = events(rows)
    assert [s for _, s, _ in _sessions(t)] == ["a:1", "a:2", "a:2", "a:2", "a:3", "a:4"]
    # GA4 / Snowplow: inactivity only
    assert [s for _, s, _ in _sessions(t, split_on_campaign_change=False)] == ["a:1"] * 6


def test_parameters_seen_before_a_timeout_do_not_carry_over(events: Events) -> None:
    rows = [
        {"m": 0, "utm_source": "newsletter", "utm_medium": "email"},
        # 40 min later: new session by timeout; same params again must not split it further
        {"m": 40, "utm_source": "newsletter", "utm_medium": "email"},
        {"m": 41, "utm_source": "newsletter", "utm_medium": "email"},
    ]
    assert [s for _, s, _ in _sessions(events(rows))] == ["a:1", "a:2", "a:2"]


def test_ties_are_broken_by_event_id(events: Events) -> None:
    # same instant; e01 (carrying 'y') sorts first whatever the input order
    rows = [
        {"event_id": "e02", "m": 0, "utm_source": "x", "utm_medium": "cpc"},
        {"event_id": "e01", "m": 0, "utm_source": "y", "utm_medium": "cpc"},
        {"event_id": "e03", "m": 1},
    ]
    assert _sessions(events(rows)) == [("e01", "a:1", 1), ("e02", "a:2", 2), ("e03", "a:2", 2)]


def test_visitors_are_sessionized_independently(events: Events) -> None:
    rows = [
        {"anonymous_id": "a", "m": 0},
        {"anonymous_id": "b", "m": 20},
        {"anonymous_id": "a", "m": 45},
        {"anonymous_id": "b", "m": 40},
    ]
    assert [s for _, s, _ in _sessions(events(rows))] == ["a:1", "b:1", "a:2", "b:1"]


def test_respect_session_id_keeps_the_tags_sessions(events: Events) -> None:
    rows = [
        {"m": 0, "session_id": "s-x"},
        {"m": 90, "session_id": "s-x"},  # the tag kept it open; respected
        {"m": 100, "session_id": "s-w"},
        {"m": 200, "session_id": None},  # no tag id: rebuilt (4th timeout session)
    ]
    got = _sessions(events(rows), respect_session_id=True)
    assert got == [("e01", "s-x", 1), ("e02", "s-x", 1), ("e03", "s-w", 2), ("e04", "a:3", 3)]
    rebuilt = _sessions(events(rows))
    assert [s for _, s, _ in rebuilt] == ["a:1", "a:2", "a:2", "a:3"]


def test_output_keeps_rows_and_columns(events: Events) -> None:
    t = events([{"m": 0}, {"m": 100}])
    out = sessionize(t)
    assert list(out.columns) == [*t.columns, "session_index"]
    assert out.schema()["session_index"].is_integer()
    assert revloop.engine.to_pandas(out.count().as_table()).iloc[0, 0] == 2


def test_compiles_for_spark_without_collect() -> None:
    t = ibis.table(revloop.schema.schema("events"), name="events")
    sql = ibis.to_sql(sessionize(t), "pyspark").upper()
    assert "LAG(" in sql
    assert "COLLECT" not in sql
    assert "ARRAY_SORT" not in sql


def test_missing_column_raises_schema_error() -> None:
    t = ibis.memtable({"event_id": ["e1"], "anonymous_id": ["a"]})
    with pytest.raises(SchemaError, match="events is missing column 'occurred_at'"):
        sessionize(t)


def test_string_timestamp_raises_schema_error() -> None:
    t = ibis.memtable({"event_id": ["e1"], "anonymous_id": ["a"], "occurred_at": ["2024-01-01"]})
    with pytest.raises(SchemaError, match=r"occurred_at is string, expected timestamp.*conform"):
        sessionize(t)


def test_respect_session_id_needs_the_column() -> None:
    t = ibis.memtable(
        {"event_id": ["e1"], "anonymous_id": ["a"], "occurred_at": [dt.datetime(2024, 1, 1)]}
    )
    with pytest.raises(SchemaError, match="'session_id'"):
        sessionize(t, respect_session_id=True)


@pytest.mark.parametrize("bad", [0, -5, float("nan"), "30", True])
def test_bad_timeout_raises_config_error(events: Events, bad: Any) -> None:
    with pytest.raises(ConfigError, match="timeout_minutes"):
        sessionize(events([{"m": 0}]), timeout_minutes=bad)
