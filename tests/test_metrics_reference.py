"""A long reference period is sampled evenly, per series, without losing any series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from warroom.analysis.metrics import reference_sample

START = datetime(2024, 1, 1, tzinfo=UTC)


def _series(service: str, step_s: int, hours: float) -> pl.DataFrame:
    n = int(hours * 3600 / step_s)
    return pl.DataFrame(
        {
            "timestamp": [START + timedelta(seconds=step_s * i) for i in range(n)],
            "service": service,
            "metric": "latency_p99_ms",
            "value": np.random.default_rng(1).normal(100.0, 5.0, n),
        }
    )


def test_a_long_period_keeps_about_the_limit_spread_over_the_whole_period() -> None:
    frame = pl.concat([_series("fast", 15, 12.0), _series("slow", 60, 12.0)])  # 2880 and 720 samples
    sampled = reference_sample(frame.lazy(), limit=500).collect()
    counts = dict(sampled.group_by("service").len().iter_rows())
    assert set(counts) == {"fast", "slow"}  # no series is lost
    assert counts["fast"] < 2880 and counts["slow"] < 720  # both thinned alike
    span = sampled.select(pl.col("timestamp").min().alias("first"), pl.col("timestamp").max().alias("last")).row(0)
    assert span[0] == START and span[1] - span[0] > timedelta(hours=11)  # spread, not the first hours
    fast = sampled.filter(pl.col("service") == "fast").get_column("value")
    assert abs(float(fast.median()) - 100.0) < 1.0  # type: ignore[arg-type]


def test_a_short_period_is_left_as_it_is() -> None:
    frame = _series("fast", 15, 2.0)  # 480 samples
    assert reference_sample(frame.lazy(), limit=500).collect().equals(frame)
