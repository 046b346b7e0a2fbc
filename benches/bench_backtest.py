"""The whole forecast backtest on a company with 200k opportunities over 8 quarters.

    .venv/bin/python benches/bench_backtest.py --leads 1000000

The seeded CRM exports of ``benches/_crm.py`` (at 1M leads: 200k opportunities, 1.5M
stage-history rows, 2.6M activities, 24 months = 8 quarters) go through what
``revloop backtest`` does, phase by phase:

- ``read``: ``revloop.read_dir`` validates the Parquet files and loads the CRM tables
  into an in-memory DuckDB;
- ``snapshots``: the weekly as-of snapshots of every open deal (rebuilt from stage
  history, with point-in-time features), the stage moves and the won deals, fetched;
- ``backtest``: for each tested quarter, the three forecasters fitted at its start and
  scored at weeks 1, 4, 8 and 12 with their Monte Carlo P10/P50/P90.

The issue's figure is the whole backtest (``snapshots`` + ``backtest``; ``read`` is
reported apart). Nothing is asserted; the result goes to
``benches/results/backtest-<UTC time>.json`` and ``backtest-latest.json``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
from pathlib import Path

from _crm import ensure_crm  # benches/ is on sys.path: it holds this script
from _measure import Recorder

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ROOT = HERE.parent

#: The CRM's configured stage probabilities of the generated company (it has no
#: probability column): HubSpot's defaults in stage order (revops.md §3.2).
STAGE_PROBABILITIES = {"Discovery": 0.2, "Demo": 0.4, "Proposal": 0.6, "Negotiation": 0.8}


def _machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = next(
            line
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        mem_gb = round(int(mem.split()[1]) / 1024**2, 1)
    except (OSError, StopIteration):
        mem_gb = float("nan")
    return {"cpus": os.cpu_count(), "cpu": model, "memory_gib": mem_gb}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--draws", type=int, default=2000)
    args = ap.parse_args(argv)

    import pandas as pd

    import revloop
    from revloop import engine
    from revloop.forecast._backtest import BacktestData, backtest, backtest_dates
    from revloop.forecast._forecasters import StageWeighted
    from revloop.forecast._snapshots import snapshots, stage_moves, won_deals
    from revloop.ingest import read_dir

    meta = ensure_crm(args.leads)
    rec = Recorder("revloop")
    con = revloop.connect()
    with rec.phase("read"):
        tables = dict(
            read_dir(
                con,
                meta["dir"],
                only=("opportunities", "stage_history", "activities", "leads", "fx_rates"),
            )
        )
    with rec.phase("snapshots"):
        opp = tables["opportunities"]
        lo = pd.Timestamp(con.execute(opp.created_at.min()))
        hi = pd.Timestamp(con.execute(opp.created_at.max()))
        dates = backtest_dates(lo, hi + pd.Timedelta(days=1))
        data = BacktestData(
            snapshots=engine.to_pandas(snapshots(tables, dates), con),
            moves=engine.to_pandas(stage_moves(tables), con),
            won=engine.to_pandas(won_deals(tables), con),
        )
    periods: list[str] = []
    with rec.phase("backtest"):
        result = backtest(
            data,
            [StageWeighted(STAGE_PROBABILITIES), "stage_conversion", "calibrated_gbm"],
            draws=args.draws,
            on_period=lambda s: periods.append(str(s.date())),
        )
    out = rec.result(
        leads=args.leads,
        rows=meta["rows"],
        snapshot_dates=len(dates),
        snapshot_rows=len(data.snapshots),
        tested_quarters=periods,
        whole_backtest_s=round(rec.phases["snapshots"] + rec.phases["backtest"], 2),
        summary=json.loads(result.summary.to_json(orient="records")),
        deals=json.loads(result.deals.to_json(orient="records")),
        machine=_machine(),
        commit=os.popen(f"git -C {ROOT} rev-parse --short HEAD").read().strip(),
        python=platform.python_version(),
    )
    RESULTS.mkdir(exist_ok=True)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(out, indent=2, default=float) + "\n"
    (RESULTS / f"backtest-{stamp}.json").write_text(text)
    (RESULTS / "backtest-latest.json").write_text(text)
    print(
        f"{args.leads:,} leads, {meta['rows']['opportunities']:,} opportunities, "
        f"{meta['rows']['stage_history']:,} stage changes; {len(dates)} snapshot dates, "
        f"{len(data.snapshots):,} snapshot rows; quarters tested: {', '.join(periods)}"
    )
    print(
        f"read {rec.phases['read']:.1f} s (apart) | snapshots {rec.phases['snapshots']:.1f} s | "
        f"backtest {rec.phases['backtest']:.1f} s | whole backtest {out['whole_backtest_s']:.1f} s"
        f" | peak RSS {out['peak_rss_mb']:.0f} MB"
    )
    print(result.summary.to_string(index=False))
    print(result.deals.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
