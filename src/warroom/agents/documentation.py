"""incident-documentation-specialist: the incident timeline reconstructed from the telemetry itself.

Onset of each abnormal signal (first sustained breach of baseline ± margin), the first error
logged, the alert, the changes shortly before, the mitigation and the validated recovery; plus an
index of the findings recorded so far by the other specialists.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import polars as pl

from warroom.agents.base import AgentContext, AgentSpec, Specialist
from warroom.agents.outputs import DIAGNOSIS, EVIDENCE, SUSPECT_CHANGE, SUSPECT_SERVICE, read, read_list
from warroom.analysis.facts import ActionMode, classify_outcome, executed_outcomes
from warroom.analysis.key_series import AfterAction, key_series, scope_services
from warroom.analysis.onset import SignalOnset, signal_onsets
from warroom.analysis.recovery import (
    ERROR_LEVELS,
    span_of,
    verify_after,
)
from warroom.figures import format_clock, format_number, unit_of
from warroom.incident import AgentReport, Evidence, Finding
from warroom.sources.incident_telemetry import IncidentTelemetry
from warroom.values import as_dict, parse_time

CHANGE_LOOKBACK = timedelta(hours=6)  # changes this long before the window may still be the cause


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


def onset_event(onset: SignalOnset) -> dict[str, Any]:
    unit = unit_of(onset.signal)
    return _event(
        onset.at,
        "onset",
        f"{onset.signal} of {onset.service} left its baseline ({format_number(onset.baseline, unit)} → peak "
        f"{format_number(onset.peak, unit)})",
        onset.source,
        onset.service,
        signal=onset.signal,
        baseline=onset.baseline,
        limit=onset.limit,
        peak=onset.peak,
        query=onset.query,
        method=onset.method,
    )


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


def change_summary(
    telemetry: IncidentTelemetry, events: list[dict[str, Any]], first_onset: datetime | None
) -> dict[str, Any]:
    """What the change history holds around the incident: the facts a statement about changes
    ("no change precedes the onset", "roll back change X") must rest on."""
    window = telemetry.manifest.effective_window()
    before = first_onset or window.end
    changes = telemetry.changes
    every = changes if changes is not None else None
    return {
        "history": changes is not None,
        "checked": changes is not None,
        "lookback_hours": CHANGE_LOOKBACK.total_seconds() / 3600,
        # every change the data holds, whatever its time: what a claim about a change is checked against
        "ids": [str(i) for i in every.get_column("id").to_list()] if every is not None else [],
        "commits": [str(c) for c in every.get_column("commit").drop_nulls().to_list()]
        if every is not None and "commit" in every.columns
        else [],
        "preceding": [e["values"]["change_id"] for e in events if (parse_time(e["at"]) or before) <= before],
    }


def _recorded_kind(outcome: Mapping[str, Any], plan: Mapping[str, Any]) -> str | None:
    action = plan.get(str(outcome.get("action_id")), {})
    kind = action.get("kind") or as_dict(outcome.get("data")).get("kind")
    return str(kind) if kind else None


MODE_WORDS = {
    ActionMode.EXECUTED: "executed",
    ActionMode.REPLAYED: "replayed from the recorded after-data (nothing changed)",
    ActionMode.DRY_RUN: "dry run (nothing changed)",
    ActionMode.SKIPPED: "not executed",
    ActionMode.FAILED: "failed",
    ActionMode.UNDONE: "executed and undone",
    ActionMode.PROPOSED: "proposed",
}


def mitigation_events(telemetry: IncidentTelemetry, context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """When each applied action started (the first sample of its post-action telemetry) in the words
    of its recorded outcome, and when the tested signals were back, saying whether that was observed
    after an executed action or only in a replayed recording."""
    mitigation = as_dict(context.get("mitigation"))
    recovery = as_dict(context.get("recovery"))
    plan = {str(a.get("id")): a for a in context.get("resolution_plan") or [] if isinstance(a, dict)}
    events: list[dict[str, Any]] = []
    for outcome in mitigation.get("outcomes") or []:
        if not isinstance(outcome, dict):
            continue
        kind = _recorded_kind(outcome, plan)
        mode = classify_outcome(outcome)
        if not kind or mode in (ActionMode.SKIPPED, ActionMode.PROPOSED):
            continue
        after = telemetry.after(kind)
        started = span_of(after) if after is not None else None
        at = parse_time(as_dict(outcome.get("data")).get("at")) or (started[0] if started else None)
        if at is None:
            continue
        title = plan.get(str(outcome.get("action_id")), {}).get("title") or kind
        events.append(
            _event(
                at,
                "mitigation",
                f"{title}: {MODE_WORDS[mode]}",
                "mitigation",
                plan.get(str(outcome.get("action_id")), {}).get("target"),
                action_id=outcome.get("action_id"),
                mode=mode.value,
                verified=outcome.get("verified"),
            )
        )
    recovered_at = parse_time(recovery.get("recovered_at"))
    recovered_by = recovery.get("action") or mitigation.get("recovered_by")
    if recovered_at is None and mitigation.get("recovered_by"):
        recovered_at = verify_after(telemetry, str(mitigation["recovered_by"])).recovered_at
    if recovered_at is not None:
        # recovery validation runs beside this step: an executed action whose own check passed counts too
        verified = bool(recovery.get("verified")) or any(
            o.get("verified") is True for o in executed_outcomes(mitigation.get("outcomes") or [])
        )
        events.append(
            _event(
                recovered_at,
                "recovery" if verified else "recovery_in_replay",
                f"latency, error rate and success rate back to baseline after the executed {recovered_by}"
                if verified
                else f"in the recorded data after {recovered_by} the signals are back to baseline "
                "(replay: this run changed nothing, so this is not a recovery)",
                "recovery",
                None,
                action=recovered_by,
                verified=verified,
            )
        )
    return events


def reconstruct_timeline(
    telemetry: IncidentTelemetry, context: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[str], list[SignalOnset]]:
    """The incident's timeline from the telemetry and the context, oldest first; the gaps; and the
    onsets with the series they were measured on."""
    gaps: list[str] = []
    services = scope_services(telemetry, context)
    onsets = signal_onsets(telemetry, services)
    events = [onset_event(o) for o in onsets]
    if not events:
        gaps.append("no signal left its baseline in the window (or no baseline to compare with)")
    window = telemetry.manifest.effective_window()
    earliest = min((o.at for o in onsets), default=window.start)
    suspect = read(context, SUSPECT_SERVICE)
    # The suspect's own first error tells the story; other services' errors come second.
    error = (first_error(telemetry, [suspect], earliest - timedelta(minutes=1)) if suspect is not None else None) or (
        first_error(telemetry, services, earliest - timedelta(minutes=1))
    )
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
    return events, gaps, onsets


def _after_data(telemetry: IncidentTelemetry, context: Mapping[str, Any]) -> AfterAction | None:
    """The data recorded after the action the charts show, read through the source."""
    action, basis = _after_action(context)
    after = telemetry.after(action) if action else None
    return AfterAction(action, basis, after) if action and after is not None else None


def _after_action(context: Mapping[str, Any]) -> tuple[str | None, str]:
    """The action whose after-data the charts show (the one the loop stopped at, else the last
    taken), and whether that data followed a real change (observed) or is a recording (replayed)."""
    mitigation = as_dict(context.get("mitigation"))
    plan = {str(a.get("id")): a for a in context.get("resolution_plan") or [] if isinstance(a, dict)}
    taken = [
        (kind, classify_outcome(o))
        for o in mitigation.get("outcomes") or []
        if isinstance(o, dict) and (kind := _recorded_kind(o, plan)) is not None
    ]
    wanted = mitigation.get("recovered_by") or (taken[-1][0] if taken else None)
    mode = next((m for k, m in taken if k == wanted), None)
    return (str(wanted) if wanted else None), ("observed" if mode is ActionMode.EXECUTED else "replayed")


def recorded_findings(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A one-line index of what the other specialists recorded in the context."""
    out: list[dict[str, Any]] = []
    for cand in read_list(context, DIAGNOSIS):
        out.append(
            {
                "from": "diagnosis",
                "summary": f"#{cand.rank} {cand.service}: {cand.fault_type} "
                f"({cand.indicator}), confidence {cand.confidence}",
            }
        )
    for ev in read_list(context, EVIDENCE):
        out.append({"from": "evidence", "summary": f"{ev.source}: {ev.query}", "id": ev.id})
    for code in context.get("code_findings") or []:
        if isinstance(code, dict):
            where = f"{code.get('file') or code.get('path')}:{code.get('line')}"
            out.append({"from": "code_findings", "summary": f"{code.get('kind') or code.get('pattern')} at {where}"})
    change = read(context, SUSPECT_CHANGE)
    if change:
        out.append({"from": "suspect_change", "summary": f"{change.id} {change.kind} of {change.service}"})
    for key in ("impact", "security", "recovery"):
        value = as_dict(context.get(key))
        if value:
            brief: Any = value.get("summary") or value.get("verdict") or value.get("reason")
            brief = brief or ", ".join(sorted(value)[:6])
            out.append({"from": key, "summary": str(brief)[:200]})
    return out


class IncidentDocumentationSpecialist(Specialist):
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="incident-documentation-specialist",
        purpose="Reconstruct the incident timeline from the telemetry (onsets, first error, alert, "
        "changes, mitigation, recovery) and index the findings recorded so far.",
        inputs=("incident", "suspect_service", "suspect_change", "diagnosis", "mitigation", "recovery"),
        outputs=("documentation",),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        telemetry, context = ctx.telemetry, ctx.context
        timeline, gaps, onsets = reconstruct_timeline(telemetry, context)
        findings_index = recorded_findings(context)
        alert_at = telemetry.manifest.alert.fired_at
        first_onset = min((o.at for o in onsets), default=None)
        suspect = next((e for e in timeline if e["kind"] == "change" and e["values"].get("suspect")), None)
        recovery = next((e for e in timeline if e["kind"] == "recovery"), None)
        durations = {
            "onset_to_alert_min": _minutes(first_onset, alert_at),
            "change_to_onset_min": _minutes(parse_time(suspect["at"]) if suspect else None, first_onset),
            "alert_to_recovery_min": _minutes(alert_at, parse_time(recovery["at"]) if recovery else None),
        }
        changes = [e for e in timeline if e["kind"] == "change"]
        documentation = {
            "timeline": timeline,
            "findings_count": len(findings_index),
            "findings": findings_index,
            "first_onset": first_onset.isoformat() if first_onset else None,
            "durations": durations,
            "changes": change_summary(telemetry, changes, first_onset),
            "series": key_series(telemetry, context, onsets, _after_data(telemetry, context)),
            "gaps": gaps,
        }
        evidence = [
            Evidence(
                source=e["source"],
                query=str(e["values"].get("query") or e["kind"]),
                start=parse_time(e["at"]),
                values={k: v for k, v in e["values"].items() if k not in ("query", "method")},
                samples=[str(e["values"]["sample"])] if e["values"].get("sample") else [],
            )
            for e in timeline
            if e["kind"] in ("onset", "first_error")
        ]
        findings = [
            Finding(
                title=f"Timeline: {len(timeline)} events, first onset "
                + (format_clock(first_onset) if first_onset else "unknown"),
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
