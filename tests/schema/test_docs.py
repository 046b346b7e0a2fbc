"""docs/data.md documents every column of every canonical table."""

from __future__ import annotations

from pathlib import Path

import pytest

from revloop.schema import TABLES

DOC = (Path(__file__).parents[2] / "docs" / "data.md").read_text()


@pytest.mark.parametrize("name", sorted(TABLES))
def test_table_and_columns_documented(name):
    assert f"### `{name}`" in DOC
    section = DOC.split(f"### `{name}`", 1)[1].split("### ", 1)[0]
    for column in TABLES[name].names:
        assert f"| `{column}` |" in section, f"{name}.{column} is not in docs/data.md"
