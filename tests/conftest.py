from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest

import revloop


@pytest.fixture
def con():
    """A fresh in-memory DuckDB backend."""
    c = revloop.connect()
    yield c
    c.disconnect()


@pytest.fixture(scope="session")
def spark_con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local PySpark session (2 cores) for every conformance test: it takes seconds to start."""
    pytest.importorskip("pyspark")
    import ibis
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("revloop-tests")
        # a fresh warehouse: a second create_table otherwise fails with LOCATION_ALREADY_EXISTS
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("warehouse")))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield ibis.pyspark.connect(session)
    session.stop()


def truncate_at(frames: dict[str, pd.DataFrame], t: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """What the CRM held at instant t: later rows gone, later closes not yet happened."""
    o = frames["opportunities"]
    o = o[o.created_at <= t].copy()
    later = o.closed_at.notna() & (o.closed_at > t)
    o.loc[later, "closed_at"] = pd.NaT
    o.loc[later, "status"] = "open"
    # today's stage/amount/close_date of a still-open deal are not features: scramble them
    o.loc[later, "amount"] = -1.0
    o.loc[later, "stage"] = "Closed Won"
    h = frames["stage_history"]
    a = frames["activities"]
    ld = frames["leads"]
    fx = frames["fx_rates"]
    return {
        "opportunities": o,
        "stage_history": h[h.changed_at <= t],
        "activities": a[a.occurred_at <= t],
        "leads": ld[ld.created_at <= t],
        "fx_rates": fx[pd.to_datetime(fx.date) <= t],
    }


@pytest.fixture
def truncate() -> Callable[[dict[str, pd.DataFrame], pd.Timestamp], dict[str, pd.DataFrame]]:
    """What the CRM held at an instant (see :func:`truncate_at`)."""
    return truncate_at
