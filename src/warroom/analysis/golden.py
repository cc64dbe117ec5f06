"""Golden signals per service (error rate, latency, saturation) against a baseline: pure, columnar.

Each signal comes from the best modality that has it: metrics first, then traces (span status and
duration), then logs (share of error-level lines). Idle or flat series do not count as deviations:
a deviation must clear both a robust spread and a floor relative to the baseline level.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from warroom.analysis.frames import decoded
from warroom.sources import conventions as c
from warroom.sources.canonical import Telemetry

ERROR_LEVELS = ("error", "fatal", "critical", "severe", "panic", "err")
# metrics where higher is worse; success rate is turned into an error rate on the way in
WATCHED = (
    c.ERROR_RATE,
    c.LATENCY_P99,
    c.LATENCY_P95,
    c.DB_POOL_UTILIZATION,
    c.DB_POOL_WAIT_MS,
    c.DB_CPU_UTILIZATION,
    c.DB_LONG_RUNNING_QUERIES,
    c.CPU_UTILIZATION,
    c.MEMORY_UTILIZATION,
    c.HOST_CPU_UTILIZATION,
    c.RESTARTS,
    c.AUTH_FAILURES,
    c.NETWORK_LATENCY_MS,
)


SERIES_SCHEMA = pl.Schema(
    {"service": pl.String(), "metric": pl.String(), "timestamp": pl.Datetime("us", "UTC"), "value": pl.Float64()}
)


@dataclass(frozen=True)
class Signal:
    """One service's signal in the incident window compared with its baseline."""

    service: str
    metric: str
    source: str  # metrics | traces | logs
    baseline: float | None  # median before the incident (None: no baseline data)
    current: float  # median in the window
    peak: float  # highest value in the window
    onset: datetime | None  # first time it left the baseline band and stayed out
    deviates: bool
    window_start: datetime
    window_end: datetime

    @property
    def ratio(self) -> float | None:
        if self.baseline is None:
            return None
        return self.peak / self.baseline if self.baseline > 0 else (float("inf") if self.peak > 0 else 1.0)


def _per_time(frame: pl.DataFrame) -> pl.DataFrame:
    """Average instances of the same service at the same timestamp."""
    return frame.group_by("service", "metric", "timestamp").agg(pl.col("value").mean()).sort("timestamp")


def metric_series(telemetry: Telemetry) -> pl.DataFrame:
    """The watched metrics as (service, metric, timestamp, value); success rate → error rate."""
    if telemetry.metrics is None:
        return pl.DataFrame(schema=SERIES_SCHEMA)
    frame = decoded(
        telemetry.metrics.select("timestamp", "service", "metric", "value").filter(
            pl.col("metric").is_in([*WATCHED, c.SUCCESS_RATE, c.ERROR_RATE])
        )
    )
    success = frame.filter(pl.col("metric") == c.SUCCESS_RATE).with_columns(
        # success may be a fraction or a percentage; both become an error fraction
        pl.when(pl.col("value") > 1.0)
        .then(1.0 - pl.col("value") / 100.0)
        .otherwise(1.0 - pl.col("value"))
        .alias("value"),
        pl.lit(c.ERROR_RATE).alias("metric"),
    )
    has_errors = set(frame.filter(pl.col("metric") == c.ERROR_RATE).get_column("service").unique().to_list())
    success = success.filter(~pl.col("service").is_in(list(has_errors)))
    watched = frame.filter(pl.col("metric").is_in(WATCHED))
    return _per_time(pl.concat([watched, success.select(watched.columns)]))


def trace_series(telemetry: Telemetry, bucket: str = "1m") -> pl.DataFrame:
    """Per service and bucket: error share of spans and p99 span duration in ms."""
    if telemetry.traces is None:
        return pl.DataFrame(schema=SERIES_SCHEMA)
    spans = telemetry.traces.with_columns(
        ((pl.col("end_time") - pl.col("start_time")).dt.total_microseconds() / 1000.0).alias("duration_ms"),
        pl.col("status")
        .cast(pl.String)
        .str.to_lowercase()
        .is_in(["error", "2", "status_code_error"])
        .fill_null(False)
        .alias("is_error")
        if "status" in telemetry.traces.columns
        else pl.lit(False).alias("is_error"),
        pl.col("start_time").dt.truncate(bucket).alias("timestamp"),
    )
    grouped = spans.group_by("service", "timestamp").agg(
        pl.col("is_error").mean().alias(c.ERROR_RATE),
        pl.col("duration_ms").quantile(0.99).alias(c.LATENCY_P99),
    )
    return grouped.unpivot(index=["service", "timestamp"], variable_name="metric", value_name="value").sort("timestamp")


def log_series(telemetry: Telemetry, bucket: str = "1m") -> pl.DataFrame:
    """Per service and bucket: the share of log lines at error level."""
    if telemetry.logs is None:
        return pl.DataFrame(schema=SERIES_SCHEMA)
    return (
        telemetry.logs.with_columns(
            pl.col("level").cast(pl.String).str.to_lowercase().is_in(ERROR_LEVELS).alias("is_error"),
            pl.col("timestamp").dt.truncate(bucket),
        )
        .group_by("service", "timestamp")
        .agg(pl.col("is_error").mean().alias("value"))
        .with_columns(pl.lit(c.ERROR_RATE).alias("metric"))
        .select("service", "metric", "timestamp", "value")
        .sort("timestamp")
    )


def compare(
    current: pl.DataFrame,
    baseline: pl.DataFrame,
    source: str,
    window_start: datetime,
    window_end: datetime,
) -> list[Signal]:
    """Compare each (service, metric) series in the window with its baseline."""
    window = current.filter(pl.col("timestamp").is_between(window_start, window_end))
    if window.height == 0:
        return []
    base_stats = baseline.group_by("service", "metric").agg(
        pl.col("value").median().alias("b_median"),
        (pl.col("value") - pl.col("value").median()).abs().median().alias("b_mad"),
        pl.col("value").quantile(0.95).alias("b_p95"),
    )
    joined = window.join(base_stats, on=["service", "metric"], how="left")
    # out of band: above the baseline's p95, 4 robust sigmas, and 20 % of its level (flat or
    # idle series have a spread of ~0; the relative floor keeps noise there from counting)
    band = pl.max_horizontal(
        pl.col("b_p95"),
        pl.col("b_median") + 4 * 1.4826 * pl.col("b_mad"),
        pl.col("b_median") * 1.2 + 1e-3,
    )
    flagged = joined.with_columns((pl.col("value") > band).fill_null(False).alias("out"))
    flagged = flagged.sort("timestamp").with_columns(
        (pl.col("out") & pl.col("out").shift(-1).over("service", "metric").fill_null(True)).alias("sustained")
    )
    stats = flagged.group_by("service", "metric").agg(
        pl.col("value").median().alias("current"),
        pl.col("value").max().alias("peak"),
        pl.col("b_median").first().alias("baseline"),
        pl.col("timestamp").filter(pl.col("sustained")).min().alias("onset"),
        pl.col("out").mean().alias("out_share"),
    )
    signals = []
    for row in stats.iter_rows(named=True):  # one row per series, not per sample
        deviates = row["onset"] is not None and row["out_share"] >= 0.2
        signals.append(
            Signal(
                service=row["service"],
                metric=row["metric"],
                source=source,
                baseline=row["baseline"],
                current=float(row["current"]),
                peak=float(row["peak"]),
                onset=row["onset"],
                deviates=deviates,
                window_start=window_start,
                window_end=window_end,
            )
        )
    return signals


def golden_signals(
    telemetry: Telemetry,
    baseline: Telemetry | None,
    window_start: datetime,
    window_end: datetime,
) -> list[Signal]:
    """Every watched signal of every service; metrics first, traces and logs where metrics lack it.

    Without a separate baseline, the baseline is the same telemetry before `window_start`."""
    signals: list[Signal] = []
    covered: set[tuple[str, str]] = set()
    for source, build in (("metrics", metric_series), ("traces", trace_series), ("logs", log_series)):
        current = build(telemetry)
        if current.height == 0:
            continue
        base = build(baseline) if baseline is not None else current
        base = base.filter(pl.col("timestamp") < window_start) if baseline is None else base
        for signal in compare(current, base, source, window_start, window_end):
            if (signal.service, signal.metric) not in covered:
                covered.add((signal.service, signal.metric))
                signals.append(signal)
    return signals
