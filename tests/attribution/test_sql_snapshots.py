"""Golden SQL of key expressions, for DuckDB and Snowflake (STYLE.md §9.3).

A change in the generated SQL shows up as a diff of these files. After checking the new
SQL is right, regenerate them with ``REVLOOP_UPDATE_SNAPSHOTS=1 pytest tests/attribution``.
"""

from __future__ import annotations

import os
from pathlib import Path

import ibis
import pytest

from revloop import attribution
from revloop.engine import to_sql
from revloop.schema import schema

SNAPSHOTS = Path(__file__).parent / "snapshots"


def _expressions():
    tp = ibis.table(schema("touchpoints"), name="touchpoints")
    cv = ibis.table(schema("conversions"), name="conversions")
    return {
        "w_shaped_credit": attribution.get_model("w_shaped").fit(tp).credit(cv),
        "time_decay_exposure_credit": attribution.get_model(
            "time_decay", half_life="3 days", transforms=["exposure"]
        )
        .fit(tp)
        .credit(cv),
        "first_last_summary_by_channel": attribution.summarize_many(
            [attribution.get_model("first_touch"), attribution.get_model("last_touch")], tp, cv
        ),
    }


@pytest.mark.parametrize("dialect", ["duckdb", "snowflake"])
@pytest.mark.parametrize("name", sorted(_expressions()))
def test_sql_matches_snapshot(name, dialect):
    sql = to_sql(_expressions()[name], dialect) + "\n"
    path = SNAPSHOTS / f"{name}.{dialect}.sql"
    if os.environ.get("REVLOOP_UPDATE_SNAPSHOTS") == "1":
        path.write_text(sql)
    assert path.exists(), f"no snapshot {path.name}; run with REVLOOP_UPDATE_SNAPSHOTS=1"
    assert sql == path.read_text()
