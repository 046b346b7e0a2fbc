"""Subscription metrics beyond the data cases: the MRR identity on random histories,
rates in [0, 1], unknown intervals, bad policies, and compilation on unbound tables."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from typing import Any

import ibis
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import revloop
from revloop import metrics
from revloop.exceptions import ConfigError, RevloopError
from revloop.metrics._mrr import LEDGER_POLICIES, customer_ledger
from revloop.metrics._registry import Scope
from revloop.schema import TABLES

SUBSCRIPTION_METRICS = metrics.list_metrics("subscription")
DEFAULTS = {p.name: p.default for p in LEDGER_POLICIES}


@pytest.fixture(scope="module")
def mcon() -> Iterator[Any]:
    c = revloop.connect()
    yield c
    c.disconnect()


def _subs(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for c in ("starts_at", "ends_at", "cancelled_at"):
        df[c] = pd.to_datetime(df[c])
    return df


_FX = pd.DataFrame(
    {
        "date": [dt.date(2023, 12, 1) + dt.timedelta(days=30 * i) for i in range(20)],
        "currency": ["EUR"] * 20,
        "rate_to_reporting": [1.0 + 0.03 * ((i * 7) % 5) for i in range(20)],
    }
)


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    rows = []
    n = draw(st.integers(1, 6))
    for i in range(n):
        start = dt.datetime(2024, 1, 1) + dt.timedelta(days=draw(st.integers(0, 330)))
        length = draw(st.one_of(st.none(), st.integers(1, 420)))
        end = None if length is None else start + dt.timedelta(days=length)
        cancel = None
        if draw(st.booleans()):
            cancel = start + dt.timedelta(days=draw(st.integers(0, 300)))
        rows.append(
            {
                "customer_id": f"c{draw(st.integers(0, 3))}",
                "subscription_id": f"s{i}",
                "item_id": "i",
                "starts_at": start,
                "ends_at": end,
                "cancelled_at": cancel,
                "amount": float(draw(st.integers(0, 500))),
                "interval": draw(st.sampled_from(["day", "week", "month", "year"])),
                "interval_count": draw(st.integers(1, 3)),
                "quantity": float(draw(st.integers(1, 4))),
                "discount": draw(st.sampled_from([0.0, 0.1, 0.5])),
                "currency": draw(st.sampled_from(["USD", "EUR"])),
                "status": draw(st.sampled_from(["active", "active", "trialing"])),
            }
        )
    return rows


POLICY_SETS = [
    DEFAULTS,
    {
        **DEFAULTS,
        "churn_recognition": "at_cancel",
        "same_period_new_churn": "ignore",
        "reactivation_window": 2,
    },
    {**DEFAULTS, "same_period_new_churn": "count_both", "discounts": "ignore"},
    {**DEFAULTS, "same_period_new_churn": "ignore"},
]


_UNBOUND = {
    "subscriptions": ibis.table(TABLES["subscriptions"].schema(), name="p_subs"),
    "fx_rates": ibis.table(TABLES["fx_rates"].schema(), name="p_fx"),
}
_CHECKS = {
    "ledger": lambda p: customer_ledger(_UNBOUND, scope=Scope(), **p),
    "moves": lambda p: metrics.compute("mrr_movements", _UNBOUND, period="month", **p).table,
    "customer_churn_rate": lambda p: (
        metrics.compute(
            "customer_churn_rate", _UNBOUND, period="month", convention="stripe", **p
        ).table
    ),
    "customer_churn_rate_chartmogul": lambda p: (
        metrics.compute("customer_churn_rate", _UNBOUND, period="month", **p).table
    ),
    # over a quarter a customer counts once (distinct customers at its start that
    # churned in it); count_both adds the joiners that churned to both terms
    "customer_churn_rate_quarter": lambda p: (
        metrics.compute("customer_churn_rate", _UNBOUND, period="quarter", **p).table
    ),
    # Stripe counts churn events over the customers at the start plus every arrival
    "customer_churn_rate_stripe_quarter": lambda p: (
        metrics.compute(
            "customer_churn_rate", _UNBOUND, period="quarter", convention="stripe", **p
        ).table
    ),
    "grr": lambda p: metrics.compute("grr", _UNBOUND, period="month", **p).table,
    "mrr_churn_rate": lambda p: (
        metrics.compute("mrr_churn_rate", _UNBOUND, period="month", **p).table
    ),
}


@functools.cache
def _sql(which: int, check: str) -> str:
    """Compiled once: the property test then runs the same SQL on each random history."""
    return str(ibis.to_sql(_CHECKS[check](POLICY_SETS[which]), dialect="duckdb"))


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=histories(), which=st.integers(0, len(POLICY_SETS) - 1))
def test_mrr_identity_holds_every_month_on_random_histories(mcon, rows, which):
    mcon.create_table("p_subs", _subs(rows), overwrite=True)
    mcon.create_table("p_fx", _FX, overwrite=True)

    def run(check: str) -> pd.DataFrame:
        return mcon.raw_sql(_sql(which, check)).df()

    led = run("ledger")
    assert led.reconciles.all(), led[~led.reconciles]
    assert (led[["new", "expansion", "contraction", "churn", "reactivation"]] >= -1e-9).all().all()
    # the month's end is the next month's start, customer by customer
    led = led.sort_values(["customer_id", "idx"])
    nxt = led.groupby("customer_id").start_mrr.shift(-1)
    same = nxt.notna()
    assert ((led.end_mrr[same] - nxt[same]).abs() <= 1e-6).all()
    # a customer's arrival is a reactivation exactly when it paid in an earlier month
    # (within reactivation_window months when one is set), else new business
    paid = (led.end_mrr > 1e-6) | (led.new_churn > 1e-6)
    last_paid = led.idx.where(paid).groupby(led.customer_id).shift(1)
    last_paid = last_paid.groupby(led.customer_id).ffill()
    window = POLICY_SETS[which]["reactivation_window"]
    react = last_paid.notna()
    if window is not None:
        react &= led.idx - last_paid <= window
    arriving = (led.new + led.reactivation) > 1e-9
    assert ((led.reactivation > 1e-9)[arriving] == react[arriving]).all()
    assert ((led.new > 1e-9)[arriving] == ~react[arriving]).all()
    moves = run("moves")
    assert moves.reconciles.all()
    bridge = (
        moves.start_mrr
        + moves.new
        + moves.expansion
        + moves.reactivation
        - moves.contraction
        - moves.churn
        + moves.fx
    )
    assert ((bridge - moves.end_mrr).abs() <= 1e-6).all()
    assert moves.new.sum() + moves.reactivation.sum() >= led.new_churn.sum() - 1e-9
    # every convention x same_period_new_churn policy (count_both included) is a rate
    checks = [
        "customer_churn_rate",
        "customer_churn_rate_chartmogul",
        "customer_churn_rate_quarter",
        "customer_churn_rate_stripe_quarter",
        "grr",
        "mrr_churn_rate",
    ]
    for check in checks:
        v = run(check).value.dropna()
        assert ((v >= -1e-9) & (v <= 1 + 1e-9)).all(), (check, v)


@st.composite
def churn_histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Few customers, many of them joining and leaving within weeks (and coming back):
    the histories where joiners outnumber the customers at a period's start."""
    rows = []
    for i in range(draw(st.integers(1, 8))):
        start = dt.datetime(2024, 1, 1) + dt.timedelta(days=draw(st.integers(0, 120)))
        length = draw(st.one_of(st.none(), st.integers(1, 25), st.integers(1, 150)))
        rows.append(
            {
                "customer_id": f"c{draw(st.integers(0, 5))}",
                "subscription_id": f"s{i}",
                "item_id": "i",
                "starts_at": start,
                "ends_at": None if length is None else start + dt.timedelta(days=length),
                "cancelled_at": None,
                "amount": 100.0,
                "interval": "month",
                "interval_count": 1,
                "quantity": 1.0,
                "discount": 0.0,
                "currency": "USD",
                "status": "active",
            }
        )
    return rows


_RATE_CHECKS = [
    (convention, spnc, period)
    for convention in ("chartmogul", "stripe")
    for spnc in ("exclude", "count_both", "ignore")
    for period in ("month", "quarter")
] + [("profitwell", "ignore", "quarter"), ("chartmogul", "count_both", None)]


@functools.cache
def _rate_sql(check: tuple[str, str, str | None]) -> str:
    convention, spnc, period = check
    kw = {"period": period} if period else {"start": "2024-01-01"}
    t = metrics.compute(
        "customer_churn_rate",
        {"subscriptions": ibis.table(TABLES["subscriptions"].schema(), name="r_subs")},
        convention=convention,
        same_period_new_churn=spnc,
        **kw,
    ).table
    return str(ibis.to_sql(t, dialect="duckdb"))


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=churn_histories())
def test_customer_churn_rate_is_a_share_under_every_convention_and_policy(mcon, rows):
    """churned <= customers, so the rate is in [0, 1], for chartmogul, stripe and profitwell
    under exclude, count_both and ignore, per month, per quarter and over a window: a
    customer counted in the numerator is in the denominator."""
    mcon.create_table("r_subs", _subs(rows), overwrite=True)
    for check in _RATE_CHECKS:
        got = mcon.raw_sql(_rate_sql(check)).df()
        assert (got.churned <= got.customers).all(), (check, got)
        v = got.value.dropna()
        assert ((v >= 0) & (v <= 1)).all(), (check, got)


def _one(con: Any, rows: list[dict[str, Any]], metric: str, **kw: Any) -> pd.DataFrame:
    t = {"subscriptions": con.create_table("n_subs", _subs(rows), overwrite=True)}
    return con.execute(metrics.compute(metric, t, **kw).table)


_ROW = {
    "customer_id": "c1",
    "subscription_id": "s1",
    "item_id": "i",
    "starts_at": "2024-01-01",
    "ends_at": None,
    "cancelled_at": None,
    "amount": 100.0,
    "interval": "month",
}


def test_unknown_interval_gives_null_mrr_and_a_count_not_a_silent_zero(mcon):
    rows = [_ROW, {**_ROW, "customer_id": "c2", "subscription_id": "s2", "interval": "fortnight"}]
    got = _one(mcon, rows, "mrr")
    assert got.value.isna().all()
    assert got.unknown_interval.iloc[0] == 1
    moves = _one(mcon, rows, "mrr_movements", period="month")
    assert moves.end_mrr.isna().all()
    assert (moves.unknown_interval == 1).all()


def _with_fx(con: Any, rows: list[dict[str, Any]], fx: pd.DataFrame | None) -> dict[str, Any]:
    t = {"subscriptions": con.create_table("x_subs", _subs(rows), overwrite=True)}
    if fx is not None:
        t["fx_rates"] = con.create_table("x_fx", fx, overwrite=True)
    return t


_EUR = {**_ROW, "customer_id": "c2", "subscription_id": "s2", "currency": "EUR"}


@pytest.mark.parametrize("with_table", [False, True])
def test_a_currency_without_a_rate_gives_null_mrr_not_a_dropped_customer(mcon, with_table):
    """c1 pays 100 USD, c2 100 EUR with no EUR rate (no fx_rates table, or rates only
    from February): January's MRR is unknown, not 100 from c1 alone."""
    fx = pd.DataFrame(
        {"date": [dt.date(2024, 2, 1)], "currency": ["EUR"], "rate_to_reporting": [1.1]}
    )
    t = _with_fx(mcon, [{**_ROW, "currency": "USD"}, _EUR], fx if with_table else None)
    window = {"start": "2024-01-01", "end": "2024-04-01"}

    def run(metric: str, **kw: Any) -> pd.DataFrame:
        return mcon.execute(metrics.compute(metric, t, **window, **kw).table)

    mrr = run("mrr", period="month")
    assert mrr.value.isna().iloc[0]
    assert mrr.customers.isna().iloc[0]
    assert mrr.missing_rate.iloc[0] == 1
    if with_table:
        # February's end is known (100 + 110 = 210) but its start is not: its flows are
        # unknown; March is whole again: 210 at both ends
        assert mrr.value.iloc[1] == pytest.approx(210.0)
        moves = run("mrr_movements", period="month")
        assert moves.end_mrr.isna().tolist() == [True, False, False]
        assert moves.start_mrr.isna().tolist() == [False, True, False]  # Jan starts at 0
        assert moves.new.isna().tolist() == [True, True, False]  # the flows of Jan and Feb
        assert moves.start_mrr.iloc[2] == pytest.approx(210.0)
    else:
        assert mrr.value.isna().all()
    for metric in ("customer_churn_rate", "nrr", "grr", "arpa"):
        got = run(metric, period="month")
        assert got.value.isna().iloc[0], metric


def test_an_unknown_interval_makes_every_rate_on_it_unknown(mcon):
    """The customer-grain metrics (churn rate, NRR, GRR, cohorts) null a figure whose base
    holds a customer of unknown MRR instead of leaving the customer out."""
    rows = [_ROW, {**_ROW, "customer_id": "c2", "subscription_id": "s2", "interval": "fortnight"}]
    t = {"subscriptions": mcon.create_table("u_subs", _subs(rows), overwrite=True)}
    window = {"start": "2024-02-01", "end": "2024-04-01"}
    for metric in ("customer_churn_rate", "nrr", "grr"):
        got = mcon.execute(metrics.compute(metric, t, **window).table)
        assert got.value.isna().all(), metric
        yoy = mcon.execute(metrics.compute(metric, t, period="month", **window).table)
        assert yoy.value.isna().all(), metric
    got = mcon.execute(metrics.compute("nrr", t, variant="yoy", end="2025-03-01").table)
    assert got.value.isna().all()
    cohorts = mcon.execute(metrics.compute("cohort_retention", t, end="2024-03-01").table)
    assert cohorts.value.isna().all()
    assert cohorts.mrr.isna().all()


def test_unknown_interval_is_rejected_by_the_schema_validator(mcon):
    rows = [{**_ROW, "interval": "fortnight"}]
    t = mcon.create_table("v_subs", _subs(rows), overwrite=True)
    report = revloop.schema.validate(t, "subscriptions")
    assert any("interval" in str(issue) for issue in report.issues)


@pytest.mark.parametrize(
    ("metric", "params", "match"),
    [
        ("mrr", {"churn_recognition": "at_schedule"}, "churn_recognition"),
        ("mrr", {"same_period_new_churn": "drop"}, "same_period_new_churn"),
        ("mrr", {"reactivation_window": 0}, "reactivation_window"),
        ("mrr", {"reactivation_window": "90 days"}, "reactivation_window"),
        ("mrr", {"trials": "include"}, "trials"),
        ("nrr", {"variant": "cohort"}, "variant"),
        ("customer_churn_rate", {"convention": "baremetrics"}, "convention"),
        ("mrr_churn_rate", {"reactivation": "maybe"}, "reactivation"),
        (
            "customer_churn_rate",
            {"convention": "profitwell", "same_period_new_churn": "count_both"},
            "profitwell",
        ),
    ],
)
def test_bad_policy_values_are_refused(mcon, metric, params, match):
    t = {"subscriptions": mcon.create_table("b_subs", _subs([_ROW]), overwrite=True)}
    with pytest.raises(ConfigError, match=match):
        metrics.compute(metric, t, **params)


@pytest.mark.parametrize("spelling", [None, "none", "null", "None"])
def test_no_reactivation_window_may_be_spelled_none(mcon, spelling):
    t = {"subscriptions": mcon.create_table("n_subs", _subs([_ROW]), overwrite=True)}
    r = metrics.compute("mrr_movements", t, reactivation_window=spelling)
    assert r.policy["reactivation_window"] is None  # the output states the normalised value


@pytest.mark.parametrize("metric", ["mrr", "mrr_movements", "ltv", "nrr", "cohort_retention"])
@pytest.mark.parametrize("bound", ["start", "end"])
def test_a_window_inside_a_month_is_an_error_not_widened(mcon, metric, bound):
    """--start/--end are half-open dates; the ledger is monthly, so a bound inside a
    month is refused (it used to be widened to the whole month, or gave no rows)."""
    t = {"subscriptions": mcon.create_table("m_subs", _subs([_ROW]), overwrite=True)}
    window = {"start": "2024-02-01", "end": "2024-06-01", bound: "2024-03-15"}
    with pytest.raises(ConfigError, match=f"{bound}=2024-03-15 is not the first day"):
        metrics.compute(metric, t, **window)
    # as_of may be any instant: it cuts the data
    got = mcon.execute(metrics.compute("mrr", t, end="2024-04-01", as_of="2024-03-15").table)
    assert got.value.iloc[0] == 100.0


def test_the_stated_policy_is_the_one_in_force(mcon):
    """ProfitWell's convention implies same_period_new_churn=ignore: the result states it,
    and the shared ledger a batch builds is the ignore ledger (one key, not two)."""
    t = {"subscriptions": mcon.create_table("pw_subs", _subs([_ROW]), overwrite=True)}
    got = metrics.compute("customer_churn_rate", t, convention="profitwell")
    assert got.policy["same_period_new_churn"] == "ignore"
    keys = metrics.shared_tables("customer_churn_rate", t, scope=Scope(), convention="profitwell")
    assert all("same_period_new_churn=ignore" in k for k in keys)
    given = metrics.compute(
        "customer_churn_rate", t, convention="profitwell", same_period_new_churn="ignore"
    )
    assert given.policy == got.policy


@pytest.mark.parametrize("period", ["day", "week"])
def test_subscription_metrics_are_monthly(mcon, period):
    t = {"subscriptions": mcon.create_table("w_subs", _subs([_ROW]), overwrite=True)}
    with pytest.raises(ConfigError, match="monthly"):
        metrics.compute("mrr", t, period=period)


def test_unknown_by_column_is_a_schema_error(mcon):
    t = {"subscriptions": mcon.create_table("y_subs", _subs([_ROW]), overwrite=True)}
    with pytest.raises(RevloopError, match="segment"):
        metrics.compute("mrr", t, by="segment")


def test_open_ended_subscription_cancelled_churns_at_cancellation_under_both_policies(mcon):
    rows = [{**_ROW, "cancelled_at": "2024-03-10"}]
    for policy in ("end_of_period", "at_cancel"):
        got = _one(mcon, rows, "mrr_movements", period="month", churn_recognition=policy)
        assert list(got.churn) == [0.0, 0.0, 100.0], policy


def test_as_of_ignores_later_starts_and_cancellations(mcon):
    rows = [
        {**_ROW, "cancelled_at": "2024-05-10"},
        {**_ROW, "customer_id": "c2", "subscription_id": "s2", "starts_at": "2024-04-01"},
    ]
    got = _one(mcon, rows, "mrr", as_of="2024-03-15", churn_recognition="at_cancel")
    assert got.value.iloc[0] == pytest.approx(100.0)
    assert got.customers.iloc[0] == 1


def test_a_window_ending_before_every_subscription_has_an_empty_ledger(mcon):
    # open-ended rows must not run on past an empty calendar (no months at all)
    t = {"subscriptions": mcon.create_table("n_subs", _subs([_ROW]), overwrite=True)}
    led = mcon.execute(customer_ledger(t, scope=Scope(end="2023-06-01"), **DEFAULTS))
    assert len(led) == 0
    got = _one(mcon, [_ROW], "mrr", end="2023-06-01")
    assert len(got) <= 1
    assert not (got.customers > 0).any()


@pytest.mark.parametrize("name", SUBSCRIPTION_METRICS)
def test_every_subscription_metric_compiles_on_unbound_tables(name):
    tables = {
        "subscriptions": ibis.table(TABLES["subscriptions"].schema(), name="subscriptions"),
        "fx_rates": ibis.table(TABLES["fx_rates"].schema(), name="fx_rates"),
    }
    result = metrics.compute(name, tables)
    sql = ibis.to_sql(result.table, dialect="duckdb")
    assert "subscriptions" in sql
    assert "value" in result.table.columns
    assert set(result.policy) == {p.name for p in metrics.get_metric(name).policies}


def test_ltv_is_null_without_churn_not_infinite(mcon):
    rows = [_ROW, {**_ROW, "customer_id": "c2", "subscription_id": "s2"}]
    got = _one(mcon, rows, "ltv", end="2024-09-01")
    assert got.value.isna().all()
    assert got.arpa.iloc[0] == pytest.approx(100.0)
    assert got.churn_rate.iloc[0] == pytest.approx(0.0)


def test_cohort_empirical_ltv_refuses_grouping(mcon):
    t = {"subscriptions": mcon.create_table("l_subs", _subs([_ROW]), overwrite=True)}
    with pytest.raises(ConfigError, match="cohort_empirical"):
        metrics.compute("ltv", t, method="cohort_empirical", period="month")


_SPAN_ROWS = [
    _ROW,
    {**_ROW, "customer_id": "c0", "subscription_id": "s0", "starts_at": "2023-01-01"},
    {
        **_ROW,
        "customer_id": "c2",
        "subscription_id": "s2",
        "starts_at": "2024-01-15",
        "ends_at": "2024-03-10",
    },
]
_SPAN_CASES = [
    *[
        pytest.param(name, {}, id=name)
        for name in SUBSCRIPTION_METRICS
        if name != "cohort_retention"  # one row per cohort and age, no period
    ],
    pytest.param("customer_churn_rate", {"convention": "b2c_daily"}, id="b2c_daily"),
    pytest.param("nrr", {"variant": "yoy"}, id="nrr_yoy"),
]


@pytest.mark.parametrize(("name", "params"), _SPAN_CASES)
def test_a_period_clipped_by_the_window_states_the_months_it_covers(mcon, name, params):
    """--period quarter --start 2024-02-01 --end 2024-06-01: each row keeps the calendar
    quarter's label (period 2024-01-01, as win_rate and every other metric label it) and
    states the months it covers: February-March for Q1, April-May for Q2 (period_end is
    exclusive, like --end)."""
    t = {"subscriptions": mcon.create_table("q_subs", _subs(_SPAN_ROWS), overwrite=True)}
    result = metrics.compute(
        name, t, period="quarter", start="2024-02-01", end="2024-06-01", **params
    )
    got = mcon.execute(result.table)
    keys = ["period", "period_start", "period_end"]
    assert list(got.columns[:3]) == keys
    spans = [tuple(str(pd.Timestamp(v).date()) for v in row) for row in got[keys].to_numpy()]
    assert spans == [
        ("2024-01-01", "2024-02-01", "2024-04-01"),
        ("2024-04-01", "2024-04-01", "2024-06-01"),
    ]
    # without --period there is one figure over the window and no span columns
    whole = mcon.execute(metrics.compute(name, t, start="2024-02-01", **params).table)
    assert "period_start" not in whole.columns
