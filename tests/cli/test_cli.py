"""The CLI: thin commands, CSV out, one red line per issue and exit code 1 on bad input."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from revloop.cli import app
from revloop.cli._app import parse_params
from revloop.exceptions import RevloopError

runner = CliRunner()


@pytest.fixture
def files(tmp_path):
    pd.DataFrame(
        {
            "person_id": ["a", "a", "b", "c"],
            "occurred_at": ["2024-01-01", "2024-01-03", "2024-01-02", "2024-01-05"],
            "channel": ["Paid Search", "Email", "Email", "Direct"],
            "campaign": ["brand", "nl", None, None],
        }
    ).to_csv(tmp_path / "tp.csv", index=False)
    pd.DataFrame(
        {
            "conversion_id": ["c1", "c2", "c3"],
            "person_id": ["a", "b", "z"],
            "occurred_at": ["2024-01-04", "2024-01-06", "2024-01-06"],
            "value": [100, 50, 7],
            "kind": ["won", "won", "lead"],
        }
    ).to_parquet(tmp_path / "cv.parquet")
    return tmp_path


def test_attribute_by_channel(files):
    out = files / "out.csv"
    r = runner.invoke(
        app,
        [
            "attribute",
            str(files / "tp.csv"),
            str(files / "cv.parquet"),
            "--model",
            "position_based",
            "--output",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    got = pd.read_csv(out).set_index("channel")
    # c1: Paid Search, Email → 50/50 of 100; c2: Email → 50; c3 (lead, person z): no touch → 7 unattributed
    assert got.value.to_dict() == {"Email": 100.0, "Paid Search": 50.0, "(unattributed)": 7.0}
    assert got.conversions.to_dict() == {"Email": 1.5, "Paid Search": 0.5, "(unattributed)": 1.0}


def test_attribute_kind_filter_and_conversion_grain_with_params(files):
    out = files / "o.csv"
    r = runner.invoke(
        app,
        [
            "attribute",
            str(files / "tp.csv"),
            str(files / "cv.parquet"),
            "-m",
            "time_decay",
            "-p",
            "half_life=1 day",
            "--kind",
            "won",
            "--by",
            "conversion",
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    got = pd.read_csv(out)
    assert list(got.columns) == ["conversion_id", "touchpoint_id", "channel", "weight", "value"]
    c1 = got[got.conversion_id == "c1"].set_index("channel")
    # 2 days apart with a 1-day half-life: raw 1/4 and 1 → 0.2 and 0.8
    assert c1.weight.to_dict() == pytest.approx({"Paid Search": 0.2, "Email": 0.8})
    assert set(got.conversion_id) == {"c1", "c2"}


def test_attribute_by_campaign(files):
    out = files / "c.csv"
    r = runner.invoke(
        app,
        [
            "attribute",
            str(files / "tp.csv"),
            str(files / "cv.parquet"),
            "-m",
            "first_touch",
            "--by",
            "campaign",
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert set(pd.read_csv(out).columns) == {"campaign", "conversions", "value"}


def test_bad_input_one_red_line_per_issue_exit_1_nothing_written(files):
    pd.DataFrame(
        {
            "conversion_id": ["c1", "c1"],
            "person_id": [None, "b"],
            "occurred_at": ["2024-01-04", "later"],
            "value": ["100", "$5"],
        }
    ).to_csv(files / "bad.csv", index=False)
    out = files / "never.csv"
    r = runner.invoke(
        app,
        [
            "attribute",
            str(files / "tp.csv"),
            str(files / "bad.csv"),
            "-m",
            "linear",
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 1
    lines = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 4
    assert any(
        "conversions.occurred_at: text that does not parse as timestamp in 1 row (e.g. 'later')"
        in ln
        for ln in lines
    )
    assert any("conversions.value" in ln and "'$5'" in ln for ln in lines)
    assert not out.exists()


def test_unknown_model_and_bad_param(files):
    r = runner.invoke(
        app,
        [
            "attribute",
            str(files / "tp.csv"),
            str(files / "cv.parquet"),
            "-m",
            "markov",
            "-o",
            "x.csv",
        ],
    )
    assert r.exit_code == 1
    assert "unknown attribution model 'markov'" in r.output
    r = runner.invoke(
        app,
        [
            "attribute",
            str(files / "tp.csv"),
            str(files / "cv.parquet"),
            "-m",
            "linear",
            "-p",
            "lookback",
            "-o",
            "x.csv",
        ],
    )
    assert r.exit_code == 1
    assert "is not key=value" in r.output


def test_parse_params_reads_json_values():
    assert parse_params(
        ["first=0.3", "half_life=7 days", "lookback_days=null", 'direct_channels=["Direct"]']
    ) == {"first": 0.3, "half_life": "7 days", "lookback_days": None, "direct_channels": ["Direct"]}
    with pytest.raises(RevloopError):
        parse_params(["=3"])


def test_explain_prints_sql_for_other_dialects():
    r = runner.invoke(app, ["explain", "w_shaped", "--dialect", "bigquery"])
    assert r.exit_code == 0, r.output
    assert "`touchpoints`" in r.output
    assert "`conversions`" in r.output
    r = runner.invoke(app, ["explain", "linear", "--summary"])
    assert r.exit_code == 0
    assert "GROUP BY" in r.output


def test_validate_and_load(tmp_path):
    pd.DataFrame({"lead_id": ["L1"], "person_id": ["p"], "created_at": ["2024-01-01"]}).to_csv(
        tmp_path / "leads.csv", index=False
    )
    r = runner.invoke(app, ["validate", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "leads" in r.output
    db = tmp_path / "x.duckdb"
    r = runner.invoke(app, ["load", str(tmp_path), "--db", str(db)])
    assert r.exit_code == 0, r.output
    import revloop

    con = revloop.connect(db)
    assert con.table("leads").count().execute() == 1
    con.disconnect()


def test_validate_lists_every_issue(tmp_path):
    pd.DataFrame(
        {"lead_id": ["L1", "L1"], "person_id": ["p", None], "created_at": ["2024-01-01", "x"]}
    ).to_csv(tmp_path / "leads.csv", index=False)
    r = runner.invoke(app, ["validate", str(tmp_path)])
    assert r.exit_code == 1
    assert len([ln for ln in r.output.splitlines() if ln.startswith("error:")]) == 3


def test_explain_sql_is_identical_across_hash_seeds():
    """SQL text must not depend on Python's string hashing (set order in generated SQL)."""
    import os
    import subprocess
    import sys

    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "revloop",
                "explain",
                "full_path",
                "--param",
                "transforms=exposure",
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        outs.append(proc.stdout)
    assert outs[0] == outs[1]
    assert "SELECT" in outs[0]
