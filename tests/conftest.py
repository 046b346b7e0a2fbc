from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

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
