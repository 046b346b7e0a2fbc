"""revloop metrics: one figure as JSON value, grouped figures as rows, policies stated."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from revloop.cli import app

runner = CliRunner()


@pytest.fixture
def folder(tmp_path):
    pd.DataFrame(
        {
            "opportunity_id": ["o1", "o2", "o3", "o4"],
            "created_at": ["2024-01-01", "2024-01-05", "2024-01-07", "2024-02-01"],
            "closed_at": ["2024-02-01", "2024-02-10", "2024-02-11", "2024-03-05"],
            "status": ["won", "won", "lost", "won"],
            "amount": [10000.0, 30000.0, 99000.0, 5000.0],
            "segment": ["SMB", "Enterprise", "SMB", "SMB"],
        }
    ).to_csv(tmp_path / "opportunities.csv", index=False)
    return tmp_path


def test_single_figure_json(folder):
    r = runner.invoke(
        app, ["metrics", str(folder), "--metric", "average_deal_size", "--format", "json"]
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    # won: 10,000 + 30,000 + 5,000 = 45,000 over 3 deals = 15,000
    assert doc["metric"] == "average_deal_size"
    assert doc["value"] == pytest.approx(15000.0)
    assert doc["policy"] == {"statistic": "mean", "reporting_currency": "USD"}
    assert doc["stats"] == {
        "deals": 3,
        "won_amount": 45000.0,
        "won_without_amount": 0,
        "closed_without_date": 0,
    }


def test_grouped_rows_and_policy(folder, tmp_path):
    out = tmp_path / "m.json"
    r = runner.invoke(
        app,
        [
            "metrics",
            str(folder),
            "-m",
            "average_deal_size",
            "--by",
            "segment",
            "--period",
            "month",
            "-p",
            "statistic=median",
            "--format",
            "json",
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["policy"]["statistic"] == "median"
    assert doc["scope"]["by"] == "segment"
    rows = {(row["segment"], row["period"][:10]): row["value"] for row in doc["rows"]}
    # February: SMB o1 10,000; Enterprise o2 30,000. March: SMB o4 5,000
    assert rows == {
        ("Enterprise", "2024-02-01"): 30000.0,
        ("SMB", "2024-02-01"): 10000.0,
        ("SMB", "2024-03-01"): 5000.0,
    }


def test_csv_and_window(folder):
    r = runner.invoke(
        app,
        [
            "metrics",
            str(folder),
            "-m",
            "average_deal_size",
            "--start",
            "2024-03-01",
            "--format",
            "csv",
        ],
    )
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[0] == "value,deals,won_amount,won_without_amount,closed_without_date"
    assert lines[1].startswith("5000.0,1,")


def test_errors_are_one_line_exit_1(folder):
    r = runner.invoke(
        app, ["metrics", str(folder), "-m", "average_deal_size", "-p", "statistic=mode"]
    )
    assert r.exit_code == 1
    assert "statistic='mode' is not allowed; choose one of ['mean', 'median']" in r.output
    r = runner.invoke(app, ["metrics", str(folder), "-m", "no_such_metric"])
    assert r.exit_code == 1
    assert "unknown metric 'no_such_metric'" in r.output
    r = runner.invoke(app, ["metrics", str(folder), "-m", "average_deal_size", "--by", "region"])
    assert r.exit_code == 1
    assert "cannot group opportunities by 'region'" in r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "notadate"], "start (--start) = 'notadate' is not a date"),
        (["--as-of", "yesterday"], "as_of (--as-of) = 'yesterday' is not a date"),
        (["--end", "2024-13-01"], "end (--end) = '2024-13-01' is not a date"),
        # forms Python reads but DuckDB does not
        (["--start", "20240101"], "start (--start) = '20240101' is not a date"),
        (["--start", "2024W01"], "start (--start) = '2024W01' is not a date"),
        (
            ["--start", "2024-03-01", "--end", "2024-01-01"],
            "the window is empty: start=2024-03-01 is not before end=2024-01-01",
        ),
        (["--start", "2024-03-01", "--end", "2024-03-01"], "the window is empty"),
    ],
)
def test_bad_dates_are_one_line_errors_naming_the_option(folder, args, message):
    r = runner.invoke(app, ["metrics", str(folder), "-m", "win_rate", *args])
    assert r.exit_code == 1
    assert message in r.output
    assert "Traceback" not in r.output
    assert "2026-01-01" in r.output or "Give a start earlier" in r.output


def test_warns_of_rows_a_figure_leaves_out_and_of_the_tables_warnings(folder):
    path = folder / "opportunities.csv"
    df = pd.read_csv(path)
    df.loc[df.opportunity_id == "o4", "amount"] = None  # won without an amount
    df.loc[df.opportunity_id == "o2", "closed_at"] = "2024-01-01"  # before its 2024-01-05
    df.to_csv(path, index=False)
    r = runner.invoke(app, ["metrics", str(folder), "-m", "average_deal_size", "--format", "csv"])
    assert r.exit_code == 0, r.output
    # won: o1 10,000 and o2 30,000 with amounts; o4 without -> 40,000 / 2, 1 left out
    lines = [line for line in r.output.splitlines() if not line.startswith(("warning", " "))]
    row = dict(zip(lines[-2].split(","), lines[-1].split(","), strict=True))
    assert float(row["value"]) == 20000.0
    assert (float(row["won_amount"]), int(row["won_without_amount"])) == (40000.0, 1)
    assert (
        "warning: average_deal_size: 1 won deals without an amount (or FX rate) are left "
        "out of the amounts (column won_without_amount)." in " ".join(r.output.split())
    )
    assert "warning: opportunities.closed_at: values earlier than created_at" in r.output


def test_a_count_repeated_on_several_rows_is_taken_once_per_group():
    from revloop.metrics import left_out

    # conversion_by_response_time repeats its group's counts on each bucket row
    df = pd.DataFrame(
        {
            "period": ["2024-01-01"] * 3 + ["2024-02-01"] * 2,
            "response_bucket": ["0-5m", "1-24h", "never", "0-5m", "never"],
            "contacted_before_created": [2, 2, 2, 1, 1],
            "won_without_amount": [1, 0, 0, 0, 3],  # (not a repeated count: summed)
        }
    )
    got = left_out("conversion_by_response_time", df)
    # January 2 + February 1 = 3, not 2 + 2 + 2 + 1 + 1 = 8
    assert [(c, n) for c, n, _ in got] == [
        ("won_without_amount", 4),
        ("contacted_before_created", 3),
    ]
    got = left_out("conversion_by_response_time", df.head(3).drop(columns="period"))
    assert [(c, n) for c, n, _ in got] == [
        ("won_without_amount", 1),
        ("contacted_before_created", 2),
    ]
    # another metric's rows are each their own: summed
    assert left_out("speed_to_lead", df)[1][:2] == ("contacted_before_created", 8)
    # deals closed without a date sit on every period of their segment: once per segment
    wr = pd.DataFrame(
        {
            "segment": ["SMB", "SMB", "ENT", "ENT"],
            "period": ["2024-01-01", "2024-02-01"] * 2,
            "closed_without_date": [2, 2, 1, 1],
        }
    )
    assert left_out("win_rate", wr, "segment")[0][:2] == ("closed_without_date", 3)
    assert left_out("win_rate", wr.query("segment == 'SMB'").drop(columns="segment"))[0][1] == 2
    # ...but the cohort win rate counts each undated deal in its own creation cohort: summed
    assert left_out("win_rate", wr, "segment", {"variant": "cohort"})[0][1] == 6
    # a state counted at every period (a deal without an amount open at each boundary,
    # a row of unknown interval every month): the most in one period, not the sum
    wf = pd.DataFrame(
        {
            "period": ["2024-01-01", "2024-02-01", "2024-03-01"],
            "end_without_amount": [1, 1, 2],
            "new_without_amount": [1, 0, 1],  # events: summed
        }
    )
    got = {c: (n, text) for c, n, text in left_out("pipeline_waterfall", wf)}
    assert got["end_without_amount"][0] == 2
    assert got["end_without_amount"][1].endswith("(the most in one period)")
    assert got["new_without_amount"][0] == 2
    assert left_out("pipeline_waterfall", wf.head(1))[0][2].endswith("bridge")  # one row


def test_several_rows_without_grouping_are_rows(tmp_path):
    """A metric with one row per stage returns rows even without --by/--period."""
    pd.DataFrame(
        {
            "opportunity_id": ["o1", "o1", "o2"],
            "changed_at": ["2024-01-01", "2024-01-05", "2024-01-02"],
            "stage": ["Discovery", "Demo", "Discovery"],
        }
    ).to_csv(tmp_path / "stage_history.csv", index=False)
    pd.DataFrame(
        {
            "opportunity_id": ["o1", "o2"],
            "created_at": ["2024-01-01", "2024-01-02"],
            "status": ["open", "open"],
        }
    ).to_csv(tmp_path / "opportunities.csv", index=False)
    r = runner.invoke(app, ["metrics", str(tmp_path), "-m", "stage_conversion", "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert "rows" in doc
    assert len(doc["rows"]) >= 2


def test_table_fits_a_narrow_terminal_without_eliding_figures(folder, monkeypatch):
    """At 60 columns a wide result is split into column parts (the key columns repeated)
    or shown as field | value, and every figure is printed whole, never cut to "…"."""
    from revloop.cli import _app

    monkeypatch.setattr(_app.console, "_width", 60)
    r = runner.invoke(
        app,
        ["metrics", str(folder), "-m", "win_rate", "--by", "segment", "--period", "month"],
    )
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert all(len(line) <= 60 for line in lines), r.output
    assert "…" not in r.output
    # the parts each repeat the group and period columns
    assert r.output.count("segment") >= 2
    assert "[columns 2/" in r.output
    # SMB in 2024-02: won o1 (10,000), lost o3 -> 1 of 2 = 0.50 (the figure, whole)
    assert "0.50" in r.output

    r = runner.invoke(app, ["metrics", str(folder), "-m", "win_rate"])
    assert r.exit_code == 0, r.output
    assert all(len(line) <= 60 for line in r.output.splitlines()), r.output
    # one wide row: field | value; won 3 of 4 closed = 0.75
    assert "field" in r.output
    assert "0.75" in r.output
    assert "…" not in r.output


def test_cell_formats():
    from revloop.cli._app import _cell, _column_chunks

    assert _cell(1234567) == "1,234,567"
    assert _cell(True) == "True"
    # below 10: four significant digits (a 1.37 % churn rate, a 100.3 % NRR stay readable)
    assert _cell(0.5) == "0.5000"
    assert _cell(0.013712) == "0.01371"
    assert _cell(1.00312) == "1.003"
    assert _cell(-2.5) == "-2.500"
    assert _cell(1e-13) == "0.000000"  # float residue: at most 6 decimals
    assert _cell(0.0) == "0.00"
    assert _cell(26632.9) == "26,632.90"  # amounts: cents
    assert _cell(float("nan")) == ""
    assert _cell(None) == ""
    assert _cell(pd.Timestamp("2024-02-01")) == "2024-02-01"
    # widths 10 (key), 20, 20, 20 in 60 characters: key and two columns take
    # 1 + (10 + 3) + (20 + 3) + (20 + 3) = 60 <= 60; the third would make 83
    assert _column_chunks([10, 20, 20, 20], 1, 60) == [[0, 1, 2], [0, 3]]
    assert _column_chunks([10, 80], 1, 60) == [[0, 1]]  # one column per part at least
    assert _column_chunks([5], 1, 60) == [[0]]


def test_table_shows_brackets_as_text_not_markup(folder):
    """A group value such as "[b]SMB[/b]" is data: printed as it is, not as Rich markup."""
    path = folder / "opportunities.csv"
    df = pd.read_csv(path)
    df["segment"] = df["segment"].replace({"SMB": "[b]SMB[/b]"})
    df.to_csv(path, index=False)
    r = runner.invoke(app, ["metrics", str(folder), "-m", "win_rate", "--by", "segment"])
    assert r.exit_code == 0, r.output
    assert "[b]SMB[/b]" in r.output


def test_benchmarks_show_the_users_own_figure_when_comparable():
    from revloop.cli._app import _yours
    from revloop.metrics import Benchmark

    nrr = Benchmark("median NRR (YoY)", 1.02, "share", "src", column="value", variant="yoy")
    one = pd.DataFrame({"value": [1.2771], "customers": [10]})
    # the benchmark is year over year: the interval variant's figure is not comparable
    assert _yours(nrr, {"variant": "interval"}, one) == (
        " · quoted for variant=yoy: add --param variant=yoy to compare"
    )
    assert _yours(nrr, {"variant": "yoy"}, one) == " · yours 1.277"
    # one row per period: the column to read, not one figure
    trend = pd.DataFrame({"value": [1.1, 1.2]})
    assert _yours(nrr, {"variant": "yoy"}, trend) == " · yours: column value"
    share = Benchmark("within 1 hour", 0.37, "share", "HBR", column="within_1h")
    assert _yours(share, {}, pd.DataFrame({"within_1h": [0.35064]})) == " · yours 0.3506"
    # no comparable column (an odds ratio between studies), or not in this output
    assert _yours(Benchmark("odds", 21.0, "x", "MIT"), {}, one) == ""
    assert _yours(share, {}, one) == ""


def test_a_bad_file_blocks_only_the_metrics_that_read_it(folder):
    pd.DataFrame(
        {
            "customer_id": ["c1"],
            "subscription_id": ["s1"],
            "item_id": ["i"],
            "starts_at": ["2024-03-01"],
            "ends_at": ["2024-01-01"],  # ends before it starts: an error of subscriptions
            "amount": [100.0],
            "interval": ["month"],
        }
    ).to_csv(folder / "subscriptions.csv", index=False)
    r = runner.invoke(app, ["metrics", str(folder), "-m", "win_rate", "--format", "csv"])
    assert r.exit_code == 0, r.output  # win rate reads opportunities only
    r = runner.invoke(app, ["metrics", str(folder), "-m", "mrr"])
    assert r.exit_code == 1
    assert "subscriptions.ends_at: values earlier than starts_at" in r.output
    r = runner.invoke(app, ["metrics", str(folder), "-m", "speed_to_lead"])
    assert r.exit_code == 1
    assert "speed_to_lead needs the table(s) ['leads', 'activities']" in r.output
