"""The one quantile helper of the metrics against numpy's definitions, on random data."""

from __future__ import annotations

import math
from fractions import Fraction

import ibis
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import revloop
from revloop.metrics._stats import exact_quantile, quantiles

_CON = revloop.connect()
values = st.lists(st.integers(0, 1000).map(float), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.sampled_from([0.1, 0.25, 0.5, 0.7, 0.75, 0.9, 0.99]))
def test_matches_numpy(xs, p):
    t = ibis.memtable({"x": xs, "keep": [i % 3 != 1 for i in range(len(xs))]})
    kept = sorted(x for i, x in enumerate(xs) if i % 3 != 1)
    got = _CON.to_pandas(quantiles(t, [], "x", {"lin": p, "near": p}, "linear", where=t.keep)).iloc[
        0
    ]
    near = _CON.to_pandas(quantiles(t, [], "x", {"v": p}, "nearest_rank", where=t.keep)).v[0]
    if not kept:
        assert np.isnan(got.lin)
        assert np.isnan(near)
        return
    assert got.lin == pytest.approx(np.quantile(kept, p, method="linear"))
    # nearest rank: 1-based rank ceil(n·p), computed here in exact rationals
    k = math.ceil(len(kept) * Fraction(str(p)))
    assert near == kept[max(k, 1) - 1]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.sampled_from([0.1, 0.5, 0.75, 0.9]))
def test_linear_by_ranks_equals_the_engine_aggregate(xs, p):
    # bound tables use DuckDB's quantile_cont; unbound ones (SQL for any engine, BigQuery
    # and Trino have no exact quantile in Ibis) rank the rows: the same figure
    data = {"g": [i % 2 for i in range(len(xs))], "x": xs}
    bound = ibis.memtable(data)
    assert exact_quantile(bound)
    native = _CON.to_pandas(quantiles(bound, ["g"], "x", {"q": p}, "linear").order_by("g"))
    unbound = ibis.table({"g": "int64", "x": "float64"}, name="q_rank")
    assert not exact_quantile(unbound)
    sql = ibis.to_sql(quantiles(unbound, ["g"], "x", {"q": p}, "linear").order_by("g"), "duckdb")
    assert "quantile" not in sql.lower()
    _CON.create_table("q_rank", data, overwrite=True)
    ranked_ = _CON.raw_sql(str(sql)).df()
    assert ranked_.g.tolist() == native.g.tolist()
    assert ranked_.q.tolist() == pytest.approx(native.q.tolist(), rel=1e-12)


def test_nulls_are_ignored_and_groups_separate():
    t = ibis.memtable({"g": ["a", "a", "a", "b"], "x": [1.0, None, 3.0, 7.0]})
    got = _CON.to_pandas(quantiles(t, ["g"], "x", {"m": 0.5}, "linear").order_by("g"))
    assert got.m.tolist() == [2.0, 7.0]  # a: (1 + 3) / 2, the null ignored


def test_unknown_method():
    t = ibis.table({"x": "float64"}, name="t")
    with pytest.raises(ValueError, match="nearest_rank"):
        quantiles(t, [], "x", {"m": 0.5}, "midpoint")
