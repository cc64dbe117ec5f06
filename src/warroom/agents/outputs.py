"""The typed context: one model per context key a built-in agent produces, and the keys that name them.

Phases hand each other JSON (the workflow engine stores it, resumes from it and evaluates `decide`
conditions over it as plain values). These models are the agents' side of that contract: a
producer's declared outputs are validated against them when it returns (`check_outputs`), and a
consumer reads a key as its model (`AgentContext.read(SUSPECT_CHANGE)`), not as a dict of strings.

Reading is lenient by design, writing is strict:
- every model allows extra fields (`extra="allow"`): a stored run written by an older or newer
  producer still reads, and a field a consumer does not know is kept when it passes the value on;
- a producer may not write a field its model does not declare (`check_outputs` rejects the
  extras), so the models stay the complete description of what is written today;
- fields a consumer can do without have defaults: a hand-made or partial context (a test, an older
  run) reads as far as it goes, and what is missing reads as None or empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from warroom.analysis.changes import RankedChange
from warroom.incident import AgentReport, Evidence, RecommendedAction, RootCauseCandidate

T = TypeVar("T")


class ContextModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class DiagnosisEntry(RootCauseCandidate):
    """One ranked candidate of the `diagnosis` (best first)."""

    model_config = ConfigDict(extra="allow")


class RankedHypothesis(ContextModel):
    service: str
    fault_type: str
    confidence: float
    log_odds: float
    change_id: str | None = None


class DiagnosisSummary(ContextModel):
    """`diagnosis_summary`: whether the answer is conclusive, the top hypothesis and its path."""

    inconclusive: bool = False
    threshold: float | None = None
    service: str | None = None
    fault_type: str | None = None
    mechanism: str | None = None
    confidence: float | None = None
    path: str | None = None
    runbook: str | None = None
    onset: str | None = None
    decide: list[str] = Field(default_factory=list)
    unexplained: list[str] = Field(default_factory=list)
    limitations: list[str] = Field(default_factory=list)
    hypotheses: list[RankedHypothesis] = Field(default_factory=list)


class SuspectChange(RankedChange):
    """`suspect_change`: the change attributed to the top hypothesis, and the code its diff points at
    (set by the diagnosis, refined by the code explorer)."""

    model_config = ConfigDict(extra="allow")

    # an older or hand-made context may carry only the change log's fields
    minutes_before_onset: float = 0.0
    relation: str = "same_service"
    score: float = 0.0
    code_commit: str | None = None
    code_file: str | None = None
    code_line: int | None = None
    code_pattern: str | None = None
    code_subkind: str | None = None
    code_strength: float | None = None
    code_on_request_path: bool | None = None


class ChangeRankingEntry(RankedChange):
    model_config = ConfigDict(extra="allow")


class Role(ContextModel):
    name: str
    kind: str  # agent | person


class CommunicationPlan(ContextModel):
    cadence_minutes: float | None = None
    audiences: list[str] = Field(default_factory=list)
    source: str = ""


class IncidentSummary(ContextModel):
    """`incident`: the commander's assessment (severity, scope, roles, communication plan)."""

    id: str | None = None
    title: str | None = None
    severity: str | None = None
    severity_rule: str | None = None
    severity_figures: dict[str, dict[str, Any]] = Field(default_factory=dict)
    affected_services: list[str] = Field(default_factory=list)
    entry_service: str | None = None
    symptoms: list[str] = Field(default_factory=list)
    scope: str | None = None
    started_at: str | None = None
    detected_at: str | None = None
    roles: dict[str, Role] = Field(default_factory=dict)
    communication_plan: CommunicationPlan | None = None
    business: dict[str, Any] = Field(default_factory=dict)
    rto_minutes: float | None = None
    rpo_minutes: float | None = None


class Signals(ContextModel):
    """`signals`: the measured values the workflow's `decide` conditions read (None: not measured)."""

    entry_service: str | None = None
    error_rate: float | None = None
    error_rate_ratio: float | None = None
    latency_p99_ms: float | None = None
    latency_ratio: float | None = None
    db_pool_utilization: float | None = None
    db_cpu: float | None = None
    db_long_running_queries: float | None = None
    cpu_max: float | None = None
    memory_max: float | None = None
    host_cpu: float | None = None
    restarts: float | None = None
    auth_failure_ratio: float | None = None
    change_lead_min: float | None = None
    table_rows_drop: float | None = None
    db_error_ratio: float | None = None
    dependency_latency_ratio: float | None = None
    network_latency_ratio: float | None = None
    tls_cert_expired: bool | None = None
    services_total: int | None = None
    services_affected: int | None = None
    affected_share: float | None = None
    path: str | None = None
    fault_type: str | None = None
    diagnosis_confidence: float | None = None
    inconclusive: bool | None = None


class DatabaseDetails(ContextModel):
    """`database`: the database specialist's measured numbers (peaks in the incident window)."""

    fault_type: str | None = None
    service: str | None = None
    database_service: str | None = None
    pool_utilization: float | None = None
    pool_size: float | None = None
    pool_wait_ms: float | None = None
    pool_timeouts: float | None = None
    db_cpu: float | None = None
    long_running_queries: float | None = None
    lock_waits: float | None = None
    query_time_ms: float | None = None
    slow_query_ms: dict[str, float] = Field(default_factory=dict)  # from log durations: p95, max, count
    log_counts: dict[str, dict[str, int]] = Field(default_factory=dict)  # pattern → {window, baseline}
    statements: list[dict[str, Any]] = Field(default_factory=list)
    onset: str | None = None


class CodeFindingEntry(ContextModel):
    """One entry of `code_findings`: a code finding of the suspect change's diff (or elsewhere with
    the same pattern), with its role. Only the location is required: a partial one still points."""

    kind: str
    file: str
    line: int | None = None
    subkind: str = ""
    end_line: int | None = None
    function: str | None = None
    on_request_path: bool | None = None
    language: str | None = None
    detail: str | None = None
    snippet: str = ""
    strength: float | None = None
    in_diff: bool | None = None
    commit: str | None = None
    author: str | None = None
    commit_subject: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    role: str | None = None  # offending | in_change | same_pattern
    offending: bool = False
    in_change: bool | None = None
    statement: str | None = None


class MitigationOutcome(ContextModel):
    """One recorded outcome of the mitigation, with how it came about (`mode`)."""

    action_id: str
    status: str
    detail: str = ""
    verified: bool | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    mode: str | None = None


class Mitigation(ContextModel):
    """`mitigation`: what the change executor did with the plan, and whether it brought recovery."""

    outcomes: list[MitigationOutcome] = Field(default_factory=list)
    executed: list[str] = Field(default_factory=list)
    mitigated: bool = False
    recovered_by: str | None = None
    recovered_by_action: str | None = None
    recovered: bool | None = None
    exhausted: bool | None = None
    dry_run: bool | None = None
    target: str | None = None
    policy: str | None = None
    plan_source: str | None = None
    summary: str = ""
    audit: list[dict[str, Any]] = Field(default_factory=list)


class EarlierAction(ContextModel):
    action: str
    verdict: str
    reason: str


class Recovery(ContextModel):
    """`recovery`: the recovery validation's verdict on the action taken (or planned)."""

    recovered: bool = False
    verdict: str | None = None
    action: str | None = None
    basis: str | None = None  # observed | undone | replayed | none
    verified: bool = False
    reason: str = ""
    scope: list[str] = Field(default_factory=list)
    checks: list[dict[str, Any]] = Field(default_factory=list)
    unavailable: list[str] = Field(default_factory=list)
    recovered_at: str | None = None
    alert_to_recovery_min: float | None = None
    earlier_actions: list[EarlierAction] = Field(default_factory=list)
    next_action: RecommendedAction | None = None
    baseline: str | None = None


class SecurityCheck(ContextModel):
    name: str
    status: str
    detail: str = ""


class SecurityVerdict(ContextModel):
    """`security`: cleared or escalate, the categories found, the attacking sources."""

    verdict: str | None = None  # cleared | escalate
    categories: list[str] = Field(default_factory=list)
    confidence: float | None = None
    auth_failure_ratio: float | None = None
    sources: dict[str, Any] = Field(default_factory=dict)
    top_sources: list[Any] = Field(default_factory=list)
    attack_networks: list[str] = Field(default_factory=list)
    checks: list[SecurityCheck] = Field(default_factory=list)
    evidence_ids: list[str] = Field(default_factory=list)


class Key(Generic[T]):
    """A context key and the shape of its value."""

    def __init__(self, name: str, shape: Any) -> None:
        self.name = name
        self.adapter: TypeAdapter[T] = TypeAdapter(shape)

    def __repr__(self) -> str:
        return f"Key({self.name!r})"


class ListKey(Key[list[T]]):
    """A context key whose value is a list of entries of one model."""

    def __init__(self, name: str, entry: type[T]) -> None:
        super().__init__(name, list[entry])  # type: ignore[valid-type]
        self.entry: TypeAdapter[T] = TypeAdapter(entry)


DIAGNOSIS = ListKey("diagnosis", DiagnosisEntry)
DIAGNOSIS_SUMMARY: Key[DiagnosisSummary | None] = Key("diagnosis_summary", DiagnosisSummary | None)
EVIDENCE = ListKey("evidence", Evidence)
SUSPECT_SERVICE: Key[str | None] = Key("suspect_service", str | None)
SUSPECT_CHANGE: Key[SuspectChange | None] = Key("suspect_change", SuspectChange | None)
CHANGE_RANKING = ListKey("change_ranking", ChangeRankingEntry)
INCIDENT: Key[IncidentSummary] = Key("incident", IncidentSummary)
SIGNALS: Key[Signals] = Key("signals", Signals)
DATABASE: Key[DatabaseDetails] = Key("database", DatabaseDetails)
DATABASE_EVIDENCE = ListKey("database_evidence", Evidence)
CODE_FINDINGS = ListKey("code_findings", CodeFindingEntry)
RESOLUTION_PLAN = ListKey("resolution_plan", RecommendedAction)
RESOLUTION_SOURCE: Key[str] = Key("resolution_source", str)
RESOLUTION_DEADLINE: Key[str | None] = Key("resolution_deadline", str | None)
MITIGATION: Key[Mitigation] = Key("mitigation", Mitigation)
RECOVERY: Key[Recovery] = Key("recovery", Recovery)
SECURITY: Key[SecurityVerdict] = Key("security", SecurityVerdict)

KEYS: dict[str, Key[Any]] = {
    key.name: key
    for key in (
        DIAGNOSIS,
        DIAGNOSIS_SUMMARY,
        EVIDENCE,
        SUSPECT_SERVICE,
        SUSPECT_CHANGE,
        CHANGE_RANKING,
        INCIDENT,
        SIGNALS,
        DATABASE,
        DATABASE_EVIDENCE,
        CODE_FINDINGS,
        RESOLUTION_PLAN,
        RESOLUTION_SOURCE,
        RESOLUTION_DEADLINE,
        MITIGATION,
        RECOVERY,
        SECURITY,
    )
}


class OutputShapeError(ValueError):
    """A built-in agent wrote a context value its model does not describe (a bug of that agent)."""


def read(context: Mapping[str, Any], key: Key[T]) -> T | None:
    """The key's value as its model; None when no earlier phase produced it or it does not have the
    model's shape (a stored value from before the models, or a hand-made context)."""
    if key.name not in context:
        return None
    try:
        return key.adapter.validate_python(context[key.name])
    except ValidationError:
        return None


def read_list(context: Mapping[str, Any], key: ListKey[T]) -> list[T]:
    """The entries of a list-valued key that have the entry model's shape, in order (empty when the
    key is absent): one malformed entry does not hide the others."""
    raw = context.get(key.name)
    entries: list[T] = []
    for item in raw if isinstance(raw, list) else []:
        try:
            entries.append(key.entry.validate_python(item))
        except ValidationError:
            continue
    return entries


def _undeclared(value: Any, where: str) -> list[str]:
    """Fields no model declares, anywhere in a validated value (dotted paths)."""
    if isinstance(value, BaseModel):
        found = [f"{where}.{name}" for name in value.model_extra or {}]
        for name in type(value).model_fields:
            found += _undeclared(getattr(value, name), f"{where}.{name}")
        return found
    if isinstance(value, list):
        return [f for i, item in enumerate(value) for f in _undeclared(item, f"{where}[{i}]")]
    if isinstance(value, dict):
        return [f for k, item in value.items() for f in _undeclared(item, f"{where}.{k}")]
    return []


def check_outputs(agent: str, declared: tuple[str, ...], report: AgentReport) -> None:
    """Each output the agent wrote is one it declared and, when a model describes its key, has that
    model's shape with no field the model leaves out. Raises OutputShapeError naming the field."""
    for name, value in report.outputs.items():
        if name not in declared:
            raise OutputShapeError(f"{agent} wrote context key '{name}' it does not declare in its outputs")
        key = KEYS.get(name)
        if key is None:
            continue
        try:
            typed = key.adapter.validate_python(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise OutputShapeError(f"{agent} wrote '{name}'{'.' + field if field else ''}: {first['msg']}") from None
        extra = _undeclared(typed, name)
        if extra:
            raise OutputShapeError(f"{agent} wrote '{extra[0]}', a field the model of '{name}' does not declare")
