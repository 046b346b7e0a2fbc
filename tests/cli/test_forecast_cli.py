"""revloop forecast and revloop backtest: JSON documents, files written, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import revloop
from revloop.cli import app
from revloop.synthetic import demo_company

runner = CliRunner()
_CRM = ("opportunities", "stage_history", "activities", "leads", "fx_rates")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("crm")
    con = revloop.connect()
    tables = demo_company(con, seed=9, n_people=50_000, months=15).tables()
    for name in _CRM:
        con.to_pandas(tables[name]).to_csv(out / f"{name}.csv", index=False)
    con.disconnect()
    return out


def test_backtest_json(folder, tmp_path):
    out = tmp_path / "bt.json"
    r = runner.invoke(
        app,
        ["backtest", str(folder), "--weeks", "1,6", "--min-train-periods", "2",
         "--draws", "200", "--format", "json", "--output", str(out)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert set(doc) == {"settings", "summary", "deals", "forecasts", "reliability"}
    assert doc["settings"]["weeks"] == [1, 6]
    rows = pd.DataFrame(doc["summary"])
    assert set(rows["forecaster"]) == {"calibrated_gbm", "stage_conversion", "stage_weighted"}
    assert set(rows["week"]) == {1, 6}
    assert rows["wape"].ge(0).all()
    f = pd.DataFrame(doc["forecasts"])
    assert (f["p10"] <= f["p90"]).all()


def test_forecast_table_json_and_deals(folder, tmp_path):
    r = runner.invoke(app, ["forecast", str(folder), "--as-of", "2026-08-12", "--draws", "200"])
    assert r.exit_code == 0, r.output
    assert "forecast of 2026Q3 as of 2026-08-12" in r.output
    deals = tmp_path / "deals.csv"
    r = runner.invoke(
        app,
        ["forecast", str(folder), "--as-of", "2026-08-12", "-f", "stage_conversion",
         "--draws", "200", "--format", "json", "--deals", str(deals)],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert [t["forecaster"] for t in doc["totals"]] == ["stage_conversion"]
    t = doc["totals"][0]
    assert t["forecast"] == pytest.approx(t["won_so_far"] + t["pipeline"] + t["new_deals"])
    d = pd.read_csv(deals)
    assert len(d) == len(doc["deals"]) > 0
    assert d["p_stage_conversion"].between(0, 1).all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-of", "someday"], "--as-of 'someday' is not a date"),
        (["--as-of", "2026-08-12", "-f", "prophet"], "unknown forecaster 'prophet'"),
        (
            ["--as-of", "2026-08-12", "--stage-probabilities", "[1]"],
            "--stage-probabilities '[1]': expected a JSON mapping",
        ),
    ],
)
def test_forecast_errors_are_one_line(folder, args, message):
    r = runner.invoke(app, ["forecast", str(folder), *args])
    assert r.exit_code == 1
    assert message in r.output
    assert "Traceback" not in r.output


def test_backtest_errors(folder, tmp_path):
    r = runner.invoke(app, ["backtest", str(folder), "--weeks", "one"])
    assert r.exit_code == 1
    assert "--weeks 'one': give whole weeks" in r.output
    r = runner.invoke(app, ["backtest", str(tmp_path)])
    assert r.exit_code == 1
    assert "no canonical table files" in r.output
