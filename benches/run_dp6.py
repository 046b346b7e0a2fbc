"""DP6 ``marketing-attribution-models`` 2.1.1 heuristics from raw touchpoints (runs in benches/.venvs/dp6).

DP6 v2 is built on Polars, so its input is prepared with Polars. Its documented input
for raw touchpoints is the ``"session"`` format (``mam/preprocessing.py``,
``pipeline_format_1_to_unified``): one row per touch with a user id, a datetime, the
channel and a "journey converted" flag, plus an optional value column that is summed
per journey. It is the only format that feeds all five heuristics: the grouped-journey
format has no times, so time decay raises.

A ``MAM`` object credits one quantity: the conversion flag (``conversion_value_colname``
unset) or the value column. Conversions *and* value per channel therefore take two
``MAM`` objects, each with its own preprocessing; both are timed, as separate phases.

Phases:
- ``read``: both Parquet files into Polars.
- ``prepare``: flag the touches of converting persons and put each conversion's value on
  the person's last touch (so the per-journey sum is the deal amount).
- ``init_conversions`` / ``init_value``: ``MAM(df, "session", ...)``: DP6's own sort and
  group-by into journeys.
- ``models_conversions`` / ``models_value``: ``run_last_click``, ``run_first_click``,
  ``run_linear``, ``run_position_based``, ``run_time_decay`` (half-life 168 h), each
  materialising its per-channel result with ``to_pandas()``.
"""

from __future__ import annotations

from importlib.metadata import version

import polars as pl
from mam.core import MAM

from _measure import Recorder, channel_table, runner_args, write_result

MODELS = {
    "last": "run_last_click",
    "first": "run_first_click",
    "linear": "run_linear",
    "position_based": "run_position_based",
    "time_decay": "run_time_decay",
}


def run_models(m: MAM) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, method in MODELS.items():
        df = getattr(m, method)().to_pandas()
        out[name] = dict(zip(df["channels"].astype(str), df["attribution"], strict=True))
    return out


def main() -> None:
    args = runner_args(__doc__.splitlines()[0])
    rec = Recorder("DP6 marketing-attribution-models")

    with rec.phase("read"):
        tp = pl.read_parquet(args.touchpoints, columns=["person_id", "occurred_at", "channel"])
        cv = pl.read_parquet(args.conversions, columns=["person_id", "value"])

    with rec.phase("prepare"):
        per_person = cv.group_by("person_id").agg(pl.col("value").sum(), pl.len().alias("n_conv"))
        sessions = tp.join(per_person, on="person_id", how="left").with_columns(
            pl.col("n_conv").is_not_null().alias("has_conversion"),
            pl.when(pl.col("occurred_at") == pl.col("occurred_at").max().over("person_id"))
            .then(pl.col("value"))
            .otherwise(None)
            .alias("conversion_value"),
        )
        sessions = sessions.select(
            "person_id", "occurred_at", "channel", "has_conversion", "conversion_value"
        )
        del tp, cv, per_person
    kwargs = {
        "format_type": "session",
        "channels_colname": "channel",
        "journey_with_conv_colname": "has_conversion",
        "datetime_colname": "occurred_at",
        "user_id_colname": "person_id",
    }

    with rec.phase("init_conversions"):
        m = MAM(sessions, **kwargs)
    with rec.phase("models_conversions"):
        conversions = run_models(m)
    del m
    with rec.phase("init_value"):
        m = MAM(sessions, conversion_value_colname="conversion_value", **kwargs)
    with rec.phase("models_value"):
        value = run_models(m)
    rows = len(sessions)
    del m, sessions

    write_result(
        args.out,
        rec.result(
            version=version("marketing-attribution-models"),
            polars=pl.__version__,
            models=list(MODELS),
            input_rows=rows,
            conversions=channel_table(conversions),
            value=channel_table(value),
        ),
    )


if __name__ == "__main__":
    main()
