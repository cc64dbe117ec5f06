"""Per-series operations on a regular time grid, as PromQL's functions do them over a range.

Samples are placed on a grid of `step` (each at the end of the step it falls in). Over the grid:
- a gauge's value at a grid point is its latest sample within 1.5 of its own sampling intervals
  (Prometheus' lookback, bounded so that a series that stopped does not go on);
- a counter's rate is its increase over the last `window`, resets handled (a drop means the
  counter restarted from zero, so the increase is the new value), divided by the time those
  increments span: no extrapolation to the window's edges, so a rate is never more than the
  counter actually rose;
- its increase and a value's changes are per step: the events since the sample before, in the step
  ending at each grid point, so that the points of a period add up to its events (over a rolling
  window every restart was counted once per step it stayed in the window: four times).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

from warroom.sources.mapping.rules import SeriesKind

LOOKBACK_INTERVALS = 1.5


@dataclass(frozen=True)
class Grid:
    step_us: int
    window_us: int
    measured: bool = True  # False: no series had two samples to tell the step

    @property
    def buckets(self) -> int:
        """Grid steps in one window (at least one)."""
        return max(1, round(self.window_us / self.step_us))

    @property
    def window_s(self) -> float:
        return self.window_us / 1e6


def _epoch_us() -> pl.Expr:
    return pl.col("timestamp").dt.epoch("us")


def _on_grid(points: pl.LazyFrame, step_us: int) -> pl.LazyFrame:
    return points.with_columns(_epoch_us().alias("t")).with_columns(
        (((pl.col("t") + step_us - 1) // step_us) * step_us).alias("g")
    )


def _per_point(placed: pl.LazyFrame, columns: tuple[str, str], how: Literal["last", "sum"]) -> pl.DataFrame:
    """(sid, g, *columns) with one row per series and grid point, sorted by both: each column's
    last sample, or sum, within the step. With regular scrapes every grid point holds one sample,
    so the rows already are those groups, in order (points are sorted by series and time): no
    group_by then (a sum of one null is 0 there, null here; the callers fill nulls with 0)."""
    present = placed.collect()
    shared = (pl.col("sid") == pl.col("sid").shift(1)) & (pl.col("g") == pl.col("g").shift(1))
    if not present.select(shared.any()).item():
        return present.select("sid", "g", *columns)
    aggregate = [getattr(pl.col(c), how)() for c in columns]
    return present.group_by("sid", "g").agg(aggregate).sort("sid", "g")


def _full_grid(present: pl.DataFrame, step_us: int) -> pl.LazyFrame:
    """Every grid point from each series' first to its last, joined with what fell in it (as it
    is when no series misses a point: the common case of regular scrapes). `present`: one row per
    series and grid point, sorted by both."""
    spans = present.group_by("sid").agg(
        pl.col("g").min().alias("low"), pl.col("g").max().alias("high"), pl.len().alias("n")
    )
    if spans.select(((pl.col("high") - pl.col("low")) // step_us + 1 == pl.col("n")).all()).item():
        return present.lazy()
    grid = spans.lazy().select("sid", pl.int_ranges("low", pl.col("high") + step_us, step_us).alias("g")).explode("g")
    return grid.join(present.lazy(), on=["sid", "g"], how="left").sort("sid", "g")


def gauge(points: pl.LazyFrame, step_us: int) -> pl.LazyFrame:
    """(sid, g, value): each series' value at every grid point it covers."""
    placed = _on_grid(points, step_us)
    intervals = placed.group_by("sid").agg(pl.col("t").diff().median().alias("interval"))
    last = _per_point(placed, ("value", "t"), "last")
    filled = _full_grid(last, step_us).with_columns(pl.col("value", "t").forward_fill().over("sid"))
    lookback = pl.max_horizontal(pl.col("interval").fill_null(step_us) * LOOKBACK_INTERVALS, pl.lit(step_us))
    return (
        filled.join(intervals, on="sid", how="left")
        .filter((pl.col("g") - pl.col("t")) <= lookback)
        .select("sid", "g", "value")
    )


def _before(column: str) -> pl.Expr:
    """The column at the series' previous sample (null at its first). The points are sorted by
    series and time, so that is the row before when it is of the same series: no window over sid."""
    return pl.when(pl.col("sid") == pl.col("sid").shift(1)).then(pl.col(column).shift(1))


def _windowed(points: pl.LazyFrame, grid: Grid, measure: Literal["increase", "changes"]) -> pl.LazyFrame:
    """(sid, g, amount, span_us): the counter increase (or number of changes) within the window
    ending at each grid point, and the time the samples behind it span."""
    previous = _before("value")
    current = pl.col("value")
    if measure == "increase":  # a drop is a reset: the counter started again from zero
        change = pl.when(current >= previous).then(current - previous).otherwise(current)
    else:
        change = (current != previous).cast(pl.Float64)
    amount = pl.when(previous.is_null()).then(None).otherwise(change)
    placed = _on_grid(points, grid.step_us).with_columns(
        amount.alias("amount"), (pl.col("t") - _before("t")).alias("span")
    )
    summed = _per_point(placed, ("amount", "span"), "sum")
    full = _full_grid(summed, grid.step_us).with_columns(pl.col("amount", "span").fill_null(0))
    return full.with_columns(
        pl.col("amount").rolling_sum(grid.buckets, min_samples=1).over("sid"),
        pl.col("span").rolling_sum(grid.buckets, min_samples=1).over("sid").alias("span_us"),
    ).filter(pl.col("span_us") > 0)


def per_series(points: pl.LazyFrame, kind: SeriesKind, grid: Grid) -> pl.LazyFrame:
    """(sid, g, value) of one series operation over the grid."""
    if kind == "value":
        return gauge(points, grid.step_us)
    # events per step (the points add up to the events), as the live query counts them
    per_step = Grid(grid.step_us, grid.step_us, grid.measured)
    if kind == "changes":
        return _windowed(points, per_step, "changes").select("sid", "g", pl.col("amount").alias("value"))
    if kind == "increase":
        return _windowed(points, per_step, "increase").select("sid", "g", pl.col("amount").alias("value"))
    rate = pl.col("amount") / (pl.col("span_us") / 1e6)
    return _windowed(points, grid, "increase").select("sid", "g", rate.alias("value"))
