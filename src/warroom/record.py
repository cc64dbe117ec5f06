"""What a workflow run leaves behind, as read back from the store: the input of every report."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from warroom.analysis.facts import IncidentFacts
from warroom.incident import AgentReport, Incident, RecommendedAction, RootCauseCandidate, TimelineEvent


class StepStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


class Decision(BaseModel):
    """The outcome of a `decide` phase: which path, which condition, the values that decided it."""

    path: str
    agent: str
    condition: str | None  # None when the default path was taken
    values: dict[str, Any] = Field(default_factory=dict)
    rationale: str = ""


class StepRecord(BaseModel):
    phase_id: str
    step_id: str
    agent: str
    status: StepStatus
    started_at: datetime
    finished_at: datetime
    attempts: int = 1
    error: str | None = None
    report: AgentReport | None = None

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


class PhaseRecord(BaseModel):
    id: str
    title: str
    kind: str  # "agent" | "decide" | "parallel"
    started_at: datetime | None = None
    finished_at: datetime | None = None
    steps: list[StepRecord] = Field(default_factory=list)
    decision: Decision | None = None
    context_out: dict[str, Any] = Field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class ActionStatus(StrEnum):
    PROPOSED = "proposed"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXECUTED = "executed"
    DRY_RUN = "dry_run"
    VERIFIED = "verified"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    UNDONE = "undone"
    SKIPPED = "skipped"


class ActionRecord(BaseModel):
    action: RecommendedAction
    status: ActionStatus
    approved_by: str | None = None
    approved_at: datetime | None = None
    result: dict[str, Any] = Field(default_factory=dict)


class IncidentMetrics(BaseModel):
    """Response-time metrics in incident time (minutes), from the timeline's own timestamps."""

    detection_to_assessment_min: float | None = None
    assessment_to_investigation_min: float | None = None
    investigation_to_resolution_min: float | None = None
    total_resolution_min: float | None = None
    rto_minutes: float | None = None
    rto_met: bool | None = None
    communication_interval_min: float | None = None
    run_seconds: float | None = None


class RunRecord(BaseModel):
    incident: Incident
    workflow: str
    run_status: str
    phases: list[PhaseRecord] = Field(default_factory=list)
    timeline: list[TimelineEvent] = Field(default_factory=list)
    context: dict[str, Any] = Field(default_factory=dict)
    diagnosis: list[RootCauseCandidate] = Field(default_factory=list)
    actions: list[ActionRecord] = Field(default_factory=list)
    metrics: IncidentMetrics = Field(default_factory=IncidentMetrics)
    facts: IncidentFacts | None = None  # every figure the reports quote (`store.records.facts_of`)

    @property
    def failed_steps(self) -> list[str]:
        """The steps that failed or timed out, as "agent: error": a benchmark tells a crashed
        diagnosis from an honest "inconclusive" by them."""
        return [
            f"{step.agent}: {step.error or step.status.value}"
            for phase in self.phases
            for step in phase.steps
            if step.status is not StepStatus.SUCCEEDED
        ]

    @property
    def limitations(self) -> list[str]:
        """What the run could not look at, or looked at only in part, from every step, once each."""
        found = (
            text for phase in self.phases for step in phase.steps if step.report for text in step.report.limitations
        )
        return list(dict.fromkeys(found))
