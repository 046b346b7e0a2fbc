"""The contract every registered attribution model keeps (STYLE.md §3)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from revloop import attribution
from revloop.exceptions import ConfigError, NotFittedError, SchemaError, UnknownModelError

MODELS = [pytest.param(name, id=name) for name in attribution.list_models()]


@pytest.fixture(scope="module")
def data():
    """200 people, 0-6 touches each over 8 channels, 120 conversions of three kinds."""
    rng = np.random.default_rng(11)
    rows = []
    for p in range(200):
        for k in range(int(rng.integers(0, 7))):
            rows.append(
                {
                    "touchpoint_id": f"t{p}_{k}",
                    "person_id": f"p{p}",
                    "occurred_at": pd.Timestamp("2024-01-01")
                    + pd.Timedelta(hours=int(rng.integers(0, 24 * 60))),
                    "channel": [
                        "Direct",
                        "Email",
                        "Paid Search",
                        "Organic Search",
                        "Paid Social",
                        "Referral",
                        "Display",
                        "Affiliates",
                    ][int(rng.integers(0, 8))],
                    "campaign": f"cmp{int(rng.integers(0, 5))}",
                }
            )
    tp = pd.DataFrame(rows)
    conv = []
    for i, p in enumerate(rng.choice(200, 120, replace=False)):
        at = pd.Timestamp("2024-01-20") + pd.Timedelta(hours=int(rng.integers(0, 24 * 45)))
        kind = ["lead", "opportunity", "won"][i % 3]
        conv.append(
            {
                "conversion_id": f"c{i}",
                "person_id": f"p{p}",
                "occurred_at": at,
                "value": float(rng.lognormal(8, 1)) if kind != "lead" else 0.0,
                "kind": kind,
                "lead_created_at": at - pd.Timedelta(days=int(rng.integers(0, 30))),
                "opportunity_created_at": at - pd.Timedelta(days=int(rng.integers(0, 5)))
                if kind != "lead"
                else pd.NaT,
            }
        )
    return tp, pd.DataFrame(conv)


@pytest.fixture
def tables(con, data):
    tp, cv = data
    return con.create_table("tp", tp), con.create_table("cv", cv)


@pytest.mark.parametrize("name", MODELS)
def test_weights_nonnegative_sum_to_one_value_conserved(name, con, tables, data):
    tp, cv = tables
    got = con.execute(attribution.get_model(name).fit(tp).credit(cv))
    assert (got.weight >= -1e-12).all()
    per_conv = got.groupby("conversion_id").agg(w=("weight", "sum"), v=("value", "sum"))
    assert len(per_conv) == len(data[1]), "every conversion is credited, none dropped"
    np.testing.assert_allclose(per_conv.w, 1.0, atol=1e-9)
    expected = data[1].set_index("conversion_id").value.loc[per_conv.index]
    np.testing.assert_allclose(per_conv.v, expected, rtol=1e-9)
    assert got.value.sum() == pytest.approx(data[1].value.sum())
    assert set(got.columns) == set(attribution.CREDIT_COLUMNS)


@pytest.mark.parametrize("name", MODELS)
def test_deterministic(name, con, tables):
    tp, cv = tables
    m = attribution.get_model(name).fit(tp)
    cols = ["conversion_id", "touchpoint_id", "channel"]
    a = con.execute(m.credit(cv)).sort_values(cols, na_position="first").reset_index(drop=True)
    b = con.execute(m.credit(cv)).sort_values(cols, na_position="first").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("name", MODELS)
def test_to_dict_round_trip(name):
    m = attribution.get_model(
        name, lookback_days=30, transforms=["exposure", ("remove_if_not_all", ["Direct"])]
    )
    d = m.to_dict()
    assert json.loads(json.dumps(d)) == d
    again = type(m).from_dict(d)
    assert again.to_dict() == d
    assert type(again) is type(m)


@pytest.mark.parametrize("name", MODELS)
def test_credit_before_fit_raises(name, tables):
    with pytest.raises(NotFittedError, match=r"not fitted yet; call \.fit\(touchpoints\)"):
        attribution.get_model(name).credit(tables[1])


@pytest.mark.parametrize("name", MODELS)
def test_fit_returns_self_and_sets_learned_attributes(name, tables):
    m = attribution.get_model(name)
    assert m.fit(tables[0]) is m
    assert hasattr(m, "touchpoints_")
    assert hasattr(m, "transforms_")


@pytest.mark.parametrize("name", MODELS)
def test_compiles_on_unbound_tables(name):
    """`revloop explain` needs every model to compile without data (STYLE.md §1)."""
    import ibis

    tp = ibis.table(attribution_schema("touchpoints"), name="touchpoints")
    cv = ibis.table(attribution_schema("conversions"), name="conversions")
    sql = ibis.to_sql(attribution.get_model(name).fit(tp).credit(cv), dialect="duckdb")
    assert "touchpoints" in sql
    assert "conversions" in sql


def attribution_schema(name):
    from revloop.schema import schema

    return schema(name)


def test_credit_many_equals_each_model_alone(con, tables):
    tp, cv = tables
    names = list(attribution.RULE_BASED)
    together = con.execute(
        attribution.credit_many([attribution.get_model(n) for n in names], tp, cv)
    )
    cols = ["model", "conversion_id", "touchpoint_id", "channel"]
    together = together.sort_values(cols, na_position="first").reset_index(drop=True)
    alone = (
        pd.concat([con.execute(attribution.get_model(n).fit(tp).credit(cv)) for n in names])
        .sort_values(cols, na_position="first")
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(together[alone.columns], alone, check_dtype=False)


@pytest.mark.parametrize("by", ["channel", "campaign", ["channel", "campaign"]])
def test_summarize_many_equals_summarize_of_credits(con, tables, by):
    tp, cv = tables
    models = [attribution.get_model(n) for n in attribution.RULE_BASED]
    fast = con.execute(attribution.summarize_many(models, tp, cv, by=by))
    slow = con.execute(attribution.summarize(attribution.credit_many(models, tp, cv), by=by))
    keys = ["model", "kind", *([by] if isinstance(by, str) else by)]
    fast = fast.sort_values(keys).reset_index(drop=True)
    slow = slow.sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(fast[slow.columns], slow, check_dtype=False, atol=1e-9)


def test_mixed_path_options_in_credit_many(con, tables):
    tp, cv = tables
    a = attribution.get_model("linear", lookback_days=7)
    b = attribution.get_model("first_touch")
    got = con.execute(attribution.credit_many([a, b], tp, cv))
    sums = got.groupby(["model", "conversion_id"]).weight.sum()
    np.testing.assert_allclose(sums, 1.0)
    # a 7-day window leaves more conversions without a touch than 90 days
    unattributed = got[got.channel == attribution.UNATTRIBUTED].groupby("model").size()
    assert unattributed.get("linear", 0) > unattributed.get("first_touch", 0)


# -- negative cases -------------------------------------------------------------------------


def test_unknown_model_lists_the_registry():
    with pytest.raises(
        UnknownModelError, match=r"unknown attribution model 'markov_chain'.*'linear'"
    ):
        attribution.get_model("markov_chain")


def test_unknown_parameter_names_the_valid_ones():
    with pytest.raises(
        ConfigError, match=r"time_decay takes no parameter\(s\) \['halflife'\].*'half_life'"
    ):
        attribution.get_model("time_decay", halflife="7 days")


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("position_based", {"first": 0.7, "last": 0.5}, r"add up to 1\.2, more than 1"),
        ("position_based", {"first": -0.1}, r"shares must lie in \[0, 1\]"),
        ("time_decay", {"half_life": "a fortnight"}, r"cannot read 'a fortnight' as a duration"),
        ("time_decay", {"half_life": "-3 days"}, r"cannot read '-3 days'"),
        ("linear", {"lookback_days": 0}, r"lookback_days must be a positive number"),
        ("linear", {"lookback_steps": 0}, r"lookback_steps must be a whole number ≥ 1"),
        ("linear", {"transforms": ["exposer"]}, r"unknown path transform 'exposer'"),
        ("linear", {"transforms": ["remove_if_not_all"]}, r"needs a list of channels"),
        ("last_non_direct", {"direct_channels": "Direct"}, r"direct_channels must be a list"),
    ],
)
def test_bad_parameters_fail_at_fit(name, params, match, tables):
    m = attribution.get_model(name, **params)
    with pytest.raises(ConfigError, match=match):
        m.fit(tables[0])


def test_missing_columns_name_the_table_and_fix(con):
    import ibis

    tp = ibis.memtable(
        {"person": ["p"], "occurred_at": [pd.Timestamp("2024-01-01")], "channel": ["Email"]}
    )
    cv = ibis.memtable(
        {"conversion_id": ["c"], "person_id": ["p"], "occurred_at": [pd.Timestamp("2024-01-02")]}
    )
    with pytest.raises(
        SchemaError,
        match=r"touchpoints is missing column\(s\) \['person_id'\]; found \['person', 'occurred_at', 'channel'\]",
    ):
        attribution.get_model("linear").fit(tp).credit(cv)


def test_fractional_and_zero_values_are_kept(con):
    """ChannelAttribution truncates fractional conversions to integers (attribution.md §1.1)."""
    tp = con.create_table(
        "tp",
        pd.DataFrame(
            {
                "person_id": ["a", "b", "c"],
                "channel": ["Email", "Email", "Direct"],
                "occurred_at": pd.to_datetime(["2024-01-01"] * 3),
            }
        ),
    )
    cv = con.create_table(
        "cv",
        pd.DataFrame(
            {
                "conversion_id": ["1", "2", "3"],
                "person_id": ["a", "b", "c"],
                "occurred_at": pd.to_datetime(["2024-01-02"] * 3),
                "value": [1.5, 0.4, 0.0],
            }
        ),
    )
    got = con.execute(
        attribution.summarize(attribution.get_model("first_touch").fit(tp).credit(cv))
    )
    assert dict(zip(got.channel, got.value, strict=True)) == pytest.approx(
        {"Email": 1.9, "Direct": 0.0}
    )


def test_missing_milestone_columns_equal_empty_ones(con, tables, data):
    """Without milestone columns, anchors skip their window counts; credits must not change."""
    tp = tables[0]
    bare = con.create_table(
        "cv_bare", data[1].drop(columns=["lead_created_at", "opportunity_created_at"])
    )
    nulls = con.create_table(
        "cv_nulls",
        data[1].assign(lead_created_at=pd.NaT, opportunity_created_at=pd.NaT, won_at=pd.NaT),
    )
    models = [
        attribution.get_model(n, transforms=["exposure"], lookback_steps=3)
        for n in attribution.RULE_BASED
    ]
    cols = ["model", "conversion_id", "touchpoint_id", "channel"]
    a = con.execute(attribution.credit_many(models, tp, bare)).sort_values(
        cols, na_position="first"
    )
    b = con.execute(attribution.credit_many(models, tp, nulls)).sort_values(
        cols, na_position="first"
    )
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_unknown_value_stays_unknown(con):
    """A null value (no FX rate) is credited by weight; its value is null, never a silent 0."""
    tp = con.create_table(
        "tp_nv",
        pd.DataFrame(
            {
                "person_id": ["a", "b"],
                "channel": ["Email", "Direct"],
                "occurred_at": pd.to_datetime(["2024-01-01", "2024-01-01"]),
            }
        ),
    )
    cv = con.create_table(
        "cv_nv",
        pd.DataFrame(
            {
                "conversion_id": ["1", "2"],
                "person_id": ["a", "b"],
                "occurred_at": pd.to_datetime(["2024-01-02", "2024-01-02"]),
                "value": [None, 50.0],
            }
        ),
    )
    got = con.execute(attribution.get_model("linear").fit(tp).credit(cv)).set_index("conversion_id")
    assert got.weight.to_dict() == {"1": 1.0, "2": 1.0}
    assert pd.isna(got.loc["1", "value"])
    assert got.loc["2", "value"] == 50.0
