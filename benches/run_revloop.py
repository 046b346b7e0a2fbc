"""revloop: every rule-based model at once from raw touchpoints (runs in the project venv).

Phases:
- ``read``: ``revloop.connect()`` (in-memory DuckDB) and ``con.read_parquet`` for both
  files. DuckDB reads lazily, so this only registers the files; the scan is in ``models``.
- ``models``: build ``credit_many`` over all of ``attribution.RULE_BASED`` (11 models)
  and ``summarize(credits, by="channel")``, then ``revloop.execute`` the summary: the
  Parquet scan, the path building (join, ordering, windows), every model's weights and
  the per-channel roll-up of conversions and value all happen in this one query.

``--route summarize_many`` times ``attribution.summarize_many`` instead (the same
numbers in one aggregate, never materialising per-touch credits).

Models use ``lookback_days=None`` by default, like ChannelAttribution and DP6, which
have no lookback window (revloop's default is 90 days); ``--lookback-days 90`` restores it.
``last_non_direct`` is told that this data's direct channel is called ``direct``.
"""

from __future__ import annotations

import argparse
from importlib.metadata import version
from pathlib import Path

import revloop
from _measure import Recorder, channel_table, write_result
from revloop import attribution


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--touchpoints", required=True, type=Path)
    ap.add_argument("--conversions", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--route", choices=["credit_many", "summarize_many"], default="credit_many")
    ap.add_argument("--lookback-days", type=float, default=None)
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    args = ap.parse_args()
    rec = Recorder("revloop" if args.route == "credit_many" else "revloop (summarize_many)")

    with rec.phase("read"):
        con = revloop.connect(threads=args.threads)
        tp = con.read_parquet(args.touchpoints)
        cv = con.read_parquet(args.conversions)

    with rec.phase("models"):
        params: dict[str, dict[str, object]] = {"last_non_direct": {"direct_channels": ["direct"]}}
        models = [
            attribution.get_model(name, lookback_days=args.lookback_days, **params.get(name, {}))
            for name in attribution.RULE_BASED
        ]
        if args.route == "credit_many":
            credits = attribution.credit_many(models, tp, cv)
            summary = attribution.summarize(credits, by="channel")
        else:
            summary = attribution.summarize_many(models, tp, cv, by="channel")
        df = revloop.execute(summary)

    conversions: dict[str, dict[str, float]] = {}
    value: dict[str, dict[str, float]] = {}
    for row in df.itertuples(index=False):
        c, v = conversions.setdefault(row.model, {}), value.setdefault(row.model, {})
        c[row.channel] = c.get(row.channel, 0.0) + row.conversions  # summed over kinds
        v[row.channel] = v.get(row.channel, 0.0) + row.value
    rename = {"first_touch": "first", "last_touch": "last"}  # the shared names of the check
    write_result(
        args.out,
        rec.result(
            version=version("revloop"),
            duckdb=version("duckdb"),
            ibis=version("ibis-framework"),
            route=args.route,
            lookback_days=args.lookback_days,
            models=list(attribution.RULE_BASED),
            summary_rows=len(df),
            conversions=channel_table({rename.get(k, k): v for k, v in conversions.items()}),
            value=channel_table({rename.get(k, k): v for k, v in value.items()}),
        ),
    )


if __name__ == "__main__":
    main()
