"""histogram_quantile as Prometheus computes it (promql/quantile.go, bucketQuantile), columnar.

Per group and grid point, over the cumulative bucket counts sorted by upper bound `le`: buckets of
equal bound are merged, counts made monotonic (a scrape racing an observation can leave a bucket
below the one before it), and the quantile found by linear interpolation inside the first bucket
whose count reaches rank = q × total. A rank in the +Inf bucket answers the highest finite bound; a
first bucket with a bound ≤ 0 answers its bound. Without a +Inf bucket, with fewer than two buckets,
or with no observations, there is no answer (Prometheus returns NaN; here the point is absent).

The buckets are ranked once (`ranked`) and each quantile read from them (`quantile`): a histogram's
p50, p95 and p99 share the work.
"""

from __future__ import annotations

import polars as pl


def ranked(buckets: pl.LazyFrame, group: list[str]) -> pl.DataFrame:
    """`buckets`: group columns, `le` (float, +Inf included) and `value` (a bucket's count or rate).
    The usable groups' buckets in order, each with the group's total and the bucket below it."""
    merged = buckets.group_by([*group, "le"]).agg(pl.col("value").sum()).sort([*group, "le"])
    # groups are contiguous once sorted: one integer id per run instead of hashing the keys again
    gid = pl.struct(group).rle_id().alias("gid")
    first = pl.col("gid") != pl.col("gid").shift(1)
    counted = (
        merged.with_columns(gid)
        .with_columns(pl.col("value").cum_max().over("gid"))
        .with_columns(
            pl.col("value").last().over("gid").alias("total"),
            pl.col("le").last().over("gid").alias("top"),
            pl.len().over("gid").alias("n"),
            pl.int_range(pl.len()).over("gid").alias("index"),
            pl.when(first).then(None).otherwise(pl.col("le").shift(1)).alias("below_le"),
            pl.when(first).then(None).otherwise(pl.col("value").shift(1)).alias("below"),
        )
    )
    usable = (pl.col("top") == float("inf")) & (pl.col("n") >= 2) & (pl.col("total") > 0)
    return counted.filter(usable).collect()


def quantile(q: float, buckets: pl.DataFrame, group: list[str]) -> pl.LazyFrame:
    """The q-quantile of each ranked group: group columns and `value`."""
    rank = pl.lit(q) * pl.col("total")
    # rows keep their order within a group: the first one reaching the rank is the bucket
    found = buckets.lazy().filter(pl.col("value") >= rank).group_by("gid").agg(pl.all().first())
    start = pl.col("below_le").fill_null(0.0)
    below = pl.col("below").fill_null(0.0)
    interpolated = start + (pl.col("le") - start) * ((rank - below) / (pl.col("value") - below))
    value = (
        pl.when(pl.col("index") == pl.col("n") - 1)
        .then(pl.col("below_le"))
        .when((pl.col("index") == 0) & (pl.col("le") <= 0))
        .then(pl.col("le"))
        .otherwise(interpolated)
    )
    return found.select(*group, value.alias("value")).filter(pl.col("value").is_finite())


def histogram_quantile(q: float, buckets: pl.LazyFrame, group: list[str]) -> pl.LazyFrame:
    """One quantile of `buckets` (see `ranked`) per group."""
    return quantile(q, ranked(buckets, group), group)


def without_inf(buckets: pl.LazyFrame, group: list[str]) -> pl.LazyFrame:
    """The groups whose buckets have no +Inf bound (their quantile cannot be computed)."""
    return (
        buckets.group_by(group).agg(pl.col("le").max().alias("top")).filter(pl.col("top") != float("inf")).select(group)
    )
