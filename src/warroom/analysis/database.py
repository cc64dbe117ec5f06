"""Database measurements: connection-pool utilisation, waits and timeouts, long-running queries, locks,
database CPU and missing-index evidence (slow statements, table-scan log lines), from metrics, logs
and spans. Pure and columnar. Which fault they point to is the diagnosis engine's answer."""

from __future__ import annotations

import re
from datetime import datetime

import polars as pl
from pydantic import BaseModel, Field

from warroom.analysis.attrs import attr, has_key
from warroom.analysis.frames import decoded
from warroom.incident import Evidence
from warroom.sources import conventions as cv
from warroom.sources.canonical import Telemetry

DB_METRICS = (
    cv.DB_POOL_UTILIZATION,
    cv.DB_POOL_WAIT_MS,
    cv.DB_POOL_TIMEOUTS,
    cv.DB_POOL_SIZE,
    cv.DB_CPU_UTILIZATION,
    cv.DB_LONG_RUNNING_QUERIES,
    cv.DB_LOCK_WAITS,
    cv.DB_QUERY_TIME_MS,
    cv.DB_CONNECTIONS,
)
LOG_PATTERNS = {
    "pool_exhausted": r"(?i)(pool (is )?exhausted|timeout (acquiring|waiting for|getting|obtaining) (a )?"
    r"(db |database )?connection|too many (clients|connections)|remaining connection slots|"
    r"could not (obtain|acquire|get) (a )?connection|connection pool (timeout|full|exhausted)|"
    r"pool saturated|(acquire|acquiring|get|getting) (a )?(db |database )?conn(ection)?: .*(timeout|deadline|exceeded)|"
    r"waited .* for a (free|idle|available) connection|no (free|idle|available) connections?)",
    "slow_query": r"(?i)(slow query|long[- ]running query|statement timeout|canceling statement|query took)",
    "table_scan": r"(?i)(seq(uential)? scan|full (table )?scan|missing index|no index|rows (examined|scanned))",
    "lock": r"(?i)(deadlock|lock wait|lock timeout|could not obtain lock|waiting for (a )?lock)",
}
DURATION = re.compile(r"(?i)(?:duration|took|elapsed|time)[=: ]+\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s)\b")


class SeriesStat(BaseModel):
    service: str
    metric: str
    baseline: float | None
    median: float
    peak: float
    onset: datetime | None  # first of ≥ 3 consecutive samples above the threshold
    minutes_above: float  # time spent above the threshold in the window
    threshold: float

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline <= 0:
            return None
        return self.peak / self.baseline


class StatementStat(BaseModel):
    service: str
    statement: str
    calls: int
    p95_ms: float
    baseline_p95_ms: float | None
    new: bool


class DatabaseAnalysis(BaseModel):
    start: datetime
    end: datetime
    series: list[SeriesStat] = Field(default_factory=list)
    log_counts: dict[str, dict[str, int]] = Field(default_factory=dict)  # pattern → {window, baseline}
    log_samples: dict[str, list[str]] = Field(default_factory=dict)
    slow_query_ms: dict[str, float] = Field(default_factory=dict)  # from log durations: p95, max, count
    statements: list[StatementStat] = Field(default_factory=list)  # slowest first
    database_service: str | None = None  # the service reporting database-server CPU
    evidence: list[Evidence] = Field(default_factory=list)  # the series and lines that left their baseline
    limitations: list[str] = Field(default_factory=list)

    def stat(self, metric: str, service: str | None = None) -> list[SeriesStat]:
        found = [s for s in self.series if s.metric == metric and (service is None or s.service == service)]
        return sorted(found, key=lambda s: -s.peak)


def _threshold(base: float | None, mad: float | None, high: float | None) -> float:
    """Where a series leaves its baseline: well outside its spread, its level and its extremes."""
    if base is None:
        return float("inf")
    # Count-like series (median 0 with blips) must also clear their own baseline extremes.
    return max(base + 6 * 1.4826 * (mad or 0.0), base * 1.5, (high or 0.0) * 1.1, base + 1e-6)


def series_stats(
    metrics: pl.DataFrame, baseline: pl.DataFrame | None, start: datetime, end: datetime
) -> list[SeriesStat]:
    """Per service and database metric: baseline median, window median/peak and sustained onset."""
    db = decoded(metrics.lazy().filter(pl.col("metric").is_in(DB_METRICS)))
    per_time = db.group_by("service", "metric", "timestamp").agg(pl.col("value").mean())
    window = per_time.filter(pl.col("timestamp").is_between(start, end)).collect()
    if window.height == 0:
        return []
    base_src = (
        decoded(baseline.lazy().filter(pl.col("metric").is_in(DB_METRICS)))
        .group_by("service", "metric", "timestamp")
        .agg(pl.col("value").mean())
        if baseline is not None and baseline.height
        else per_time.filter(pl.col("timestamp") < start)
    )
    base = (
        base_src.group_by("service", "metric")
        .agg(
            pl.col("value").median().alias("base"),
            (pl.col("value") - pl.col("value").median()).abs().median().alias("mad"),
            pl.col("value").quantile(0.995).alias("q"),
        )
        .collect()
    )
    base_map = {(r[0], r[1]): (r[2], r[3], r[4]) for r in base.iter_rows()}
    thresholds = pl.DataFrame(
        [
            {"service": s, "metric": m, "thr": _threshold(*base_map.get((s, m), (None, None, None)))}
            for s, m in window.select("service", "metric").unique().iter_rows()
        ],
        schema={"service": pl.String, "metric": pl.String, "thr": pl.Float64},
    )
    flagged = (
        window.join(thresholds, on=["service", "metric"])
        .sort("service", "metric", "timestamp")
        .with_columns(
            (pl.col("value") >= pl.col("thr")).alias("hi"),
            pl.col("timestamp").diff().over("service", "metric").dt.total_seconds().alias("step"),
        )
        .with_columns(pl.col("hi").cast(pl.Int8).rolling_min(3).shift(-2).over("service", "metric").alias("sustained"))
    )
    summary = flagged.group_by("service", "metric").agg(
        pl.col("value").median().alias("median"),
        pl.col("value").max().alias("peak"),
        pl.col("timestamp").filter(pl.col("sustained") == 1).min().alias("onset"),
        (pl.col("step").fill_null(0).filter(pl.col("hi")).sum() / 60.0).alias("minutes"),
        pl.col("thr").first(),
    )
    stats = []
    for row in summary.iter_rows(named=True):
        base_value = base_map.get((row["service"], row["metric"]), (None, None, None))[0]
        stats.append(
            SeriesStat(
                service=row["service"],
                metric=row["metric"],
                baseline=base_value,
                median=row["median"],
                peak=row["peak"],
                onset=row["onset"],
                minutes_above=round(row["minutes"] or 0.0, 2),
                threshold=row["thr"],
            )
        )
    return stats


def _log_evidence(
    logs: pl.DataFrame, baseline: pl.DataFrame | None, start: datetime, end: datetime, result: DatabaseAnalysis
) -> None:
    window = logs.lazy().filter(pl.col("timestamp").is_between(start, end))
    before = (
        baseline.lazy() if baseline is not None and baseline.height else logs.lazy().filter(pl.col("timestamp") < start)
    )
    counts = (
        window.select([pl.col("message").str.contains(p).sum().alias(k) for k, p in LOG_PATTERNS.items()])
        .collect()
        .row(0, named=True)
    )
    base_counts = (
        before.select([pl.col("message").str.contains(p).sum().alias(k) for k, p in LOG_PATTERNS.items()])
        .collect()
        .row(0, named=True)
    )
    for key, pattern in LOG_PATTERNS.items():
        result.log_counts[key] = {"window": int(counts[key] or 0), "baseline": int(base_counts[key] or 0)}
        if counts[key]:
            rows = window.filter(pl.col("message").str.contains(pattern)).head(3).collect()
            result.log_samples[key] = [
                f"{r['timestamp'].isoformat()} {r['service']} {r['level']} {r['message'][:200]}"
                for r in rows.to_dicts()
            ]
    durations = (
        window.filter(pl.col("message").str.contains(LOG_PATTERNS["slow_query"]))
        .select(
            pl.col("message").str.extract(DURATION.pattern, 1).cast(pl.Float64, strict=False).alias("v"),
            pl.col("message").str.extract(DURATION.pattern, 2).str.to_lowercase().alias("u"),
        )
        .with_columns(pl.when(pl.col("u") == "s").then(pl.col("v") * 1000).otherwise(pl.col("v")).alias("ms"))
        .drop_nulls("ms")
        .select(pl.col("ms").quantile(0.95).alias("p95"), pl.col("ms").max().alias("max"), pl.len().alias("n"))
        .collect()
    )
    if durations.height and durations["n"][0]:
        result.slow_query_ms = {k: float(v) for k, v in durations.row(0, named=True).items() if v is not None}


def statement_stats(
    traces: pl.DataFrame, baseline: pl.DataFrame | None, start: datetime, end: datetime, limit: int = 10
) -> list[StatementStat]:
    """Database statements seen in spans (`db.statement` attribute): p95 duration now vs baseline."""
    if "attributes" not in traces.columns:
        return []

    def per_statement(frame: pl.LazyFrame) -> pl.LazyFrame:
        return (
            frame.filter(has_key("db.statement"))
            .select(
                "service",
                attr("db.statement").alias("statement"),
                ((pl.col("end_time") - pl.col("start_time")).dt.total_microseconds() / 1000.0).alias("ms"),
            )
            .drop_nulls("statement")
            .group_by("service", "statement")
            .agg(pl.len().alias("calls"), pl.col("ms").quantile(0.95).alias("p95"))
        )

    now = per_statement(traces.lazy().filter(pl.col("start_time").is_between(start, end))).collect()
    if now.height == 0:
        return []
    before_src = (
        baseline.lazy()
        if baseline is not None and baseline.height
        else traces.lazy().filter(pl.col("start_time") < start)
    )
    before = per_statement(before_src).collect().rename({"calls": "base_calls", "p95": "base_p95"})
    joined = now.join(before, on=["service", "statement"], how="left").sort("p95", descending=True).head(limit)
    return [
        StatementStat(
            service=r["service"],
            statement=r["statement"],
            calls=int(r["calls"]),
            p95_ms=round(float(r["p95"]), 2),
            baseline_p95_ms=None if r["base_p95"] is None else round(float(r["base_p95"]), 2),
            new=r["base_calls"] is None,
        )
        for r in joined.to_dicts()
    ]


def _ev(stat: SeriesStat, start: datetime, end: datetime) -> Evidence:
    return Evidence(
        source="metrics",
        query=f"{stat.metric}{{service={stat.service}}}",
        start=start,
        end=end,
        values={
            "baseline_median": None if stat.baseline is None else round(stat.baseline, 4),
            "window_median": round(stat.median, 4),
            "peak": round(stat.peak, 4),
            "threshold": None if stat.threshold == float("inf") else round(stat.threshold, 4),
            "onset": stat.onset.isoformat() if stat.onset else None,
            "minutes_above_threshold": stat.minutes_above,
        },
    )


def analyse_database(
    current: Telemetry, baseline: Telemetry | None, start: datetime, end: datetime
) -> DatabaseAnalysis:
    """Everything the database specialist measures: the database series and their onsets, the
    database-related log lines, the statements' durations. Which fault they point to is the
    diagnosis engine's answer (`warroom.analysis.diagnosis`), not this measurement's."""
    result = DatabaseAnalysis(start=start, end=end)
    base = baseline or Telemetry()
    if current.metrics is not None:
        result.series = series_stats(current.metrics, base.metrics, start, end)
    else:
        result.limitations.append("no metrics: pool, CPU and lock series not examined")
    if current.logs is not None:
        _log_evidence(current.logs, base.logs, start, end, result)
    if current.traces is not None:
        result.statements = statement_stats(current.traces, base.traces, start, end)
    if not result.series and not result.log_counts and not result.statements:
        result.limitations.append("no database telemetry in the bundle")
        return result
    cpu = result.stat(cv.DB_CPU_UTILIZATION)
    if cpu:
        result.database_service = cpu[0].service
    window = (start, end)
    for stat in sorted((s for s in result.series if s.onset is not None), key=lambda s: s.onset or end)[:6]:
        result.evidence.append(_ev(stat, *window))
    for key, samples in result.log_samples.items():
        counts = result.log_counts[key]
        if counts["window"] > counts["baseline"]:
            result.evidence.append(
                Evidence(
                    source="logs",
                    query=f"message ~ {key.replace('_', ' ')} pattern",
                    start=start,
                    end=end,
                    values={"lines_in_window": counts["window"], "lines_in_baseline": counts["baseline"]},
                    samples=samples,
                )
            )
    slow = [s for s in result.statements if s.new or (s.baseline_p95_ms and s.p95_ms > s.baseline_p95_ms)]
    if slow:
        top = slow[0]
        result.evidence.append(
            Evidence(
                source="traces",
                query=f"spans with db.statement, service={top.service}",
                start=start,
                end=end,
                values={
                    "statement": top.statement[:300],
                    "calls": top.calls,
                    "p95_ms": top.p95_ms,
                    "baseline_p95_ms": top.baseline_p95_ms,
                    "new_since_baseline": top.new,
                },
            )
        )
    return result
