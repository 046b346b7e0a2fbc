from __future__ import annotations

import pytest

import revloop


@pytest.fixture
def con():
    """A fresh in-memory DuckDB backend."""
    c = revloop.connect()
    yield c
    c.disconnect()
