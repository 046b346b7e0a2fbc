"""Subscription metrics (see docs/metrics-subscription.md). Definitions: ``shared/reference/revops.md``."""

from __future__ import annotations

__all__: list[str] = []
