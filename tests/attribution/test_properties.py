"""Property tests: on any path, every model's weights are >= 0 and sum to 1 per conversion."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revloop import attribution

CHANNELS = ["Direct", "Email", "Paid Search", "Referral"]
BASE = dt.datetime(2024, 1, 1)

touch = st.tuples(st.integers(0, 24 * 200), st.sampled_from(CHANNELS))
conversion = st.fixed_dictionaries(
    {
        "hours": st.integers(0, 24 * 220),
        "kind": st.sampled_from(["lead", "opportunity", "won", None]),
        "lead_back": st.one_of(st.none(), st.integers(0, 24 * 120)),
        "opp_back": st.one_of(st.none(), st.integers(0, 24 * 60)),
        "value": st.floats(0, 1e6, allow_nan=False),
    }
)
transforms = st.lists(
    st.sampled_from(
        [
            "unique",
            "exposure",
            "first",
            ("remove_if_not_all", ["Direct"]),
            ("remove_if_last_and_not_all", ["Direct", "Email"]),
        ]
    ),
    max_size=2,
)

_CON = ibis.duckdb.connect()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    people=st.lists(st.lists(touch, max_size=7), min_size=1, max_size=4),
    convs=st.lists(conversion, min_size=1, max_size=4),
    lookback=st.one_of(st.none(), st.integers(1, 120)),
    steps=st.one_of(st.none(), st.integers(1, 4)),
    lookback_from=st.sampled_from(["lead_created", "conversion"]),
    tr=transforms,
)
def test_weights_form_a_distribution(people, convs, lookback, steps, lookback_from, tr):
    tp = pd.DataFrame(
        [
            {
                "touchpoint_id": f"t{p}_{i}",
                "person_id": f"p{p}",
                "occurred_at": BASE + dt.timedelta(hours=h),
                "channel": ch,
            }
            for p, touches in enumerate(people)
            for i, (h, ch) in enumerate(touches)
        ],
        columns=["touchpoint_id", "person_id", "occurred_at", "channel"],
    ).astype(
        {
            "touchpoint_id": "string",
            "person_id": "string",
            "channel": "string",
            "occurred_at": "datetime64[us]",
        }
    )
    cv = pd.DataFrame(
        [
            {
                "conversion_id": f"c{i}",
                "person_id": f"p{i % len(people)}",
                "occurred_at": BASE + dt.timedelta(hours=c["hours"]),
                "kind": c["kind"],
                "value": c["value"],
                "lead_created_at": None
                if c["lead_back"] is None
                else BASE + dt.timedelta(hours=c["hours"] - c["lead_back"]),
                "opportunity_created_at": None
                if c["opp_back"] is None
                else BASE + dt.timedelta(hours=c["hours"] - c["opp_back"]),
            }
            for i, c in enumerate(convs)
        ]
    ).astype(
        {
            "occurred_at": "datetime64[us]",
            "lead_created_at": "datetime64[us]",
            "opportunity_created_at": "datetime64[us]",
            "kind": "string",
        }
    )
    t = _CON.create_table("tp", tp, overwrite=True)
    c = _CON.create_table("cv", cv, overwrite=True)
    models = [
        attribution.get_model(
            n,
            lookback_days=lookback,
            lookback_steps=steps,
            lookback_from=lookback_from,
            transforms=tr,
        )
        for n in attribution.RULE_BASED
    ]
    got = _CON.execute(attribution.credit_many(models, t, c))
    assert (got.weight >= -1e-12).all()
    sums = got.groupby(["model", "conversion_id"]).agg(w=("weight", "sum"), v=("value", "sum"))
    assert len(sums) == len(models) * len(cv), "every conversion credited by every model"
    np.testing.assert_allclose(sums.w, 1.0, atol=1e-9)
    values = cv.set_index("conversion_id").value
    np.testing.assert_allclose(
        sums.v.to_numpy(),
        values.loc[sums.index.get_level_values(1)].to_numpy(),
        rtol=1e-9,
        atol=1e-6,
    )
    # no touch after its conversion is ever credited
    touched = got.dropna(subset=["touchpoint_id"])
    assert (touched.touch_at <= touched.conversion_at).all()
