"""Incident response metrics, from the record's own timestamps only (None when not derivable).

Milestones and where each comes from, first available source wins:

- detected: ``incident.detected_at``, else the first ``alert`` event, else ``incident.started_at``;
- assessed: the status change to ``triaged``, else the end of the first phase;
- investigating: the status change to ``investigating``, else the first ``decision`` event, else
  the start of the second phase;
- mitigated: the first action whose recorded outcome says it was executed (the incident's facts),
  else ``incident.mitigated_at``; never a proposal, a dry run or a replay;
- resolved: a verified recovery, i.e. the signals back to baseline after an executed action (the
  incident's facts), else ``incident.resolved_at``; a replayed recording never resolves anything.

The engine's own run time is the union of its steps' run intervals: waiting for approval and the
gap of an interrupted run do not count. Intervals between milestones use these timestamps as they
are: they must share one clock, and an interval that comes out negative is reported as not
derivable rather than clipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from statistics import mean
from typing import Any

from warroom.analysis.facts import IncidentFacts
from warroom.incident import Status, TimelineEvent, TimelineKind
from warroom.record import IncidentMetrics, RunRecord
from warroom.store.records import facts_of


@dataclass
class Milestone:
    at: datetime | None
    source: str  # where the timestamp came from, or why there is none


@dataclass
class MetricsReport:
    """The metrics, the milestones behind them and, per metric, how it was derived or why not."""

    metrics: IncidentMetrics
    milestones: dict[str, Milestone]
    basis: dict[str, str]
    communications: dict[str, Any] = field(default_factory=dict)
    detection_to_mitigation_min: float | None = None

    def payload(self) -> dict[str, Any]:
        """The content of metrics.json."""
        out: dict[str, Any] = self.metrics.model_dump(mode="json")
        out["detection_to_mitigation_min"] = self.detection_to_mitigation_min
        out["milestones"] = {
            name: {"at": m.at.isoformat() if m.at else None, "source": m.source} for name, m in self.milestones.items()
        }
        out["basis"] = dict(self.basis)
        out["communications"] = dict(self.communications)
        return out


def _status_target(event: TimelineEvent) -> str | None:
    """The status a status-change event moved to (engines name the key differently)."""
    for key in ("to", "status", "new", "new_status"):
        value = event.data.get(key)
        if isinstance(value, str):
            return value.lower()
    return None


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return None


def _first(*candidates: tuple[datetime | None, str]) -> Milestone:
    for at, source in candidates:
        if at is not None:
            return Milestone(at, source)
    return Milestone(None, "no source: " + ", ".join(source for _, source in candidates) + " all absent")


def _minutes(start: Milestone, end: Milestone, label: str) -> tuple[float | None, str]:
    if start.at is None or end.at is None:
        missing = [m.source for m in (start, end) if m.at is None]
        return None, f"not derivable: {label}; " + "; ".join(missing)
    delta = (end.at - start.at).total_seconds() / 60.0
    if delta < 0:
        return None, (
            f"not derivable: {label}; end ({end.source}, {end.at.isoformat()}) precedes start "
            f"({start.source}, {start.at.isoformat()}), the timestamps do not share one clock"
        )
    return round(delta, 3), f"{label}: {start.source} → {end.source}"


def derive_metrics(record: RunRecord, facts: IncidentFacts | None = None) -> MetricsReport:
    """Derive the response metrics and say, for each, where it came from or why it is missing."""
    facts = facts or record.facts or facts_of(record)
    inc = record.incident
    first_alert: datetime | None = None
    first_decision: datetime | None = None
    status_at: dict[str, datetime] = {}
    comms: dict[Any, datetime] = {}  # update round → when it went out
    for ev in record.timeline:
        if ev.kind == TimelineKind.ALERT and first_alert is None:
            first_alert = ev.at
        elif ev.kind == TimelineKind.DECISION and first_decision is None:
            first_decision = ev.at
        elif ev.kind == TimelineKind.STATUS_CHANGED:
            target = _status_target(ev)
            if target is not None and target not in status_at:
                status_at[target] = ev.at
        elif ev.kind == TimelineKind.COMMUNICATION_SENT:
            _add_round(comms, ev.data.get("sequence"), ev.at)

    phases = record.phases
    first_phase_end = phases[0].finished_at if phases else None
    second_phase_start = phases[1].started_at if len(phases) > 1 else None

    milestones = {
        "detected": _first(
            (inc.detected_at, "incident.detected_at"),
            (first_alert, "first alert event"),
            (inc.started_at, "incident.started_at"),
        ),
        "assessed": _first(
            (status_at.get(Status.TRIAGED.value), "status change to triaged"),
            (first_phase_end, "end of the first phase"),
        ),
        "investigating": _first(
            (status_at.get(Status.INVESTIGATING.value), "status change to investigating"),
            (first_decision, "first decision event"),
            (second_phase_start, "start of the second phase"),
        ),
        "mitigated": _first(
            (facts.mitigated_at, "first executed action (its executed audit step)"),
            (inc.mitigated_at, "incident.mitigated_at"),
        ),
        "resolved": _first(
            (facts.resolved_at, "verified recovery after an executed action (recovery validation)"),
            (inc.resolved_at, "incident.resolved_at"),
        ),
    }
    m = milestones
    basis: dict[str, str] = {}
    det_assess, basis["detection_to_assessment_min"] = _minutes(m["detected"], m["assessed"], "detection to assessment")
    assess_inv, basis["assessment_to_investigation_min"] = _minutes(
        m["assessed"], m["investigating"], "assessment to investigation"
    )
    inv_res, basis["investigation_to_resolution_min"] = _minutes(
        m["investigating"], m["resolved"], "investigation to resolution"
    )
    total, basis["total_resolution_min"] = _minutes(m["detected"], m["resolved"], "detection to resolution")
    to_mitigation, basis["detection_to_mitigation_min"] = _minutes(
        m["detected"], m["mitigated"], "detection to mitigation"
    )

    rto = inc.rto_minutes
    rto_met: bool | None = None
    if rto is None:
        basis["rto_met"] = "not derivable: the incident has no RTO target"
    elif total is None:
        basis["rto_met"] = "not derivable: total resolution time is unknown"
    else:
        rto_met = total <= rto
        basis["rto_met"] = f"total resolution {total:g} min against RTO {rto:g} min"

    comm_source = "communication events on the timeline"
    if not comms:
        comms = _context_rounds(record)
        comm_source = "messages in context.communications"
    comm_info, interval = _communications(sorted(comms.values()), m["detected"], inc.comms_cadence_minutes)
    comm_info["source"] = comm_source
    basis["communication_interval_min"] = comm_info.pop("basis")

    busy = facts.engine.busy_seconds if facts.engine is not None else None
    run_seconds = busy.value if busy is not None else record.metrics.run_seconds
    basis["run_seconds"] = busy.method if busy is not None else "not derivable: no step has a start and an end"

    metrics = IncidentMetrics(
        detection_to_assessment_min=det_assess,
        assessment_to_investigation_min=assess_inv,
        investigation_to_resolution_min=inv_res,
        total_resolution_min=total,
        rto_minutes=rto,
        rto_met=rto_met,
        communication_interval_min=interval,
        run_seconds=run_seconds,
    )
    return MetricsReport(
        metrics=metrics,
        milestones=milestones,
        basis=basis,
        communications=comm_info,
        detection_to_mitigation_min=to_mitigation,
    )


def _add_round(rounds: dict[Any, datetime], sequence: Any, at: datetime) -> None:
    """One update round per sequence number: its audiences (internal, executive, customer) go out
    together and must not count as updates minutes or milliseconds apart."""
    key = sequence if isinstance(sequence, int | str) and not isinstance(sequence, bool) else at
    if key not in rounds or at < rounds[key]:
        rounds[key] = at


def _context_rounds(record: RunRecord) -> dict[Any, datetime]:
    """Update rounds from the messages the communications agent put into the context."""
    rounds: dict[Any, datetime] = {}
    messages = record.context.get("communications")
    if not isinstance(messages, list):
        return rounds
    for message in messages:
        if not isinstance(message, dict) or message.get("status") in ("failed", "pending"):
            continue
        at = _as_time(message.get("sent_at") or message.get("created_at"))
        if at is not None:
            _add_round(rounds, message.get("sequence"), at)
    return rounds


def _communications(
    sent: list[datetime], detected: Milestone, cadence: float | None
) -> tuple[dict[str, Any], float | None]:
    """Mean interval between updates; the cadence is judged on the longest gap, the promise kept."""
    ordered = sorted(sent)
    gaps = [(b - a).total_seconds() / 60.0 for a, b in pairwise(ordered)]
    info: dict[str, Any] = {
        "count": len(ordered),
        "cadence_minutes": cadence,
        "first_update_after_detection_min": None,
        "longest_gap_min": round(max(gaps), 3) if gaps else None,
        "cadence_met": None,
    }
    if ordered and detected.at is not None:
        first = (ordered[0] - detected.at).total_seconds() / 60.0
        if first >= 0:
            info["first_update_after_detection_min"] = round(first, 3)
    if cadence is not None and gaps:
        info["cadence_met"] = max(gaps) <= cadence
    if not gaps:
        info["basis"] = f"not derivable: {len(ordered)} update round(s) recorded, an interval needs two"
        return info, None
    info["basis"] = f"mean gap between {len(ordered)} update rounds"
    return info, round(mean(gaps), 3)


def compute_metrics(record: RunRecord) -> IncidentMetrics:
    """Response-time metrics of a run; a value is None when the record cannot support it."""
    return derive_metrics(record).metrics
