"""How finely a derived quantile is measured: the width of the histogram bucket it falls in.

`histogram_quantile` interpolates linearly inside the bucket that holds the rank, so a quantile is
known only to within that bucket: a p99 whose rank moves across a bucket bound jumps by up to the
bucket's width (49 ms to 61 ms across prometheus_client's 50 ms bound) though what users saw
hardly changed. Each sample of a series recorded by a quantile rule gets that width, in the series'
unit, as its `resolution` column, from the finite `le` bounds of its service's histogram: found in
the samples' series offline, in the series discovery of a live read. A comparison with the
baseline (the recovery check) then does not call a difference finer than the measurement a change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import polars as pl

from warroom.sources.mapping.evaluate import service_columns
from warroom.sources.mapping.rules import Node, Quantile, RuleSet, Scale

RESOLUTION = "resolution"


@dataclass(frozen=True)
class QuantileBounds:
    """The finite bucket bounds (sorted, in the recorded series' unit) of one service's histogram
    behind one recorded quantile."""

    service: str
    metric: str
    bounds: tuple[float, ...]


def _quantile_of(node: Node) -> tuple[Quantile | None, float]:
    """The quantile a rule records, possibly scaled (seconds to milliseconds), and the scale."""
    factor = 1.0
    while isinstance(node, Scale):
        factor *= node.factor
        node = node.of
    if isinstance(node, Quantile):
        return node, factor
    return None, factor


def quantile_bounds(
    series: pl.DataFrame, rule_sets: Iterable[RuleSet], candidates: tuple[str, ...]
) -> list[QuantileBounds]:
    """The bucket bounds behind each (service, recorded quantile) the series allow. Where several
    rules record the same series, the first one with buckets for a service gives its bounds, as the
    first alternative gives its values."""
    if "le" not in series.columns:
        return []
    columns = set(series.columns)
    found: dict[tuple[str, str], tuple[float, ...]] = {}
    for rule in (rule for rule_set in rule_sets for rule in rule_set.rules):
        quantile, factor = _quantile_of(rule.expr)
        if quantile is None:
            continue
        chosen = series.filter(quantile.buckets.expression(columns))
        if chosen.height == 0:
            continue
        service, _ = service_columns(chosen, rule.service_label or candidates)
        bounds = (
            chosen.select(
                service.alias("service"),
                pl.col("le").str.strip_chars().cast(pl.Float64, strict=False).alias("bound"),
            )
            .filter(pl.col("service").is_not_null() & pl.col("bound").is_finite())
            .group_by("service")
            .agg(pl.col("bound").unique().sort())
        )
        for row in bounds.iter_rows(named=True):
            key = (str(row["service"]), rule.record)
            if key not in found and row["bound"]:
                found[key] = tuple(float(b) * factor for b in row["bound"])
    return [QuantileBounds(service, metric, bounds) for (service, metric), bounds in sorted(found.items())]


def bucket_widths(values: np.ndarray, bounds: tuple[float, ...]) -> np.ndarray:
    """The width of the bucket each value falls in, (lower, upper] with the first bucket's lower
    bound at 0; NaN above the highest finite bound (the +Inf bucket has no width)."""
    edges = np.asarray(bounds, dtype=float)
    index = np.searchsorted(edges, values, side="left")
    inside = index < edges.size
    upper = edges[np.minimum(index, edges.size - 1)]
    lower = np.where(index > 0, edges[np.maximum(index - 1, 0)], np.minimum(0.0, edges[0]))
    return np.where(inside, upper - lower, np.nan)


def with_resolution(frame: pl.DataFrame, every: list[QuantileBounds]) -> pl.DataFrame:
    """Canonical metric rows with the `resolution` of each recorded quantile's samples (null for
    every other series; a resolution a row already has is kept)."""
    if not every or frame.height == 0:
        return frame
    # only the rows of recorded quantiles are looked at (a large export holds far more of the rest)
    quantiles = frame.get_column("metric").cast(pl.String).is_in([e.metric for e in every]).to_numpy()
    at = np.flatnonzero(quantiles)
    if at.size == 0:
        return frame
    widths = np.full(frame.height, np.nan)
    services = frame.get_column("service").cast(pl.String).to_numpy()[at]
    metrics = frame.get_column("metric").cast(pl.String).to_numpy()[at]
    values = frame.get_column("value").cast(pl.Float64).to_numpy()[at]
    for entry in every:
        rows = np.flatnonzero((services == entry.service) & (metrics == entry.metric))
        if rows.size:
            widths[at[rows]] = bucket_widths(values[rows], entry.bounds)
    if np.isnan(widths).all():
        return frame
    found = pl.Series(RESOLUTION, widths, dtype=pl.Float64).fill_nan(None)
    if RESOLUTION in frame.columns:
        found = frame.get_column(RESOLUTION).fill_null(found)
    return frame.with_columns(found)
