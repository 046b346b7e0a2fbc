"""RevOps vital signs and subscription revenue metrics, every definition a named policy.

``compute(name, tables, by=..., period=..., **policies)`` returns a :class:`MetricResult`
(an unexecuted table and the policies in force). Metric families register themselves
on import.
"""

from __future__ import annotations

# importing each family registers its metrics
from revloop.metrics import _lead as _lead
from revloop.metrics import _pipeline as _pipeline
from revloop.metrics import _subscription as _subscription
from revloop.metrics._panel import Panel as Panel
from revloop.metrics._panel import panel as panel
from revloop.metrics._quality import GROUP_LEVEL as GROUP_LEVEL
from revloop.metrics._quality import LEFT_OUT_COLUMNS as LEFT_OUT_COLUMNS
from revloop.metrics._quality import left_out as left_out
from revloop.metrics._registry import Benchmark as Benchmark
from revloop.metrics._registry import MetricDef as MetricDef
from revloop.metrics._registry import MetricResult as MetricResult
from revloop.metrics._registry import Policy as Policy
from revloop.metrics._registry import Request as Request
from revloop.metrics._registry import Scope as Scope
from revloop.metrics._registry import SharedBuild as SharedBuild
from revloop.metrics._registry import compute as compute
from revloop.metrics._registry import get_metric as get_metric
from revloop.metrics._registry import list_metrics as list_metrics
from revloop.metrics._registry import shared_tables as shared_tables

__all__ = [
    "GROUP_LEVEL",
    "LEFT_OUT_COLUMNS",
    "Benchmark",
    "MetricDef",
    "MetricResult",
    "Panel",
    "Policy",
    "Request",
    "Scope",
    "SharedBuild",
    "compute",
    "get_metric",
    "left_out",
    "list_metrics",
    "panel",
    "shared_tables",
]
