"""Incidents: list and show, timeline (and its live stream), findings, evidence, diagnosis, comms,
metrics, postmortem, notes; cancelling the investigation, running a failed one again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse

from warroom.errors import InputError, NotFoundError
from warroom.incident import Severity, Status, TimelineEvent, TimelineKind
from warroom.record import RunRecord
from warroom.redact import redact_obj
from warroom.report.evidence import index_evidence
from warroom.report.writer import diagnosis_payload, findings_payload, metrics_payload
from warroom.serve.api.deps import Service, service
from warroom.serve.api.schemas import (
    ActionAuditOut,
    CancelOut,
    DiagnosisOut,
    EvidenceOut,
    FindingsOut,
    IncidentDetail,
    IncidentSummary,
    MetricsOut,
    NoteIn,
    ReasonIn,
    RerunOut,
    TimelineOut,
)
from warroom.serve.auth import Principal, Role, requires
from warroom.serve.clock import incident_now
from warroom.serve.problems import ERROR_RESPONSES
from warroom.serve.room import record_of, report_path
from warroom.sources.registry import read_again
from warroom.store import alerts as alert_store
from warroom.workflow.engine import CANCELLED, QUEUED, Engine, RunOptions

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"], responses=ERROR_RESPONSES)
MAX_SEQ = 2**62  # sequence numbers are 64-bit integers in every store
Viewer = Annotated[Principal, Depends(requires(Role.VIEWER))]
Responder = Annotated[Principal, Depends(requires(Role.RESPONDER))]
Commander = Annotated[Principal, Depends(requires(Role.COMMANDER))]
Svc = Annotated[Service, Depends(service)]


def _run_status(svc: Service, incident_id: str) -> tuple[str | None, str | None]:
    try:
        run = svc.store.latest_run(incident_id)
    except NotFoundError:
        return None, None
    return run.workflow, run.status


def _dump(events: list[TimelineEvent]) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json") for e in events]


def _record(svc: Service, incident_id: str) -> RunRecord:
    record = record_of(svc.store, incident_id)
    if record is None:
        raise HTTPException(404, f"incident {incident_id} has no workflow run yet")
    return record


@router.get("", response_model=list[IncidentSummary])
def list_incidents(
    _: Viewer,
    svc: Svc,
    status: Annotated[list[Status] | None, Query(description="any of these statuses")] = None,
    severity: Annotated[list[Severity] | None, Query(description="any of these severities")] = None,
    service_name: Annotated[str | None, Query(alias="service", max_length=200)] = None,
) -> list[IncidentSummary]:
    """Incidents, newest first, filtered by status, severity and affected service."""
    found = []
    for incident in reversed(svc.store.list_incidents()):
        if status and incident.status not in status:
            continue
        if severity and incident.severity not in severity:
            continue
        if service_name and service_name not in incident.affected_services:
            continue
        found.append(
            IncidentSummary(
                id=incident.id,
                title=incident.title,
                severity=incident.severity.value,
                status=incident.status.value,
                affected_services=incident.affected_services,
                detected_at=incident.detected_at,
                run_status=_run_status(svc, incident.id)[1],
            )
        )
    return found


@router.get("/{incident_id}", response_model=IncidentDetail)
def show(incident_id: str, _: Viewer, svc: Svc) -> IncidentDetail:
    incident = svc.store.get_incident(incident_id)
    workflow, run_status = _run_status(svc, incident_id)
    waiting = [a.action_id for a in svc.store.actions(incident_id) if a.status in ("proposed", "awaiting_approval")]
    with svc.store.transaction() as session:
        alerts = len(alert_store.alerts_of(session, incident_id))
    return IncidentDetail(
        incident=incident, workflow=workflow, run_status=run_status, awaiting_decision=waiting, alerts=alerts
    )


@router.get("/{incident_id}/timeline", response_model=TimelineOut)
def timeline(
    incident_id: str,
    _: Viewer,
    svc: Svc,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ, description="events after this seq")] = 0,
) -> TimelineOut:
    events = svc.store.events_after(incident_id, after, limit=100_000) if after else svc.store.timeline(incident_id)
    return TimelineOut.model_validate(redact_obj({"incident_id": incident_id, "events": _dump(events)}))


@router.get("/{incident_id}/findings", response_model=FindingsOut)
def findings(incident_id: str, _: Viewer, svc: Svc) -> FindingsOut:
    record = _record(svc, incident_id)
    payload = findings_payload(record, index_evidence(record))
    return FindingsOut(
        incident_id=incident_id,
        findings=[{**f, "evidence_ids": [e["id"] for e in f["evidence"]]} for f in payload["findings"]],
    )


@router.get("/{incident_id}/evidence/{evidence_id}", response_model=EvidenceOut)
def evidence(incident_id: str, evidence_id: str, _: Viewer, svc: Svc) -> EvidenceOut:
    """One piece of evidence: its source, query, time range, values and sample lines."""
    index = index_evidence(_record(svc, incident_id))
    found = index.evidence.get(evidence_id)
    if found is None:
        raise HTTPException(404, f"incident {incident_id} has no evidence '{evidence_id}'")
    return EvidenceOut(evidence=found, cited_by=index.cited_by.get(evidence_id, []))


@router.get("/{incident_id}/diagnosis", response_model=DiagnosisOut)
def diagnosis(incident_id: str, _: Viewer, svc: Svc) -> DiagnosisOut:
    """Ranked root-cause candidates, best first, each citing its evidence ids."""
    return DiagnosisOut.model_validate(diagnosis_payload(_record(svc, incident_id)))


@router.get("/{incident_id}/comms", response_model=TimelineOut)
def comms(incident_id: str, _: Viewer, svc: Svc) -> TimelineOut:
    """Stakeholder updates sent, as recorded on the timeline."""
    sent = [e for e in svc.store.timeline(incident_id) if e.kind == TimelineKind.COMMUNICATION_SENT]
    return TimelineOut.model_validate(redact_obj({"incident_id": incident_id, "events": _dump(sent)}))


@router.get("/{incident_id}/metrics", response_model=MetricsOut)
def metrics(incident_id: str, _: Viewer, svc: Svc) -> MetricsOut:
    """Response metrics in incident time (time to assess, to mitigate, to resolve; RTO met)."""
    payload = metrics_payload(_record(svc, incident_id))
    payload.pop("incident_id", None)
    return MetricsOut(incident_id=incident_id, metrics=payload)


@router.get(
    "/{incident_id}/postmortem",
    response_class=FileResponse,
    responses={200: {"content": {"text/markdown": {}, "text/html": {}}, "description": "the postmortem"}},
)
def postmortem(
    incident_id: str,
    _: Viewer,
    svc: Svc,
    fmt: Annotated[str, Query(alias="format", pattern="^(md|html)$")] = "md",
) -> FileResponse:
    """The postmortem as written when the run last stopped (Markdown or HTML)."""
    svc.store.get_incident(incident_id)
    path = report_path(svc.reports_dir, incident_id, fmt)
    if not path.is_file():
        raise HTTPException(404, f"the postmortem of {incident_id} is not written yet (its run has not stopped)")
    media = "text/markdown" if fmt == "md" else "text/html"
    return FileResponse(path, media_type=f"{media}; charset=utf-8")


@router.post("/{incident_id}/notes", status_code=201, response_model=TimelineEvent)
def add_note(incident_id: str, body: NoteIn, request: Request, who: Responder, svc: Svc) -> TimelineEvent:
    """A responder's note on the timeline."""
    svc.store.get_incident(incident_id)
    event = TimelineEvent(
        at=incident_now(svc.store, incident_id), kind=TimelineKind.NOTE, source=who.name, summary=body.text
    )
    with svc.store.transaction() as session:
        svc.store.add_event(session, incident_id, event, dedupe_key=f"note:{uuid.uuid4()}")
    request.state.audit_detail = {"note": body.text[:200]}
    return event


@router.get("/{incident_id}/audit", response_model=list[ActionAuditOut])
def action_audit(incident_id: str, _: Viewer, svc: Svc) -> list[ActionAuditOut]:
    """The incident's action audit: every proposal, approval, rejection and execution, by whom."""
    svc.store.get_incident(incident_id)
    return [ActionAuditOut.model_validate(row, from_attributes=True) for row in svc.store.audit_log(incident_id)]


@router.post("/{incident_id}/cancel", response_model=CancelOut)
def cancel(incident_id: str, body: ReasonIn, request: Request, who: Commander, svc: Svc) -> CancelOut:
    """Cancel the incident's investigation (a commander): the run is marked cancelled in the store
    with an event on the timeline; a step in progress finishes and is recorded, no further step
    starts, and a restart does not resume it. 409 when the run has already ended."""
    try:
        run_id = Engine(svc.store).cancel(incident_id, who.name, body.reason, incident_now(svc.store, incident_id))
    except NotFoundError:
        raise
    except InputError as exc:
        raise HTTPException(409, exc.one_line()) from None
    request.state.audit_detail = {"run_id": run_id, "reason": body.reason[:200]}
    queued = svc.executor.cancel(run_id)
    return CancelOut(incident_id=incident_id, run_id=run_id, status=CANCELLED, by=who.name, stopped_queued=queued)


@router.post("/{incident_id}/rerun", response_model=RerunOut, status_code=202)
def rerun(incident_id: str, body: ReasonIn, request: Request, who: Commander, svc: Svc) -> RerunOut:
    """Run a failed investigation again (a commander, once the sources that did not answer are
    back): a new run of the same workflow, queued, with a `rerun` event on the timeline; a live
    read covers the period up to now. 409 unless the incident's latest run failed."""
    failed = svc.store.latest_run(incident_id)
    source = read_again(RunOptions.model_validate(failed.options).source, datetime.now(UTC))
    try:
        run_id = Engine(svc.store).rerun(
            incident_id, who.name, body.reason, source, incident_now(svc.store, incident_id)
        )
    except InputError as exc:
        raise HTTPException(409, exc.one_line()) from None
    request.state.audit_detail = {"run_id": run_id, "failed_run_id": failed.id, "reason": body.reason[:200]}
    svc.executor.submit(run_id)  # committed above: a crash from here on is recovered at restart
    return RerunOut(incident_id=incident_id, run_id=run_id, failed_run_id=failed.id, status=QUEUED, by=who.name)
