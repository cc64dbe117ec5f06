"""Metric anomalies: robust scoring of each series against its baseline, onset detection, ranking.

Every (service, metric) series is scored as a robust z (distance from the baseline median in units
of a scale). The scale is the larger of the baseline's spread (1.4826·MAD) and floors that keep
idle or near-constant series from producing huge z on tiny moves: a fraction of the baseline level,
a fraction of the metric's typical level across all services, and half a millisecond for a series
of milliseconds.

A long reference period is sampled: each part of the baseline (the baseline frame, the data before
the window) contributes at most about `REFERENCE_POINTS` samples per series, taken as every k-th
block of ten sampling intervals across the whole part. A median and a MAD over a thousand evenly
spread samples differ from those over all of them by far less than the deviations being scored, and
a six-hour, 15-second baseline of thousands of series is then grouped in a third of the memory.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import polars as pl

from warroom.analysis.frames import decoded

RELATIVE_FLOOR = 0.05  # a change smaller than 5 % of the series' own level is not a deviation
CROSS_SERVICE_FLOOR = 0.02  # … nor one smaller than 2 % of the metric's typical level anywhere
# … nor, in a series of milliseconds, a move of less than half a millisecond: below that a wait or a
# latency is timer resolution and scheduling noise (a pool wait of 0.07 → 0.11 ms is no wait at all)
MS_FLOOR = 0.5
ONSET_Z = 3.0
ONSET_SHARE = 0.5  # the onset is where a series first reached this share of its peak excursion
MAD_TO_SIGMA = 1.4826
REFERENCE_POINTS = 1000  # samples per series and reference part, at most (about)

# Metrics whose values are fractions of a limit (0..1): their absolute change is meaningful.
FRACTION_SUFFIXES = ("_utilization", "success_rate", "error_rate")


def _sampling_step(frame: pl.LazyFrame) -> timedelta:
    """The typical spacing of a series' samples (zero if it cannot be told)."""
    series = [col for col in ("service", "metric", "instance") if col in frame.collect_schema()]
    steps = (
        frame.select(pl.col("timestamp").sort().diff().over(series).dt.total_microseconds().alias("d"))
        .filter(pl.col("d") > 0)
        .select(pl.col("d").median())
        .collect()
        .item()
    )
    return timedelta(microseconds=float(steps)) if isinstance(steps, int | float) else timedelta(0)


def reference_sample(frame: pl.LazyFrame, limit: int = REFERENCE_POINTS) -> pl.LazyFrame:
    """Every k-th block of about ten sampling intervals of a reference period, so that a series
    keeps at most about `limit` samples spread over the whole period (the frame as is if it has
    fewer). Blocks, not single samples: series sampled at different steps are thinned alike."""
    keys = [col for col in ("service", "metric", "instance") if col in frame.collect_schema()]
    rows, series, low, high = (
        frame.select(
            pl.len().alias("rows"),
            pl.struct(keys).n_unique().alias("series"),
            pl.col("timestamp").min().alias("low"),
            pl.col("timestamp").max().alias("high"),
        )
        .collect()
        .row(0)
    )
    points = rows / max(series, 1)
    if points <= limit or low is None or high <= low:
        return frame
    every = math.ceil(points / limit)
    block_us = max(int((high - low) / timedelta(microseconds=1) * 10 / points), 1)
    block = (pl.col("timestamp") - low).dt.total_microseconds() // block_us
    return frame.filter(block % every == 0)


def _series(frame: pl.LazyFrame) -> pl.LazyFrame:
    """One value per (service, metric, timestamp): instances are averaged."""
    return frame.group_by("service", "metric", "timestamp").agg(pl.col("value").mean())


def sustained(scored: pl.DataFrame) -> pl.DataFrame:
    """Add `held_z`: each point's z as far as the next sample held it (the smaller of the two on the
    same side, 0 across sides); a series' last point keeps its own, since nothing says yet that it
    came back. A fault holds its level from one sample to the next; a one-sample excursion that is
    back by the next one (a garbage collection, a cron job, a scrape of a busy moment) is a blip,
    as an alert that waits for its condition to hold (`for:`) treats it."""
    keys = ["service", "metric"]
    following = pl.col("z").shift(-1).over(keys, order_by="timestamp")
    held = (
        pl.when(following.is_null())
        .then(pl.col("z"))
        .when(pl.col("z").sign() == following.sign())
        .then(pl.col("z").sign() * pl.min_horizontal(pl.col("z").abs(), following.abs()))
        .otherwise(0.0)
    )
    return scored.with_columns(held.alias("held_z"))


def score_series(
    current: pl.DataFrame,
    baseline: pl.DataFrame | None,
    window_start: datetime,
    window_end: datetime,
) -> pl.DataFrame:
    """Score every series in the window against the baseline (the baseline frame plus the current
    data before `window_start`). One row per (service, metric): base_median, base_scale, peak
    value, peak z (signed), |z|, onset, points, delta."""
    # Rows are cut to the window before instances are averaged: a large bundle's series are
    # never all materialised at once.
    window = current.lazy().filter(pl.col("timestamp").is_between(window_start, window_end))
    # A sample aggregates the interval before its stamp, so the first sample after the window's
    # end still describes the window.
    step = _sampling_step(window) or _sampling_step(current.lazy())
    during = _series(current.lazy().filter(pl.col("timestamp").is_between(window_start, window_end + step))).collect()
    before = _series(reference_sample(current.lazy().filter(pl.col("timestamp") < window_start)))
    base = (
        pl.concat([_series(reference_sample(baseline.lazy())), before])
        if baseline is not None and baseline.height
        else before
    )
    stats = (
        base.group_by("service", "metric")
        .agg(
            pl.col("value").median().alias("base_median"),
            (pl.col("value") - pl.col("value").median()).abs().median().alias("mad"),
            pl.col("value").std().fill_null(0.0).alias("std"),
            pl.len().alias("base_points"),
        )
        .collect()
    )
    if during.height == 0 or stats.height == 0:
        return pl.DataFrame(
            schema={
                "service": pl.String,
                "metric": pl.String,
                "base_median": pl.Float64,
                "base_scale": pl.Float64,
                "peak": pl.Float64,
                "z": pl.Float64,
                "abs_z": pl.Float64,
                "delta": pl.Float64,
                "onset": pl.Datetime("us", "UTC"),
                "points": pl.UInt32,
            }
        )
    typical = stats.group_by("metric").agg(pl.col("base_median").abs().quantile(0.75).alias("typical"))
    # A series that never moved in the reference (a count of lock waits that was always 0) has no
    # spread to measure against: its scale is then its reference's standard deviation, and failing
    # that the smallest step it takes in the window (its resolution: one lock wait, not a z of 10⁹).
    resolution = (
        during.join(stats.select("service", "metric", "base_median"), on=["service", "metric"])
        .with_columns((pl.col("value") - pl.col("base_median")).abs().alias("_dev"))
        .filter(pl.col("_dev") > 0)
        .group_by("service", "metric")
        .agg(pl.col("_dev").min().alias("resolution"))
    )
    stats = (
        stats.join(typical, on="metric", how="left")
        .join(resolution, on=["service", "metric"], how="left")
        .with_columns(
            pl.max_horizontal(
                pl.col("mad") * MAD_TO_SIGMA,
                pl.col("base_median").abs() * RELATIVE_FLOOR,
                pl.col("typical").fill_null(0.0) * CROSS_SERVICE_FLOOR,
                pl.when(pl.col("metric").cast(pl.String).str.ends_with("_ms")).then(MS_FLOOR).otherwise(0.0),
                pl.when(pl.col("mad") > 0).then(0.0).otherwise(pl.col("std")),
                pl.when((pl.col("mad") > 0) | (pl.col("std") > 0))
                .then(0.0)
                .otherwise(pl.col("resolution").fill_null(0.0)),
                pl.lit(1e-9),
            ).alias("base_scale")
        )
    )
    scored = sustained(
        during.join(stats, on=["service", "metric"], how="inner").with_columns(
            ((pl.col("value") - pl.col("base_median")) / pl.col("base_scale")).alias("z")
        )
    )
    # Onset: the first point at which the series reached half of its peak excursion (and at least
    # ONSET_Z), on the peak's side. A first blip above a low threshold is not when a fault began; half
    # the excursion dates a step where it happened and a ramp about when it became material.
    scored = scored.with_columns(
        pl.col("held_z").alias("z"), (pl.col("base_median") + pl.col("held_z") * pl.col("base_scale")).alias("value")
    )
    peak_z = scored.group_by("service", "metric").agg(pl.col("z").get(pl.col("z").abs().arg_max()).alias("_peak_z"))
    onset = (
        scored.join(peak_z, on=["service", "metric"])
        .filter(
            pl.col("z") * pl.col("_peak_z").sign()
            >= pl.max_horizontal(pl.lit(ONSET_Z), pl.col("_peak_z").abs() * ONSET_SHARE)
        )
        .group_by("service", "metric")
        .agg(pl.col("timestamp").min().alias("onset"))
    )
    peak = (
        scored.sort("z", descending=True)
        .with_columns(pl.col("z").abs().alias("abs_z"))
        .sort("abs_z", descending=True)
        .group_by("service", "metric", maintain_order=True)
        .agg(
            pl.col("base_median").first(),
            pl.col("base_scale").first(),
            pl.col("value").first().alias("peak"),
            pl.col("z").first(),
            pl.col("abs_z").first(),
            pl.len().alias("points"),
        )
        .with_columns((pl.col("peak") - pl.col("base_median")).alias("delta"))
    )
    out = decoded(peak.join(onset, on=["service", "metric"], how="left"))
    return out.select(
        "service", "metric", "base_median", "base_scale", "peak", "z", "abs_z", "delta", "onset", "points"
    ).sort("abs_z", descending=True)


def is_fraction_metric(name: str) -> bool:
    return name.endswith(FRACTION_SUFFIXES)


def materiality(scored: pl.DataFrame) -> pl.Expr:
    """How much a deviation matters on the metric's own scale (0..1): for fractions of a limit the
    absolute change (a move from 1 % to 3 % CPU is not saturation), otherwise the relative change."""
    fraction = pl.col("metric").str.contains(r"(_utilization|success_rate|error_rate)$")
    relative = pl.col("delta").abs() / (pl.col("base_median").abs() + pl.col("base_scale"))
    return (
        pl.when(fraction).then((pl.col("delta").abs() / 0.5).clip(0.0, 1.0)).otherwise((relative / 2.0).clip(0.0, 1.0))
    )


def rank_services(scored: pl.DataFrame, metrics: tuple[str, ...] | None = None) -> pl.DataFrame:
    """Services ranked by their most anomalous (material) series, optionally among some metrics."""
    frame = scored if metrics is None else scored.filter(pl.col("metric").is_in(list(metrics)))
    if frame.height == 0:
        return pl.DataFrame(schema={"service": pl.String, "metric": pl.String, "score": pl.Float64})
    return (
        frame.with_columns((pl.col("abs_z").clip(0, 100) * materiality(frame)).alias("score"))
        .sort("score", descending=True)
        .group_by("service", maintain_order=True)
        .agg(pl.col("metric").first(), pl.col("score").first(), pl.col("z").first(), pl.col("onset").first())
        .sort("score", descending=True)
    )
