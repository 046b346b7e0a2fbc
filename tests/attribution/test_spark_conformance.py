"""The same attribution on a second Ibis backend (PySpark, local mode) gives the same credits.

Nothing in the compute layer may tie revloop to DuckDB (DESIGN.md): this runs every
rule-based model, with path transforms and both lookbacks, on PySpark and on DuckDB,
and compares every credit row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from revloop import attribution

pyspark = pytest.importorskip("pyspark")

pytestmark = [
    pytest.mark.spark,
    # py4j leaves its gateway sockets to the garbage collector
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def _data():
    rng = np.random.default_rng(5)
    channels = ["Direct", "Email", "Paid Search", "Organic Search", "Paid Social", "Referral"]
    rows = []
    for p in range(60):
        for k in range(int(rng.integers(0, 6))):
            rows.append(
                {
                    "touchpoint_id": f"t{p:02d}_{k}",
                    "person_id": f"p{p}",
                    "occurred_at": pd.Timestamp("2024-01-01")
                    + pd.Timedelta(minutes=int(rng.integers(0, 60 * 24 * 50))),
                    "channel": channels[int(rng.integers(0, len(channels)))],
                    "campaign": f"cmp{int(rng.integers(0, 3))}",
                }
            )
    conv = []
    for i, p in enumerate(rng.choice(60, 40, replace=False)):
        at = pd.Timestamp("2024-01-25") + pd.Timedelta(hours=int(rng.integers(0, 24 * 30)))
        kind = ["lead", "opportunity", "won"][i % 3]
        conv.append(
            {
                "conversion_id": f"c{i:02d}",
                "person_id": f"p{p}",
                "occurred_at": at,
                "value": round(float(rng.uniform(10, 1000)), 2),
                "kind": kind,
                "lead_created_at": at - pd.Timedelta(days=int(rng.integers(0, 20))),
                "opportunity_created_at": at - pd.Timedelta(days=int(rng.integers(0, 5))),
            }
        )
    return pd.DataFrame(rows), pd.DataFrame(conv)


def _models():
    base = [attribution.get_model(n) for n in attribution.RULE_BASED]
    transformed = [
        attribution.get_model(
            n,
            lookback_days=20,
            lookback_steps=4,
            transforms=["exposure", ("remove_if_last_and_not_all", ["Direct"])],
        )
        for n in attribution.RULE_BASED
    ]
    return base, transformed


def _sorted(df):
    cols = ["model", "conversion_id", "touchpoint_id", "channel"]
    return df.sort_values(cols, na_position="first").reset_index(drop=True)


@pytest.mark.parametrize("variant", ["default", "transformed"])
def test_pyspark_credits_equal_duckdb(spark_con, con, variant):
    tp, cv = _data()
    models = _models()[0 if variant == "default" else 1]
    got = {}
    for name, backend in (("duckdb", con), ("pyspark", spark_con)):
        t = backend.create_table("touchpoints_conf", tp, overwrite=True)
        c = backend.create_table("conversions_conf", cv, overwrite=True)
        got[name] = _sorted(backend.execute(attribution.credit_many(models, t, c)))
    duck, spark = got["duckdb"], got["pyspark"]
    assert len(duck) > 100
    pd.testing.assert_frame_equal(
        spark[["model", "conversion_id", "touchpoint_id", "channel", "campaign", "kind"]],
        duck[["model", "conversion_id", "touchpoint_id", "channel", "campaign", "kind"]],
        check_dtype=False,
    )
    np.testing.assert_allclose(spark.weight, duck.weight, atol=1e-12)
    np.testing.assert_allclose(spark.value, duck.value, rtol=1e-12)


def test_pyspark_summary_equals_duckdb(spark_con, con):
    tp, cv = _data()
    models = _models()[0]
    out = {}
    for name, backend in (("duckdb", con), ("pyspark", spark_con)):
        t = backend.create_table("touchpoints_conf", tp, overwrite=True)
        c = backend.create_table("conversions_conf", cv, overwrite=True)
        out[name] = (
            backend.execute(attribution.summarize_many(models, t, c, by="channel"))
            .sort_values(["model", "kind", "channel"])
            .reset_index(drop=True)
        )
    pd.testing.assert_frame_equal(out["pyspark"], out["duckdb"], check_dtype=False, atol=1e-9)
