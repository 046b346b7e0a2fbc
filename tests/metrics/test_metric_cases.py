"""Hand-computed metric cases kept as data (tests/metrics/cases/*.json), each with its arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from revloop import metrics
from revloop.schema import TABLES

CASES = [
    case
    for path in sorted((Path(__file__).parent / "cases").glob("*.json"))
    for case in json.loads(path.read_text())["cases"]
]


def _frame(name: str, rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    spec = TABLES[name]
    for col in df.columns:
        if col in spec.names:
            dtype = spec.column(col).dtype
            if dtype == "timestamp":
                df[col] = pd.to_datetime(df[col], format="ISO8601")
            elif dtype == "date":
                df[col] = pd.to_datetime(df[col], format="ISO8601").dt.date
            elif dtype in ("float64",):
                df[col] = df[col].astype("float64")
            elif dtype == "string":
                df[col] = df[col].astype("string")
    return df


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_hand_computed(case, con):
    tables = {
        name: con.create_table(f"{name}_{i}", _frame(name, rows), overwrite=True)
        for i, (name, rows) in enumerate(case["tables"].items())
    }
    result = metrics.compute(
        case["metric"], tables, **case.get("scope", {}), **case.get("params", {})
    )
    got = con.execute(result.table)
    if "expected" in case:
        assert len(got) == 1, case["why"]
        for key, expected in case["expected"].items():
            if expected is None:  # null: unknown, never a number standing in for it
                assert pd.isna(got[key].iloc[0]), f"{key}: {case['why']}"
                continue
            assert got[key].iloc[0] == pytest.approx(expected, abs=1e-9), f"{key}: {case['why']}"
    else:
        rows = case["expected_rows"]
        assert len(got) == len(rows), case["why"]
        for i, row in enumerate(rows):
            for key, expected in row.items():
                actual = got[key].iloc[i]
                if expected is None:
                    assert pd.isna(actual), f"row {i} {key}: {case['why']}"
                elif isinstance(expected, str):
                    assert str(actual)[: len(expected)] == expected, f"row {i} {key}: {case['why']}"
                else:
                    assert actual == pytest.approx(expected, abs=1e-9), (
                        f"row {i} {key}: {case['why']}"
                    )


def test_every_metric_has_a_case():
    covered = {c["metric"] for c in CASES}
    assert set(metrics.list_metrics()) <= covered, set(metrics.list_metrics()) - covered
