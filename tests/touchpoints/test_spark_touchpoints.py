"""Stitching and touchpoints give the same rows on PySpark (local mode) as on DuckDB.

The compute layer must not tie revloop to DuckDB (DESIGN.md): windows, joins,
regexes and the channel CASE all have to run on a second Ibis backend.
"""

from __future__ import annotations

import json
from typing import Any

import ibis
import pandas as pd
import pytest

import revloop
from revloop.identity import stitch
from revloop.touchpoints import from_events

pytest.importorskip("pyspark")

from _tp_data import make_events
from test_from_events import EVENTS, _leads

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    # py4j leaves its gateway sockets to the garbage collector
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    ev = revloop.engine.to_pandas(make_events(EVENTS))
    # JSON travels as text to Spark
    ev["properties"] = [
        None if v is None or v != v else v if isinstance(v, str) else json.dumps(v)
        for v in ev["properties"]
    ]
    return ev, revloop.engine.to_pandas(_leads())


VARIANTS: list[dict[str, Any]] = [
    {},
    {"split_on_campaign_change": False, "intrasession": True, "respect_session_id": True},
]


def _run(con: Any, ev: pd.DataFrame, leads: pd.DataFrame) -> list[pd.DataFrame]:
    ev_schema = ibis.schema(
        {k: ("string" if v.is_json() else v) for k, v in make_events(EVENTS).schema().items()}
    )
    e = con.create_view("rl_events", ibis.memtable(ev, schema=ev_schema), overwrite=True)
    ld = con.create_view("rl_leads", ibis.memtable(leads, schema=_leads().schema()), overwrite=True)
    ids = stitch(e, ld).cache()  # computed once, used by every variant
    out = [con.to_pandas(ids).sort_values("anonymous_id").reset_index(drop=True)]
    for kw in VARIANTS:
        tp = from_events(e, ids, internal_domains=["acme.com"], **kw)
        out.append(con.to_pandas(tp).sort_values("touchpoint_id").reset_index(drop=True))
    return out


def test_same_rows_on_spark_and_duckdb(spark_con: Any) -> None:
    ev, leads = _frames()
    duck = _run(revloop.connect(), ev, leads)
    spark = _run(spark_con, ev, leads)
    assert [len(f) for f in duck] == [4, 7, 7]
    for a, b in zip(duck, spark, strict=True):
        pd.testing.assert_frame_equal(a.astype(str), b.astype(str))
