"""Pipeline metrics: negative cases with their exact messages, and properties (hypothesis)."""

from __future__ import annotations

import re

import ibis
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from revloop import metrics
from revloop.exceptions import ConfigError, SchemaError

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
    estimator=st.sampled_from(["naive", "aalen_johansen"]),
)
def test_win_rate_stays_in_unit_interval(con, deals, basis, variant, estimator):
    # Aalen–Johansen is a count-basis cohort estimator (other combinations raise)
    assume(estimator == "naive" or (basis == "count" and variant == "cohort"))
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
        metrics.compute(
            "win_rate",
            tables,
            period="month",
            basis=basis,
            variant=variant,
            estimator=estimator,
        ).table
    )
    values = got["value"].dropna()
    assert ((values >= 0) & (values <= 1)).all()
    closed = sum(s != "open" for _, _, s, _ in deals)
    assert int(got["won"].sum() + got["lost"].sum()) == closed


HISTORY = pd.DataFrame(
    {
        "opportunity_id": ["o1", "o1", "o2"],
        "changed_at": pd.to_datetime(["2024-01-01", "2024-01-05", "2024-01-02"]),
        "stage": ["Discovery", "Demo", "Discovery"],
        "amount": [1000.0, 1000.0, 2000.0],
        "close_date": pd.to_datetime(["2024-02-01", "2024-03-01", "2024-02-01"]),
    }
)


def _with_history() -> dict[str, ibis.Table]:
    return {**_tables(), "stage_history": ibis.memtable(HISTORY)}


@pytest.mark.parametrize(
    ("name", "params", "scope", "error", "message"),
    [
        (
            "pipeline_waterfall",
            {},
            {},
            ConfigError,
            "pipeline_waterfall needs a window: pass start and end "
            "(CLI: --start 2024-01-01 --end 2024-04-01).",
        ),
        (
            "pipeline_waterfall",
            {},
            {"start": "2024-03-01", "end": "2024-04-01", "as_of": "2024-02-01"},
            ConfigError,
            "pipeline_waterfall: the window [2024-03-01 00:00:00, 2024-02-01 00:00:00) is empty",
        ),
        (
            "stage_conversion",
            {"stages": ["Demo", "Demo"]},
            {},
            ConfigError,
            "stage_conversion: stages=['Demo', 'Demo']: a stage is listed twice",
        ),
        (
            "time_in_stage",
            {"stages": "Demo"},
            {},
            ConfigError,
            "time_in_stage takes no parameter(s) ['stages'].",
        ),
        (
            "slippage",
            {},
            {"by": "region"},
            SchemaError,
            "cannot group by 'region': neither stage_history nor opportunities has it",
        ),
    ],
)
def test_bad_stage_input_is_explained(name, params, scope, error, message):
    with pytest.raises(error, match=re.escape(message)):
        metrics.compute(name, _with_history(), **scope, **params)


def test_time_in_stage_quantile_is_null_when_the_curve_never_gets_there(con):
    """Kaplan–Meier: with the last deal censored, S stays at 1/2, so p75 does not exist."""
    hist = pd.DataFrame(
        {
            "opportunity_id": ["a", "a", "b"],
            "changed_at": pd.to_datetime(["2024-01-01", "2024-01-11", "2024-01-01"]),
            "stage": ["Demo", "Proposal", "Demo"],
        }
    )
    tables = {
        "opportunities": con.create_table("o", OPPS.assign(opportunity_id=["a", "b"])),
        "stage_history": con.create_table("h", hist),
    }
    got = con.execute(metrics.compute("time_in_stage", tables, as_of="2024-01-31").table)
    demo = got[got.stage == "Demo"].iloc[0]
    # a left Demo after 10 days; b has been there 30 days and is still open (censored)
    assert demo["value"] == 10
    assert pd.isna(demo["p75"])
    assert demo["censored"] == 1


_change = st.tuples(
    st.integers(0, 3),  # deal
    st.integers(0, 80),  # day of the change
    st.one_of(st.none(), st.floats(0, 1e5, allow_nan=False)),  # amount
    st.integers(0, 120),  # close date, day
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    changes=st.lists(_change, min_size=1, max_size=10, unique_by=lambda c: (c[0], c[1])),
    outcomes=st.lists(
        st.tuples(st.sampled_from(["won", "lost", "open"]), st.integers(0, 90)),
        min_size=4,
        max_size=4,
    ),
    window=st.sampled_from(["scope", "any"]),
)
def test_waterfall_reconciles(con, changes, outcomes, window):
    t0 = pd.Timestamp("2024-01-01")
    hist = pd.DataFrame(
        {
            "opportunity_id": [f"o{d}" for d, _, _, _ in changes],
            "changed_at": [t0 + pd.Timedelta(days=day) for _, day, _, _ in changes],
            "stage": "Open",
            "amount": pd.array([a for _, _, a, _ in changes], dtype="float64"),
            "close_date": [t0 + pd.Timedelta(days=c) for _, _, _, c in changes],
        }
    )
    opps = pd.DataFrame(
        {
            "opportunity_id": [f"o{i}" for i in range(4)],
            "created_at": t0,
            "closed_at": pd.to_datetime(
                [None if s == "open" else t0 + pd.Timedelta(days=d) for s, d in outcomes]
            ),
            "status": [s for s, _ in outcomes],
            "amount": 1.0,
        }
    )
    tables = {
        "opportunities": con.create_table("wo", opps, overwrite=True),
        "stage_history": con.create_table("wh", hist, overwrite=True),
    }
    got = con.execute(
        metrics.compute(
            "pipeline_waterfall",
            tables,
            start="2024-01-01",
            end="2024-03-15",
            period="week",
            close_window=window,
        ).table
    )
    assert len(got) == 11
    assert got["check"].abs().max() < 1e-6
    # each period starts where the previous one ended
    assert (got["start"].iloc[1:].to_numpy() - got["end"].iloc[:-1].to_numpy()).max() < 1e-6
    assert (got[["start", "end"]] >= 0).all().all()


_NEEDS = {"pipeline_coverage": {"target": 1000.0}}


@pytest.mark.parametrize("name", metrics.list_metrics("pipeline"))
@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_compiles_against_unbound_tables(name, dialect):
    """STYLE §1: every compute function builds SQL without data (``revloop explain``)."""
    from revloop.schema import TABLES

    tables = {
        t: ibis.table(TABLES[t].schema(), name=t)
        for t in ("opportunities", "stage_history", "fx_rates")
    }
    scope = {"by": "segment", "period": "month", "start": "2024-01-01", "end": "2024-03-01"}
    result = metrics.compute(name, tables, **scope, **_NEEDS.get(name, {}))
    sql = ibis.to_sql(result.table, dialect=dialect)
    assert "SELECT" in sql.upper()
    assert list(result.table.columns[:2]) == ["segment", "period"]


@pytest.mark.parametrize("name", metrics.list_metrics("pipeline"))
def test_runs_grouped_by_segment_and_month(con, name):
    opps = OPPS.assign(segment=["smb", "ent"])
    tables = {
        "opportunities": con.create_table("go", opps, overwrite=True),
        "stage_history": con.create_table("gh", HISTORY, overwrite=True),
    }
    scope = {"by": "segment", "period": "month", "start": "2024-01-01", "end": "2024-03-01"}
    got = con.execute(metrics.compute(name, tables, **scope, **_NEEDS.get(name, {})).table)
    assert list(got.columns[:2]) == ["segment", "period"]
    assert "value" in got.columns or "end" in got.columns


def test_qualified_stage_needs_stage_history():
    message = (
        "qualified_stage='Proposal' needs the stage_history table to know which deals reached "
        "it. Add stage_history.csv to the folder, or leave qualified_stage unset."
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        metrics.compute("win_rate", _tables(), qualified_stage="Proposal")


def test_qualified_stage_must_be_a_listed_stage():
    message = "qualified_stage='Won' is not one of stages=['Discovery', 'Demo']."
    with pytest.raises(ConfigError, match=re.escape(message)):
        metrics.compute(
            "pipeline_velocity",
            _with_history(),
            qualified_stage="Won",
            stages=["Discovery", "Demo"],
        )


def test_aalen_johansen_needs_count_basis():
    message = (
        "win_rate: estimator='aalen_johansen' estimates a share of deals; use basis='count' "
        "with it, or estimator='naive' with basis='amount'."
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        metrics.compute(
            "win_rate", _tables(), variant="cohort", estimator="aalen_johansen", basis="amount"
        )


def test_aalen_johansen_needs_the_cohort_variant():
    message = (
        "win_rate: estimator='aalen_johansen' follows a cohort of deals from creation; "
        "use it with variant='cohort', or estimator='naive' with variant='period'."
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        metrics.compute("win_rate", _tables(), variant="period", estimator="aalen_johansen")


_STAGE_ORDER = ["Discovery", "Demo", "Proposal", "Negotiation"]


def _stage_conversion_by_hand(
    deals: list[tuple[list[int], str, int]], t0: pd.Timestamp, policy: str
) -> pd.DataFrame:
    """The definition of ``stage_conversion``, deal by deal, in plain Python: stages by
    position 1..4, a deal's entries are its runs of the same stage, it entered every
    stage from its first to the furthest it reached (past the last when won) under
    ``passed``, only those with a row under ``strict``."""
    n = len(_STAGE_ORDER)
    out: dict[tuple[pd.Timestamp, int], dict[str, int]] = {}
    for path, status, start_day in deals:
        if not path:
            continue
        runs = [p for i, p in enumerate(path) if i == 0 or path[i - 1] != p]
        visits = {k: runs.count(k) for k in set(runs)}
        won = status == "won"
        reach = n + 1 if won else max(runs)
        period = (t0 + pd.Timedelta(days=start_day)).to_period("M").to_timestamp()
        for k in range(1, n + 1):
            row = out.setdefault((period, k), dict.fromkeys(("e", "a", "s", "r"), 0))
            has = k in visits
            if policy == "passed":
                entered = min(runs) <= k <= reach
                advanced = entered and reach >= k + 1
            else:
                entered = has
                advanced = has and (won if k == n else (k + 1) in visits)
            row["e"] += entered
            row["a"] += advanced
            row["s"] += entered and not has
            row["r"] += has and visits[k] > 1
    rows = [
        {
            "period": p,
            "position": k,
            "entered": c["e"],
            "advanced": c["a"],
            "skipped": c["s"],
            "regressed": c["r"],
        }
        for (p, k), c in sorted(out.items())
    ]
    return pd.DataFrame(rows)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    deals=st.lists(
        st.tuples(
            st.lists(st.integers(1, 4), min_size=1, max_size=6),  # stage positions in order
            st.sampled_from(["won", "lost", "open"]),
            st.integers(0, 70),  # day of the first change
        ),
        min_size=1,
        max_size=8,
    ),
    policy=st.sampled_from(["passed", "strict"]),
)
def test_stage_conversion_matches_the_definition_deal_by_deal(con, deals, policy):
    """Skips, regressions, repeated rows of one stage, wins from any stage: the engine's
    counts per month and stage are those of the definition applied to each deal."""
    t0 = pd.Timestamp("2024-01-01")
    hist, opps = [], []
    for d, (path, status, start) in enumerate(deals):
        for i, k in enumerate(path):
            hist.append(
                {
                    "opportunity_id": f"o{d}",
                    "changed_at": t0 + pd.Timedelta(days=start, hours=i),
                    "stage": _STAGE_ORDER[k - 1],
                }
            )
        closed = None if status == "open" else t0 + pd.Timedelta(days=start + 1)
        opps.append(
            {
                "opportunity_id": f"o{d}",
                "created_at": t0,
                "closed_at": closed,
                "status": status,
                "amount": 1.0,
            }
        )
    tables = {
        "opportunities": con.create_table(
            "sco",
            pd.DataFrame(opps).astype({"closed_at": "datetime64[us]"}),
            overwrite=True,
        ),
        "stage_history": con.create_table("sch", pd.DataFrame(hist), overwrite=True),
    }
    got = con.execute(
        metrics.compute(
            "stage_conversion",
            tables,
            period="month",
            start="2024-01-01",
            end="2024-04-01",
            stages=_STAGE_ORDER,
            skipped_stages=policy,
        ).table
    )
    want = _stage_conversion_by_hand(deals, t0, policy)
    cols = ["position", "entered", "advanced", "skipped", "regressed"]
    got = got.assign(period=pd.to_datetime(got["period"]))
    pd.testing.assert_frame_equal(
        got[["period", *cols]].reset_index(drop=True),
        want[["period", *cols]],
        check_dtype=False,
    )
    assert ((got["value"] >= 0) & (got["value"] <= 1) | got["value"].isna()).all()


def test_stage_metrics_keep_deals_without_a_by_value_in_a_group_of_their_own(con):
    """A blank segment is a group like any other (a group-by's rule), not zero counts."""
    t0 = pd.Timestamp("2024-01-01")
    opps = pd.DataFrame(
        {
            "opportunity_id": ["o1", "o2"],
            "created_at": t0,
            "closed_at": [t0 + pd.Timedelta(days=9)] * 2,
            "status": ["won", "lost"],
            "amount": 1.0,
            "segment": ["smb", None],
        }
    )
    hist = pd.DataFrame(
        {
            "opportunity_id": ["o1", "o1", "o2", "o2"],
            "changed_at": [t0 + pd.Timedelta(days=d) for d in (0, 2, 0, 2)],
            "stage": ["Discovery", "Demo", "Discovery", "Demo"],
        }
    )
    tables = {
        "opportunities": con.create_table("nbo", opps, overwrite=True),
        "stage_history": con.create_table("nbh", hist, overwrite=True),
    }
    got = con.execute(
        metrics.compute(
            "stage_conversion", tables, by="segment", stages=["Discovery", "Demo"]
        ).table
    )
    got = got.set_index([got["segment"].fillna("(blank)"), "stage"])
    # o1 (smb) won from Demo: entered and advanced from both stages;
    # o2 (blank) lost at Demo: entered both, advanced from Discovery only
    assert got.loc[("smb", "Demo"), ["entered", "advanced"]].tolist() == [1, 1]
    assert got.loc[("(blank)", "Discovery"), ["entered", "advanced"]].tolist() == [1, 1]
    assert got.loc[("(blank)", "Demo"), ["entered", "advanced", "skipped"]].tolist() == [1, 0, 0]
    # time in stage attaches its quantiles to its counts by the same null-safe join:
    # both deals spent 2 days at Discovery (day 0 to day 2), each in its own group
    tis = con.execute(metrics.compute("time_in_stage", tables, by="segment").table)
    tis = tis.set_index([tis["segment"].fillna("(blank)"), "stage"])
    assert tis.loc[("smb", "Discovery"), ["value", "deals"]].tolist() == [2.0, 1]
    assert tis.loc[("(blank)", "Discovery"), ["value", "deals"]].tolist() == [2.0, 1]


def test_waterfall_end_equals_coverage_open_pipeline_as_of(con):
    """Two routes to the open pipeline at ``as_of`` agree: the waterfall's last ``end``
    (rebuilt from stage_history) and coverage's ``open_pipeline`` (deals as known then),
    with amounts edited after ``as_of`` and deals in two currencies (revops.md §3.6)."""
    t0 = pd.Timestamp("2024-01-01")
    opps = pd.DataFrame(
        {
            "opportunity_id": ["e1", "u1", "u2"],
            "created_at": [t0, t0, t0 + pd.Timedelta(days=20)],
            "closed_at": pd.to_datetime([None, t0 + pd.Timedelta(days=70), None]),
            "status": ["open", "won", "open"],
            "amount": [9000.0, 9000.0, 9000.0],  # today's amounts, all set after as_of
            "currency": ["EUR", "USD", "USD"],
        }
    )
    hist = pd.DataFrame(
        {
            "opportunity_id": ["e1", "e1", "u1", "u1", "u2"],
            "changed_at": [t0 + pd.Timedelta(days=d) for d in (0, 65, 0, 70, 20)],
            "stage": ["Discovery", "Demo", "Discovery", "Closed Won", "Discovery"],
            "amount": [1000.0, 9000.0, 2000.0, 9000.0, 500.0],
            "close_date": [t0 + pd.Timedelta(days=d) for d in (80, 80, 60, 70, 90)],
        }
    )
    fx = pd.DataFrame(
        {
            "date": [pd.Timestamp("2023-12-01").date(), pd.Timestamp("2024-02-01").date()],
            "currency": ["EUR", "EUR"],
            "rate_to_reporting": [1.2, 1.5],
        }
    )
    tables = {
        "opportunities": con.create_table("xo", opps, overwrite=True),
        "stage_history": con.create_table("xh", hist, overwrite=True),
        "fx_rates": con.create_table("xf", fx, overwrite=True),
    }
    as_of = "2024-03-01"  # day 60: e1 1,000 EUR, u1 2,000 USD open, u2 500 USD
    wf = con.execute(
        metrics.compute(
            "pipeline_waterfall",
            tables,
            start="2024-01-01",
            end="2024-04-01",
            as_of=as_of,
            close_window="any",
        ).table
    )
    cov = con.execute(metrics.compute("pipeline_coverage", tables, as_of=as_of, target=1.0).table)
    # e1 at its creation day's rate 1.2 (the Feb 1 rate 1.5 is not a movement)
    assert wf["end"].iloc[-1] == pytest.approx(1000 * 1.2 + 2000 + 500)
    assert cov["open_pipeline"].iloc[0] == pytest.approx(wf["end"].iloc[-1])
    assert (wf["check"].abs() < 1e-9).all()
