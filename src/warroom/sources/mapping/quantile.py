"""histogram_quantile as Prometheus computes it (promql/quantile.go, bucketQuantile), columnar.

Per group and grid point, over the cumulative bucket counts sorted by upper bound `le`: buckets of
equal bound are merged, counts made monotonic (a scrape racing an observation can leave a bucket
below the one before it), and the quantile found by linear interpolation inside the first bucket
whose count reaches rank = q × total. A rank in the +Inf bucket answers the highest finite bound; a
first bucket with a bound ≤ 0 answers its bound. Without a +Inf bucket, with fewer than two buckets,
or with no observations, there is no answer (Prometheus returns NaN; here the point is absent).
"""

from __future__ import annotations

import polars as pl


def histogram_quantile(q: float, buckets: pl.LazyFrame, group: list[str]) -> pl.LazyFrame:
    """`buckets`: group columns, `le` (float, +Inf included) and `value` (a bucket's count or rate).
    Returns the group columns and `value`, the quantile, for each group that has a +Inf bucket."""
    merged = buckets.group_by([*group, "le"]).agg(pl.col("value").sum()).sort([*group, "le"])
    ranked = merged.with_columns(pl.col("value").cum_max().over(group)).with_columns(
        pl.col("value").last().over(group).alias("total"),
        pl.col("le").last().over(group).alias("top"),
        pl.len().over(group).alias("n"),
        pl.int_range(pl.len()).over(group).alias("index"),
        pl.col("le").shift(1).over(group).alias("below_le"),
        pl.col("value").shift(1).over(group).alias("below"),
    )
    usable = ranked.filter((pl.col("top") == float("inf")) & (pl.col("n") >= 2) & (pl.col("total") > 0))
    rank = pl.lit(q) * pl.col("total")
    found = usable.filter(pl.col("value") >= rank).group_by(group).agg(pl.all().sort_by("index").first())
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


def without_inf(buckets: pl.LazyFrame, group: list[str]) -> pl.LazyFrame:
    """The groups whose buckets have no +Inf bound (their quantile cannot be computed)."""
    return (
        buckets.group_by(group).agg(pl.col("le").max().alias("top")).filter(pl.col("top") != float("inf")).select(group)
    )
