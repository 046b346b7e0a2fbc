"""The layering of DESIGN.md: spec and compute modules never execute queries or do I/O.

Only ``engine``, ``cli``, ``web``, ``report`` and ``ingest`` run queries; a compute module
that imports the engine (or calls ``execute``/``to_pandas``) is a layering break.
``schema.validate`` is the one documented exception: it counts problems through the engine.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "revloop"
COMPUTE = [
    "attribution",
    "touchpoints",
    "identity",
    "schema",
    "metrics",
    "forecast",
    "_pipeline.py",
]
ALLOWED = {"schema/_validate.py"}
EXECUTING_CALLS = {
    "execute",
    "to_pandas",
    "to_pyarrow",
    "raw_sql",
    "to_csv",
    "to_parquet",
    "create_table",
}


def _files():
    for part in COMPUTE:
        p = SRC / part
        yield from ([p] if p.is_file() else sorted(p.rglob("*.py")))


@pytest.mark.parametrize("path", list(_files()), ids=lambda p: str(p.relative_to(SRC)))
def test_compute_module_does_not_execute(path):
    rel = str(path.relative_to(SRC))
    tree = ast.parse(path.read_text())
    problems = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("revloop.engine")
        ):
            problems.append(f"imports {node.module}")
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "revloop"
            and any(a.name == "engine" for a in node.names)
        ):
            problems.append("imports revloop.engine")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in EXECUTING_CALLS
        ):
            problems.append(f"calls .{node.func.attr}() at line {node.lineno}")
    if rel in ALLOWED:
        return
    assert not problems, f"{rel}: " + "; ".join(problems)
