"""Seeded synthetic journeys for the attribution benchmarks, in revloop's canonical form.

``ensure_journeys(n)`` writes (once) and returns the paths of two Parquet files under
``benches/data/{n}/``:

- ``touchpoints.parquet``: ``touchpoint_id, person_id, occurred_at, channel, campaign``
- ``conversions.parquet``: ``conversion_id, person_id, occurred_at, value``

The shape follows the measurements in ``shared/reference/attribution.md`` §1.6: one
person per journey, journey length 1 + Poisson(1.86) (mean ≈ 2.86 touches), 40 channels
with Zipf-like popularity, gaps of a few hours to a few weeks between touches, about
9.5 % of journeys converting once, some hours to days after their last touch, with a
lognormal deal amount. Touches of a person have strictly increasing timestamps, so
every tool orders a journey the same way.

Generation is vectorised numpy, done in chunks of ``CHUNK`` journeys that are streamed
to the Parquet writer (5M journeys ≈ 14M touchpoint rows stay well under 1 GB of
memory). Each chunk has its own seed derived from ``(seed, chunk index)``, so the
data depend only on ``n`` and ``seed``. Rows are written in time order within a
chunk (like an event log), not grouped by person.

Run directly to generate: ``python benches/_journeys.py 1000000 5000000``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DATA_DIR = Path(__file__).resolve().parent / "data"
FORMAT_VERSION = 3  # bump when the generator changes: cached files are regenerated
CHUNK = 500_000
SEED = 20261125

# 40 channel names; popularity follows their order (Zipf-like, see _channel_probs).
CHANNELS: tuple[str, ...] = (
    "organic_search", "paid_search_brand", "direct", "email_newsletter", "linkedin_ads",
    "paid_search_generic", "referral", "organic_social_linkedin", "webinar", "g2_reviews",
    "display_retargeting", "meta_ads", "youtube_ads", "email_nurture", "partner_referral",
    "content_syndication", "podcast", "trade_show", "sdr_outbound_email", "sdr_cold_call",
    "review_capterra", "organic_social_x", "reddit_ads", "bing_ads", "affiliate",
    "direct_mail", "community_slack", "product_hunt", "blog_guest_post", "newsletter_sponsor",
    "tiktok_ads", "quora_ads", "display_prospecting", "analyst_report", "customer_referral",
    "hackathon", "meetup", "print", "radio", "tv",
)  # fmt: skip
N_CHANNELS = len(CHANNELS)
CAMPAIGNS_PER_CHANNEL = 6
ZIPF_S = (
    0.6  # top channel ≈ 8 %, bottom ≈ 0.9 %; 5M journeys give ≈ 1.2M distinct paths (as in §1.6)
)
EXTRA_TOUCHES_MEAN = 1.86  # length = 1 + Poisson(1.86): mean 2.86
CONVERSION_RATE = 0.095
START = np.datetime64("2024-06-01T00:00:00", "s")
START_SPAN_S = 300 * 86_400  # first touches spread over 300 days
GAP_MEDIAN_H = 30.0  # median gap between touches: 30 hours
GAP_SIGMA = 1.3  # lognormal: 5th pct ≈ 3.5 h, 95th pct ≈ 10 days, some weeks
GAP_MAX_H = 30 * 24.0  # capped at 30 days, so every timestamp lies in the past
CONV_GAP_MEDIAN_H = 20.0
CONV_GAP_SIGMA = 1.0
VALUE_MEDIAN = 8_000.0  # deal amount, reporting currency
VALUE_SIGMA = 0.9


def _channel_probs() -> np.ndarray:
    p = 1.0 / np.arange(1, N_CHANNELS + 1) ** ZIPF_S
    return p / p.sum()


def _ids(prefix: str, start: int, count: int) -> pa.Array:
    """``prefix`` + decimal number, as an Arrow string array (no Python objects)."""
    nums = pa.array(np.arange(start, start + count, dtype=np.int64)).cast(pa.string())
    return pc.binary_join_element_wise(prefix, nums, "")


def _lognormal_seconds(
    rng: np.random.Generator, median_h: float, sigma: float, size: int
) -> np.ndarray:
    s = rng.lognormal(np.log(median_h * 3600.0), sigma, size)
    # at least a minute (strictly increasing times), at most GAP_MAX_H
    return np.clip(s, 60.0, GAP_MAX_H * 3600.0).astype(np.int64)


TOUCH_SCHEMA = pa.schema(
    [
        ("touchpoint_id", pa.string()),
        ("person_id", pa.string()),
        ("occurred_at", pa.timestamp("us")),
        ("channel", pa.string()),
        ("campaign", pa.string()),
    ]
)
CONV_SCHEMA = pa.schema(
    [
        ("conversion_id", pa.string()),
        ("person_id", pa.string()),
        ("occurred_at", pa.timestamp("us")),
        ("value", pa.float64()),
    ]
)


def _chunk(seed: int, index: int, first_person: int, first_touch: int, n: int):
    """One chunk of ``n`` journeys: (touchpoints table, conversions table, stats)."""
    rng = np.random.default_rng([seed, index])
    lengths = 1 + rng.poisson(EXTRA_TOUCHES_MEAN, n).astype(np.int64)
    total = int(lengths.sum())
    person = np.repeat(np.arange(n, dtype=np.int64), lengths)  # chunk-local person index
    starts = np.cumsum(lengths) - lengths  # offset of each journey's first touch

    # channels: Zipf-like popularity, drawn through the cumulative distribution
    cdf = np.cumsum(_channel_probs())
    channel = np.minimum(np.searchsorted(cdf, rng.random(total)), N_CHANNELS - 1).astype(np.int32)
    campaign = (
        channel * CAMPAIGNS_PER_CHANNEL + rng.integers(0, CAMPAIGNS_PER_CHANNEL, total)
    ).astype(np.int32)

    # timestamps: journey start + cumulative gaps (the first touch has gap 0)
    gaps = _lognormal_seconds(rng, GAP_MEDIAN_H, GAP_SIGMA, total)
    gaps[starts] = 0
    csum = np.cumsum(gaps)
    offset_in_journey = csum - np.repeat(csum[starts], lengths)
    del csum, gaps
    journey_start = rng.integers(0, START_SPAN_S, n, dtype=np.int64)
    t_touch = np.repeat(journey_start, lengths) + offset_in_journey  # seconds since START
    del offset_in_journey

    # conversions: ~9.5 % of journeys, after the last touch, lognormal value
    converts = np.flatnonzero(rng.random(n) < CONVERSION_RATE)
    last_touch = t_touch[starts[converts] + lengths[converts] - 1]
    t_conv = last_touch + _lognormal_seconds(rng, CONV_GAP_MEDIAN_H, CONV_GAP_SIGMA, converts.size)
    value = np.round(rng.lognormal(np.log(VALUE_MEDIAN), VALUE_SIGMA, converts.size), 2)

    # write in time order within the chunk (an event log), not grouped by person
    order = np.argsort(t_touch, kind="stable")
    t_sorted = t_touch[order]
    del t_touch
    ch_names = pa.array(CHANNELS)
    camp_names = pa.array([f"{c}_{k:02d}" for c in CHANNELS for k in range(CAMPAIGNS_PER_CHANNEL)])
    # touchpoint ids follow the original (person, position) order so they are stable
    touch = pa.table(
        {
            "touchpoint_id": _ids("t", first_touch, total).take(pa.array(order)),
            "person_id": _ids("p", first_person, n).take(pa.array(person[order])),
            "occurred_at": pa.array(START + t_sorted.astype("timedelta64[s]")).cast(
                pa.timestamp("us")
            ),
            "channel": ch_names.take(pa.array(channel[order])),
            "campaign": camp_names.take(pa.array(campaign[order])),
        },
        schema=TOUCH_SCHEMA,
    )
    conv = pa.table(
        {
            "conversion_id": _ids("c", first_person, n).take(pa.array(converts)),
            "person_id": _ids("p", first_person, n).take(pa.array(converts)),
            "occurred_at": pa.array(START + t_conv.astype("timedelta64[s]")).cast(
                pa.timestamp("us")
            ),
            "value": pa.array(value),
        },
        schema=CONV_SCHEMA,
    )
    return (
        touch,
        conv,
        {"touches": total, "conversions": int(converts.size), "value": float(value.sum())},
    )


def paths_for(n: int, root: Path = DATA_DIR) -> dict[str, Path]:
    d = root / str(n)
    return {
        "dir": d,
        "touchpoints": d / "touchpoints.parquet",
        "conversions": d / "conversions.parquet",
        "meta": d / "meta.json",
    }


def _cached(p: dict[str, Path], n: int, seed: int) -> dict | None:
    try:
        meta = json.loads(p["meta"].read_text())
    except (OSError, ValueError):
        return None
    if (
        meta.get("journeys") != n
        or meta.get("seed") != seed
        or meta.get("format") != FORMAT_VERSION
    ):
        return None
    if not (p["touchpoints"].exists() and p["conversions"].exists()):
        return None
    return meta


def ensure_journeys(
    n: int, seed: int = SEED, root: Path = DATA_DIR, *, quiet: bool = False
) -> dict:
    """Generate the data set for ``n`` journeys unless it is already on disk; return its metadata.

    The metadata has the file paths (``touchpoints``, ``conversions``) and counts.
    """
    p = paths_for(n, root)
    meta = _cached(p, n, seed)
    if meta is None:
        t0 = time.perf_counter()
        p["dir"].mkdir(parents=True, exist_ok=True)
        tmp_t = p["touchpoints"].with_suffix(".parquet.tmp")
        tmp_c = p["conversions"].with_suffix(".parquet.tmp")
        touches = conversions = 0
        value = 0.0
        with (
            pq.ParquetWriter(tmp_t, TOUCH_SCHEMA, compression="zstd") as wt,
            pq.ParquetWriter(tmp_c, CONV_SCHEMA, compression="zstd") as wc,
        ):
            for index, first in enumerate(range(0, n, CHUNK)):
                size = min(CHUNK, n - first)
                touch, conv, stats = _chunk(seed, index, first, touches, size)
                wt.write_table(touch, row_group_size=256 * 1024)
                wc.write_table(conv)
                touches += stats["touches"]
                conversions += stats["conversions"]
                value += stats["value"]
                del touch, conv
        os.replace(tmp_t, p["touchpoints"])
        os.replace(tmp_c, p["conversions"])
        meta = {
            "format": FORMAT_VERSION,
            "seed": seed,
            "journeys": n,
            "touchpoints": touches,
            "conversions": conversions,
            "conversion_value": round(value, 2),
            "channels": N_CHANNELS,
            "generated_in_s": round(time.perf_counter() - t0, 2),
        }
        p["meta"].write_text(json.dumps(meta, indent=2) + "\n")
        if not quiet:
            print(
                f"generated {n:,} journeys in {meta['generated_in_s']} s -> {p['dir']}",
                file=sys.stderr,
            )
    return {
        **meta,
        "touchpoints_path": str(p["touchpoints"]),
        "conversions_path": str(p["conversions"]),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sizes", nargs="+", type=int, help="numbers of journeys")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    for n in args.sizes:
        print(json.dumps(ensure_journeys(n, args.seed)))


if __name__ == "__main__":
    main()
