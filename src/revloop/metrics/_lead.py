"""Lead metrics (see docs/metrics-lead.md). Definitions: ``shared/reference/revops.md``."""

from __future__ import annotations

__all__: list[str] = []
