"""Phase timing and peak memory for the benchmark runners (standard library only).

Each runner runs in its own interpreter (revloop's venv, or a competitor's venv under
``benches/.venvs/``), so it imports this module by path and needs nothing installed.

Peak memory is the process's resident-set high-water mark as the kernel keeps it
(``getrusage(RUSAGE_SELF).ru_maxrss``, the same figure as ``VmHWM`` and ``/usr/bin/time
-v``'s "Maximum resident set size"): it counts memory allocated by C, C++ and Rust
libraries too, and it cannot miss a short spike the way a sampling thread can. After
each phase the high-water mark so far is recorded, so the phase that set the peak shows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def process_age_s() -> float:
    """Seconds since this process started (Linux ``/proc``; 10 ms resolution), else NaN."""
    try:
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (10^6 bytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # Linux: KiB


def cpu_s() -> float:
    """User + system CPU seconds of this process (all threads) so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / 1e6
    except OSError:  # not Linux
        return float("nan")


class Recorder:
    """Times named phases; ``phase`` blocks must not nest."""

    def __init__(self, tool: str) -> None:
        self.tool = tool
        self.phases: dict[str, float] = {}
        self.peak_after: dict[str, float] = {}
        self.info: dict[str, Any] = {}
        # interpreter start-up and imports, before the first phase (not in the total)
        self.imports_s = round(process_age_s(), 2)
        self.rss_after_imports_mb = round(current_rss_mb(), 1)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - t
            self.peak_after[name] = round(peak_rss_mb(), 1)

    def result(self, **extra: Any) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "python": platform.python_version(),
            "phases_s": {k: round(v, 3) for k, v in self.phases.items()},
            "total_s": round(sum(self.phases.values()), 3),
            # CPU seconds of all threads, start-up included: less sensitive than wall time
            # to other work on the machine
            "cpu_s": round(cpu_s(), 2),
            "imports_s": self.imports_s,
            "rss_after_imports_mb": self.rss_after_imports_mb,
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "peak_rss_after_phase_mb": self.peak_after,
            **self.info,
            **extra,
        }


def runner_args(description: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--touchpoints", required=True, type=Path)
    ap.add_argument("--conversions", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path, help="where to write the result JSON")
    return ap.parse_args()


def write_result(path: Path, result: dict[str, Any]) -> None:
    path.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(
        json.dumps({k: result[k] for k in ("tool", "phases_s", "total_s", "peak_rss_mb")}),
        file=sys.stderr,
    )


def channel_table(rows: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Normalise ``{model: {channel: number}}`` to plain floats (JSON-able, sorted)."""
    return {m: {str(c): float(v) for c, v in sorted(d.items())} for m, d in sorted(rows.items())}
