"""The canonical tables: what every source produces and every analysis reads.

A source, whatever it reads (a v1 bundle, raw Prometheus samples, OTLP spans, a live API), hands
the analyses these four tables with these columns (docs/bundle-format.md lists them with units).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

TS = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class TableSpec:
    name: str
    required: dict[str, pl.DataType]
    optional: dict[str, pl.DataType]
    time_columns: tuple[str, ...]
    # Few distinct values repeated on millions of rows: held as dictionary codes (categories), which
    # keeps a large bundle's telemetry in far less memory and makes grouping by them cheap.
    categorical: tuple[str, ...] = ()


TABLES: dict[str, TableSpec] = {
    "metrics": TableSpec(
        "metrics",
        {"timestamp": TS, "service": pl.String(), "metric": pl.String(), "value": pl.Float64()},
        # resolution: how finely the value is known, in its unit (a histogram quantile's bucket width)
        {"instance": pl.String(), "resolution": pl.Float64()},
        ("timestamp",),
        categorical=("service", "metric", "instance"),
    ),
    "logs": TableSpec(
        "logs",
        {"timestamp": TS, "service": pl.String(), "level": pl.String(), "message": pl.String()},
        {"trace_id": pl.String(), "instance": pl.String(), "attributes": pl.String()},
        ("timestamp",),
        categorical=("service", "level", "instance"),
    ),
    "traces": TableSpec(
        "traces",
        {
            "trace_id": pl.String(),
            "span_id": pl.String(),
            "parent_span_id": pl.String(),
            "service": pl.String(),
            "operation": pl.String(),
            "start_time": TS,
            "end_time": TS,
        },
        {"status": pl.String(), "instance": pl.String(), "attributes": pl.String()},
        ("start_time", "end_time"),
        categorical=("service", "operation", "status", "instance"),
    ),
    "changes": TableSpec(
        "changes",
        {"id": pl.String(), "time": TS, "service": pl.String(), "kind": pl.String()},
        {
            "version": pl.String(),
            "commit": pl.String(),
            "author": pl.String(),
            "description": pl.String(),
        },
        ("time",),
    ),
}

NULLABLE = {
    "parent_span_id",
    "trace_id",
    "instance",
    "status",
    "attributes",
    "version",
    "commit",
    "author",
    "description",
}


@dataclass
class Telemetry:
    """The four modalities for one period; a modality that is absent is None."""

    metrics: pl.DataFrame | None = None
    logs: pl.DataFrame | None = None
    traces: pl.DataFrame | None = None
    changes: pl.DataFrame | None = None

    def present(self) -> list[str]:
        return [name for name in TABLES if getattr(self, name) is not None]
