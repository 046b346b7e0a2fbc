"""read_dir: validate a whole folder first; load everything or nothing."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from revloop.exceptions import SchemaError
from revloop.ingest import find_files, read_dir

NOW = dt.datetime(2025, 1, 1)


def _write(folder, leads=None, opps=None):
    (
        leads
        if leads is not None
        else pd.DataFrame(
            {
                "lead_id": ["L1", "L2"],
                "person_id": ["p1", "p2"],
                "created_at": ["2024-01-01 10:00", "2024-01-02 11:00"],
            }
        )
    ).to_csv(folder / "leads.csv", index=False)
    (
        opps
        if opps is not None
        else pd.DataFrame(
            {
                "opportunity_id": ["O1"],
                "lead_id": ["L1"],
                "created_at": ["2024-02-01"],
                "status": ["won"],
                "amount": [1200.5],
            }
        )
    ).to_parquet(folder / "opportunities.parquet")
    (folder / "notes.txt").write_text("ignored")


def test_reads_validates_and_loads(con, tmp_path):
    _write(tmp_path)
    ds = read_dir(con, tmp_path, now=NOW)
    assert sorted(ds) == ["leads", "opportunities"]
    assert ds.report.ok
    assert set(con.list_tables()) >= {"leads", "opportunities"}
    leads = con.execute(ds.leads)
    assert leads.created_at.tolist() == [
        pd.Timestamp("2024-01-01 10:00"),
        pd.Timestamp("2024-01-02 11:00"),
    ]
    assert con.execute(ds["opportunities"]).amount.tolist() == [1200.5]


def test_one_error_anywhere_loads_nothing_and_lists_everything(con, tmp_path):
    _write(
        tmp_path,
        leads=pd.DataFrame(
            {
                "lead_id": ["L1", "L1"],
                "person_id": ["p1", None],
                "created_at": ["2024-01-01", "soon"],
            }
        ),
        opps=pd.DataFrame({"opportunity_id": ["O1"], "created": ["2024-02-01"], "status": ["won"]}),
    )
    with pytest.raises(SchemaError) as err:
        read_dir(con, tmp_path, now=NOW)
    msg = str(err.value)
    assert msg.startswith("4 problems in the input:")
    assert "leads.person_id: null values in 1 row" in msg
    assert "leads.created_at: text that does not parse as timestamp in 1 row (e.g. 'soon')" in msg
    assert "leads: duplicate key (lead_id) in 2 rows (e.g. 'L1')" in msg
    assert "Pass column_map={'created_at': 'created'}" in msg
    assert not {"leads", "opportunities"} & set(con.list_tables())


def test_column_map_per_table(con, tmp_path):
    _write(
        tmp_path,
        opps=pd.DataFrame({"opportunity_id": ["O1"], "created": ["2024-02-01"], "status": ["won"]}),
    )
    ds = read_dir(con, tmp_path, column_map={"opportunities": {"created_at": "created"}}, now=NOW)
    assert con.execute(ds.opportunities).created_at.tolist() == [pd.Timestamp("2024-02-01")]


def test_input_files_are_not_modified(con, tmp_path):
    _write(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    read_dir(con, tmp_path, now=NOW)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_empty_folder_and_duplicates(con, tmp_path):
    with pytest.raises(
        SchemaError, match=r"no canonical table files in .*Name files after the tables"
    ):
        read_dir(con, tmp_path)
    (tmp_path / "leads.csv").write_text("lead_id\n")
    (tmp_path / "leads.parquet").write_text("")
    with pytest.raises(
        SchemaError, match=r"two files for table 'leads': leads.csv and leads.parquet"
    ):
        find_files(tmp_path)
