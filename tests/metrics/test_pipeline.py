"""Pipeline metrics: negative cases with their exact messages, and properties (hypothesis)."""

from __future__ import annotations

import re

import ibis
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revloop import metrics
from revloop.exceptions import ConfigError

OPPS = pd.DataFrame(
    {
        "opportunity_id": ["o1", "o2"],
        "created_at": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        "closed_at": pd.to_datetime(["2024-01-10", None]),
        "status": ["won", "open"],
        "amount": [1000.0, 2000.0],
    }
)


def _tables() -> dict[str, ibis.Table]:
    return {"opportunities": ibis.memtable(OPPS)}


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        (
            "pipeline_coverage",
            {},
            "pipeline_coverage needs a target (quota) per period: pass target=500000 "
            "(CLI: --param target=500000).",
        ),
        (
            "pipeline_coverage",
            {"target": -5},
            "pipeline_coverage: target=-5: expected a positive number, e.g. --param target=500000",
        ),
        (
            "win_rate",
            {"basis": "revenue"},
            "win_rate: basis='revenue' is not allowed; choose one of ['count', 'amount'] "
            "(default 'count').",
        ),
        (
            "win_rate",
            {"variant": "survival"},
            "win_rate: variant='survival' is not allowed; choose one of ['period', 'cohort'] "
            "(default 'period').",
        ),
        (
            "sales_cycle",
            {"percentile": "nearest"},
            "sales_cycle: percentile='nearest' is not allowed; choose one of "
            "['linear', 'nearest_rank'] (default 'linear').",
        ),
    ],
)
def test_bad_policy_is_a_config_error(name, params, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        metrics.compute(name, _tables(), **params)


def test_every_pipeline_policy_names_its_sources():
    for name in metrics.list_metrics("pipeline"):
        for policy in metrics.get_metric(name).policies:
            if policy.choices is not None:
                assert set(policy.sources) == set(policy.choices), (name, policy.name)


_deal = st.tuples(
    st.integers(0, 60),  # created, days after 2024-01-01
    st.integers(0, 90),  # days to close
    st.sampled_from(["won", "lost", "open"]),
    st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    deals=st.lists(_deal, min_size=1, max_size=12),
    basis=st.sampled_from(["count", "amount"]),
    variant=st.sampled_from(["period", "cohort"]),
)
def test_win_rate_stays_in_unit_interval(con, deals, basis, variant):
    t0 = pd.Timestamp("2024-01-01")
    df = pd.DataFrame(
        {
            "opportunity_id": [f"o{i}" for i in range(len(deals))],
            "created_at": [t0 + pd.Timedelta(days=c) for c, _, _, _ in deals],
            "closed_at": [
                None if s == "open" else t0 + pd.Timedelta(days=c + d) for c, d, s, _ in deals
            ],
            "status": [s for _, _, s, _ in deals],
            "amount": [a for _, _, _, a in deals],
        }
    )
    df["closed_at"] = pd.to_datetime(df["closed_at"])
    df["amount"] = df["amount"].astype("float64")
    tables = {"opportunities": con.create_table("opps", df, overwrite=True)}
    got = con.execute(
        metrics.compute("win_rate", tables, period="month", basis=basis, variant=variant).table
    )
    values = got["value"].dropna()
    assert ((values >= 0) & (values <= 1)).all()
    closed = sum(s != "open" for _, _, s, _ in deals)
    assert int(got["won"].sum() + got["lost"].sum()) == closed
