"""Each package's ``__all__`` is exactly its public names, sorted (httpx's test_exported_members)."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = [
    "revloop",
    "revloop.attribution",
    "revloop.cli",
    "revloop.forecast",
    "revloop.identity",
    "revloop.ingest",
    "revloop.metrics",
    "revloop.report",
    "revloop.schema",
    "revloop.synthetic",
    "revloop.touchpoints",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_imports_are_exported(name):
    module = importlib.import_module(name)
    # submodules appear as attributes once anything imports them: only the root lists them
    public = {
        member
        for member, value in vars(module).items()
        if (not member.startswith("_") or member == "__version__")
        and member != "annotations"
        and not isinstance(value, types.ModuleType)
    }
    exported = set(module.__all__)
    assert {m for m in exported if not isinstance(getattr(module, m), types.ModuleType)} == public
    assert len(exported) == len(module.__all__), "no duplicates"  # order is ruff's RUF022


def test_version_matches_package_metadata():
    from importlib.metadata import version

    import revloop

    assert revloop.__version__ == version("revloop")
