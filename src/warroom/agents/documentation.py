"""incident-documentation-specialist: the incident timeline reconstructed from the telemetry itself.

Onset of each abnormal signal (first sustained breach of baseline ± margin), the first error
logged, the alert, the changes shortly before, the mitigation and the validated recovery; plus an
index of the findings recorded so far by the other specialists.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import numpy as np
import polars as pl

from warroom.agents.base import AgentContext, AgentSpec
from warroom.analysis.recovery import (
    ERROR_LEVELS,
    ERROR_RATE,
    LATENCY,
    Series,
    Tolerance,
    baseline_limit,
    baseline_of,
    bucket_size,
    first_sustained_breach,
    metric_series,
    per_time,
    signal_series,
    slice_telemetry,
    span_of,
    verify_after,
)
from warroom.incident import AgentReport, Evidence, Finding
from warroom.sources import conventions as cv
from warroom.sources.incident_telemetry import IncidentTelemetry
from warroom.values import as_dict, parse_time

# Signals whose onset is worth a line on the timeline (golden signals first, then saturation).
ONSET_SIGNALS = (
    LATENCY,
    ERROR_RATE,
    cv.DB_POOL_UTILIZATION,
    cv.DB_POOL_WAIT_MS,
    cv.DB_CPU_UTILIZATION,
    cv.DB_LONG_RUNNING_QUERIES,
    cv.CPU_UTILIZATION,
    cv.MEMORY_UTILIZATION,
    cv.RESTARTS,
    cv.NETWORK_LATENCY_MS,
    cv.AUTH_FAILURES,
)
DATABASE_SIGNALS = (cv.DB_CPU_UTILIZATION, cv.DB_LONG_RUNNING_QUERIES, cv.DB_LOCK_WAITS, cv.DB_QUERY_TIME_MS)
CHANGE_LOOKBACK = timedelta(hours=6)  # changes this long before the window may still be the cause


def scope_services(telemetry: IncidentTelemetry, context: Mapping[str, Any]) -> list[str]:
    """The services the timeline follows: suspect, alerting, front door, then the affected ones."""
    incident = as_dict(context.get("incident"))
    affected = [s for s in incident.get("affected_services") or [] if isinstance(s, str)]
    names = [
        context.get("suspect_service"),
        telemetry.manifest.alert.service,
        telemetry.manifest.entry_service,
        *affected,
    ]
    return [s for s in dict.fromkeys(n for n in names if isinstance(n, str) and n)]


def _event(
    at: datetime, kind: str, summary: str, source: str, service: str | None = None, **values: Any
) -> dict[str, Any]:
    return {
        "at": at.astimezone(UTC).isoformat(),
        "kind": kind,
        "service": service,
        "source": source,
        "summary": summary,
        "values": {k: v for k, v in values.items() if v is not None},
    }


def _onset(before: Series | None, during: Series | None, tol: Tolerance) -> tuple[datetime, dict[str, Any]] | None:
    if before is None or during is None or len(before.values) < tol.min_samples or not during.values:
        return None
    base = before.array()
    limit, higher_is_worse = baseline_limit(during.signal, base, None, tol)
    times, values = per_time(during.times, during.array())
    at = first_sustained_breach(times, values, limit, higher_is_worse)
    if at is None:
        return None
    peak = float(np.max(values) if higher_is_worse else np.min(values))
    return at, {"baseline": float(np.median(base)), "limit": limit, "peak": peak, "query": during.query}


def signal_onsets(
    telemetry: IncidentTelemetry, services: list[str], tol: Tolerance = Tolerance()
) -> list[dict[str, Any]]:
    """Onset events per signal and service inside the incident window."""
    window = telemetry.manifest.effective_window()
    baseline = baseline_of(telemetry)
    during = slice_telemetry(telemetry.current, window.start, window.end)
    spans = [s for s in (span_of(baseline), span_of(during)) if s is not None]
    bucket = bucket_size(*spans) if spans else timedelta(minutes=1)
    events: list[dict[str, Any]] = []
    metrics = during.metrics
    # The database (or whoever reports its metrics) is followed too, even when no one named it.
    reporting = (
        metrics.filter(pl.col("metric").is_in(DATABASE_SIGNALS)).get_column("service").unique().sort().to_list()
        if metrics is not None
        else []
    )
    for service in dict.fromkeys([*services, *reporting]):
        for signal in ONSET_SIGNALS:
            if signal in (LATENCY, ERROR_RATE):  # golden signals: metrics, else traces, else logs
                before = signal_series(baseline, signal, [service], bucket)
                now = signal_series(during, signal, [service], bucket)
            else:  # a saturation metric of this very service only
                before = metric_series(baseline.metrics, (signal,), [service])
                now = metric_series(metrics, (signal,), [service])
            found = _onset(before, now, tol)
            if found is None:
                continue
            at, values = found
            events.append(
                _event(
                    at,
                    "onset",
                    f"{signal} of {service} left its baseline ({values['baseline']:.4g} → peak {values['peak']:.4g})",
                    "metrics" if "{" in values["query"] else "telemetry",
                    service,
                    signal=signal,
                    **values,
                )
            )
    return events


def first_error(telemetry: IncidentTelemetry, services: list[str], after: datetime) -> dict[str, Any] | None:
    logs = telemetry.logs
    if logs is None:
        return None
    rows = logs.filter(
        pl.col("level").cast(pl.String).str.to_uppercase().is_in(list(ERROR_LEVELS)) & (pl.col("timestamp") >= after)
    )
    if services:
        rows = rows.filter(pl.col("service").is_in(services))
    if rows.height == 0:
        return None
    row = rows.sort("timestamp").row(0, named=True)
    message = str(row["message"])[:300]
    return _event(
        row["timestamp"],
        "first_error",
        f"first error logged by {row['service']}: {message}",
        "logs",
        row["service"],
        sample=message,
    )


def change_events(telemetry: IncidentTelemetry, suspect: Mapping[str, Any]) -> list[dict[str, Any]]:
    changes = telemetry.changes
    if changes is None:
        return []
    window = telemetry.manifest.effective_window()
    rows = changes.filter((pl.col("time") >= window.start - CHANGE_LOOKBACK) & (pl.col("time") <= window.end)).sort(
        "time"
    )
    events = []
    for row in rows.iter_rows(named=True):
        is_suspect = row["id"] == suspect.get("id")
        what = " ".join(str(row[k]) for k in ("kind", "version") if row.get(k))
        text = f"{what} of {row['service']} ({row['id']})"
        if row.get("description"):
            text += f": {row['description']}"
        if is_suspect:
            text += " — the suspected change"
        events.append(
            _event(
                row["time"],
                "change",
                text,
                "changes",
                row["service"],
                change_id=row["id"],
                commit=row.get("commit"),
                suspect=is_suspect,
            )
        )
    return events


def mitigation_events(telemetry: IncidentTelemetry, context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """When each applied action started (the first sample of its post-action telemetry), and the
    validated recovery."""
    mitigation = as_dict(context.get("mitigation"))
    recovery = as_dict(context.get("recovery"))
    plan = {str(a.get("id")): a for a in context.get("resolution_plan") or [] if isinstance(a, dict)}
    events: list[dict[str, Any]] = []
    kinds: list[str] = []
    for outcome in mitigation.get("outcomes") or []:
        if not isinstance(outcome, dict):
            continue
        action = plan.get(str(outcome.get("action_id")), {})
        kind = action.get("kind") or as_dict(outcome.get("data")).get("kind")
        if not kind:
            continue
        kinds.append(str(kind))
        after = telemetry.after(str(kind))
        started = span_of(after) if after is not None else None
        at = parse_time(as_dict(outcome.get("data")).get("at")) or (started[0] if started else None)
        if at is None:
            continue
        events.append(
            _event(
                at,
                "mitigation",
                f"{action.get('title') or kind}: {outcome.get('status')}",
                "mitigation",
                action.get("target"),
                action_id=outcome.get("action_id"),
                verified=outcome.get("verified"),
            )
        )
    recovered_at = parse_time(recovery.get("recovered_at"))
    recovered_by = recovery.get("action") or mitigation.get("recovered_by")
    if recovered_at is None and mitigation.get("recovered_by"):
        result = verify_after(telemetry, str(mitigation["recovered_by"]))
        recovered_at = result.recovered_at
    if recovered_at is not None:
        events.append(
            _event(
                recovered_at,
                "recovery",
                f"latency, error rate and success rate back to baseline after {recovered_by}",
                "recovery",
                None,
                action=recovered_by,
            )
        )
    return events


def reconstruct_timeline(
    telemetry: IncidentTelemetry, context: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The incident's timeline from the telemetry and the context, oldest first; and the gaps."""
    gaps: list[str] = []
    services = scope_services(telemetry, context)
    events = signal_onsets(telemetry, services)
    if not events:
        gaps.append("no signal left its baseline in the window (or no baseline to compare with)")
    window = telemetry.manifest.effective_window()
    onsets = [parse_time(e["at"]) for e in events]
    earliest = min((t for t in onsets if t is not None), default=window.start)
    suspect = context.get("suspect_service")
    # The suspect's own first error tells the story; other services' errors come second.
    error = (
        first_error(telemetry, [suspect], earliest - timedelta(minutes=1)) if isinstance(suspect, str) else None
    ) or (first_error(telemetry, services, earliest - timedelta(minutes=1)))
    if error:
        events.append(error)
    elif telemetry.logs is None:
        gaps.append("no logs: first error unknown")
    alert = telemetry.manifest.alert
    events.append(
        _event(
            alert.fired_at,
            "alert",
            f"alert {alert.name} fired" + (f": {alert.summary}" if alert.summary else ""),
            "alert",
            alert.service,
        )
    )
    events.extend(change_events(telemetry, as_dict(context.get("suspect_change"))))
    if telemetry.changes is None:
        gaps.append("no change history: deploy times unknown")
    events.extend(mitigation_events(telemetry, context))
    if "mitigation" not in context:
        gaps.append("no 'mitigation' in the context: mitigation time unknown")
    events.sort(key=lambda e: e["at"])
    return events, gaps


def recorded_findings(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A one-line index of what the other specialists recorded in the context."""
    out: list[dict[str, Any]] = []
    for cand in context.get("diagnosis") or []:
        if isinstance(cand, dict):
            out.append(
                {
                    "from": "diagnosis",
                    "summary": f"#{cand.get('rank')} {cand.get('service')}: {cand.get('fault_type')} "
                    f"({cand.get('indicator')}), confidence {cand.get('confidence')}",
                }
            )
    for ev in context.get("evidence") or []:
        if isinstance(ev, dict):
            out.append({"from": "evidence", "summary": f"{ev.get('source')}: {ev.get('query')}", "id": ev.get("id")})
    for code in context.get("code_findings") or []:
        if isinstance(code, dict):
            where = f"{code.get('file') or code.get('path')}:{code.get('line')}"
            out.append({"from": "code_findings", "summary": f"{code.get('kind') or code.get('pattern')} at {where}"})
    change = as_dict(context.get("suspect_change"))
    if change:
        out.append(
            {"from": "suspect_change", "summary": f"{change.get('id')} {change.get('kind')} of {change.get('service')}"}
        )
    for key in ("impact", "security", "recovery"):
        value = as_dict(context.get(key))
        if value:
            brief: Any = value.get("summary") or value.get("verdict") or value.get("reason")
            brief = brief or ", ".join(sorted(value)[:6])
            out.append({"from": key, "summary": str(brief)[:200]})
    return out


class IncidentDocumentationSpecialist:
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="incident-documentation-specialist",
        purpose="Reconstruct the incident timeline from the telemetry (onsets, first error, alert, "
        "changes, mitigation, recovery) and index the findings recorded so far.",
        inputs=("incident", "suspect_service", "suspect_change", "diagnosis", "mitigation", "recovery"),
        outputs=("documentation",),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        telemetry, context = ctx.telemetry, ctx.context
        timeline, gaps = reconstruct_timeline(telemetry, context)
        findings_index = recorded_findings(context)
        onsets = [e for e in timeline if e["kind"] == "onset"]
        alert_at = telemetry.manifest.alert.fired_at
        first_onset = parse_time(onsets[0]["at"]) if onsets else None
        suspect = next((e for e in timeline if e["kind"] == "change" and e["values"].get("suspect")), None)
        recovery = next((e for e in timeline if e["kind"] == "recovery"), None)
        durations = {
            "onset_to_alert_min": _minutes(first_onset, alert_at),
            "change_to_onset_min": _minutes(parse_time(suspect["at"]) if suspect else None, first_onset),
            "alert_to_recovery_min": _minutes(alert_at, parse_time(recovery["at"]) if recovery else None),
        }
        documentation = {
            "timeline": timeline,
            "findings_count": len(findings_index),
            "findings": findings_index,
            "first_onset": first_onset.isoformat() if first_onset else None,
            "durations": durations,
            "gaps": gaps,
        }
        evidence = [
            Evidence(
                source=e["source"],
                query=str(e["values"].get("query") or e["kind"]),
                start=parse_time(e["at"]),
                values={k: v for k, v in e["values"].items() if k != "query"},
                samples=[str(e["values"]["sample"])] if e["values"].get("sample") else [],
            )
            for e in timeline
            if e["kind"] in ("onset", "first_error")
        ]
        findings = [
            Finding(
                title=f"Timeline: {len(timeline)} events, first onset "
                + (first_onset.strftime("%H:%M:%S") if first_onset else "unknown"),
                detail="; ".join(f"{e['at'][11:19]} {e['summary']}" for e in timeline[:12]),
                confidence=0.9 if onsets else 0.4,
                kind="timeline",
                evidence=evidence,
            )
        ]
        lead = (
            f"{durations['onset_to_alert_min']:.1f} min from first onset to alert" if first_onset else "onset unknown"
        )
        summary = f"{len(timeline)} timeline events ({lead}); {len(findings_index)} findings recorded"
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=findings,
            outputs={"documentation": documentation},
            limitations=gaps,
        )


def _minutes(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() / 60, 2)
