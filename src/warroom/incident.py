"""Domain model of an incident: plain typed models, no I/O."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"

    @property
    def label(self) -> str:
        return {"P0": "Emergency", "P1": "Critical", "P2": "Major", "P3": "Minor"}[self.value]


class Status(StrEnum):
    DETECTED = "detected"
    TRIAGED = "triaged"
    INVESTIGATING = "investigating"
    MITIGATING = "mitigating"
    MONITORING = "monitoring"
    RESOLVED = "resolved"
    CLOSED = "closed"


# Forward moves only, plus the two loops an on-call engineer really takes: a mitigation that did
# not hold sends the incident back to investigating, and a regression while monitoring re-opens
# mitigation.
ALLOWED_TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.DETECTED: frozenset({Status.TRIAGED}),
    Status.TRIAGED: frozenset({Status.INVESTIGATING}),
    Status.INVESTIGATING: frozenset({Status.MITIGATING}),
    Status.MITIGATING: frozenset({Status.MONITORING, Status.INVESTIGATING}),
    Status.MONITORING: frozenset({Status.RESOLVED, Status.MITIGATING}),
    Status.RESOLVED: frozenset({Status.CLOSED}),
    Status.CLOSED: frozenset(),
}


class InvalidTransition(ValueError):
    """A status change the lifecycle does not allow."""


def check_transition(current: Status, target: Status) -> None:
    if target not in ALLOWED_TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in ALLOWED_TRANSITIONS[current])) or "nothing"
        raise InvalidTransition(f"cannot move from {current.value} to {target.value} (allowed: {allowed})")


class Role(StrEnum):
    INCIDENT_COMMANDER = "incident_commander"
    TECHNICAL_LEAD = "technical_lead"
    COMMUNICATIONS_LEAD = "communications_lead"
    SCRIBE = "scribe"


class Assignee(BaseModel):
    """A person or an agent holding a role."""

    name: str
    kind: str = "person"  # "person" | "agent"


class Evidence(BaseModel):
    """What a claim rests on: which source, which query or series, which time range, which values."""

    model_config = ConfigDict(extra="forbid")

    id: str = ""
    source: str  # e.g. "metrics", "logs", "traces", "changes", "code", "incident"
    query: str  # series selector, log template, span filter, file path …
    start: datetime | None = None
    end: datetime | None = None
    values: dict[str, Any] = Field(default_factory=dict)
    samples: list[str] = Field(default_factory=list)  # a few representative log lines or rows


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = ""
    title: str
    detail: str = ""
    confidence: float = Field(ge=0.0, le=1.0)
    service: str | None = None
    kind: str = "observation"  # observation | bottleneck | root_cause | impact | security | recovery …
    evidence: list[Evidence] = Field(default_factory=list)


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class ApprovalPolicy(StrEnum):
    """Which actions need a human: none, risky (medium and high risk) or all."""

    NONE = "none"
    RISKY = "risky"
    ALL = "all"

    def covers(self, risk: RiskLevel) -> bool:
        """Whether an action of this risk falls in the policy's scope (also used for up-front grants)."""
        if self is ApprovalPolicy.ALL:
            return True
        return self is ApprovalPolicy.RISKY and risk in (RiskLevel.MEDIUM, RiskLevel.HIGH)


class RecommendedAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    kind: str  # e.g. "raise_pool_size", "restart", "rollback", "kill_long_queries", "scale_out"
    target: str | None = None
    risk: RiskLevel = RiskLevel.MEDIUM
    priority: str = "immediate"  # immediate | short_term | follow_up
    rationale: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)
    rollback: str = ""


class ActionOutcome(BaseModel):
    """What became of one action when the executor took it up."""

    action_id: str
    status: str  # dry_run | executed | verified | failed | undone | skipped | timed_out
    detail: str = ""
    verified: bool | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class RootCauseCandidate(BaseModel):
    """One ranked answer to 'which service, which fault, which change'."""

    rank: int
    service: str
    fault_type: str
    indicator: str
    confidence: float = Field(ge=0.0, le=1.0)
    change_id: str | None = None
    reason: str = ""
    evidence_ids: list[str] = Field(default_factory=list)
    # The diagnosis sets this when the evidence does not single out a cause: the run then ends
    # "cause not established" (exit code 3) however high the candidate ranks.
    inconclusive: bool = False


class TimelineKind(StrEnum):
    ALERT = "alert"
    STATUS_CHANGED = "status_changed"
    PHASE_STARTED = "phase_started"
    PHASE_FINISHED = "phase_finished"
    STEP_FAILED = "step_failed"
    DECISION = "decision"
    FINDING = "finding"
    ACTION_PROPOSED = "action_proposed"
    ACTION_APPROVED = "action_approved"
    ACTION_REJECTED = "action_rejected"  # a human said no: the action is never taken in this incident
    ACTION_SKIPPED = "action_skipped"  # a human set it aside: the run goes on without it
    ACTION_EXECUTED = "action_executed"
    ACTION_VERIFIED = "action_verified"
    COMMUNICATION_SENT = "communication_sent"
    NOTE = "note"
    RESUMED = "resumed"  # a run picked up again after its process died
    CANCELLED = "cancelled"  # a human stopped the investigation: no further step runs
    RUN_FAILED = "run_failed"  # the run could not go on (its telemetry could not be read): it ended
    RERUN = "rerun"  # a human started a failed run again (its sources are back): a new run


class TimelineEvent(BaseModel):
    at: datetime
    kind: TimelineKind
    source: str  # who or what produced it: an agent name, "engine", "cli", "alertmanager" …
    summary: str
    data: dict[str, Any] = Field(default_factory=dict)
    seq: int | None = None


class AgentReport(BaseModel):
    """What every specialist returns: summary, findings with evidence, context outputs, actions."""

    agent: str
    summary: str
    findings: list[Finding] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict)
    actions: list[RecommendedAction] = Field(default_factory=list)
    candidates: list[RootCauseCandidate] = Field(default_factory=list)
    outcomes: list[ActionOutcome] = Field(default_factory=list)  # actions this agent executed
    timeline: list[TimelineEvent] = Field(default_factory=list)  # e.g. messages sent, recovery seen
    limitations: list[str] = Field(default_factory=list)  # what the agent could not look at, and why


class Incident(BaseModel):
    id: str
    title: str
    severity: Severity
    severity_rule: str = ""
    status: Status = Status.DETECTED
    affected_services: list[str] = Field(default_factory=list)
    symptoms: list[str] = Field(default_factory=list)
    business_impact: dict[str, Any] = Field(default_factory=dict)
    roles: dict[Role, Assignee] = Field(default_factory=dict)
    rto_minutes: float | None = None
    rpo_minutes: float | None = None
    comms_cadence_minutes: float | None = None
    started_at: datetime | None = None
    detected_at: datetime | None = None
    acknowledged_at: datetime | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    telemetry_source: str | None = None  # where the evidence was read from (a bundle, a live system)
