"""Request and response bodies of the API (they are its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from warroom.incident import Evidence, Incident, RiskLevel, RootCauseCandidate, TimelineEvent


class AlertOutcomeOut(BaseModel):
    fingerprint: str
    status: str
    outcome: str = Field(description="opened | attached | stored")
    incident_id: str | None
    detail: str


class IntakeOut(BaseModel):
    incidents: list[str] = Field(description="incidents the alerts opened or joined")
    alerts: list[AlertOutcomeOut]
    runs_queued: int


class IncidentSummary(BaseModel):
    id: str
    title: str
    severity: str
    status: str
    affected_services: list[str]
    detected_at: datetime | None
    run_status: str | None


class IncidentDetail(BaseModel):
    incident: Incident
    workflow: str | None
    run_status: str | None
    awaiting_decision: list[str] = Field(description="actions proposed or awaiting approval")
    alerts: int


class FindingOut(BaseModel):
    id: str
    phase: str
    step: str
    agent: str
    title: str
    detail: str
    confidence: float
    service: str | None
    kind: str
    evidence_ids: list[str]


class FindingsOut(BaseModel):
    incident_id: str
    findings: list[FindingOut]


class DiagnosisOut(BaseModel):
    incident_id: str
    established: bool
    reason: str
    candidates: list[RootCauseCandidate]


class EvidenceOut(BaseModel):
    evidence: Evidence
    cited_by: list[str] = Field(description="finding ids that cite it")


class ActionOut(BaseModel):
    action_id: str
    title: str
    kind: str
    target: str | None
    risk: RiskLevel
    status: str
    approved_by: str | None
    approved_at: datetime | None
    rationale: str
    needs_role: str = Field(description="the role that may approve or reject it")


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)


class ProposalIn(BaseModel):
    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")
    title: str = Field(min_length=1, max_length=500)
    kind: str = Field(min_length=1, max_length=100)
    target: str | None = Field(default=None, max_length=200)
    risk: RiskLevel = RiskLevel.MEDIUM
    rationale: str = Field(default="", max_length=5_000)


class RejectIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2_000)


class ReasonIn(BaseModel):
    """Why a commander cancels an investigation or runs it again."""

    reason: str = Field(min_length=1, max_length=2_000)


class CancelOut(BaseModel):
    incident_id: str
    run_id: str
    status: str  # the run's status now: cancelled
    by: str
    stopped_queued: bool  # the run had not started (or waited to go on) and never will


class RerunOut(BaseModel):
    incident_id: str
    run_id: str  # the new run
    failed_run_id: str  # the run that failed, which stays as it ended
    status: str  # the new run's status: queued
    by: str


class DecisionOut(BaseModel):
    incident_id: str
    action_id: str
    decision: str
    by: str
    run_resumed: bool


class TimelineOut(BaseModel):
    incident_id: str
    events: list[TimelineEvent]


class MetricsOut(BaseModel):
    incident_id: str
    metrics: dict[str, Any]


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@\-]*$")
    role: str = Field(pattern="^(viewer|responder|commander|admin)$")


class TokenOut(BaseModel):
    name: str
    role: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    token: str | None = Field(default=None, description="shown once, when created")


class AuditOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    role: str | None
    method: str
    path: str
    status_code: int
    incident_id: str | None


class ActionAuditOut(BaseModel):
    seq: int
    action_id: str
    event: str
    actor: str
    at: datetime
    data: dict[str, Any]
