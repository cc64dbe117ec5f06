"""Change correlation: rank deploys and config changes by time to onset and by their relation to the
suspected service (the service itself, what it calls, what calls it), and name the rollback candidate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Protocol

import polars as pl
from pydantic import BaseModel, Field

from warroom.incident import Evidence
from warroom.sources import conventions as cv

# How the relation between a change's service and the suspected service weighs its likelihood.
RELATION_WEIGHT = {
    "same_service": 1.0,
    "dependency": 0.6,  # the suspect calls it (its database, a downstream service, shared config)
    "dependent": 0.35,  # it calls the suspect: a change there can shift load or queries onto it
    "two_hops": 0.25,
    "global": 0.5,  # a platform-wide change (no service, or "*")
    "unknown_suspect": 0.5,
    "unrelated": 0.1,
}
# A change's effect typically shows within minutes to an hour (a leak needs time to drain a pool);
# older changes stay possible but fade.
TIME_DECAY_MIN = 90.0
LOOKBACK = timedelta(hours=24)
CONFIG_KINDS = ("config", "feature_flag", "flag", "configuration")
GLOBAL_SERVICES = ("", "*", "all", "global", "platform")

ONSET_SIGNALS = (
    cv.ERROR_RATE,
    cv.LATENCY_P99,
    cv.LATENCY_P95,
    cv.DB_POOL_UTILIZATION,
    cv.DB_POOL_WAIT_MS,
    cv.DB_CPU_UTILIZATION,
    cv.DB_LONG_RUNNING_QUERIES,
    cv.CPU_UTILIZATION,
    cv.MEMORY_UTILIZATION,
    cv.AUTH_FAILURES,
)


class ChangeRecord(BaseModel):
    """One row of the change log."""

    id: str
    time: datetime
    service: str
    kind: str
    version: str | None = None
    commit: str | None = None
    author: str | None = None
    description: str | None = None

    @property
    def is_global(self) -> bool:
        return self.service.strip().lower() in GLOBAL_SERVICES


class RankedChange(ChangeRecord):
    """One change with the reasons it may (or may not) have caused the incident."""

    minutes_before_onset: float
    relation: str
    score: float
    reasons: list[str] = Field(default_factory=list)

    def as_context(self) -> dict[str, object]:
        return self.model_dump(mode="json")


class ChangeCorrelation(BaseModel):
    onset: datetime
    suspect_service: str | None
    ranked: list[RankedChange] = Field(default_factory=list)  # before onset, best first
    after_onset: list[RankedChange] = Field(default_factory=list)  # cannot have caused it
    rollback_candidate: RankedChange | None = None
    rollback_action: str | None = None  # "rollback" | "revert_config"
    confidence: float = 0.0
    evidence: Evidence | None = None
    verdict: str = ""


def service_graph(topology: Mapping[str, Iterable[str]] | None, traces: pl.DataFrame | None) -> dict[str, set[str]]:
    """Caller → callees, from the declared topology and from parent/child spans across services."""
    graph: dict[str, set[str]] = {}
    for service, deps in (topology or {}).items():
        graph.setdefault(service, set()).update(deps)
    if traces is not None and traces.height:
        parents = traces.lazy().select(pl.col("span_id").alias("parent_span_id"), pl.col("service").alias("caller"))
        edges = (
            traces.lazy()
            .select("parent_span_id", pl.col("service").alias("callee"))
            .drop_nulls("parent_span_id")
            .join(parents, on="parent_span_id", how="inner")
            .filter(pl.col("caller") != pl.col("callee"))
            .select("caller", "callee")
            .unique()
            .collect()
        )
        for caller, callee in edges.iter_rows():
            graph.setdefault(caller, set()).add(callee)
    return graph


def relation_to(service: str, suspect: str | None, graph: Mapping[str, set[str]]) -> str:
    if suspect is None:
        return "unknown_suspect"
    if service.strip().lower() in GLOBAL_SERVICES:
        return "global"
    if service == suspect:
        return "same_service"
    if service in graph.get(suspect, set()):
        return "dependency"
    if suspect in graph.get(service, set()):
        return "dependent"
    near = set(graph.get(suspect, set()))
    near |= {caller for caller, callees in graph.items() if suspect in callees}
    for hop in near:
        if service in graph.get(hop, set()) or hop in graph.get(service, set()):
            return "two_hops"
    return "unrelated"


def detect_onset(
    metrics: pl.DataFrame | None,
    services: Iterable[str] | None,
    window_start: datetime,
    fallback: datetime,
    baseline: pl.DataFrame | None = None,
) -> datetime:
    """The earliest time a golden or saturation signal of the given services leaves its baseline for
    three consecutive samples, and another follows within moments (unless it is the only one);
    `fallback` (usually the alert time) when the data cannot say."""
    if metrics is None or metrics.height == 0:
        return fallback
    wanted = list(services or [])
    frame = metrics.lazy().filter(pl.col("metric").is_in(ONSET_SIGNALS))
    if wanted:
        frame = frame.filter(pl.col("service").is_in(wanted))
    series = frame.group_by("service", "metric", "timestamp").agg(pl.col("value").mean()).sort("timestamp").collect()
    if series.height == 0:
        return fallback
    # The same day's data before the window is the best reference (same load, same time of day); the
    # baseline folder (often another day) only stands in when there is too little of it.
    pre_window = series.filter(pl.col("timestamp") < window_start)
    if pre_window.height >= 20 * max(series.select(pl.struct("service", "metric").n_unique()).item(), 1):
        base_src = pre_window.lazy()
    elif baseline is not None and baseline.height:
        base_src = (
            baseline.lazy()
            .filter(pl.col("metric").is_in(ONSET_SIGNALS))
            .group_by("service", "metric", "timestamp")
            .agg(pl.col("value").mean())
        )
    else:
        base_src = pre_window.lazy()
    base = (
        base_src.group_by("service", "metric")
        .agg(
            pl.col("value").median().alias("med"),
            (pl.col("value") - pl.col("value").median()).abs().median().alias("mad"),
            pl.col("value").quantile(0.995).alias("q"),
            pl.len().alias("n"),
        )
        .filter(pl.col("n") >= 5)
        .collect()
    )
    if base.height == 0:
        return fallback
    # Robust threshold: well outside the baseline's spread and at least a fifth above its level, so a
    # flat baseline (MAD 0) does not make every jitter an onset.
    # Count-like series (median 0, occasional blips) also need to clear their own baseline extremes.
    thr = pl.max_horizontal(
        pl.col("med") + 6 * 1.4826 * pl.col("mad"),
        pl.col("med") * 1.2,
        pl.col("q") * 1.1,
        pl.col("med") + 1e-6,
    )
    flagged = (
        series.lazy()
        .join(base.lazy(), on=["service", "metric"], how="inner")
        .filter(pl.col("timestamp") >= window_start - timedelta(hours=1))
        .with_columns((pl.col("value") > thr).alias("hi"))
        .sort("service", "metric", "timestamp")
        .with_columns(pl.col("hi").cast(pl.Int8).rolling_min(3).shift(-2).over("service", "metric").alias("sustained"))
        .filter(pl.col("sustained") == 1)
        .group_by("service", "metric")
        .agg(pl.col("timestamp").min())
        .collect()
    )
    within = max(CORROBORATION, CORROBORATION_STEPS * _sampling_interval(series))
    return _corroborated(flagged.get_column("timestamp").sort().to_list(), within) or fallback


# An incident moves several signals within moments of each other (the cause's, then its symptoms');
# a low-traffic service's p99 that hops over its threshold a minute before anything else is noise,
# and a window opened there compares a minute of health with the fault. Moments: half a minute, or
# two samples of series sampled more coarsely (a minute-level export's signals move a sample apart).
CORROBORATION = timedelta(seconds=30)
CORROBORATION_STEPS = 2


def _sampling_interval(series: pl.DataFrame) -> timedelta:
    gaps = series.sort("timestamp").select(pl.col("timestamp").diff().over("service", "metric").median()).item()
    return gaps if isinstance(gaps, timedelta) else timedelta(0)


def _corroborated(firsts: list[datetime], within: timedelta) -> datetime | None:
    """The earliest series' onset that another series' onset follows `within`; the earliest of all
    when none does (one signal is all the incident shows)."""
    for i, first in enumerate(firsts):
        if any(later - first <= within for later in firsts[i + 1 :]):
            return first
    return firsts[0] if firsts else None


def _opt(row: Mapping[str, object], key: str) -> str | None:
    value = row.get(key)
    return None if value is None else str(value)


def correlate_changes(
    changes: pl.DataFrame | None,
    onset: datetime,
    suspect_service: str | None,
    graph: Mapping[str, set[str]] | None = None,
    tolerance: timedelta = timedelta(minutes=2),
) -> ChangeCorrelation:
    """Rank the changes before onset (within 24 h) by time proximity × relation to the suspect."""
    graph = graph or {}
    result = ChangeCorrelation(onset=onset, suspect_service=suspect_service)
    if changes is None or changes.height == 0:
        result.verdict = "no change history in the bundle"
        return result
    window = changes.filter((pl.col("time") >= onset - LOOKBACK) & (pl.col("time") <= onset + timedelta(hours=6)))
    before: list[RankedChange] = []
    after: list[RankedChange] = []
    for row in window.to_dicts():  # change history is small (tens to thousands of rows)
        when: datetime = row["time"]
        minutes = (onset - when).total_seconds() / 60.0
        service = str(row["service"])
        relation = relation_to(service, suspect_service, graph)
        reasons: list[str] = []
        if when > onset + tolerance:
            reasons.append(f"applied {-minutes:.1f} min after onset: cannot have caused it")
            after.append(
                RankedChange(
                    **_fields(row),
                    minutes_before_onset=round(minutes, 2),
                    relation=relation,
                    score=0.0,
                    reasons=reasons,
                )
            )
            continue
        proximity = math.exp(-max(minutes, 0.0) / TIME_DECAY_MIN)
        weight = RELATION_WEIGHT[relation]
        score = weight * (0.35 + 0.65 * proximity)
        reasons.append(f"{max(minutes, 0.0):.1f} min before onset (proximity {proximity:.2f})")
        reasons.append(
            {
                "same_service": f"changes the suspected service {suspect_service} itself",
                "dependency": f"changes {service}, which {suspect_service} depends on",
                "dependent": f"changes {service}, which calls {suspect_service}",
                "two_hops": f"changes {service}, two hops from {suspect_service}",
                "global": "a platform-wide change",
                "unknown_suspect": "suspected service unknown: relation not weighed",
                "unrelated": f"{service} has no known path to {suspect_service}",
            }[relation]
        )
        before.append(
            RankedChange(
                **_fields(row),
                minutes_before_onset=round(minutes, 2),
                relation=relation,
                score=round(score, 4),
                reasons=reasons,
            )
        )
    before.sort(key=lambda c: (-c.score, c.minutes_before_onset))
    after.sort(key=lambda c: c.time)
    result.ranked = before
    result.after_onset = after
    if not before:
        result.verdict = "no change in the 24 h before onset: not enough evidence for a change-induced incident"
        return result
    top = before[0]
    runner_up = before[1].score if len(before) > 1 else 0.0
    # Confidence grows with the top score and with its margin over the next candidate.
    margin = (top.score - runner_up) / top.score if top.score > 0 else 0.0
    result.confidence = round(min(0.95, top.score * (0.55 + 0.45 * margin)), 3)
    if top.score >= 0.3:
        result.rollback_candidate = top
        result.rollback_action = "revert_config" if is_config_kind(top.kind) else "rollback"
        result.verdict = (
            f"change {top.id} ({top.kind} of {top.service}"
            + (f" {top.version}" if top.version else "")
            + f") {top.minutes_before_onset:.1f} min before onset is the most likely trigger"
        )
    else:
        result.verdict = "no change is closely related to the suspected service: not enough evidence"
    result.evidence = Evidence(
        source="changes",
        query=f"changes within 24 h before onset {onset.isoformat()}, ranked by proximity × relation to "
        f"{suspect_service or 'any service'}",
        start=onset - LOOKBACK,
        end=onset,
        values={
            "onset": onset.isoformat(),
            "candidates": len(before),
            "top": top.id,
            "top_score": top.score,
            "runner_up_score": round(runner_up, 4),
        },
        samples=[
            f"{c.id} {c.time.isoformat()} {c.service} {c.kind} {c.version or ''} score={c.score}".strip()
            for c in before[:5]
        ],
    )
    return result


def _fields(row: Mapping[str, object]) -> dict[str, object]:
    return {
        "id": str(row["id"]),
        "time": row["time"],
        "service": str(row["service"]),
        "kind": str(row["kind"]),
        "version": _opt(row, "version"),
        "commit": _opt(row, "commit"),
        "author": _opt(row, "author"),
        "description": _opt(row, "description"),
    }


class ChangeLike(Protocol):
    id: str
    time: datetime
    service: str
    kind: str


def is_config_kind(kind: str) -> bool:
    """A change of configuration (the other side is code: deploys, rollbacks, scale changes)."""
    return kind.lower() in CONFIG_KINDS


def previous_change(changes: pl.DataFrame | None, change: ChangeLike) -> dict[str, object] | None:
    """The last change of the same service and the same side (code or configuration) before
    `change` that names a commit: what ran before it, the version to diff against. A rollback
    counts: a deploy after one is diffed against what the rollback put back, not against the
    deploy it undid (whose defect a later revert removes, and a diff from it would show removed)."""
    if changes is None or "commit" not in changes.columns:
        return None
    config = is_config_kind(change.kind)
    same_side = pl.col("kind").str.to_lowercase().is_in(list(CONFIG_KINDS))
    prior = (
        changes.filter(
            (pl.col("service") == change.service)
            & (pl.col("time") < change.time)
            & pl.col("commit").is_not_null()
            & (pl.col("id") != change.id)
            & (same_side if config else ~same_side)
        )
        .sort("time")
        .tail(1)
    )
    return prior.to_dicts()[0] if prior.height else None
