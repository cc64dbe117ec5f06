"""What the API and the incident room show of an incident, read back from the store.

Everything comes through the reports' own readers (the run record, the evidence index, the
postmortem view and its charts), redacted the same way, so the room and the postmortem never
disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from warroom.errors import NotFoundError
from warroom.incident import Incident, RootCauseCandidate, TimelineEvent, TimelineKind
from warroom.record import ActionRecord, RunRecord
from warroom.report.evidence import EvidenceIndex, diagnosis_candidates, index_evidence
from warroom.report.metrics import derive_metrics
from warroom.report.postmortem import Chart, build_view
from warroom.report.writer import redacted_record
from warroom.store import alerts as alert_store
from warroom.store.models import AlertRow
from warroom.store.records import build_record, facts_of
from warroom.store.repository import Store

POSTMORTEM_FILES = {"md": "postmortem.md", "html": "postmortem.html"}


@dataclass
class RoomView:
    incident: Incident
    run_status: str | None
    workflow: str | None
    timeline: list[TimelineEvent]
    candidates: list[RootCauseCandidate] = field(default_factory=list)
    index: EvidenceIndex = field(default_factory=EvidenceIndex)
    charts: list[Chart] = field(default_factory=list)
    actions: list[ActionRecord] = field(default_factory=list)
    alerts: list[AlertRow] = field(default_factory=list)
    postmortem: bool = False

    @property
    def comms(self) -> list[TimelineEvent]:
        return [e for e in self.timeline if e.kind == TimelineKind.COMMUNICATION_SENT]

    @property
    def failure(self) -> TimelineEvent | None:
        """Why the run ended without going on, if it failed (a failure run again is history)."""
        if self.run_status != "failed":
            return None
        return next((e for e in reversed(self.timeline) if e.kind == TimelineKind.RUN_FAILED), None)

    @property
    def pending(self) -> list[ActionRecord]:
        return [a for a in self.actions if a.status.value in ("proposed", "awaiting_approval")]


def record_of(store: Store, incident_id: str) -> RunRecord | None:
    """The incident's latest run as the reports read it, redacted; None before any run exists."""
    store.get_incident(incident_id)  # 404 for an unknown id
    try:
        return redacted_record(build_record(store, incident_id))
    except NotFoundError:
        return None


def report_path(reports_dir: Path, incident_id: str, fmt: str) -> Path:
    return reports_dir / incident_id / POSTMORTEM_FILES[fmt]


def room_view(store: Store, incident_id: str, reports_dir: Path) -> RoomView:
    record = record_of(store, incident_id)
    with store.transaction() as session:
        alerts = alert_store.alerts_of(session, incident_id)
    if record is None:
        incident = store.get_incident(incident_id)
        return RoomView(incident, None, None, store.timeline(incident_id), alerts=alerts)
    index = index_evidence(record)
    view = build_view(record, index, derive_metrics(record), facts_of(record))
    return RoomView(
        incident=record.incident,
        run_status=record.run_status,
        workflow=record.workflow,
        timeline=record.timeline,
        candidates=diagnosis_candidates(record),
        index=index,
        charts=view.charts,
        actions=record.actions,
        alerts=alerts,
        postmortem=report_path(reports_dir, incident_id, "md").is_file(),
    )
