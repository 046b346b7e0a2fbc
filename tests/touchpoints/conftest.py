from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ibis.expr.types as ir
import pytest
from _tp_data import make_events


@pytest.fixture
def events() -> Callable[[list[dict[str, Any]]], ir.Table]:
    return make_events
