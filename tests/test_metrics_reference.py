"""A long reference period is sampled evenly, per series, without losing any series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from warroom.analysis.metrics import reference_sample, score_series

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


def test_a_sub_millisecond_move_of_a_millisecond_series_is_no_deviation() -> None:
    """A pool wait of 0.07 ms that becomes 0.11 ms is timer noise (its reference barely varies, so
    its spread alone would make that a z of dozens); 30 ms is a wait."""
    times = [START + timedelta(seconds=15 * i) for i in range(70)]
    reference = [0.07 + 0.001 * (i % 3) for i in range(60)]

    def window_z(level: float) -> float:
        frame = pl.DataFrame(
            {"timestamp": times, "service": "payment", "metric": "db_pool_wait_ms", "value": reference + [level] * 10}
        )
        return float(score_series(frame, None, times[60], times[69]).get_column("z").item())

    assert abs(window_z(0.11)) < 1.0
    assert window_z(30.0) > 10.0
