"""Raw samples that cannot be used as measurements, found before anything is derived from them.

Each problem drops the samples (or series) concerned and says so in one sentence that ends up in
the run's limitations, so nothing is silently used and nothing is silently lost:
- a value NaN or ±Inf (a stale marker, a summary with no observations, a broken exporter);
- a timestamp in the future (beyond the engine clock plus a tolerance for skew) or before 2000
  (seconds read as milliseconds, a zero time);
- a second sample of a series at the same time (an exact copy, or a conflicting value: the first
  is kept);
- a counter below zero, or one that only ever decreases (a gauge exported under a counter's name:
  its "rate" would be meaningless).
Checks on the canonical tables every source shares (plausible range around the alert, …) are the
source boundary's (sources/validate.py); these are the ones only raw Prometheus samples allow.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from warroom.sources.mapping.kinds import MetricKind
from warroom.sources.mapping.samples import Samples

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
CLOCK_SKEW = timedelta(hours=1)


def describe_series(samples: Samples, sid: int) -> str:
    """`name{label="value", …}` of one series, as PromQL writes it."""
    labels = samples.label_sets([sid])[0]
    name = labels.pop("metric")
    body = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{body}}}" if body else name


def _first(samples: Samples, rows: pl.DataFrame) -> str:
    row = rows.sort("timestamp").row(0, named=True)
    return f"{describe_series(samples, row['sid'])} at {row['timestamp'].isoformat()}"


def _drop(samples: Samples, bad: pl.Expr, what: str, origin: str) -> tuple[Samples, list[str]]:
    flagged = samples.points.filter(bad)
    if flagged.height == 0:
        return samples, []
    kept = samples.with_points(samples.points.filter(~bad))
    return kept, [f"{origin}: {flagged.height} sample(s) {what} dropped (first: {_first(samples, flagged)})"]


def _duplicates(samples: Samples, origin: str) -> tuple[Samples, list[str]]:
    points = samples.points
    # points are sorted by series and time: a second sample at the same time is the next row
    again = (pl.col("sid") == pl.col("sid").shift(1)) & (pl.col("timestamp") == pl.col("timestamp").shift(1))
    if not points.select(again.any()).item():
        return samples, []
    repeated = points.filter(pl.struct("sid", "timestamp").is_duplicated())
    conflicting = (
        repeated.group_by("sid", "timestamp").agg(pl.col("value").n_unique().alias("n")).filter(pl.col("n") > 1)
    )
    kept = points.unique(subset=["sid", "timestamp"], keep="first", maintain_order=True)
    copies = points.height - kept.height
    if conflicting.height:
        what = f"{copies} second sample(s) of a series at the same time, {conflicting.height} with another value"
        message = f"{origin}: {what}: the first kept (first: {_first(samples, conflicting)})"
    else:
        message = f"{origin}: {copies} exact duplicate sample(s) dropped (first: {_first(samples, repeated)})"
    return samples.with_points(kept), [message]


def _broken_counters(samples: Samples, kinds: dict[str, MetricKind], origin: str) -> tuple[Samples, list[str]]:
    counters = samples.series.filter(
        pl.col("metric").is_in([n for n, k in kinds.items() if k in ("counter", "bucket")])
    )
    if counters.height == 0:
        return samples, []
    stats = (
        samples.points.filter(pl.col("sid").is_in(counters.get_column("sid").implode()))
        .with_columns(pl.col("value").diff().over("sid").alias("delta"))
        .group_by("sid")
        .agg(
            (pl.col("value") < 0).any().alias("negative"),
            (pl.col("delta") > 0).sum().alias("rises"),
            (pl.col("delta") < 0).sum().alias("falls"),
        )
    )
    negative = stats.filter(pl.col("negative")).get_column("sid").to_list()
    falling = stats.filter(~pl.col("negative") & (pl.col("rises") == 0) & (pl.col("falls") >= 2)).get_column("sid")
    limitations = []
    for sids, what in ((negative, "below zero"), (falling.to_list(), "only ever decreasing")):
        if sids:
            shown = ", ".join(describe_series(samples, s) for s in sids[:3])
            more = f" and {len(sids) - 3} more" if len(sids) > 3 else ""
            limitations.append(f"{origin}: {len(sids)} counter series {what}, not used (not a counter): {shown}{more}")
    dropped = [*negative, *falling.to_list()]
    if not dropped:
        return samples, []
    return samples.with_points(samples.points.filter(~pl.col("sid").is_in(dropped))), limitations


def screen(
    samples: Samples, kinds: dict[str, MetricKind], origin: str, now: datetime | None = None
) -> tuple[Samples, list[str]]:
    """The samples that can be used as measurements, and a limitation for each kind of problem found."""
    latest = (now or datetime.now(UTC)) + CLOCK_SKEW
    limitations: list[str] = []
    checks = (
        (~pl.col("value").is_finite(), "NaN or ±Inf (not a measurement)"),
        (pl.col("timestamp") > latest, f"stamped in the future (after {latest.isoformat(timespec='seconds')})"),
        (pl.col("timestamp") < EARLIEST, "stamped before 2000 (not a plausible time)"),
    )
    for bad, what in checks:
        samples, found = _drop(samples, bad, what, origin)
        limitations.extend(found)
    samples, found = _duplicates(samples, origin)
    limitations.extend(found)
    samples, found = _broken_counters(samples, kinds, origin)
    limitations.extend(found)
    return samples, limitations
