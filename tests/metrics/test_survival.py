"""Kaplan–Meier in the engine: the curve against a hand-written product-limit, and its
steps (the event times a quantile reads) against the curve."""

from __future__ import annotations

import ibis
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revloop.metrics._survival import km_curve, km_steps

subjects = st.lists(
    st.tuples(
        st.sampled_from(["a", "b"]),  # group
        st.integers(min_value=0, max_value=6),  # time: few values, so many ties
        st.booleans(),  # event (else censored)
    ),
    min_size=1,
    max_size=25,
)


def _product_limit(rows: list[tuple[str, int, bool]], keys: bool) -> pd.DataFrame:
    """S after each distinct time t: the product over times <= t of (1 - d/n), n the
    subjects with time >= t (Kaplan & Meier 1958), written out in plain Python."""
    out = []
    groups = sorted({g for g, _, _ in rows}) if keys else [None]
    for g in groups:
        mine = [(t, e) for gg, t, e in rows if not keys or gg == g]
        s = 1.0
        for t in sorted({t for t, _ in mine}):
            n = sum(1 for u, _ in mine if u >= t)
            d = sum(1 for u, e in mine if u == t and e)
            s *= 1.0 - d / n
            out.append({"g": g, "t": t, "at_risk": n, "events": d, "survival": s})
    return pd.DataFrame(out)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=subjects, keyed=st.booleans())
def test_curve_is_the_product_limit_and_steps_are_its_event_rows(con, rows, keyed):
    t = ibis.memtable(
        pd.DataFrame(rows, columns=["g", "t", "e"]).astype({"t": "float64", "e": "bool"})
    )
    keys = ["g"] if keyed else []
    order = [*keys, "t"]
    curve = con.execute(km_curve(t, keys, "t", t.e)).sort_values(order).reset_index(drop=True)
    steps = con.execute(km_steps(t, keys, "t", t.e)).sort_values(order).reset_index(drop=True)
    want = _product_limit(rows, keyed)
    assert curve["at_risk"].tolist() == want["at_risk"].tolist()
    assert curve["events"].tolist() == want["events"].tolist()
    assert curve["survival"].tolist() == pytest.approx(want["survival"].tolist(), abs=1e-12)
    # censored + events = the subjects at each time
    assert int((curve["events"] + curve["censored"]).sum()) == len(rows)
    # the steps: exactly the curve's rows with an event, same figures
    drops = curve[curve["events"] > 0].reset_index(drop=True)
    cols = [*keys, "t", "at_risk", "events"]
    assert steps[cols].astype(str).values.tolist() == drops[cols].astype(str).values.tolist()
    assert steps["survival"].tolist() == pytest.approx(drops["survival"].tolist(), abs=1e-12)
