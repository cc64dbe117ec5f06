"""Hand-built RunRecords for the report tests: a critical-incident run of the seeds' checkout outage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from warroom.analysis.impact import ImpactFacts
from warroom.figures import Basis, Figure, Window
from warroom.incident import (
    ActionOutcome,
    AgentReport,
    Assignee,
    Evidence,
    Finding,
    Incident,
    RecommendedAction,
    RiskLevel,
    Role,
    RootCauseCandidate,
    Severity,
    Status,
    TimelineEvent,
    TimelineKind,
)
from warroom.record import (
    ActionRecord,
    ActionStatus,
    Decision,
    PhaseRecord,
    RunRecord,
    StepRecord,
    StepStatus,
)

T0 = datetime(2024, 1, 15, 14, 23, tzinfo=UTC)  # detection
PLANTED_SECRET = "hunter2-Sup3rS3cret!"
PLANTED_TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def pool_evidence() -> Evidence:
    return Evidence(
        id="E-pool",
        source="metrics",
        query="checkout-service/db_pool_utilization",
        start=at(-30),
        end=at(0),
        values={
            "series": [0.41, 0.44, 0.52, 0.71, 0.93, 1.0, 1.0, 1.0],
            "baseline_mean": 0.42,
            "peak": 1.0,
        },
    )


def latency_evidence() -> Evidence:
    # No id: the report must derive a stable one from the content.
    return Evidence(
        source="metrics",
        query="api-gateway/latency_p99_ms",
        start=at(-30),
        end=at(0),
        values={"points": [[0, 180.0], [1, 190.0], [2, 850.0], [3, 2300.0], [4, 2450.0]], "slo_ms": 500},
    )


def log_evidence() -> Evidence:
    return Evidence(
        id="E-logs",
        source="logs",
        query="checkout-service: timeout acquiring connection from pool <*>",
        start=at(-25),
        end=at(0),
        values={"count": 1834, "baseline_count": 0},
        samples=[
            "ERROR timeout acquiring connection from pool main after 5000ms",
            f"WARN retrying with DB_PASSWORD={PLANTED_SECRET}",
        ],
    )


def deploy_evidence() -> Evidence:
    return Evidence(
        id="E-deploy",
        source="changes",
        query="deploy checkout-service v2.14.0",
        start=at(-95),
        end=at(-95),
        values={"minutes_before_onset": 85},
    )


def report(agent: str, summary: str, **kw: Any) -> AgentReport:
    return AgentReport(agent=agent, summary=summary, **kw)


def step(
    phase: str,
    agent: str,
    start: float,
    end: float,
    rep: AgentReport | None,
    status: StepStatus = StepStatus.SUCCEEDED,
    error: str | None = None,
    attempts: int = 1,
) -> StepRecord:
    return StepRecord(
        phase_id=phase,
        step_id=f"{phase}/{agent}",
        agent=agent,
        status=status,
        started_at=at(start),
        finished_at=at(end),
        attempts=attempts,
        error=error,
        report=rep,
    )


def build_record(*, failed_branch: bool = False, with_postmortem: bool = True) -> RunRecord:
    """A finished critical-incident run: 6 phases, a decision, two parallel phases, actions, comms."""
    incident = Incident(
        id="INC-2024-001",
        title="Checkout API latency and errors",
        severity=Severity.P1,
        severity_rule="25 % of requests failing at api-gateway over the worst 5 minutes "
        "(14:10:00–14:15:00 UTC) (≥ 5 %)",
        status=Status.RESOLVED,
        affected_services=["api-gateway", "checkout-service", "payment-service"],
        symptoms=["high_response_times", "error_rate_spike", "checkout_failures"],
        business_impact={"revenue_per_minute": 10000, "currency": "USD"},
        roles={
            Role.INCIDENT_COMMANDER: Assignee(name="incident-commander", kind="agent"),
            Role.TECHNICAL_LEAD: Assignee(name="Mike Rodriguez"),
        },
        rto_minutes=30,
        rpo_minutes=5,
        comms_cadence_minutes=15,
        started_at=at(-20),
        detected_at=T0,
        acknowledged_at=at(1),
        mitigated_at=at(21),
        resolved_at=at(25),
    )
    pool_finding = Finding(
        id="F-pool",
        title="Database connection pool of checkout-service at 100%",
        confidence=0.93,
        service="checkout-service",
        kind="bottleneck",
        evidence=[pool_evidence(), log_evidence()],
    )
    assess = PhaseRecord(
        id="assess",
        title="Incident Assessment & Initial Response",
        kind="agent",
        started_at=at(0),
        finished_at=at(2),
        steps=[
            step(
                "assess",
                "incident-commander",
                0,
                2,
                report(
                    "incident-commander",
                    "P1: p99 2450 ms against a 500 ms SLO, error rate 15%",
                    findings=[
                        Finding(
                            title="API p99 latency 4.9x the SLO",
                            confidence=0.97,
                            service="api-gateway",
                            evidence=[latency_evidence()],
                        )
                    ],
                    outputs={"signals": {"error_rate": 0.15, "db_pool_utilization": 1.0}},
                ),
            )
        ],
        context_out={
            "incident": {
                "id": "INC-2024-001",
                "severity": "P1",
                "severity_figures": {
                    "error_rate": Figure(
                        value=0.25,
                        unit="ratio",
                        method="failed ÷ all over the worst 5 minutes",
                        window=Window(start=at(-13), end=at(-8)),
                    ).model_dump(mode="json")
                },
            },
            "signals": {"error_rate": 0.15, "db_pool_utilization": 1.0, "latency_p99_ms": 2450.0},
        },
    )
    investigate = PhaseRecord(
        id="investigate",
        title="Conditional Investigation Strategy",
        kind="decide",
        started_at=at(2),
        finished_at=at(5),
        decision=Decision(
            path="database",
            agent="database-incident-specialist",
            condition="signals.db_pool_utilization >= 0.9 or signals.db_cpu >= 0.85",
            values={"signals.db_pool_utilization": 1.0, "signals.db_cpu": 0.95},
            rationale="pool utilisation 1.0 >= 0.9",
        ),
        steps=[
            step(
                "investigate",
                "database-incident-specialist",
                2,
                5,
                report(
                    "database-incident-specialist",
                    "Pool exhausted by long-running queries",
                    findings=[pool_finding],
                    outputs={"suspect_service": "checkout-service"},
                ),
            )
        ],
        context_out={"suspect_service": "checkout-service"},
    )
    deep_steps = [
        step(
            "deep-investigation",
            "monitoring-specialist",
            5,
            12,
            report(
                "monitoring-specialist",
                "API latency follows DB query time",
                findings=[
                    Finding(
                        title="Pool saturation precedes the latency rise",
                        confidence=0.8,
                        service="checkout-service",
                        evidence=[pool_evidence(), latency_evidence()],
                    )
                ],
            ),
        ),
        step(
            "deep-investigation",
            "log-analysis-specialist",
            5,
            17 if not failed_branch else 15,
            None
            if failed_branch
            else report(
                "log-analysis-specialist",
                "New template: timeout acquiring connection",
                findings=[
                    Finding(
                        title="Connection-timeout errors begin after deploy v2.14.0",
                        confidence=0.85,
                        service="checkout-service",
                        kind="root_cause",
                        evidence=[log_evidence(), deploy_evidence()],
                    )
                ],
            ),
            status=StepStatus.TIMED_OUT if failed_branch else StepStatus.SUCCEEDED,
            error="timed out after 600 s" if failed_branch else None,
        ),
        step(
            "deep-investigation",
            "customer-impact-analyst",
            5,
            10,
            report(
                "customer-impact-analyst",
                "15,000 customers affected",
                findings=[
                    Finding(
                        title="25% of checkout attempts failed",
                        confidence=0.9,
                        kind="impact",
                        evidence=[
                            Evidence(
                                id="E-checkout",
                                source="logs",
                                query="checkout-service POST /checkout status>=500",
                                values={"failed": 3500, "total": 14000},
                            )
                        ],
                    )
                ],
                outputs={"impact": {}},
            ),
        ),
        step(
            "deep-investigation",
            "security-incident-analyst",
            5,
            9,
            report(
                "security-incident-analyst",
                "No breach indicators",
                limitations=["no audit log in the bundle: privilege changes not checked"],
            ),
            attempts=2,
        ),
    ]
    deep = PhaseRecord(
        id="deep-investigation",
        title="Parallel Deep Investigation",
        kind="parallel",
        started_at=at(5),
        finished_at=at(17),
        steps=deep_steps,
        context_out={
            "impact": {**impact_facts().as_context(), "evidence_ids": ["E-checkout"]},
            "security": {"verdict": "cleared", "evidence_ids": ["E-logs"]},
            "evidence": [pool_evidence().model_dump(mode="json")],
        },
    )
    actions = [
        RecommendedAction(
            id="A1",
            title="Kill long-running queries",
            kind="kill_long_queries",
            target="checkout-db",
            risk=RiskLevel.LOW,
        ),
        RecommendedAction(
            id="A2",
            title="Roll back checkout-service to v2.13.2",
            kind="rollback",
            target="checkout-service",
            risk=RiskLevel.HIGH,
            priority="short_term",
            rollback="redeploy v2.14.0",
        ),
    ]
    resolve = PhaseRecord(
        id="resolve",
        title="Solution Implementation & Coordination",
        kind="agent",
        started_at=at(17),
        finished_at=at(21),
        steps=[
            step(
                "resolve",
                "incident-resolution-coordinator",
                17,
                21,
                report(
                    "incident-resolution-coordinator",
                    "Killed long queries, rolled back the deploy",
                    actions=actions,
                    outcomes=[
                        ActionOutcome(action_id="A1", status="executed", verified=False),
                        ActionOutcome(action_id="A2", status="verified", verified=True, detail="p99 180 ms"),
                    ],
                ),
            )
        ],
        context_out={
            "resolution_plan": [a.model_dump(mode="json") for a in actions],
            "mitigation": {
                "outcomes": [
                    {"action_id": "A1", "status": "executed", "verified": False, "mode": "executed"},
                    {"action_id": "A2", "status": "verified", "verified": True, "mode": "executed"},
                ],
                "executed": ["A1", "A2"],
                "mitigated": True,
                "recovered_by": "rollback",
            },
        },
    )
    recover = PhaseRecord(
        id="recover",
        title="Parallel Recovery Validation & Communication",
        kind="parallel",
        started_at=at(21),
        finished_at=at(25),
        steps=[
            step(
                "recover",
                "recovery-validation-specialist",
                21,
                25,
                report(
                    "recovery-validation-specialist",
                    "Latency and errors back to baseline",
                    findings=[
                        Finding(
                            title="p99 back to 150 ms (baseline 160 ms)",
                            confidence=0.95,
                            kind="recovery",
                            evidence=[
                                Evidence(
                                    id="E-after",
                                    source="metrics",
                                    query="after/rollback api-gateway/latency_p99_ms",
                                    values={"series": [2400, 900, 200, 150, 150], "baseline": 160},
                                )
                            ],
                        )
                    ],
                ),
            ),
            step("recover", "incident-communications-specialist", 21, 22, report("comms", "3 updates sent")),
            step("recover", "incident-documentation-specialist", 21, 23, report("docs", "timeline written")),
        ],
        context_out={
            "recovery": {
                "recovered": True,
                "verdict": "recovered",
                "action": "rollback",
                "basis": "observed",
                "verified": True,
                "recovered_at": at(25).isoformat(),
                "checks": [],
                "evidence_ids": ["E-after"],
            },
            "documentation": documentation(),
        },
    )
    phases = [assess, investigate, deep, resolve, recover]
    context: dict[str, Any] = {}
    for p in phases:
        context.update(p.context_out)
    context["suspect_change"] = {
        "id": "deploy-4711",
        "time": at(-95).isoformat(),
        "kind": "deploy",
        "service": "checkout-service",
        "version": "v2.14.0",
        "commit": "9f3c2ab",
        "author": "jdoe@example.com",
        "evidence_ids": ["E-deploy"],
    }
    context["code_findings"] = [
        {
            "file": "checkout/orders.go",
            "line": 88,
            "commit": "9f3c2ab",
            "author": "jdoe@example.com",
            "description": "connection acquired without release on the error path",
            "evidence_ids": ["E-deploy"],
        }
    ]
    if with_postmortem:
        pm = {
            "primary_cause": {
                "text": "Connection leak in checkout-service v2.14.0 exhausted the DB pool",
                "evidence_ids": ["E-pool", "E-deploy"],
            },
            "contributing_factors": [
                {"text": "No alert on pool utilisation", "evidence_ids": ["E-pool"]},
                "Staging load tests do not exercise the error path",
            ],
            "preventive_measures": ["Lint for unreleased connections in CI"],
            "action_items": [
                {"title": "Fix the connection leak", "owner": "checkout team", "priority": "immediate"},
                {"title": "Alert on db_pool_utilization >= 0.9", "priority": "short_term"},
            ],
            "lessons_learned": {"went_well": ["Rollback was rehearsed"], "other": ["Keep runbooks current"]},
        }
        context["postmortem"] = pm
        phases.append(
            PhaseRecord(
                id="postmortem",
                title="Post-Incident Analysis & Improvement",
                kind="agent",
                started_at=at(25),
                finished_at=at(26),
                steps=[step("postmortem", "post-incident-analyst", 25, 26, report("pia", "analysis done"))],
                context_out={"postmortem": pm},
            )
        )
    diagnosis = [
        RootCauseCandidate(
            rank=1,
            service="checkout-service",
            fault_type="db_pool_exhaustion",
            indicator="db_pool_utilization",
            confidence=0.91,
            change_id="deploy-4711",
            reason="pool at 100% after deploy",
            evidence_ids=["E-pool", "E-logs", "E-deploy"],
        ),
        RootCauseCandidate(
            rank=2,
            service="payment-service",
            fault_type="latency",
            indicator="latency_p99_ms",
            confidence=0.4,
            evidence_ids=["E-missing"],
        ),
    ]
    return RunRecord(
        incident=incident,
        workflow="critical-incident",
        run_status="completed",
        phases=phases,
        timeline=build_timeline(),
        context=context,
        diagnosis=diagnosis,
        actions=[
            ActionRecord(action=actions[0], status=ActionStatus.EXECUTED),
            ActionRecord(
                action=actions[1],
                status=ActionStatus.VERIFIED,
                approved_by="Mike Rodriguez",
                approved_at=at(18),
            ),
        ],
    )


WINDOW = Window(start=at(-20), end=at(0), basis="first user-facing onset → alert")


def impact_facts() -> ImpactFacts:
    def count(value: float, noun: str) -> Figure:
        return Figure(value=value, unit="count", method=f"{noun} in the request logs", window=WINDOW, noun=noun)

    return ImpactFacts(
        service="api-gateway",
        source="logs",
        window=WINDOW,
        requests=count(14000, "requests"),
        failed_requests=count(3500, "requests"),
        failure_rate=Figure(value=0.25, unit="ratio", method="failed ÷ all requests", window=WINDOW),
        baseline_failure_rate=Figure(value=0.002, unit="ratio", method="failed ÷ all at baseline"),
        users_active=count(60000, "users"),
        users_affected=count(15000, "users"),
        sessions_affected=count(16000, "sessions"),
        transactions=count(9000, "transactions"),
        failed_transactions=count(3000, "transactions"),
        abandoned_carts=count(1200, "carts"),
        revenue=Figure(
            value=42000.0,
            unit="USD",
            method="estimate: revenue_per_minute 10,000 USD × 20 min × excess failure share",
            window=WINDOW,
            basis=Basis.ESTIMATED,
        ),
        scope="a subset of users: 15,000 of 60,000 active users saw a failure",
    )


def documentation() -> dict[str, Any]:
    """What the documentation step records: onsets with the series they were read on, changes."""
    points = [[at(-40 + i).isoformat(), 0.42 if i < 20 else min(1.0, 0.42 + 0.06 * (i - 20))] for i in range(40)]
    return {
        "timeline": [
            {
                "at": at(-95).isoformat(),
                "kind": "change",
                "service": "checkout-service",
                "source": "changes",
                "summary": "deploy v2.14.0 of checkout-service (deploy-4711)",
                "values": {"change_id": "deploy-4711"},
            },
            {
                "at": at(-20).isoformat(),
                "kind": "onset",
                "service": "checkout-service",
                "source": "metrics",
                "summary": "db_pool_utilization of checkout-service left its baseline (42 % → peak 100 %)",
                "values": {"signal": "db_pool_utilization", "method": "first of 3 consecutive samples"},
            },
            {
                "at": at(-1).isoformat(),
                "kind": "alert",
                "service": "api-gateway",
                "source": "alert",
                "summary": "alert fired",
                "values": {},
            },
        ],
        "first_onset": at(-20).isoformat(),
        "changes": {
            "history": True,
            "checked": True,
            "ids": ["deploy-4711"],
            "commits": ["9f3c2ab"],
            "preceding": ["deploy-4711"],
        },
        "series": [
            {
                "service": "checkout-service",
                "signal": "db_pool_utilization",
                "query": "checkout-service/db_pool_utilization",
                "baseline": 0.42,
                "limit": 0.5,
                "higher_is_worse": True,
                "onset": at(-20).isoformat(),
                "points": points,
                "after": {
                    "action": "rollback",
                    "basis": "observed",
                    "points": [[at(20 + i).isoformat(), 0.4] for i in range(10)],
                },
            }
        ],
    }


def ev(seq: int, minutes: float, kind: TimelineKind, source: str, summary: str, **data: Any) -> TimelineEvent:
    return TimelineEvent(seq=seq, at=at(minutes), kind=kind, source=source, summary=summary, data=data)


def build_timeline() -> list[TimelineEvent]:
    k = TimelineKind
    events = [
        (-1, k.ALERT, "alertmanager", "API p99 latency > 2s (threshold: 500ms)", {}),
        (0, k.PHASE_STARTED, "engine", "assess started", {"phase": "assess"}),
        (2, k.STATUS_CHANGED, "engine", "detected → triaged", {"from": "detected", "to": "triaged"}),
        (2, k.PHASE_FINISHED, "engine", "assess finished", {"phase": "assess"}),
        (3, k.COMMUNICATION_SENT, "incident-communications-specialist", "Investigating checkout errors", {}),
        (
            5,
            k.DECISION,
            "engine",
            "path database: signals.db_pool_utilization >= 0.9",
            {"path": "database", "values": {"signals.db_pool_utilization": 1.0}},
        ),
        (5, k.STATUS_CHANGED, "engine", "triaged → investigating", {"to": "investigating"}),
        (
            6,
            k.FINDING,
            "database-incident-specialist",
            "Database connection pool of checkout-service at 100% | saturated",
            {"finding_id": "F-pool", "evidence_ids": ["E-pool", "E-logs"]},
        ),
        (13, k.COMMUNICATION_SENT, "incident-communications-specialist", "Cause identified", {}),
        (17, k.ACTION_PROPOSED, "incident-resolution-coordinator", "A2 rollback proposed", {"action": "A2"}),
        (18, k.ACTION_APPROVED, "cli", "A2 approved by Mike Rodriguez", {"action": "A2"}),
        (18.5, k.ACTION_EXECUTED, "change-executor", "A1 executed", {"action_id": "A1"}),
        (19, k.ACTION_EXECUTED, "change-executor", "A2 rollback executed", {"action_id": "A2"}),
        (21, k.STATUS_CHANGED, "engine", "mitigating → monitoring", {"to": "monitoring"}),
        (23, k.COMMUNICATION_SENT, "incident-communications-specialist", "Mitigated", {}),
        (24, k.ACTION_VERIFIED, "recovery-validation-specialist", "A2 verified", {"action_id": "A2"}),
        (25, k.STATUS_CHANGED, "engine", "monitoring → resolved", {"to": "resolved"}),
    ]
    return [ev(i + 1, m, kind, src, text, **data) for i, (m, kind, src, text, data) in enumerate(events)]
