"""Read a run back from the store as a RunRecord: the one input of every report."""

from __future__ import annotations

from typing import Any

from warroom.analysis.facts import IncidentFacts, candidates_of, collect_facts
from warroom.incident import AgentReport, RecommendedAction
from warroom.record import ActionRecord, ActionStatus, Decision, PhaseRecord, RunRecord, StepRecord, StepStatus
from warroom.store.repository import Store
from warroom.workflow.interpreter import Recorded, fold_context
from warroom.workflow.spec import PhaseKind, WorkflowSpec


def _recorded(rows: list[Any]) -> dict[str, Recorded]:
    return {row.key: Recorded(row.key, row.kind, row.status, row.result) for row in rows}


def run_context(store: Store, incident_id: str) -> dict[str, Any]:
    """The context the incident's latest run has built so far (its steps' outputs), without the
    rest of the record: a reader that needs only this (stakeholder updates on cadence) does not
    load the timeline, which holds thousands of alert events on a storm's incident."""
    run = store.latest_run(incident_id)
    return fold_context(WorkflowSpec.model_validate(run.spec), _recorded(store.steps(run.id))).values


def build_record(store: Store, incident_id: str, run_id: str | None = None) -> RunRecord:
    run = store.get_run(run_id) if run_id else store.latest_run(incident_id)
    spec = WorkflowSpec.model_validate(run.spec)
    rows = store.steps(run.id)
    recorded = _recorded(rows)
    by_phase: dict[str, list[Any]] = {}
    for row in rows:
        by_phase.setdefault(row.phase_id, []).append(row)

    phases: list[PhaseRecord] = []
    for phase in spec.phases:
        phase_rows = by_phase.get(phase.id, [])
        if not phase_rows:
            continue
        decision = next((Decision.model_validate(r.result) for r in phase_rows if r.kind == "decision"), None)
        steps = [
            StepRecord(
                phase_id=phase.id,
                step_id=r.key.split("/", 1)[1],
                agent=r.agent,
                status=StepStatus(r.status),
                started_at=r.started_at,
                finished_at=r.finished_at,
                attempts=r.attempts,
                error=r.error,
                report=AgentReport.model_validate(r.result) if r.kind == "agent" and r.status == "succeeded" else None,
            )
            for r in phase_rows
            if r.kind == "agent"
        ]
        context_out: dict[str, Any] = {}
        for step in steps:
            if step.report is not None:
                context_out.update(step.report.outputs)
        phases.append(
            PhaseRecord(
                id=phase.id,
                title=phase.title,
                kind=phase.kind.value if phase.kind != PhaseKind.SEQUENCE else "sequence",
                started_at=min(r.started_at for r in phase_rows),
                finished_at=max(r.finished_at for r in phase_rows),
                steps=steps,
                decision=decision,
                context_out=context_out,
            )
        )

    context = fold_context(spec, recorded).values
    diagnosis = candidates_of(context)
    audit = store.audit_log(incident_id)
    actions = [
        ActionRecord(
            action=RecommendedAction.model_validate(row.data) if row.data.get("title") else _bare_action(row.action_id),
            status=ActionStatus(row.status) if row.status in ActionStatus._value2member_map_ else ActionStatus.PROPOSED,
            approved_by=row.approved_by,
            approved_at=row.approved_at,
            result={"audit": [a.event for a in audit if a.action_id == row.action_id]},
        )
        for row in store.actions(incident_id)
    ]
    record = RunRecord(
        incident=store.get_incident(incident_id),
        workflow=spec.name,
        run_status=run.status,
        phases=phases,
        timeline=store.timeline(incident_id),
        context=context,
        diagnosis=diagnosis,
        actions=actions,
    )
    record.facts = facts_of(record)
    return record


def facts_of(record: RunRecord) -> IncidentFacts:
    """The incident's facts as the run recorded them: the steps' outputs, the timeline's incident
    times of the action outcomes, and the steps' run intervals on the engine clock."""
    busy = [(step.started_at, step.finished_at) for phase in record.phases for step in phase.steps]
    approvals = {a.action.id: a.approved_by for a in record.actions if a.approved_by}
    context = record.context
    if record.diagnosis and not context.get("diagnosis"):
        context = {**context, "diagnosis": [c.model_dump(mode="json") for c in record.diagnosis]}
    return collect_facts(context, record.incident, record.timeline, busy, approvals)


def _bare_action(action_id: str) -> RecommendedAction:
    return RecommendedAction(id=action_id, title=action_id, kind="unknown")
