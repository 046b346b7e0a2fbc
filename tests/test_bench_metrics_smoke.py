"""The metrics benchmark's pandas baseline computes the same figures as revloop.

``benches/bench_metrics.py`` times revloop's metric panel against a plain pandas script
(``benches/pandas_panel.py``) and is only a fair comparison while the script computes
revloop's figures. This test keeps it honest on a small company from
``benches/_crm.py``: one request of every metric (and the headlines whose arithmetic
differs from the trend's) must agree to a relative 1e-6 on every compared column. The
benchmark itself compares all the panel's requests at full size.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow.parquet as pq
import pytest

import revloop
from revloop import engine, metrics

BENCHES = Path(__file__).resolve().parents[1] / "benches"

#: (metric, period) requests compared: every metric once, every pandas code path once.
REQUESTS = [
    ("speed_to_lead", "month"),
    ("lead_contact_rate", None),
    ("lead_to_opportunity_rate", "month"),
    ("conversion_by_response_time", None),
    ("average_deal_size", None),
    ("win_rate", "month"),
    ("sales_cycle", "month"),
    ("pipeline_velocity", "month"),
    ("pipeline_coverage", "month"),
    ("stage_conversion", None),
    ("time_in_stage", None),
    ("slippage", "month"),
    ("pipeline_waterfall", "month"),
    ("mrr", None),
    ("arr", "month"),
    ("mrr_movements", None),
    ("mrr_movements", "month"),
    ("net_new_mrr", None),
    ("customer_churn_rate", None),
    ("mrr_churn_rate", "month"),
    ("quick_ratio", None),
    ("nrr", None),
    ("grr", "month"),
    ("arpa", None),
    ("asp", "month"),
    ("ltv", None),
    ("cohort_retention", None),
]


@pytest.fixture(scope="module")
def bench() -> Iterator[dict[str, ModuleType]]:
    sys.path.insert(0, str(BENCHES))
    try:
        import _crm
        import bench_metrics
        import pandas_panel

        yield {"crm": _crm, "pandas": pandas_panel, "bench": bench_metrics}
    finally:
        sys.path.remove(str(BENCHES))


@pytest.fixture(scope="module")
def company(bench: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("crm")
    for name, table in bench["crm"].generate(1000, seed=3).items():
        pq.write_table(table, folder / f"{name}.parquet")
    return folder


@pytest.fixture(scope="module")
def loaded(company: Path) -> Iterator[tuple[Any, Any]]:
    con = revloop.connect()
    yield con, revloop.read_dir(con, company)  # raises on any blocking problem
    con.disconnect()


def test_generated_exports_are_canonical(loaded):
    _, data = loaded
    assert data.report.ok, data.report.issues
    assert set(data) == {
        "leads",
        "activities",
        "opportunities",
        "stage_history",
        "subscriptions",
        "fx_rates",
    }
    n = {name: revloop.execute(t.count()) for name, t in data.items()}
    assert (n["leads"], n["opportunities"]) == (1000, 200)
    assert 5 * n["opportunities"] < n["stage_history"] < 10 * n["opportunities"]


def test_pandas_baseline_agrees_with_revloop(bench, company, loaded):
    crm, pandas_panel, bench_metrics = bench["crm"], bench["pandas"], bench["bench"]
    target = 1e5
    con, data = loaded
    tables = dict(data)
    p = metrics.panel(tables, start=crm.START, end=crm.END, target=target)
    wanted = [r for r in p.requests if (r.name, r.period) in REQUESTS]
    assert len(wanted) == len(REQUESTS)
    ours = {
        (m.request.name, m.request.period): m.frame
        for m in engine.compute_metrics(con, tables, wanted)
    }
    theirs = pandas_panel.compute_panel(
        pandas_panel.load(company), start=crm.START, end=crm.END, target=target
    )
    rows = bench_metrics.agreement(ours, theirs)
    bad = [r for r in rows if not r["agree"]]
    assert not bad, "\n".join(
        f"{r['metric']}/{r['period']}: rows {r.get('rows_revloop')} vs {r.get('rows_pandas')}, "
        f"max rel. diff {r.get('max_rel_diff')} in {r.get('worst_column')}"
        for r in bad
    )
    assert all(r["columns"] >= 2 for r in rows)  # figures were compared, not just keys
