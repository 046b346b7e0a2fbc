"""The metric panel and the batch runner: shared tables change speed, never figures.

Also the FX lookup every money metric uses (latest rate on or before the day, found
without an inequality join): hand cases with the arithmetic in the comments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import ibis
import pandas as pd
import pytest

import revloop
from revloop import engine, metrics
from revloop.attribution import to_reporting_currency
from revloop.metrics._mrr import LEDGER_POLICIES, ledger_key, months_key, totals_key
from revloop.metrics._registry import Scope
from revloop.synthetic import demo_company


@pytest.fixture(scope="module")
def company() -> Iterator[tuple[Any, dict[str, Any]]]:
    con = revloop.connect()
    tables = dict(demo_company(con, seed=3, n_people=2500, months=15).tables())
    yield con, tables
    con.disconnect()


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(list(df.columns)).reset_index(drop=True)


def test_batch_equals_one_by_one(company):
    con, tables = company
    p = metrics.panel(tables, start="2024-03-01", end="2024-09-01", target=250_000.0)
    assert not p.skipped, p.skipped
    names = {r.name for r in p.requests}
    assert names == set(metrics.list_metrics())
    batch = engine.compute_metrics(con, tables, p.requests)
    assert [m.request for m in batch] == list(p.requests)
    for m in batch:
        r = m.request
        alone = metrics.compute(
            r.name, tables, period=r.period, start=r.start, end=r.end, **dict(r.params)
        )
        assert m.result.policy == alone.policy
        want = engine.to_pandas(alone.table, con)
        pd.testing.assert_frame_equal(_sorted(m.frame), _sorted(want), check_dtype=True)


@pytest.mark.parametrize("by", ["source", "person_id", "hour_of_week"])
def test_grouped_lead_metrics_in_a_batch_equal_one_by_one(company, by):
    # the shared lead base leaves lead columns out unless a request groups by one
    con, tables = company
    reqs = [
        metrics.Request(name, by=by)
        for name in ("speed_to_lead", "lead_contact_rate", "lead_to_opportunity_rate")
    ]
    keys = {
        k for r in reqs for k in metrics.shared_tables(r.name, tables, scope=r.scope, **r.params)
    }
    assert len(keys) == 1
    assert f"keep={by}" in next(iter(keys))
    for m in engine.compute_metrics(con, tables, reqs):
        alone = metrics.compute(m.request.name, tables, by=by)
        want = engine.to_pandas(alone.table, con)
        assert len(want) > 1
        pd.testing.assert_frame_equal(_sorted(m.frame), _sorted(want), check_dtype=True)


def test_ledger_is_built_once_per_policy_set(company):
    con, tables = company
    reqs = [
        metrics.Request("mrr"),
        metrics.Request("nrr", period="month"),
        metrics.Request("customer_churn_rate", {"convention": "stripe"}),
        # another policy set: its own ledger
        metrics.Request("mrr", {"churn_recognition": "at_cancel"}),
        # b2c_daily counts days, not the ledger
        metrics.Request("customer_churn_rate", {"convention": "b2c_daily"}),
    ]
    keys: set[str] = set()
    for r in reqs:
        keys |= set(metrics.shared_tables(r.name, tables, scope=r.scope, **dict(r.params)))
    defaults = {p.name: p.default for p in LEDGER_POLICIES}
    at_cancel = {**defaults, "churn_recognition": "at_cancel"}
    # each ledger, its monthly totals (all requests group by nothing) and, for the
    # metrics of period totals, those totals over the whole ledger
    assert keys == {
        ledger_key(Scope(), defaults),
        months_key(Scope(), defaults),
        totals_key(Scope(), defaults),
        ledger_key(Scope(), at_cancel),
        months_key(Scope(), at_cancel),
        totals_key(Scope(), at_cancel),
    }
    seen: list[str] = []
    engine.compute_metrics(con, tables, reqs, on_done=lambda m: seen.append(m.request.name))
    assert seen == [r.name for r in reqs]


def test_ledger_key_names_window_and_policies():
    a = ledger_key(Scope(start="2024-01-01", end="2025-01-01"), {"discounts": "apply"})
    b = ledger_key(Scope(start="2024-06-01", end="2025-01-01"), {"discounts": "apply"})
    # the start only filters the shared whole-history ledger
    assert a == b == "mrr_ledger(end=2025-01-01, as_of=None, discounts=apply)"
    assert ledger_key(Scope(as_of="2024-05-01"), {}) != ledger_key(Scope(), {})


def test_panel_skips_with_reasons():
    p = metrics.panel({"leads", "activities"})
    assert {r.name for r in p.requests} == {"speed_to_lead", "lead_contact_rate"}
    assert p.skipped["pipeline_waterfall"] == "needs the table(s) stage_history, opportunities"
    p = metrics.panel({"opportunities", "stage_history"})
    assert p.skipped["pipeline_coverage"] == "needs a revenue target per period"
    assert p.skipped["pipeline_waterfall"] == "needs a window (start and end)"
    p = metrics.panel(
        {"opportunities", "stage_history"},
        names=["pipeline_coverage", "stage_conversion"],
        params={"pipeline_coverage": {"target": 10.0}},
    )
    # row metrics get no trend; the others a headline and a trend
    assert [(r.name, r.period) for r in p.requests] == [
        ("pipeline_coverage", None),
        ("pipeline_coverage", "month"),
        ("stage_conversion", None),
    ]
    assert p.requests[0].params == {"target": 10.0}


def test_unknown_metric_in_batch_is_an_error(company):
    con, tables = company
    with pytest.raises(revloop.exceptions.UnknownModelError, match="unknown metric 'mrrr'"):
        engine.compute_metrics(con, tables, ["mrrr"])


@pytest.mark.parametrize(
    ("requests", "table"),
    [
        (["pipeline_coverage"], "opportunities"),  # a metric with shared builds
        (["mrr", "win_rate"], "opportunities"),  # ...after another that has its tables
        (["average_deal_size"], "opportunities"),  # a metric that shares nothing
        (["win_rate", "mrr"], "subscriptions"),
    ],
)
def test_a_batch_missing_a_table_names_it_before_building_anything(company, requests, table):
    con, tables = company
    given = {k: v for k, v in tables.items() if k != table}
    before = _temp_tables(con)
    with pytest.raises(
        revloop.exceptions.SchemaError, match=rf"needs the table\(s\) \['{table}'\]"
    ):
        engine.compute_metrics(con, given, requests)
    # nothing was materialised (and so nothing is left behind)
    assert _temp_tables(con) == before


def test_fx_latest_rate_on_or_before_the_day():
    con = revloop.connect()
    t = ibis.memtable(
        {
            "id": [1, 2, 3, 4, 5, 6, 7],
            "amount": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0],
            "currency": ["eur", "EUR", "USD", None, "GBP", "EUR", "EUR"],
            "occurred_at": [
                dt.datetime(2024, 1, 1, 23),
                dt.datetime(2024, 1, 3),
                dt.datetime(2024, 1, 2),
                dt.datetime(2024, 1, 2),
                dt.datetime(2024, 1, 5),
                dt.datetime(2023, 12, 31),
                None,
            ],
            "amount_reporting": [0.0] * 7,  # replaced, never duplicated
        }
    )
    fx = ibis.memtable(
        {
            "date": [dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 2)],
            "currency": ["EUR", "EUR", "USD"],
            "rate_to_reporting": [1.1, 1.2, 1.0],
        }
    )
    got = con.to_pandas(to_reporting_currency(t, fx).order_by("id"))
    assert list(got.columns) == ["id", "amount", "currency", "occurred_at", "amount_reporting"]
    want = [
        10.0 * 1.1,  # 1 Jan 23:00: the 1 Jan rate (case-insensitive currency)
        20.0 * 1.2,  # 3 Jan: no rate that day, the latest before (2 Jan)
        30.0,  # already USD
        40.0,  # no currency: taken as the reporting currency
        None,  # GBP has no rate at all
        None,  # EUR before its first rate
        None,  # no date
    ]
    for g, w in zip(got.amount_reporting, want, strict=True):
        assert (pd.isna(g) and w is None) or g == pytest.approx(w)
    con.disconnect()


def _temp_tables(con: Any) -> set[str]:
    rows = con.con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    return {r[0] for r in rows}


def test_shared_tables_are_dropped_after_a_batch(company):
    con, tables = company
    before = _temp_tables(con)
    engine.compute_metrics(con, tables, ["mrr", "stage_conversion", "speed_to_lead"])
    assert _temp_tables(con) == before


def test_a_batch_restores_ibis_options_even_when_it_stops_midway(company):
    """The runner turns Ibis's ``sql.fuse_selects`` off while it compiles, and back."""
    import ibis

    con, tables = company
    assert ibis.options.sql.fuse_selects is True
    engine.compute_metrics(con, tables, ["mrr"])
    assert ibis.options.sql.fuse_selects is True
    seen = []

    def fail(frame: engine.MetricFrame) -> None:
        seen.append(ibis.options.sql.fuse_selects)
        raise RuntimeError("stopped by the caller")

    with pytest.raises(RuntimeError, match="stopped by the caller"):
        engine.compute_metrics(con, tables, ["mrr", "arr"], on_done=fail)
    assert seen == [False]
    assert ibis.options.sql.fuse_selects is True


def test_each_metric_declares_every_table_it_reads(company):
    """A metric computed from only its declared tables (required and optional) gives the
    same figures as from every table: the CLI reads just those, so a bad file elsewhere
    does not block it, and nothing it reads is missed."""
    con, tables = company
    differ = []
    for name in metrics.list_metrics():
        d = metrics.get_metric(name)
        # as of a date: the path that reads the most tables (stage history for deals)
        kw: dict[str, Any] = {"start": "2024-03-01", "end": "2024-09-01", "as_of": "2024-08-15"}
        if name == "pipeline_coverage":
            kw["target"] = 1000.0
        declared = {k: v for k, v in tables.items() if k in {*d.tables, *d.optional_tables}}
        full = _sorted(engine.to_pandas(metrics.compute(name, tables, **kw).table, con))
        alone = _sorted(engine.to_pandas(metrics.compute(name, declared, **kw).table, con))
        if not full.equals(alone):
            differ.append(name)
    assert differ == [], differ
