"""Hand-computed cases (cases.json): every model and transform, with the arithmetic in 'why'."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from revloop import attribution

CASES = json.loads((Path(__file__).parent / "cases.json").read_text())["cases"]


def _frames(case: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    touches = pd.DataFrame(
        {
            "touchpoint_id": [t[0] for t in case["touches"]],
            "person_id": ["p"] * len(case["touches"]),
            "occurred_at": pd.to_datetime([t[1] for t in case["touches"]], format="ISO8601"),
            "channel": [t[2] for t in case["touches"]],
        }
    ).astype({"touchpoint_id": "string", "person_id": "string", "channel": "string"})
    c = case["conversion"]
    conv = pd.DataFrame(
        {
            "conversion_id": ["c"],
            "person_id": ["p"],
            "occurred_at": pd.to_datetime([c["at"]]),
            "value": [float(c["value"])],
            "kind": pd.Series([c.get("kind")], dtype="string"),
            "lead_created_at": pd.to_datetime([c.get("lead_created_at")]),
            "opportunity_created_at": pd.to_datetime([c.get("opportunity_created_at")]),
            "won_at": pd.to_datetime([c.get("won_at")]),
        }
    )
    return touches, conv


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_hand_computed(case, con):
    touches, conv = _frames(case)
    tp = con.create_table("tp", touches, overwrite=True)
    cv = con.create_table("cv", conv, overwrite=True)
    model = attribution.get_model(case["model"], **case.get("params", {}))
    got = con.execute(model.fit(tp).credit(cv))
    got["key"] = got.touchpoint_id.fillna(got.channel)
    weights = dict(zip(got.key, got.weight, strict=True))
    assert set(weights) == set(case["expected"]), case["why"]
    for key, expected in case["expected"].items():
        assert weights[key] == pytest.approx(expected, abs=1e-9), f"{key}: {case['why']}"
    value = float(case["conversion"]["value"])
    assert got.value.sum() == pytest.approx(value)
    assert (got.model == case["model"]).all()


def test_every_rule_based_model_has_a_case():
    covered = {c["model"] for c in CASES}
    assert set(attribution.RULE_BASED) <= covered
