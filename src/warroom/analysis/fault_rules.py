"""Symptom-based fault classifier: the signals an SRE reads, each turned into a scored hypothesis.

Every hypothesis names a service, a fault type and the measured values behind it:

- memory_leak: a service's memory climbs toward its limit and its containers restart (OOM kills);
- cpu_saturation: one service's CPU sits at its limit while its own latency or errors rise;
- slow_dependency: a leaf dependency seen only from the outside (no CPU/memory series of its own)
  answers slowly or fails while its callers wait on it;
- network_delay: a caller's round-trip time to its callees rises, and the extra time sits on one
  edge (the gap between the caller's activity and the callee's span), naming the delayed callee;
- certificate_expiry: a serving certificate's time left is negative, or TLS/certificate errors surge;
- credential_stuffing: authentication failures surge from many client addresses;
- data_loss_migration: a schema migration shortly before the onset, then table row counts drop or
  integrity / missing-column errors appear;
- bad_config: a configuration or feature-flag change to a service shortly before the onset, after
  which that service's own errors or latency rise.

Pure and columnar: frames in, typed results out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl
from pydantic import BaseModel, Field

from warroom.analysis.attrs import attr
from warroom.analysis.database import DatabaseAnalysis
from warroom.incident import Evidence
from warroom.sources import conventions as cv
from warroom.sources.bundle import Telemetry

RESOURCE_METRICS = (cv.CPU_UTILIZATION, cv.MEMORY_UTILIZATION)
MAX_METRICS = (cv.CPU_UTILIZATION, cv.MEMORY_UTILIZATION, cv.TLS_CERT_EXPIRY_SECONDS, cv.DB_POOL_UTILIZATION)
SUM_METRICS = (cv.RESTARTS, cv.AUTH_FAILURES)
WANTED = (
    cv.CPU_UTILIZATION,
    cv.MEMORY_UTILIZATION,
    cv.RESTARTS,
    cv.AUTH_FAILURES,
    cv.TLS_CERT_EXPIRY_SECONDS,
    cv.NETWORK_LATENCY_MS,
    cv.ERROR_RATE,
    cv.LATENCY_P99,
    cv.LATENCY_P95,
    cv.LATENCY_P50,
    cv.REQUEST_RATE,
    cv.DB_TABLE_ROWS,
    cv.DB_POOL_UTILIZATION,
)
SATURATED = 0.9  # a utilisation at or above this is at its limit
CONFIG_KINDS = ("config", "configuration", "feature_flag", "flag")
MIGRATION_KINDS = ("migration", "schema", "schema_migration")
# How long before the onset a change is still "shortly before" it for the change-led hypotheses.
CHANGE_LEAD = timedelta(minutes=45)

TLS_ERRORS = re.compile(
    r"(?i)(certificate (has )?expired|x509|tls: (bad certificate|failed to verify|handshake)|"
    r"tls handshake (error|fail)|certificate verify failed|ssl(v3)?[_ ].*(certificate|handshake)|cert(ificate)? expir)"
)
OOM = re.compile(r"(?i)(oomkill|out of memory|memory limit .*exceeded|cannot allocate memory|outofmemoryerror)")
AUTH_FAILED = re.compile(
    r"(?i)(invalid credentials|authentication failed|login failed|bad password|invalid password|unauthori[sz]ed)"
)
INTEGRITY = re.compile(
    r"(?i)(integrity check|cannot be reconciled|column \S+ does not exist|relation \S+ does not exist|"
    r"data (loss|missing)|rows? (missing|lost)|violates (foreign key|not-null)|missing; )"
)


class FaultHypothesis(BaseModel):
    """One scored answer: which service, which fault, on which measured values."""

    service: str
    fault_type: str
    score: float  # 0..1, comparable across hypotheses
    indicator: str  # the series or log pattern that decided it
    reason: str
    change_id: str | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    facts: dict[str, float] = Field(default_factory=dict)  # measured values other analyses may weigh


class FaultAnalysis(BaseModel):
    hypotheses: list[FaultHypothesis] = Field(default_factory=list)  # best first
    onset: datetime | None = None
    limitations: list[str] = Field(default_factory=list)

    def top(self) -> FaultHypothesis | None:
        return self.hypotheses[0] if self.hypotheses else None


@dataclass(frozen=True)
class Stat:
    """A series' level in the reference period and in the incident window."""

    base_med: float | None
    base_hi: float | None  # 99th percentile of the reference
    med: float  # window median (from the onset on)
    p90: float
    peak: float
    low: float
    first: float
    n: int

    def ratio(self, floor: float = 1e-9) -> float:
        base = self.base_med if self.base_med is not None else 0.0
        return self.p90 / max(base, floor)


def _per_time(frame: pl.LazyFrame) -> pl.LazyFrame:
    """One value per service, metric, (instance for table rows) and timestamp: max for
    utilisation-like series, sum for counts, mean otherwise."""
    keyed = frame.with_columns(
        pl.when(pl.col("metric") == cv.DB_TABLE_ROWS)
        .then(pl.col("instance") if "instance" in frame.collect_schema().names() else pl.lit(""))
        .otherwise(pl.lit(""))
        .fill_null("")
        .alias("key")
    )
    return keyed.group_by("service", "metric", "key", "timestamp").agg(
        pl.when(pl.col("metric").first().is_in(MAX_METRICS))
        .then(pl.col("value").max())
        .when(pl.col("metric").first().is_in(SUM_METRICS))
        .then(pl.col("value").sum())
        .otherwise(pl.col("value").mean())
        .alias("value")
    )


def metric_stats(
    metrics: pl.DataFrame | None, baseline: pl.DataFrame | None, start: datetime, end: datetime
) -> dict[tuple[str, str, str], Stat]:
    """Per (service, metric, key) the reference and window statistics of the well-known series."""
    if metrics is None or metrics.height == 0:
        return {}
    current = _per_time(metrics.lazy().filter(pl.col("metric").is_in(WANTED)))
    window = current.filter(pl.col("timestamp").is_between(start, end))
    if baseline is not None and baseline.height:
        reference = _per_time(baseline.lazy().filter(pl.col("metric").is_in(WANTED)))
    else:
        reference = current.filter(pl.col("timestamp") < start)
    ref = reference.group_by("service", "metric", "key").agg(
        pl.col("value").median().alias("base_med"), pl.col("value").quantile(0.99).alias("base_hi")
    )
    win = (
        window.sort("timestamp")
        .group_by("service", "metric", "key")
        .agg(
            pl.col("value").median().alias("med"),
            pl.col("value").quantile(0.9).alias("p90"),
            pl.col("value").max().alias("peak"),
            pl.col("value").min().alias("low"),
            pl.col("value").first().alias("first"),
            pl.len().alias("n"),
        )
    )
    joined = win.join(ref, on=["service", "metric", "key"], how="left").collect()
    return {
        (r["service"], r["metric"], r["key"]): Stat(
            base_med=r["base_med"],
            base_hi=r["base_hi"],
            med=r["med"],
            p90=r["p90"],
            peak=r["peak"],
            low=r["low"],
            first=r["first"],
            n=int(r["n"]),
        )
        for r in joined.iter_rows(named=True)
    }


def _stat(stats: Mapping[tuple[str, str, str], Stat], service: str, metric: str) -> Stat | None:
    return stats.get((service, metric, ""))


def _services_with(stats: Mapping[tuple[str, str, str], Stat], metric: str) -> list[str]:
    return sorted({s for s, m, _ in stats if m == metric})


def _ev(service: str, metric: str, stat: Stat, start: datetime, end: datetime, **extra: object) -> Evidence:
    return Evidence(
        source="metrics",
        query=f"{metric}{{service={service}}}",
        start=start,
        end=end,
        values={
            "baseline_median": None if stat.base_med is None else round(stat.base_med, 4),
            "baseline_p99": None if stat.base_hi is None else round(stat.base_hi, 4),
            "window_median": round(stat.med, 4),
            "window_p90": round(stat.p90, 4),
            "peak": round(stat.peak, 4),
            "min": round(stat.low, 4),
            **extra,
        },
    )


def latency_rise(stats: Mapping[tuple[str, str, str], Stat], service: str) -> float:
    """How many times its reference a service's latency (p99, else p95, else p50) rose (p90 of window)."""
    for metric in (cv.LATENCY_P99, cv.LATENCY_P95, cv.LATENCY_P50):
        stat = _stat(stats, service, metric)
        if stat is not None and stat.base_med:
            return stat.p90 / stat.base_med
    return 1.0


def error_rise(stats: Mapping[tuple[str, str, str], Stat], service: str) -> float:
    """Extra error share of a service in the window (p90) over its reference's 99th percentile."""
    stat = _stat(stats, service, cv.ERROR_RATE)
    if stat is None:
        return 0.0
    return max(0.0, stat.p90 - (stat.base_hi or 0.0))


# --------------------------------------------------------------------------------------------
# Logs


def _log_counts(
    logs: pl.DataFrame | None, baseline: pl.DataFrame | None, start: datetime, end: datetime, pattern: re.Pattern[str]
) -> tuple[dict[str, int], dict[str, int], dict[str, list[str]]]:
    """Lines matching `pattern` per service in the window and in the reference, and a few samples."""
    if logs is None or logs.height == 0:
        return {}, {}, {}
    window = logs.lazy().filter(pl.col("timestamp").is_between(start, end))
    hits = window.filter(pl.col("message").str.contains(pattern.pattern))
    now = {r[0]: int(r[1]) for r in hits.group_by("service").len().collect().iter_rows()}
    ref_src = (
        baseline.lazy() if baseline is not None and baseline.height else logs.lazy().filter(pl.col("timestamp") < start)
    )
    before = {
        r[0]: int(r[1])
        for r in ref_src.filter(pl.col("message").str.contains(pattern.pattern))
        .group_by("service")
        .len()
        .collect()
        .iter_rows()
    }
    samples: dict[str, list[str]] = {}
    if now:
        rows = hits.group_by("service").head(3).collect()
        for row in rows.iter_rows(named=True):
            samples.setdefault(row["service"], []).append(
                f"{row['timestamp'].isoformat()} {row['service']} {row['level']} {str(row['message'])[:200]}"
            )
    return now, before, samples


def _surging(now: Mapping[str, int], before: Mapping[str, int], minimum: int = 5) -> dict[str, float]:
    """Services whose matching lines rose at least fivefold (and to at least `minimum` lines)."""
    return {s: n / (before.get(s, 0) + 1) for s, n in now.items() if n >= minimum and n >= 5 * (before.get(s, 0) + 1)}


# --------------------------------------------------------------------------------------------
# Traces: per-edge gaps (network delay) and per-service span latency


def edge_gaps(traces: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    """Per caller→callee edge, the time around each callee span that the caller spends neither in
    its own earlier/later children: request transit before it plus response transit after it.
    Network delay on one edge grows this gap for that edge only. Columns: caller, callee, gap_ms, calls."""
    spans = traces.lazy().filter(pl.col("start_time").is_between(start, end))
    parents = spans.select(
        pl.col("span_id").alias("parent_span_id"),
        pl.col("service").alias("caller"),
        pl.col("start_time").alias("p_start"),
        pl.col("end_time").alias("p_end"),
    )
    children = (
        spans.select("parent_span_id", pl.col("service").alias("callee"), "start_time", "end_time")
        .drop_nulls("parent_span_id")
        .join(parents, on="parent_span_id", how="inner")
        .sort("parent_span_id", "start_time")
        .with_columns(
            pl.col("end_time").cum_max().shift(1).over("parent_span_id").alias("prev_end"),
            pl.col("start_time").shift(-1).over("parent_span_id").alias("next_start"),
        )
        .with_columns(
            pl.max_horizontal(pl.col("prev_end").fill_null(pl.col("p_start")), pl.col("p_start")).alias("lead_from"),
            pl.min_horizontal(pl.col("next_start").fill_null(pl.col("p_end")), pl.col("p_end")).alias("trail_to"),
        )
        .with_columns(
            (
                (pl.col("start_time") - pl.col("lead_from")).dt.total_microseconds().clip(lower_bound=0)
                + (pl.col("trail_to") - pl.col("end_time")).dt.total_microseconds().clip(lower_bound=0)
            ).alias("gap_us")
        )
        .filter(pl.col("caller") != pl.col("callee"))
    )
    return (
        children.group_by("caller", "callee")
        .agg((pl.col("gap_us").median() / 1000.0).alias("gap_ms"), pl.len().alias("calls"))
        .collect()
    )


def span_latency(traces: pl.DataFrame, start: datetime, end: datetime) -> dict[str, tuple[float, float, int]]:
    """Per service: median and 90th percentile span duration (ms) and span count in [start, end]."""
    frame = (
        traces.lazy()
        .filter(pl.col("start_time").is_between(start, end))
        .group_by("service")
        .agg(
            ((pl.col("end_time") - pl.col("start_time")).dt.total_microseconds() / 1000.0).median().alias("med"),
            ((pl.col("end_time") - pl.col("start_time")).dt.total_microseconds() / 1000.0).quantile(0.9).alias("p90"),
            pl.len().alias("n"),
        )
        .collect()
    )
    return {r[0]: (float(r[1]), float(r[2]), int(r[3])) for r in frame.iter_rows()}


# --------------------------------------------------------------------------------------------
# The classifier


def _changes_near(changes: pl.DataFrame | None, onset: datetime, kinds: tuple[str, ...]) -> list[dict[str, object]]:
    """Changes of the given kinds from CHANGE_LEAD before the onset up to two minutes after, nearest first."""
    if changes is None or changes.height == 0:
        return []
    near = changes.filter(
        pl.col("time").is_between(onset - CHANGE_LEAD, onset + timedelta(minutes=2))
        & pl.col("kind").str.to_lowercase().is_in(list(kinds))
    )
    rows = near.to_dicts()
    rows.sort(key=lambda r: abs((onset - r["time"]).total_seconds()))
    return rows


def _change_ev(change: Mapping[str, object], onset: datetime) -> Evidence:
    when = change["time"]
    minutes = (onset - when).total_seconds() / 60.0 if isinstance(when, datetime) else None
    return Evidence(
        source="changes",
        query=f"change {change.get('id')}",
        start=when if isinstance(when, datetime) else None,
        end=onset,
        values={
            "id": change.get("id"),
            "service": change.get("service"),
            "kind": change.get("kind"),
            "minutes_before_onset": None if minutes is None else round(minutes, 1),
            "commit": change.get("commit"),
        },
        samples=[str(change.get("description") or "")][:1],
    )


def classify_faults(
    current: Telemetry,
    baseline: Telemetry | None,
    start: datetime,
    end: datetime,
    onset: datetime,
    graph: Mapping[str, set[str]] | None = None,
) -> FaultAnalysis:
    """Score every symptom-based hypothesis over the incident window [start, end] (onset: when the
    signals left their baseline) against the reference period (`baseline`, else before `start`)."""
    graph = graph or {}
    base = baseline or Telemetry()
    result = FaultAnalysis(onset=onset)
    out = result.hypotheses
    # From the onset on: the part of the window that shows the fault (the earlier part is normal).
    hot_start = max(start, min(onset, end - timedelta(minutes=5)))
    stats = metric_stats(current.metrics, base.metrics, hot_start, end)
    if current.metrics is None:
        result.limitations.append("no metrics: resource, certificate and authentication series not examined")
    callers: dict[str, set[str]] = {}
    for caller, callees in graph.items():
        for callee in callees:
            callers.setdefault(callee, set()).add(caller)

    _certificates(current, base, stats, hot_start, end, graph, out)
    _credential_stuffing(current, base, stats, hot_start, end, out)
    _data_loss(current, base, stats, hot_start, end, onset, out)
    _memory(current, base, stats, hot_start, end, out)
    _network(current, base, stats, start, hot_start, end, graph, out)
    _slow_dependency(current, base, stats, start, hot_start, end, graph, callers, out)
    _cpu(stats, hot_start, end, out)
    _bad_config(current, stats, hot_start, end, onset, graph, out)
    out.sort(key=lambda h: -h.score)
    return result


def _certificates(
    current: Telemetry,
    base: Telemetry,
    stats: Mapping[tuple[str, str, str], Stat],
    start: datetime,
    end: datetime,
    graph: Mapping[str, set[str]],
    out: list[FaultHypothesis],
) -> None:
    now, before, samples = _log_counts(current.logs, base.logs, start, end, TLS_ERRORS)
    surging = _surging(now, before)
    expired = [
        (s, st)
        for s in _services_with(stats, cv.TLS_CERT_EXPIRY_SECONDS)
        if (st := _stat(stats, s, cv.TLS_CERT_EXPIRY_SECONDS)) is not None and st.low < 0
    ]
    for service, stat in expired:
        evidence = [_ev(service, cv.TLS_CERT_EXPIRY_SECONDS, stat, start, end)]
        tls_lines = sum(now.get(s, 0) for s in surging)
        if surging:
            evidence.append(_log_ev("TLS / certificate errors", surging, now, before, samples, start, end))
        out.append(
            FaultHypothesis(
                service=service,
                fault_type="certificate_expiry",
                score=0.97 if surging else 0.9,
                indicator=cv.TLS_CERT_EXPIRY_SECONDS,
                reason=f"the serving certificate of {service} expired (time left {stat.low:.0f} s)"
                + (f"; {tls_lines} TLS/certificate errors in the logs" if tls_lines else ""),
                evidence=evidence,
            )
        )
    if expired or not surging:
        return
    # No certificate series: the service that is the common callee of the services logging TLS errors,
    # else the one logging most of them (the server side logs the failed handshakes).
    loggers = set(surging)
    common = [
        c
        for c in {x for s in loggers for x in graph.get(s, set())}
        if all(c in graph.get(s, set()) or c == s for s in loggers)
    ]
    logged_by_callee = [c for c in common if c in loggers]
    service = (logged_by_callee or common or [max(surging, key=lambda s: now[s])])[0]
    out.append(
        FaultHypothesis(
            service=service,
            fault_type="certificate_expiry",
            score=0.8,
            indicator="logs: TLS / certificate errors",
            reason=f"TLS/certificate errors surged in {', '.join(sorted(loggers))}, pointing at {service}",
            evidence=[_log_ev("TLS / certificate errors", surging, now, before, samples, start, end)],
        )
    )


def _log_ev(
    name: str,
    surging: Mapping[str, float],
    now: Mapping[str, int],
    before: Mapping[str, int],
    samples: Mapping[str, list[str]],
    start: datetime,
    end: datetime,
) -> Evidence:
    return Evidence(
        source="logs",
        query=f"message ~ {name}",
        start=start,
        end=end,
        values={s: {"window": now.get(s, 0), "reference": before.get(s, 0)} for s in sorted(surging)},
        samples=[line for s in sorted(surging) for line in samples.get(s, [])][:5],
    )


def _credential_stuffing(
    current: Telemetry,
    base: Telemetry,
    stats: Mapping[tuple[str, str, str], Stat],
    start: datetime,
    end: datetime,
    out: list[FaultHypothesis],
) -> None:
    rising: list[tuple[str, Stat, float]] = []
    for service in _services_with(stats, cv.AUTH_FAILURES):
        stat = _stat(stats, service, cv.AUTH_FAILURES)
        if stat is None:
            continue
        reference = max(stat.base_hi or 0.0, stat.base_med or 0.0, 0.5)
        if stat.med >= 3 * reference:
            rising.append((service, stat, stat.med / reference))
    now, before, samples = _log_counts(current.logs, base.logs, start, end, AUTH_FAILED)
    surging = _surging(now, before, minimum=50)
    sources, ref_sources = _failed_login_sources(current.logs, base.logs, start, end)
    many = sources >= 50 and sources >= 5 * (ref_sources + 1)
    if not rising and not (surging and many):
        return
    if rising:
        service, stat, ratio = max(rising, key=lambda r: r[2])
        evidence = [_ev(service, cv.AUTH_FAILURES, stat, start, end, ratio=round(ratio, 2))]
    else:
        service = max(surging, key=lambda s: now[s])
        ratio = surging[service]
        evidence = []
    if surging:
        evidence.append(_log_ev("authentication failures", surging, now, before, samples, start, end))
    evidence.append(
        Evidence(
            source="logs",
            query="distinct client.ip of failed logins (HTTP 401/403)",
            start=start,
            end=end,
            values={"window": sources, "reference": ref_sources},
        )
    )
    score = 0.6 + (0.2 if many else 0.0) + (0.1 if rising and surging else 0.0)
    out.append(
        FaultHypothesis(
            service=service,
            fault_type="credential_stuffing",
            score=round(score, 3),
            indicator=cv.AUTH_FAILURES if rising else "logs: authentication failures",
            reason=f"authentication failures on {service} rose {ratio:.0f}×"
            + (f" from {sources} client addresses (reference {ref_sources})" if sources else ""),
            evidence=evidence,
        )
    )


def _failed_login_sources(
    logs: pl.DataFrame | None, baseline: pl.DataFrame | None, start: datetime, end: datetime
) -> tuple[int, int]:
    """Distinct client addresses of requests answered 401/403 in the window and in the reference."""
    if logs is None or "attributes" not in logs.columns:
        return 0, 0

    def count(frame: pl.LazyFrame) -> int:
        marked = frame.filter(pl.col("attributes").str.contains('"client.ip"', literal=True).fill_null(False))
        status = attr("http.status_code").cast(pl.Int64, strict=False)
        value = marked.filter(status.is_in([401, 403])).select(attr("client.ip").n_unique().alias("n")).collect().item()
        return int(value or 0)

    window = count(logs.lazy().filter(pl.col("timestamp").is_between(start, end)))
    if baseline is not None and baseline.height and "attributes" in baseline.columns:
        reference = count(baseline.lazy())
    else:
        reference = count(logs.lazy().filter(pl.col("timestamp") < start))
    return window, reference


def _data_loss(
    current: Telemetry,
    base: Telemetry,
    stats: Mapping[tuple[str, str, str], Stat],
    start: datetime,
    end: datetime,
    onset: datetime,
    out: list[FaultHypothesis],
) -> None:
    migrations = _changes_near(current.changes, onset, MIGRATION_KINDS)
    if not migrations:
        return
    change = migrations[0]
    drops: list[tuple[str, str, float, Stat]] = []
    for (service, metric, key), stat in stats.items():
        if metric != cv.DB_TABLE_ROWS or not stat.base_med:
            continue
        before = max(stat.first, stat.base_med)
        if before > 0 and stat.low < 0.8 * before:
            drops.append((service, key, 1.0 - stat.low / before, stat))
    now, before_counts, samples = _log_counts(current.logs, base.logs, start, end, INTEGRITY)
    surging = _surging(now, before_counts, minimum=3)
    service = str(change.get("service") or "")
    db_errors = error_rise(stats, service) if service else 0.0
    if not drops and not surging and db_errors < 0.02:
        return
    evidence = [_change_ev(change, onset)]
    facts: list[str] = []
    for svc, table, share, stat in sorted(drops, key=lambda d: -d[2])[:3]:
        evidence.append(_ev(svc, cv.DB_TABLE_ROWS, stat, start, end, table=table, dropped_share=round(share, 3)))
        facts.append(f"table {table} lost {share:.0%} of its rows")
    if surging:
        evidence.append(_log_ev("integrity / missing-data errors", surging, now, before_counts, samples, start, end))
        facts.append(f"{sum(now[s] for s in surging)} integrity/missing-data errors")
    if db_errors >= 0.02:
        facts.append(f"{service} error rate up {db_errors:.0%}")
    score = 0.7 + (0.15 if drops else 0.0) + (0.1 if surging else 0.0)
    out.append(
        FaultHypothesis(
            service=service,
            fault_type="data_loss_migration",
            score=round(min(score, 0.97), 3),
            indicator=cv.DB_TABLE_ROWS if drops else ("logs: integrity errors" if surging else cv.ERROR_RATE),
            reason=f"migration {change.get('id')} ({change.get('description') or change.get('kind')}) shortly before "
            f"the onset; then " + ", ".join(facts),
            change_id=str(change.get("id")),
            evidence=evidence,
        )
    )


def _memory(
    current: Telemetry,
    base: Telemetry,
    stats: Mapping[tuple[str, str, str], Stat],
    start: datetime,
    end: datetime,
    out: list[FaultHypothesis],
) -> None:
    now, before, samples = _log_counts(current.logs, base.logs, start, end, OOM)
    for service in _services_with(stats, cv.MEMORY_UTILIZATION):
        stat = _stat(stats, service, cv.MEMORY_UTILIZATION)
        if stat is None:
            continue
        restarts = _stat(stats, service, cv.RESTARTS)
        restarted = restarts is not None and restarts.peak > max(restarts.base_hi or 0.0, 0.0)
        oom = now.get(service, 0) > before.get(service, 0)
        near_limit = stat.peak >= SATURATED
        grew = stat.peak - min(stat.first, stat.base_med if stat.base_med is not None else stat.first) >= 0.2
        if not (near_limit and grew) and not (oom and grew):
            continue
        score = 0.55 + (0.15 if restarted else 0.0) + (0.15 if oom else 0.0) + (0.05 if near_limit else 0.0)
        evidence = [_ev(service, cv.MEMORY_UTILIZATION, stat, start, end)]
        if restarts is not None:
            evidence.append(_ev(service, cv.RESTARTS, restarts, start, end))
        if oom:
            evidence.append(_log_ev("OOM kills", {service: 1.0}, now, before, samples, start, end))
        out.append(
            FaultHypothesis(
                service=service,
                fault_type="memory_leak",
                score=round(score, 3),
                indicator=cv.MEMORY_UTILIZATION,
                reason=f"memory of {service} climbed from {stat.first:.0%} to {stat.peak:.0%} of its limit"
                + ("; containers restarted" if restarted else "")
                + (f"; {now.get(service, 0)} OOM-kill lines" if oom else ""),
                evidence=evidence,
            )
        )


def _network(
    current: Telemetry,
    base: Telemetry,
    stats: Mapping[tuple[str, str, str], Stat],
    window_start: datetime,
    start: datetime,
    end: datetime,
    graph: Mapping[str, set[str]],
    out: list[FaultHypothesis],
) -> None:
    rtt: dict[str, tuple[Stat, float]] = {}
    for service in _services_with(stats, cv.NETWORK_LATENCY_MS):
        stat = _stat(stats, service, cv.NETWORK_LATENCY_MS)
        if stat is None or stat.base_med is None:
            continue
        extra = stat.p90 - max(stat.base_hi or 0.0, stat.base_med)
        if extra >= 20.0 and stat.p90 >= 3 * stat.base_med:
            rtt[service] = (stat, extra)
    edges: list[tuple[str, str, float, float, int]] = []
    if current.traces is not None and current.traces.height:
        now = edge_gaps(current.traces, start, end)
        if base.traces is not None and base.traces.height:
            ref = edge_gaps(base.traces, base.traces["start_time"].min(), base.traces["start_time"].max())  # type: ignore[arg-type]
        else:
            ref = edge_gaps(current.traces, current.traces["start_time"].min(), window_start)  # type: ignore[arg-type]
        joined = now.join(ref.rename({"gap_ms": "ref_ms", "calls": "ref_calls"}), on=["caller", "callee"], how="inner")
        for row in joined.iter_rows(named=True):
            extra = row["gap_ms"] - row["ref_ms"]
            if row["calls"] >= 5 and extra >= 20.0 and row["gap_ms"] >= 3 * max(row["ref_ms"], 1.0):
                edges.append((row["caller"], row["callee"], row["gap_ms"], row["ref_ms"], int(row["calls"])))
        # A caller slow around all of its callees alike is slow itself (CPU-starved, queueing), not
        # its network. Delay on one path lengthens that edge most (request and response transit;
        # the next call's lead-in carries only the response half).
        edges.sort(key=lambda e: -(e[2] - e[3]))
        kept: list[tuple[str, str, float, float, int]] = []
        for edge in edges:
            if any(k[0] == edge[0] for k in kept) or _saturated(stats, edge[0]) or _pool_bound(stats, edge[0]):
                continue
            caller_rtt = _stat(stats, edge[0], cv.NETWORK_LATENCY_MS)
            if caller_rtt is not None and edge[0] not in rtt:
                continue  # the caller measures its round trips and they did not rise: not the network
            runner_up = next((e for e in edges if e[0] == edge[0] and e is not edge), None)
            if runner_up is None or (edge[2] - edge[3]) >= 1.5 * (runner_up[2] - runner_up[3]):
                kept.append(edge)
        edges = kept
    if not rtt and not edges:
        return
    edges.sort(key=lambda e: -(e[2] - e[3]))
    if edges:
        caller, callee, gap, ref_gap, calls = edges[0]
        # A callee reached late from every caller is delayed on its own side of the network.
        evidence = [
            Evidence(
                source="traces",
                query=f"gap around {callee} spans under {caller} spans (request + response transit)",
                start=start,
                end=end,
                values={
                    "caller": caller,
                    "callee": callee,
                    "gap_ms": round(gap, 2),
                    "reference_ms": round(ref_gap, 2),
                    "calls": calls,
                },
                samples=[f"{c}->{e}: {g:.1f} ms (reference {r:.1f} ms)" for c, e, g, r, _ in edges[:5]],
            )
        ]
        if caller in rtt:
            evidence.append(_ev(caller, cv.NETWORK_LATENCY_MS, rtt[caller][0], start, end))
        score = 0.8 + (0.1 if caller in rtt else 0.0)
        out.append(
            FaultHypothesis(
                service=callee,
                fault_type="network_delay",
                score=score,
                indicator=cv.NETWORK_LATENCY_MS if caller in rtt else "traces: edge transit gap",
                reason=f"calls from {caller} to {callee} spend {gap - ref_gap:.0f} ms more in transit "
                f"({gap:.0f} ms vs {ref_gap:.0f} ms)"
                + (f"; {caller}'s round-trip time rose to {rtt[caller][0].p90:.0f} ms" if caller in rtt else ""),
                evidence=evidence,
            )
        )
        return
    # Round-trip time up without spans: the caller's only callee, else name the caller's path.
    caller, (stat, extra) = max(rtt.items(), key=lambda kv: kv[1][1])
    callees = sorted(graph.get(caller, set()))
    named = _named_in_logs(current.logs, caller, callees, start, end)
    service = named or (callees[0] if len(callees) == 1 else caller)
    out.append(
        FaultHypothesis(
            service=service,
            fault_type="network_delay",
            score=0.75 if service != caller else 0.6,
            indicator=cv.NETWORK_LATENCY_MS,
            reason=f"round-trip time from {caller} rose by {extra:.0f} ms (p90 {stat.p90:.0f} ms)"
            + (f"; its logs name {named}" if named else ""),
            evidence=[_ev(caller, cv.NETWORK_LATENCY_MS, stat, start, end)],
        )
    )


def _saturated(stats: Mapping[tuple[str, str, str], Stat], service: str) -> bool:
    cpu = _stat(stats, service, cv.CPU_UTILIZATION)
    return cpu is not None and cpu.med >= SATURATED * 0.95


def _pool_bound(stats: Mapping[tuple[str, str, str], Stat], service: str) -> bool:
    """Requests of the service wait for a database connection between their calls."""
    pool = _stat(stats, service, cv.DB_POOL_UTILIZATION)
    return pool is not None and pool.p90 >= SATURATED


def _named_in_logs(
    logs: pl.DataFrame | None, service: str, names: list[str], start: datetime, end: datetime
) -> str | None:
    """The name among `names` that the service's warnings and errors mention most often."""
    if logs is None or not names:
        return None
    lines = logs.lazy().filter(
        (pl.col("service") == service)
        & pl.col("timestamp").is_between(start, end)
        & pl.col("level").is_in(["WARN", "ERROR"])
    )
    counts = lines.select(
        [pl.col("message").str.contains(rf"\b{re.escape(n)}\b").sum().alias(n) for n in names]
    ).collect()
    if counts.height == 0:
        return None
    row = counts.row(0, named=True)
    best = max(names, key=lambda n: row[n] or 0)
    return best if (row[best] or 0) >= 5 else None


def _slow_dependency(
    current: Telemetry,
    base: Telemetry,
    stats: Mapping[tuple[str, str, str], Stat],
    window_start: datetime,
    start: datetime,
    end: datetime,
    graph: Mapping[str, set[str]],
    callers: Mapping[str, set[str]],
    out: list[FaultHypothesis],
) -> None:
    observed_inside = {s for s, m, _ in stats if m in RESOURCE_METRICS or m.startswith("db_")}
    logging = set(current.logs.get_column("service").unique().to_list()) if current.logs is not None else set()
    spans_now: dict[str, tuple[float, float, int]] = {}
    spans_ref: dict[str, tuple[float, float, int]] = {}
    if current.traces is not None and current.traces.height:
        spans_now = span_latency(current.traces, start, end)
        if base.traces is not None and base.traces.height:
            spans_ref = span_latency(base.traces, base.traces["start_time"].min(), base.traces["start_time"].max())  # type: ignore[arg-type]
        else:
            spans_ref = span_latency(current.traces, current.traces["start_time"].min(), window_start)  # type: ignore[arg-type]
    known = set(graph) | set(callers) | {s for s, _, _ in stats} | set(spans_now)
    for service in sorted(known):
        if graph.get(service) or service not in callers:
            continue  # only leaves that someone calls
        if service in observed_inside or service in logging:
            continue  # our own component (we see its resources or its logs): not an external dependency
        ratio = latency_rise(stats, service)
        span_ratio = 1.0
        if service in spans_now and service in spans_ref and spans_ref[service][0] > 0:
            span_ratio = spans_now[service][0] / spans_ref[service][0]
        errors = error_rise(stats, service)
        slow = max(ratio, span_ratio)
        if slow < 3.0 and errors < 0.05:
            continue
        # The callers wait on it: their latency or errors rose too.
        waiting = [c for c in callers[service] if latency_rise(stats, c) >= 2.0 or error_rise(stats, c) >= 0.05]
        score = 0.7 + (0.1 if waiting else 0.0) + (0.05 if slow >= 3.0 and errors >= 0.05 else 0.0)
        evidence: list[Evidence] = []
        for metric in (cv.LATENCY_P99, cv.LATENCY_P50, cv.ERROR_RATE):
            stat = _stat(stats, service, metric)
            if stat is not None:
                evidence.append(_ev(service, metric, stat, start, end))
        if service in spans_now:
            evidence.append(
                Evidence(
                    source="traces",
                    query=f"spans of {service}",
                    start=start,
                    end=end,
                    values={
                        "median_ms": round(spans_now[service][0], 2),
                        "reference_median_ms": round(spans_ref.get(service, (0.0, 0.0, 0))[0], 2),
                        "spans": spans_now[service][2],
                    },
                )
            )
        out.append(
            FaultHypothesis(
                service=service,
                fault_type="slow_dependency",
                score=round(score, 3),
                indicator=cv.LATENCY_P99 if ratio >= span_ratio else "traces: span duration",
                reason=f"{service}, a dependency seen only from its callers ({', '.join(sorted(callers[service]))}), "
                f"answers {slow:.1f}× slower"
                + (f" and fails {errors:.0%} more often" if errors >= 0.05 else "")
                + (f"; {', '.join(sorted(waiting))} wait on it" if waiting else ""),
                evidence=evidence,
            )
        )


def _cpu(
    stats: Mapping[tuple[str, str, str], Stat], start: datetime, end: datetime, out: list[FaultHypothesis]
) -> None:
    best: tuple[float, str, Stat, float, float] | None = None
    for service in _services_with(stats, cv.CPU_UTILIZATION):
        stat = _stat(stats, service, cv.CPU_UTILIZATION)
        if stat is None or stat.med < SATURATED * 0.95 or (stat.base_med is not None and stat.base_med >= SATURATED):
            continue
        slow, errors = latency_rise(stats, service), error_rise(stats, service)
        if slow < 2.0 and errors < 0.05:
            continue  # busy but serving well: not what hurts the users
        strength = stat.med * (min(slow, 50.0) + 20 * errors)
        if best is None or strength > best[0]:
            best = (strength, service, stat, slow, errors)
    if best is None:
        return
    _, service, stat, slow, errors = best
    load = _stat(stats, service, cv.REQUEST_RATE)
    load_ratio = load.med / load.base_med if load is not None and load.base_med else 1.0
    out.append(
        FaultHypothesis(
            service=service,
            fault_type="cpu_saturation",
            score=0.75,
            indicator=cv.CPU_UTILIZATION,
            reason=f"CPU of {service} at {stat.med:.0%} of its limit (reference {stat.base_med or 0:.0%}); "
            f"its latency rose {slow:.1f}×"
            + (f", errors +{errors:.0%}" if errors >= 0.01 else "")
            + (f"; its request rate is {load_ratio:.1f}× the reference" if load is not None else ""),
            evidence=[_ev(service, cv.CPU_UTILIZATION, stat, start, end)]
            + ([_ev(service, cv.REQUEST_RATE, load, start, end)] if load is not None else []),
            facts={"load_ratio": round(load_ratio, 3)},
        )
    )


def _bad_config(
    current: Telemetry,
    stats: Mapping[tuple[str, str, str], Stat],
    start: datetime,
    end: datetime,
    onset: datetime,
    graph: Mapping[str, set[str]],
    out: list[FaultHypothesis],
) -> None:
    for change in _changes_near(current.changes, onset, CONFIG_KINDS):
        service = str(change.get("service") or "")
        errors, slow = error_rise(stats, service), latency_rise(stats, service)
        if errors < 0.05 and slow < 3.0:
            continue
        # A service whose own callee fails or slows as much is a victim of that callee, not of its config.
        victims = [
            c
            for c in graph.get(service, set())
            if error_rise(stats, c) >= 0.5 * errors > 0 or (errors < 0.05 and latency_rise(stats, c) >= 0.5 * slow)
        ]
        if victims:
            continue
        minutes = (onset - change["time"]).total_seconds() / 60.0  # type: ignore[operator]
        proximity = max(0.0, 1.0 - max(minutes, 0.0) / (CHANGE_LEAD.total_seconds() / 60.0))
        evidence = [_change_ev(change, onset)]
        for metric in (cv.ERROR_RATE, cv.LATENCY_P99):
            stat = _stat(stats, service, metric)
            if stat is not None:
                evidence.append(_ev(service, metric, stat, start, end))
        out.append(
            FaultHypothesis(
                service=service,
                fault_type="bad_config",
                score=round((0.55 if errors >= 0.05 else 0.45) + 0.2 * proximity, 3),
                indicator=f"change {change.get('id')}",
                reason=f"{change.get('kind')} change {change.get('id')} to {service} "
                f"({change.get('description') or ''}) {minutes:.0f} min before the onset; then its errors rose "
                f"{errors:.0%}" + (f" and latency {slow:.1f}×" if slow >= 3.0 else ""),
                change_id=str(change.get("id")),
                evidence=evidence,
            )
        )
        return  # the nearest qualifying config change only


# --------------------------------------------------------------------------------------------
# Database faults: the database analysis' verdict, attributed to the service whose queries cause it


def query_callers(
    traces: pl.DataFrame, baseline: pl.DataFrame | None, start: datetime, end: datetime
) -> list[tuple[str, str, float, float | None, int]]:
    """Per (calling service, statement) of spans that carry `db.statement`: p95 ms now, p95 ms in the
    reference (None: the statement is new), calls — slowest rise first."""
    if "attributes" not in traces.columns:
        return []

    def per_caller(frame: pl.LazyFrame) -> pl.DataFrame:
        parents = frame.select(pl.col("span_id").alias("parent_span_id"), pl.col("service").alias("caller"))
        return (
            frame.filter(pl.col("attributes").str.contains('"db.statement"', literal=True).fill_null(False))
            .select(
                "parent_span_id",
                pl.col("service").alias("db"),
                attr("db.statement").alias("statement"),
                ((pl.col("end_time") - pl.col("start_time")).dt.total_microseconds() / 1000.0).alias("ms"),
            )
            .join(parents, on="parent_span_id", how="inner")
            .filter(pl.col("caller") != pl.col("db"))
            .group_by("caller", "statement")
            .agg(pl.col("ms").quantile(0.95).alias("p95"), pl.len().alias("calls"))
            .collect()
        )

    now = per_caller(traces.lazy().filter(pl.col("start_time").is_between(start, end)))
    if now.height == 0:
        return []
    ref_src = (
        baseline.lazy()
        if baseline is not None and baseline.height
        else traces.lazy().filter(pl.col("start_time") < start)
    )
    ref = per_caller(ref_src).rename({"p95": "ref_p95", "calls": "ref_calls"})
    joined = now.join(ref, on=["caller", "statement"], how="left")
    rows = [
        (
            r["caller"],
            r["statement"],
            float(r["p95"]),
            None if r["ref_p95"] is None else float(r["ref_p95"]),
            int(r["calls"]),
        )
        for r in joined.iter_rows(named=True)
    ]
    # Rank by the time the statement now costs beyond its reference (a new statement: all of it).
    rows.sort(key=lambda r: -((r[2] - (r[3] or 0.0)) * r[4]))
    return rows


def database_hypothesis(
    analysis: DatabaseAnalysis,
    current: Telemetry,
    base: Telemetry | None,
    start: datetime,
    end: datetime,
) -> FaultHypothesis | None:
    """The database analysis' fault as a hypothesis. Scans and long-running queries are caused by the
    service that sends the slow statement (read from spans: the parent of the database span), not by
    the database that runs them."""
    fault = analysis.fault_type
    if fault is None:
        return None
    service = analysis.suspect_service or analysis.database_service or "database"
    evidence = list(analysis.evidence)
    reason = ""
    if fault in ("missing_index", "db_cpu_saturation") and current.traces is not None:
        callers = query_callers(current.traces, base.traces if base else None, start, end)
        slow = [c for c in callers if c[3] is None or c[2] >= 3 * max(c[3], 1e-3)]
        if slow:
            caller, statement, p95, ref_p95, calls = slow[0]
            service = caller
            before = "new since the reference" if ref_p95 is None else f"p95 {ref_p95:.0f} ms before"
            reason = f"; {caller} sends the slow statement ({before}, now p95 {p95:.0f} ms over {calls} calls): "
            reason += statement[:120]
            evidence.append(
                Evidence(
                    source="traces",
                    query="database spans (db.statement) by calling service",
                    start=start,
                    end=end,
                    values={
                        "caller": caller,
                        "statement": statement[:300],
                        "p95_ms": round(p95, 1),
                        "reference_p95_ms": ref_p95,
                        "calls": calls,
                    },
                    samples=[
                        f"{c[0]}: {c[1][:100]} p95 {c[2]:.0f} ms (ref {c[3] if c[3] is not None else 'new'})"
                        for c in callers[:5]
                    ],
                )
            )
        elif analysis.suspect_service == analysis.database_service:
            pools = [s for s in analysis.stat(cv.DB_POOL_UTILIZATION) if s.onset is not None]
            if pools:
                service = min(pools, key=lambda s: s.onset or end).service
                reason = f"; {service}'s connection pool saturated first"
    headline = {
        "db_pool_exhaustion": f"{service}'s database connection pool is exhausted",
        "missing_index": f"queries from {service} scan tables without an index",
        "db_cpu_saturation": "database CPU saturated by long-running queries",
        "lock_contention": "lock contention in the database",
    }.get(fault, fault)
    indicator = {
        "db_pool_exhaustion": cv.DB_POOL_UTILIZATION,
        "missing_index": cv.DB_CPU_UTILIZATION,
        "db_cpu_saturation": cv.DB_CPU_UTILIZATION,
        "lock_contention": cv.DB_LOCK_WAITS,
    }.get(fault, cv.DB_CPU_UTILIZATION)
    return FaultHypothesis(
        service=service,
        fault_type=fault,
        score=round(min(0.95, analysis.confidence), 3),
        indicator=indicator,
        reason=headline + reason + f" (database scores {analysis.scores})",
        evidence=evidence,
    )
