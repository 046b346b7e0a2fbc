"""The validator: every problem collected, each naming table, column, rows, example and fix."""

from __future__ import annotations

import datetime as dt

import ibis
import pandas as pd
import pytest

from revloop.exceptions import SchemaError
from revloop.schema import TABLES, conform, schema, validate

NOW = dt.datetime(2025, 1, 1)


def _opps(**overrides):
    base = {
        "opportunity_id": ["o1", "o2", "o3"],
        "created_at": ["2024-01-01", "2024-02-01", "2024-03-01"],
        "status": ["won", "lost", "open"],
        "amount": [100.0, 200.0, 300.0],
    }
    base.update(overrides)
    return ibis.memtable(pd.DataFrame(base))


def _subs(**columns):
    """Three subscription rows (s1..s3, one item each, monthly at 100), with ``columns``."""
    base = {
        "customer_id": ["c1", "c2", "c3"],
        "subscription_id": ["s1", "s2", "s3"],
        "item_id": ["i", "i", "i"],
        "starts_at": ["2024-01-01"] * 3,
        "amount": [100.0, 100.0, 100.0],
        "interval": ["month"] * 3,
    }
    base.update(columns)
    return ibis.memtable(pd.DataFrame(base))


def test_clean_table_has_no_issues():
    report = validate(_opps(), "opportunities", now=NOW)
    assert report.ok
    assert report.issues == []
    assert report.rows == {"opportunities": 3}


def test_missing_column_suggests_column_map():
    t = _opps().rename(created="created_at")
    report = validate(t, "opportunities", now=NOW)
    [issue] = report.issues
    assert issue.problem == "missing_column"
    assert str(issue) == (
        "opportunities.created_at: missing required column 'created_at' (timestamp); "
        "found ['opportunity_id', 'created', 'status', 'amount']. "
        "Pass column_map={'created_at': 'created'}."
    )


def test_column_map_fixes_the_missing_column():
    t = _opps().rename(created="created_at")
    assert validate(t, "opportunities", column_map={"created_at": "created"}, now=NOW).ok


def test_null_id():
    report = validate(_opps(opportunity_id=["o1", None, "o3"]), "opportunities", now=NOW)
    [issue] = report.issues
    assert (issue.problem, issue.column, issue.rows) == ("null_key", "opportunity_id", 1)
    assert "Every row needs a opportunity_id" in issue.fix


def test_text_in_timestamp_column():
    report = validate(
        _opps(created_at=["2024-01-01", "last tuesday", "2024-13-45"]), "opportunities", now=NOW
    )
    [issue] = report.issues
    assert issue.problem == "unparseable"
    assert issue.column == "created_at"
    assert issue.rows == 2
    assert issue.example == "2024-13-45"  # the smallest offending text, deterministic
    assert "ISO 8601" in issue.fix


def test_duplicate_ids():
    report = validate(_opps(opportunity_id=["o1", "o1", "o3"]), "opportunities", now=NOW)
    [issue] = report.issues
    assert issue.problem == "duplicate_key"
    assert issue.rows == 2
    assert issue.example == "o1"


def test_value_that_is_not_a_number():
    report = validate(_opps(amount=["100", "$200", "3,000"]), "opportunities", now=NOW)
    [issue] = report.issues
    assert (issue.problem, issue.column, issue.rows) == ("unparseable", "amount", 2)
    assert issue.example == "$200"
    assert "Remove currency signs and thousands separators" in issue.fix


def test_negative_amount_future_timestamp_unknown_status_all_at_once():
    t = _opps(
        amount=[100.0, -5.0, 300.0],
        created_at=["2024-01-01", "2024-02-01", "2031-01-01"],
        status=["won", "Closed Won", "open"],
    )
    report = validate(t, "opportunities", now=NOW)
    problems = sorted((i.problem, i.column, i.rows) for i in report.issues)
    assert problems == [
        ("future_timestamp", "created_at", 1),
        ("negative_value", "amount", 1),
        ("unknown_value", "status", 1),
    ]
    with pytest.raises(SchemaError, match=r"3 problems in the input:") as err:
        report.raise_for_errors()
    assert err.value.report is report
    assert "Allowed values: ['open', 'won', 'lost']" in str(err.value)


def test_a_discount_above_one_and_an_interval_count_below_one_are_errors():
    # a discount is a share (0.2 = 20 % off): 20 would make MRR negative; an interval
    # count of 0 would divide MRR by zero (month / n)
    t = _subs(interval_count=[1, 0, 3], discount=[0.2, 1.0, 20.0])
    report = validate(t, "subscriptions", now=NOW)
    got = sorted((i.problem, i.column, i.rows, i.example) for i in report.issues)
    assert got == [
        ("out_of_range", "discount", 1, "20.0"),
        ("out_of_range", "interval_count", 1, "0"),
    ]
    assert any("0.2 is 20 % off" in i.fix for i in report.issues)
    with pytest.raises(SchemaError, match="2 problems"):
        report.raise_for_errors()


def test_a_row_ending_before_it_starts_is_an_error_a_deal_closed_before_created_a_warning():
    # s1 ends two months before it starts; s2 ends the day it starts (a zero-length row,
    # no error); s3 runs on
    subs = _subs(
        starts_at=["2024-03-01", "2024-01-01", "2024-01-01"],
        ends_at=["2024-01-01", "2024-01-01", None],
    )
    report = validate(subs, "subscriptions", now=NOW)
    [issue] = report.issues
    assert (issue.table, issue.column, issue.problem, issue.rows) == (
        "subscriptions",
        "ends_at",
        "out_of_order",
        1,
    )
    assert issue.severity == "error"
    # the example names the row (its key) and both values
    assert issue.example == (
        "subscription_id=s1 item_id=i ends_at=2024-01-01 00:00:00 starts_at=2024-03-01 00:00:00"
    )
    assert "earlier than starts_at" in str(issue)
    assert "fix its dates or drop the row" in issue.fix

    # o2 closes on the day it was created, at midnight (a close *date*): in order
    opps = _opps(
        created_at=["2024-01-01", "2024-02-01 14:00", "2024-03-01"],
        closed_at=["2023-12-20", "2024-02-01", None],
    )
    report = validate(opps, "opportunities", now=NOW)
    [issue] = report.issues
    assert (issue.column, issue.problem, issue.rows, issue.severity) == (
        "closed_at",
        "out_of_order",
        1,
        "warning",
    )
    assert report.ok  # a warning does not block loading
    assert "sales_cycle leaves those deals out" in issue.fix


def test_wrong_type():
    t = ibis.memtable(
        pd.DataFrame({"opportunity_id": ["o1"], "created_at": [True], "status": ["won"]})
    )
    [issue] = validate(t, "opportunities", now=NOW).issues
    assert issue.problem == "wrong_type"
    assert "has type boolean, expected timestamp" in str(issue)


def test_conform_casts_fills_and_keeps_extras(con):
    t = _opps().mutate(extra=ibis.literal("x"))
    out = conform(t, "opportunities")
    assert list(out.columns)[: len(TABLES["opportunities"].columns)] == list(
        TABLES["opportunities"].names
    )
    assert out.columns[-1] == "extra"
    assert out.schema()["created_at"].is_timestamp()
    assert out.schema()["currency"].is_string()  # optional, filled with nulls
    assert con.execute(out).currency.isna().all()


def test_conform_converts_offsets_to_utc(con):
    t = _opps(created_at=["2024-01-01T10:00:00+02:00", "2024-01-01T10:00:00Z", "2024-01-01 10:00"])
    got = con.execute(conform(t, "opportunities")).created_at.tolist()
    assert got == [
        pd.Timestamp("2024-01-01 08:00"),
        pd.Timestamp("2024-01-01 10:00"),
        pd.Timestamp("2024-01-01 10:00"),
    ]


def test_conform_missing_required_raises():
    with pytest.raises(
        SchemaError, match=r"opportunities\.status: missing required column 'status'"
    ):
        conform(_opps().drop("status"), "opportunities")


def test_unknown_table_name():
    with pytest.raises(SchemaError, match=r"unknown canonical table 'lead'"):
        schema("lead")


@pytest.mark.parametrize("name", sorted(TABLES))
def test_every_table_has_a_key_and_valid_types(name):
    spec = TABLES[name]
    assert spec.unique, f"{name} declares a unique key"
    assert all(k in spec.names for k in spec.unique)
    spec.schema()  # every dtype parses
