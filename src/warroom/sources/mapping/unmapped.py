"""Series no mapping rule reads, still analysed by name (docs/bundle-format.md, "Unmapped series").

A gauge keeps its name and its samples as they are; a counter becomes its per-second rate under
`<name without _total>_per_second`; a histogram's buckets become its p99 under `<family>_p99`. A
series' labels other than those naming its service and instance are written into the name, PromQL
style (`pg_locks_count{mode="exclusivelock"}`), so that distinct series stay distinct.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from warroom.sources.canonical import TS
from warroom.sources.mapping.evaluate import service_columns
from warroom.sources.mapping.kinds import MetricKind
from warroom.sources.mapping.quantile import histogram_quantile
from warroom.sources.mapping.samples import Samples
from warroom.sources.mapping.series_ops import Grid, per_series
from warroom.sources.raw.labels import SERVICE_LABELS

# Labels that say whose series it is, not what it measures: they are the canonical service and
# instance columns (or a scrape job), not part of the name.
IDENTITY_LABELS = frozenset({"instance", "job", *SERVICE_LABELS})
# Columns of the series table that are not labels, and the bucket bound (a histogram's p99 is one series).
NOT_LABELS = frozenset({"sid", "metric", "le"})
CANONICAL = pl.Schema(
    {"timestamp": TS, "service": pl.String(), "metric": pl.String(), "value": pl.Float64(), "instance": pl.String()}
)


def unmapped_name(metric: str, kind: MetricKind) -> str:
    if kind == "counter":
        return f"{metric.removesuffix('_total')}_per_second"
    if kind == "bucket":
        return f"{metric.removesuffix('_bucket')}_p99"
    return metric


def with_labels(name: str, labels: Mapping[str, object]) -> str:
    """`name{a="x",b="y"}` for the labels that are not identity labels (sorted), else `name`."""
    shown = sorted((k, str(v)) for k, v in labels.items() if v is not None and k not in IDENTITY_LABELS | NOT_LABELS)
    body = ",".join(f'{k}="{v}"' for k, v in shown)
    return f"{name}{{{body}}}" if shown else name


def _named(samples: Samples, names: dict[str, MetricKind], candidates: tuple[str, ...]) -> pl.DataFrame:
    """sid, kind, service, instance, metric (the analysed name) of every unmapped series that names its service."""
    series = samples.series.filter(pl.col("metric").is_in(list(names)))
    service, _ = service_columns(series, candidates)
    rows = [
        (row["sid"], names[row["metric"]], with_labels(unmapped_name(row["metric"], names[row["metric"]]), row))
        for row in series.iter_rows(named=True)
    ]
    analysed = pl.DataFrame(rows, schema={"sid": pl.UInt32(), "kind": pl.String(), "metric": pl.String()}, orient="row")
    instance = pl.col("instance") if "instance" in series.columns else pl.lit(None, dtype=pl.String)
    keyed = series.select(
        "sid", service.alias("service"), instance.alias("instance"), *(["le"] if "le" in series.columns else [])
    )
    return analysed.join(keyed, on="sid").filter(pl.col("service").is_not_null())


def derive_unmapped(
    samples: Samples, names: dict[str, MetricKind], grid: Grid, candidates: tuple[str, ...]
) -> tuple[pl.DataFrame, int]:
    """The canonical rows of the unmapped series, and how many series named no service (left out)."""
    named = _named(samples, names, candidates)
    unnamed = samples.series.filter(pl.col("metric").is_in(list(names))).height - named.height
    parts: list[pl.LazyFrame] = []
    points = samples.points.lazy()
    for kind in ("gauge", "counter", "bucket"):
        keys = named.filter(pl.col("kind") == kind)
        if keys.height == 0:
            continue
        selected = points.filter(pl.col("sid").is_in(keys.get_column("sid").to_list()))
        if kind == "gauge":
            rows = selected.join(keys.lazy(), on="sid").select("timestamp", "service", "metric", "value", "instance")
            parts.append(rows)
            continue
        values = per_series(selected, "rate", grid).join(keys.lazy(), on="sid")
        if kind == "bucket":
            values = histogram_quantile(
                0.99,
                values.with_columns(pl.col("le").str.strip_chars().cast(pl.Float64, strict=False)).drop_nulls("le"),
                ["service", "instance", "metric", "g"],
            )
        parts.append(
            values.select(
                pl.col("g").cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias("timestamp"),
                "service",
                "metric",
                "value",
                "instance",
            )
        )
    if not parts:
        return pl.DataFrame(schema=CANONICAL), unnamed
    frame = pl.concat(parts).filter(pl.col("value").is_finite()).collect()
    return frame, unnamed
