"""What kind of series each raw metric name is: counter, histogram bucket, gauge, or metadata.

From the exposition's `# TYPE` lines where the source kept them; otherwise from Prometheus' naming
conventions: `_total` is a counter; `_bucket` with an `le` label is a histogram bucket, and its
family's `_sum` and `_count` are counters; a `quantile` label marks a summary (its quantiles are
gauges, its `_sum` and `_count` counters); `_created` (a counter's creation time) and `_info`
(constant label carriers) are metadata, not measurements.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from warroom.sources.mapping.samples import Samples, SeriesType

MetricKind = Literal["counter", "bucket", "gauge", "meta"]
# Prometheus' own series about alerts: read as alerts (sources/raw/prometheus_read.py), not as metrics.
ALERT_SERIES = ("ALERTS", "ALERTS_FOR_STATE")


def _family_kinds(family: str, declared: SeriesType) -> dict[str, MetricKind]:
    if declared == "counter":
        return {family: "counter", f"{family}_total": "counter", f"{family}_created": "meta"}
    if declared in ("histogram", "summary"):
        values: dict[str, MetricKind] = {f"{family}_bucket": "bucket"} if declared == "histogram" else {family: "gauge"}
        return {**values, f"{family}_sum": "counter", f"{family}_count": "counter", f"{family}_created": "meta"}
    return {family: "gauge"}


def metric_kinds(samples: Samples) -> dict[str, MetricKind]:
    """Kind of every metric name in the samples."""
    series = samples.series
    has = set(series.columns)
    by_name = series.group_by("metric").agg(
        (pl.col("le").is_not_null().any() if "le" in has else pl.lit(False)).alias("le"),
        (pl.col("quantile").is_not_null().any() if "quantile" in has else pl.lit(False)).alias("quantile"),
    )
    names = {row["metric"]: row for row in by_name.iter_rows(named=True)}
    declared: dict[str, MetricKind] = {}
    for family, kind in samples.declared.items():
        declared.update(_family_kinds(family, kind))
    bases = {name.removesuffix("_bucket") for name, row in names.items() if name.endswith("_bucket") and row["le"]}
    bases |= {name for name, row in names.items() if row["quantile"]}
    kinds: dict[str, MetricKind] = {}
    for name, row in names.items():
        if name in ALERT_SERIES or name.endswith(("_created", "_info")):
            kinds[name] = "meta"  # whatever its TYPE line says (target_info is a gauge of 1)
        elif name in declared:
            kinds[name] = declared[name]
        elif name.endswith("_bucket") and row["le"]:
            kinds[name] = "bucket"
        elif name.endswith("_total") or (name.endswith(("_sum", "_count")) and name.rsplit("_", 1)[0] in bases):
            kinds[name] = "counter"
        else:
            kinds[name] = "gauge"
    return kinds
