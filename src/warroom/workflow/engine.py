"""The engine: drives the interpreter, runs steps, and commits each result before the next starts.

It knows workflows, steps, approvals and the incident record — nothing of any agent's domain.
Everything it does to the store for one step (the step result, its timeline events, its actions)
happens in one transaction, and every timeline event has a deterministic key, so a run killed
at any point and resumed neither loses nor repeats anything.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from warroom.comms.message import updates_sent
from warroom.errors import InputError, Interrupted, NotFoundError
from warroom.incident import (
    AgentReport,
    Assignee,
    Incident,
    Role,
    Severity,
    Status,
    TimelineEvent,
    TimelineKind,
)
from warroom.record import Decision
from warroom.sources.contract import SourceSpec
from warroom.sources.incident_telemetry import IncidentTelemetry
from warroom.store.repository import Store
from warroom.workflow.interpreter import (
    Done,
    OpenGate,
    RecordDecision,
    Recorded,
    RunSteps,
    covers,
    decision_key,
    fold_context,
    gate_key,
    holds,
    next_move,
    phase_done,
    step_key,
)
from warroom.workflow.runner import StepOutcome, StepRunner, StepTask
from warroom.workflow.spec import ApprovalPolicy, PhaseSpec, WorkflowSpec

FORWARD = [s for s in Status]  # the lifecycle's forward order

# What a human may decide about a proposed action besides approving it; both let the run go on.
DECLINED = {"rejected": TimelineKind.ACTION_REJECTED, "skipped": TimelineKind.ACTION_SKIPPED}
# Once an action has been taken up by the executor, a decision about it comes too late.
CANCELLED = "cancelled"  # a run's final status once a human cancelled it
# A run stopped at its gate whose decision is in: ready for whoever drives runs, not yet picked up.
# Picking it up is not a resumption after a crash ("running" with steps is).
QUEUED = "queued"
FAILED = "failed"  # final: the run could not go on (its telemetry could not be read)
TAKEN = frozenset({"executed", "dry_run", "verified", "failed", "timed_out", "undone"})


class RunOptions(BaseModel):
    source: SourceSpec  # where the telemetry comes from: workers and a resumed run open it again
    execute: bool = False
    grant: ApprovalPolicy = ApprovalPolicy.NONE  # what the operator approved up front
    out_dir: str | None = None
    replay_clock: bool = True  # incident time = alert time + elapsed run time (recorded incidents)
    processes: bool = False  # True: steps in worker processes (see application.respond)
    # Gated actions wait for a human even in a dry run (the service: approvals come from the API);
    # the CLI's dry run instead records them as not approved and goes on.
    hold_for_approval: bool = False
    # analysis is CPU-bound: one worker per core; more would only share the cores and add spawn cost
    workers: int = Field(default_factory=lambda: max(2, os.cpu_count() or 2))


def runner_for(options: RunOptions) -> StepRunner:
    return StepRunner(options.source, processes=options.processes, workers=options.workers)


class Progress(Protocol):
    def phase_started(self, phase: PhaseSpec) -> None: ...
    def steps_started(self, phase: PhaseSpec, agents: list[tuple[str, str]]) -> None: ...
    def step_finished(self, outcome: StepOutcome) -> None: ...
    def decided(self, phase: PhaseSpec, decision: Decision) -> None: ...
    def phase_finished(self, phase: PhaseSpec) -> None: ...
    def waiting(self, pending: list[dict[str, Any]]) -> None: ...


class SilentProgress:
    def phase_started(self, phase: PhaseSpec) -> None:
        pass

    def steps_started(self, phase: PhaseSpec, agents: list[tuple[str, str]]) -> None:
        pass

    def step_finished(self, outcome: StepOutcome) -> None:
        pass

    def decided(self, phase: PhaseSpec, decision: Decision) -> None:
        pass

    def phase_finished(self, phase: PhaseSpec) -> None:
        pass

    def waiting(self, pending: list[dict[str, Any]]) -> None:
        pass


# Asked for a gated action that was neither approved up front nor in the store: True approves.
Approver = Callable[[dict[str, Any]], bool]


@dataclass
class RunResult:
    incident_id: str
    run_id: str
    status: str  # succeeded | completed_with_failures | waiting_approval | cancelled
    pending: list[dict[str, Any]]


class Clock:
    """Incident time. For a recorded incident it starts at `origin` and advances with the run."""

    def __init__(self, origin: datetime | None) -> None:
        self.origin = origin
        self.started = time.monotonic()

    def now(self) -> datetime:
        if self.origin is None:
            return datetime.now(UTC)
        return self.origin + timedelta(seconds=time.monotonic() - self.started)


def draft_incident(telemetry: IncidentTelemetry) -> Incident:
    """An incident as declared by the alert, before any agent has assessed it."""
    manifest = telemetry.manifest
    alert = manifest.alert
    labelled = alert.labels.get("severity", "").upper()
    severity = Severity(labelled) if labelled in Severity.__members__ else Severity.P2
    roles = {Role(k): Assignee(name=v) for k, v in manifest.roles.items() if k in Role._value2member_map_}
    return Incident(
        id="",
        title=manifest.title,
        severity=severity,
        severity_rule=f"provisional: alert label severity={labelled}" if labelled else "provisional: not yet assessed",
        affected_services=[alert.service] if alert.service else [],
        symptoms=manifest.symptoms,
        business_impact=manifest.business.model_dump(exclude_none=True),
        roles=roles,
        rto_minutes=manifest.objectives.rto_minutes,
        rpo_minutes=manifest.objectives.rpo_minutes,
        comms_cadence_minutes=manifest.comms.cadence_minutes,
        detected_at=alert.fired_at,
        telemetry_source=telemetry.origin(),
    )


def alert_event(telemetry: IncidentTelemetry) -> TimelineEvent:
    """The recorded alert as the incident's first timeline event."""
    alert = telemetry.manifest.alert
    return TimelineEvent(
        at=alert.fired_at,
        kind=TimelineKind.ALERT,
        source=alert.labels.get("source", "alert"),
        summary=f"{alert.name}: {alert.summary}".strip(": "),
        data={"service": alert.service, **alert.labels},
    )


def clock_origin(events: list[TimelineEvent]) -> datetime:
    """Where a replayed run's clock resumes: the engine's own last event. Agents' events carry
    incident times of their own (telemetry, recorded actions) that the engine clock must not
    jump to, or a resumed run would count the incident's duration as run time."""
    own = [e for e in events if e.source == "engine" or e.kind == TimelineKind.ALERT]
    return max(e.at for e in own) if own else datetime.now(UTC)


INCIDENT_FIELDS = (
    "severity",
    "severity_rule",
    "affected_services",
    "symptoms",
    "roles",
    "title",
    "started_at",
)


class Engine:
    def __init__(self, store: Store, progress: Progress | None = None, approver: Approver | None = None) -> None:
        self.store = store
        self.progress: Progress = progress or SilentProgress()
        self.approver = approver

    # -- starting ----------------------------------------------------------------------------

    def start(self, telemetry: IncidentTelemetry, spec: WorkflowSpec, options: RunOptions) -> tuple[str, str]:
        incident = self.store.create_incident(draft_incident(telemetry))
        with self.store.transaction() as session:
            run_id = self.open_run(session, incident.id, alert_event(telemetry), spec, options)
        return incident.id, run_id

    def open_run(
        self, session: Session, incident_id: str, alert: TimelineEvent, spec: WorkflowSpec, options: RunOptions
    ) -> str:
        """Record the run of `spec` for an incident and the alert that opened it, in the caller's
        transaction (the service opens incidents in the same transaction that stores the alert)."""
        run_id = self.store.create_run(
            session, incident_id, spec.name, spec.model_dump(mode="json"), options.model_dump(mode="json")
        )
        self.store.add_event(session, incident_id, alert, dedupe_key="alert")
        self.store.add_event(
            session,
            incident_id,
            TimelineEvent(
                at=alert.at,
                kind=TimelineKind.NOTE,
                source="engine",
                summary=f"incident {incident_id} opened; workflow {spec.name} started",
                data={"run_id": run_id, "workflow": spec.name},
            ),
            dedupe_key="opened",
        )
        return run_id

    # -- running -----------------------------------------------------------------------------

    def run(self, run_id: str, runner: StepRunner | None = None) -> RunResult:
        """Drive the run to its end (or to an approval gate); a given runner is left open."""
        row = self.store.get_run(run_id)
        if row.status == CANCELLED:
            return RunResult(row.incident_id, run_id, CANCELLED, [])
        spec = WorkflowSpec.model_validate(row.spec)
        options = RunOptions.model_validate(row.options)
        incident_id = row.incident_id
        events = self.store.timeline(incident_id)
        clock = Clock(clock_origin(events) if options.replay_clock else None)
        owned = runner is None
        runner = runner or runner_for(options)
        # a run created "running" that already holds steps was stopped (a crash) and is being picked
        # up again; a queued one was decided at its gate and is simply taken up
        resumed = row.status in ("running", "waiting_approval") and self.store.step_count(run_id) > 0
        earlier = sum(1 for e in events if isinstance(e.data.get("interruption"), dict))
        with self.store.transaction() as session:
            if resumed:
                self._record_interruption(session, run_id, incident_id, row.status, clock, earlier)
            self.store.set_run_status(session, run_id, "running")
        try:
            result = self._drive(run_id, incident_id, spec, options, runner, clock)
        except KeyboardInterrupt as exc:
            if owned:
                runner.terminate()
            self._mark_interrupted(run_id)
            name = exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"
            raise Interrupted(name, incident_id) from None
        except BaseException:
            if owned:
                runner.terminate()  # do not wait for steps whose results can no longer be recorded
            raise
        if owned:
            runner.close()
        return result

    def _mark_interrupted(self, run_id: str) -> None:
        """Best effort: a second signal or a store failure here must not hide the interrupt."""
        with contextlib.suppress(Exception), self.store.transaction() as session:
            self.store.set_run_status(session, run_id, "interrupted")

    def _drive(
        self,
        run_id: str,
        incident_id: str,
        spec: WorkflowSpec,
        options: RunOptions,
        runner: StepRunner,
        clock: Clock,
    ) -> RunResult:
        closed: set[str] = set()
        recorded: dict[str, Recorded] = {}
        while True:
            # the step boundary: a cancellation committed meanwhile stops the run here
            if self.store.get_run(run_id).status == CANCELLED:
                return RunResult(incident_id, run_id, CANCELLED, [])
            recorded = self._recorded(run_id, recorded)
            # close every finished phase, including one whose last step committed just before a crash
            for phase in spec.phases:
                if phase.id not in closed and phase_done(phase, recorded):
                    self._close_phase(run_id, incident_id, phase, recorded, clock)
                    closed.add(phase.id)
            move = next_move(spec, recorded)
            if isinstance(move, Done):
                return self._finish(run_id, incident_id, recorded, clock)
            self._enter_phase(run_id, incident_id, spec, move.phase, recorded, clock)
            if isinstance(move, RecordDecision):
                self._record_decision(run_id, incident_id, move, clock)
            elif isinstance(move, OpenGate):
                pending = self._open_gate(run_id, incident_id, move, options, clock)
                if pending:
                    self.progress.waiting(pending)
                    return RunResult(incident_id, run_id, "waiting_approval", pending)
            else:
                self._run_steps(run_id, incident_id, spec, move, recorded, options, runner, clock)

    def _event(
        self,
        session: Session,
        incident_id: str,
        kind: TimelineKind,
        source: str,
        summary: str,
        data: dict[str, Any],
        at: datetime,
        key: str,
    ) -> bool:
        """Append a timeline event once: `key` makes re-recording after a crash a no-op."""
        event = TimelineEvent(at=at, kind=kind, source=source, summary=summary, data=data)
        return self.store.add_event(session, incident_id, event, dedupe_key=key)

    def decision_time(self, incident_id: str) -> datetime:
        """Incident time of a human decision given without one: the wall clock for a live
        incident; for a replayed run, where its clock stands (its last event), never the wall
        clock, which would put the decision years after the telemetry."""
        try:
            replayed = RunOptions.model_validate(self.store.latest_run(incident_id).options).replay_clock
        except NotFoundError:
            replayed = False
        return clock_origin(self.store.timeline(incident_id)) if replayed else datetime.now(UTC)

    def _record_interruption(
        self, session: Session, run_id: str, incident_id: str, previous: str, clock: Clock, earlier: int
    ) -> None:
        """A run picked up again after a crash or an approval wait: the gap is an event of its own,
        and run durations (the union of the steps' intervals) do not count it."""
        at = clock.now()
        cause = "was interrupted" if previous == "running" else "waited for approval"
        self._event(
            session,
            incident_id,
            TimelineKind.NOTE,
            "engine",
            f"run {cause} and was resumed; the interruption is not counted as run time",
            {
                "run_id": run_id,
                "interruption": {"previous_status": previous, "wall_resumed_at": datetime.now(UTC).isoformat()},
            },
            at,
            f"{run_id}:resumed:{earlier + 1}",
        )

    def _recorded(self, run_id: str, known: dict[str, Recorded]) -> dict[str, Recorded]:
        """The run's committed steps: `known` (read earlier: a step is written once and never
        changes) and those committed since, read from the store. Re-reading every step's result at
        every step boundary cost more than the steps' own writes."""
        rows = self.store.steps(run_id, skip=known.keys())
        return {**known, **{row.key: Recorded(row.key, row.kind, row.status, row.result) for row in rows}}

    def _enter_phase(
        self,
        run_id: str,
        incident_id: str,
        spec: WorkflowSpec,
        phase: PhaseSpec,
        recorded: dict[str, Recorded],
        clock: Clock,
    ) -> None:
        at = clock.now()
        with self.store.transaction() as session:
            first = self._event(
                session,
                incident_id,
                TimelineKind.PHASE_STARTED,
                "engine",
                f"phase {phase.id} started: {phase.title}",
                {"phase": phase.id, "run_id": run_id, "agents": [s.agent for s in phase.steps]},
                at,
                f"{run_id}:phase_started:{phase.id}",
            )
            if phase.status and self._status_applies(phase, spec, recorded):
                self._advance(session, incident_id, phase.status, at)
        if first:
            self.progress.phase_started(phase)

    def _status_applies(self, phase: PhaseSpec, spec: WorkflowSpec, recorded: dict[str, Recorded]) -> bool:
        if not phase.status_when:
            return True
        return holds(phase.status_when, fold_context(spec, recorded).for_agents())

    def _advance(self, session: Session, incident_id: str, target: Status, at: datetime) -> None:
        """Walk the lifecycle forward to `target`, recording each step on the timeline."""
        incident = self.store.get_incident(incident_id, session)
        current = FORWARD.index(incident.status)
        goal = FORWARD.index(target)
        for status in FORWARD[current + 1 : goal + 1]:
            incident = self.store.transition(session, incident, status, at, "engine")

    def _close_phase(
        self, run_id: str, incident_id: str, phase: PhaseSpec, recorded: dict[str, Recorded], clock: Clock
    ) -> None:
        keys = [k for k in recorded if k.startswith(f"{phase.id}/")]
        failed = [k for k in keys if recorded[k].status not in ("succeeded",)]
        with self.store.transaction() as session:
            added = self._event(
                session,
                incident_id,
                TimelineKind.PHASE_FINISHED,
                "engine",
                f"phase {phase.id} finished" + (f" ({len(failed)} step(s) failed)" if failed else ""),
                {"phase": phase.id, "run_id": run_id, "failed": failed},
                clock.now(),
                f"{run_id}:phase_finished:{phase.id}",
            )
        if added:
            self.progress.phase_finished(phase)

    def _record_decision(self, run_id: str, incident_id: str, move: RecordDecision, clock: Clock) -> None:
        at = clock.now()
        decision = move.decision
        with self.store.transaction() as session:
            self.store.record_step(
                session,
                run_id,
                {
                    "key": decision_key(move.phase),
                    "phase_id": move.phase.id,
                    "kind": "decision",
                    "agent": "engine",
                    "status": "succeeded",
                    "attempts": 1,
                    "started_at": at,
                    "finished_at": at,
                    "error": None,
                    "result": decision.model_dump(mode="json"),
                },
            )
            self._event(
                session,
                incident_id,
                TimelineKind.DECISION,
                "engine",
                f"{move.phase.id}: path '{decision.path}' ({decision.agent}) — {decision.rationale}",
                decision.model_dump(mode="json"),
                at,
                f"{run_id}:decision:{move.phase.id}",
            )
        self.progress.decided(move.phase, decision)

    def _open_gate(
        self, run_id: str, incident_id: str, move: OpenGate, options: RunOptions, clock: Clock
    ) -> list[dict[str, Any]]:
        """Approve what policy, the up-front grant, the store or the operator allow.

        Returns the actions still waiting (the run is then marked waiting at the gate); empty when
        the gate is passed (and recorded)."""
        approvals: list[dict[str, Any]] = []  # who approved each action, and when: the executor audits it
        declined: dict[str, list[str]] = {status: [] for status in DECLINED}
        pending: list[dict[str, Any]] = []
        at = clock.now()
        with self.store.transaction() as session:
            # The run is claimed before its decisions are read: a decision committed from here on
            # waits for this transaction and finds the run waiting (and queues it); one committed
            # before is read below. No decision falls between the read and the stop.
            self.store.claim_run(session, run_id)
            stored = {row.action_id: row for row in self.store.actions(incident_id)}
            for action in move.actions:
                action_id = action["id"]
                row = stored.get(action_id)
                if row is not None and row.status in DECLINED:
                    declined[row.status].append(action_id)  # decided by a human: not approved, not waiting
                    continue
                if not covers(move.policy, action):
                    approvals.append({"action_id": action_id, "approved_by": f"policy ({move.policy.value})"})
                    continue
                if row is not None and row.approved_by:
                    approval = {"action_id": action_id, "approved_by": row.approved_by}
                    if row.approved_at is not None:
                        approval["approved_at"] = row.approved_at.isoformat()
                    approvals.append(approval)
                    continue
                actor = None
                if covers(options.grant, action):
                    actor = f"cli (--approve {options.grant.value})"
                elif options.execute and self.approver is not None and self.approver(action):
                    actor = "operator (interactive)"
                if actor is None:
                    pending.append(action)
                    continue
                approvals.append({"action_id": action_id, "approved_by": actor, "approved_at": at.isoformat()})
                self._approve(session, incident_id, action, actor, at)
            if pending and (options.execute or options.hold_for_approval):
                for action in pending:
                    self.store.upsert_action(session, incident_id, action["id"], "awaiting_approval")
                    self._event(
                        session,
                        incident_id,
                        TimelineKind.NOTE,
                        "engine",
                        f"action {action['id']} ({action.get('risk')}) awaits approval",
                        {"action_id": action["id"]},
                        at,
                        f"awaiting:{action['id']}",
                    )
                self.store.swap_run_status(session, run_id, "running", "waiting_approval")  # not a cancelled one
                return pending
            self.store.record_step(
                session,
                run_id,
                {
                    "key": gate_key(move.phase, move.step),
                    "phase_id": move.phase.id,
                    "kind": "gate",
                    "agent": move.step.agent,
                    "status": "succeeded",
                    "attempts": 1,
                    "started_at": at,
                    "finished_at": at,
                    "error": None,
                    "result": {
                        "policy": move.policy.value,
                        "approved": [a["action_id"] for a in approvals],
                        "approvals": approvals,
                        "not_approved": [a["id"] for a in pending],
                        **declined,
                        "mode": "execute" if options.execute else "dry-run",
                    },
                },
            )
        return []

    def _approve(self, session: Session, incident_id: str, action: dict[str, Any], actor: str, at: datetime) -> None:
        self.store.upsert_action(session, incident_id, action["id"], "approved", approved_by=actor, approved_at=at)
        self.store.audit(session, incident_id, action["id"], "approved", actor, at, {"risk": action.get("risk")})
        self._event(
            session,
            incident_id,
            TimelineKind.ACTION_APPROVED,
            actor,
            f"approved: {action.get('title', action['id'])}",
            {"action_id": action["id"], "risk": action.get("risk")},
            at,
            f"approved:{action['id']}",
        )

    def cancel(self, incident_id: str, actor: str, reason: str, at: datetime | None = None) -> str:
        """A human stops the incident's investigation: its latest run is marked cancelled (final)
        with an event on the timeline, in one transaction. A run executing stops at its next step
        boundary; one queued or waiting at a gate never goes on. Returns the run's id."""
        run = self.store.latest_run(incident_id)
        if run.status not in ("running", QUEUED, "waiting_approval"):
            raise InputError(f"the run of {incident_id} is {run.status}: there is nothing to cancel")
        at = at or self.decision_time(incident_id)
        with self.store.transaction() as session:
            self.store.set_run_status(session, run.id, CANCELLED, finished=True)
            self._event(
                session,
                incident_id,
                TimelineKind.CANCELLED,
                actor,
                f"investigation cancelled by {actor}" + (f" — {reason}" if reason else ""),
                {"run_id": run.id, "previous_status": run.status, "reason": reason},
                at,
                f"{run.id}:cancelled",
            )
        return run.id

    def fail(self, run_id: str, reason: str, data: dict[str, Any]) -> RunResult:
        """The run cannot go on (what it reads is not there): it ends `failed`, with the reason on
        the timeline, in one transaction. The incident stays open for a human; a restart does not
        take the run up again. A cancelled run stays cancelled."""
        row = self.store.get_run(run_id)
        options = RunOptions.model_validate(row.options)
        at = Clock(clock_origin(self.store.timeline(row.incident_id)) if options.replay_clock else None).now()
        with self.store.transaction() as session:
            self.store.claim_run(session, run_id)
            if self.store.get_run(run_id).status == CANCELLED:  # a human's cancel stands
                return RunResult(row.incident_id, run_id, CANCELLED, [])
            self.store.set_run_status(session, run_id, FAILED, finished=True)
            self._event(
                session,
                row.incident_id,
                TimelineKind.RUN_FAILED,
                "engine",
                f"workflow run failed: {reason}",
                {"run_id": run_id, "error": reason, **data},
                at,
                f"{run_id}:failed",
            )
        return RunResult(row.incident_id, run_id, FAILED, [])

    def rerun(
        self, incident_id: str, actor: str, reason: str, source: SourceSpec | None = None, at: datetime | None = None
    ) -> str:
        """A human runs a failed investigation again (its sources answer now): a new run of the
        same workflow with the same options (`source` replacing what it reads), queued, with a
        `rerun` event naming who and why, in one transaction. The failed run stays as it ended,
        its events on the timeline. Returns the new run's id for whatever drives runs; an
        InputError when the incident's latest run did not fail."""
        failed = self.store.latest_run(incident_id)
        at = at or self.decision_time(incident_id)
        options = RunOptions.model_validate(failed.options)
        if source is not None:
            options = options.model_copy(update={"source": source})
        with self.store.transaction() as session:
            self.store.claim_run(session, failed.id)  # two re-runs of one failure are serialised
            run_id = self.store.create_run(
                session, incident_id, failed.workflow, failed.spec, options.model_dump(mode="json")
            )
            self.store.set_run_status(session, run_id, QUEUED)
            # the event's key is the compare-and-set: a failure is run again once
            recorded = failed.status == FAILED and self._event(
                session,
                incident_id,
                TimelineKind.RERUN,
                actor,
                f"investigation run again by {actor}" + (f" — {reason}" if reason else ""),
                {"run_id": run_id, "failed_run_id": failed.id, "reason": reason},
                at,
                f"{failed.id}:rerun",
            )
            if not recorded:  # rolled back with the new run
                raise InputError(f"the run of {incident_id} is {failed.status}: only a failed run can be run again")
        return run_id

    def approve(self, incident_id: str, action_id: str, actor: str, at: datetime | None = None) -> str | None:
        """Record a human approval given after the fact (`warroom approve`, the API); `at` in
        incident time (default: `decision_time`). Returns the run it queued, if one waited at its gate."""
        row = self._undecided(incident_id, action_id, "approve")
        at = at or self.decision_time(incident_id)
        return self._decision(
            incident_id, lambda session: self._approve(session, incident_id, {"id": action_id, **row.data}, actor, at)
        )

    def reject(
        self, incident_id: str, action_id: str, actor: str, reason: str, at: datetime | None = None
    ) -> str | None:
        """A human says no (`warroom reject`, the API): the action is never taken; the run goes on
        with the next action, or ends with the rejection on record. Returns the run it queued, if any."""
        return self._decline(incident_id, action_id, actor, reason, "rejected", at)

    def skip(self, incident_id: str, action_id: str, actor: str, reason: str, at: datetime | None = None) -> str | None:
        """A human sets the action aside (`warroom skip`): the run goes on without it."""
        return self._decline(incident_id, action_id, actor, reason, "skipped", at)

    def _decision(self, incident_id: str, record: Callable[[Session], None]) -> str | None:
        """Record a human decision in one transaction that claims the incident's run first (the
        run stopping at its gate claims it too, so the two are serialised). A run waiting at its
        gate becomes queued in the same transaction, by compare-and-set: the decision is durable
        and the run's wakeup with it. Returns the queued run's id: the caller hands it to whatever
        drives runs. A run still running reads the decision when it reaches its gate."""
        try:
            run_id: str | None = self.store.latest_run(incident_id).id
        except NotFoundError:
            run_id = None
        with self.store.transaction() as session:
            if run_id is not None:
                self.store.claim_run(session, run_id)
            record(session)
            if run_id is None:
                return None
            return run_id if self.store.swap_run_status(session, run_id, "waiting_approval", QUEUED) else None

    def _undecided(self, incident_id: str, action_id: str, verb: str) -> Any:
        """The action's row, if a human may still decide about it."""
        known = {row.action_id: row for row in self.store.actions(incident_id)}
        row = known.get(action_id)
        if row is None:
            choices = ", ".join(sorted(known)) or "none proposed yet"
            raise NotFoundError(f"incident {incident_id} has no action '{action_id}' (actions: {choices})")
        if row.status in DECLINED:
            raise InputError(f"action '{action_id}' was already {row.status}; cannot {verb} it now")
        if row.status in TAKEN:
            raise InputError(f"action '{action_id}' was already taken ({row.status}); too late to {verb} it")
        return row

    def _decline(
        self, incident_id: str, action_id: str, actor: str, reason: str, status: str, at: datetime | None
    ) -> str | None:
        verb = {"rejected": "reject", "skipped": "skip"}[status]
        if not reason.strip():
            raise InputError(f"a reason is needed to {verb} an action (it goes to the audit log)", field="--reason")
        row = self._undecided(incident_id, action_id, verb)
        when = at or self.decision_time(incident_id)

        def record(session: Session) -> None:
            self.store.upsert_action(session, incident_id, action_id, status)
            self.store.audit(session, incident_id, action_id, status, actor, when, {"reason": reason})
            self._event(
                session,
                incident_id,
                DECLINED[status],
                actor,
                f"{status}: {row.data.get('title', action_id)} — {reason}",
                {"action_id": action_id, "reason": reason, "risk": row.data.get("risk")},
                when,
                f"{status}:{action_id}",
            )

        return self._decision(incident_id, record)

    def _run_steps(
        self,
        run_id: str,
        incident_id: str,
        spec: WorkflowSpec,
        move: RunSteps,
        recorded: dict[str, Recorded],
        options: RunOptions,
        runner: StepRunner,
        clock: Clock,
    ) -> None:
        ctx = fold_context(spec, recorded)
        base_context = {
            **ctx.for_agents(),
            "incident_record": self.store.get_incident(incident_id).model_dump(mode="json"),
        }
        # the stakeholder updates the incident already had, whoever sent them (between the phases the
        # service's cadence keeper sends its own): the next update is numbered after them
        sent = updates_sent(self.store.timeline(incident_id, kinds=(TimelineKind.COMMUNICATION_SENT.value,)))
        tasks = []
        for step in move.steps:
            key = step_key(move.phase, step)
            approved = ctx.approvals.get(gate_key(move.phase, step))
            params = {
                **step.params,
                "execute": options.execute,
                "out_dir": options.out_dir,
                "phase": move.phase.id,
                "now": clock.now().isoformat(),  # the incident clock at the step's start
                "updates_sent": sent,
            }
            if approved is not None:
                params["approved_actions"] = approved
            tasks.append(StepTask(key, step.agent, incident_id, base_context, params, step.timeout_s, step.retries))
        self.progress.steps_started(move.phase, [(t.key, t.agent) for t in tasks])
        wall_start = datetime.now(UTC)
        incident_start = clock.now()
        for outcome in runner.run(tasks):
            # map the runner's wall-clock stamps onto incident time
            outcome.started_at = incident_start + (outcome.started_at - wall_start)
            outcome.finished_at = incident_start + (outcome.finished_at - wall_start)
            self._commit_step(run_id, incident_id, move.phase, outcome, tasks)
            self.progress.step_finished(outcome)

    def _commit_step(
        self, run_id: str, incident_id: str, phase: PhaseSpec, outcome: StepOutcome, tasks: list[StepTask]
    ) -> None:
        agent = next(t.agent for t in tasks if t.key == outcome.key)
        report = AgentReport.model_validate(outcome.report) if outcome.report else None
        at = outcome.finished_at
        with self.store.transaction() as session:
            self.store.record_step(
                session,
                run_id,
                {
                    "key": outcome.key,
                    "phase_id": phase.id,
                    "kind": "agent",
                    "agent": agent,
                    "status": outcome.status,
                    "attempts": outcome.attempts,
                    "started_at": outcome.started_at,
                    "finished_at": outcome.finished_at,
                    "error": outcome.error,
                    "result": outcome.report or {},
                },
            )
            if report is None:
                self._event(
                    session,
                    incident_id,
                    TimelineKind.STEP_FAILED,
                    agent,
                    f"{agent} {outcome.status.replace('_', ' ')}: {outcome.error}",
                    {"step": outcome.key, "attempts": outcome.attempts},
                    at,
                    f"{run_id}:failed:{outcome.key}",
                )
                return
            self._record_report(session, run_id, incident_id, outcome.key, report, at)

    def _record_report(
        self, session: Session, run_id: str, incident_id: str, key: str, report: AgentReport, at: datetime
    ) -> None:
        agent = report.agent
        # The report's timeline events, in order, added together at the end: their dedupe keys are
        # looked up in one query (a report carries dozens of events).
        events: list[tuple[TimelineEvent, str | None]] = []

        def event(kind: TimelineKind, summary: str, data: dict[str, Any], dedupe_key: str) -> None:
            events.append((TimelineEvent(at=at, kind=kind, source=agent, summary=summary, data=data), dedupe_key))

        self._apply_incident_update(session, incident_id, report, event)
        for finding in report.findings:
            event(
                TimelineKind.FINDING,
                f"{finding.title} (confidence {finding.confidence:.2f})",
                {"finding_id": finding.id, "service": finding.service, "kind": finding.kind},
                f"{run_id}:finding:{key}:{finding.id or finding.title}",
            )
        for action in report.actions:
            proposal = self.store.propose_action(session, incident_id, action.id, action.model_dump(mode="json"))
            if proposal == "kept":
                continue
            verb = "proposed" if proposal == "new" else "revised"
            self.store.audit(session, incident_id, action.id, verb, agent, at, {"risk": action.risk.value})
            event(
                TimelineKind.ACTION_PROPOSED,
                f"{verb} ({action.risk.value} risk, {action.priority}): {action.title}",
                {"action_id": action.id, "kind": action.kind, "target": action.target, "revision": verb == "revised"},
                f"proposed:{action.id}" if verb == "proposed" else f"{run_id}:revised:{key}:{action.id}",
            )
        declined = (
            {row.action_id for row in self.store.actions(incident_id) if row.status in DECLINED}
            if report.outcomes
            else set()
        )
        for outcome in report.outcomes:
            kind = TimelineKind.ACTION_VERIFIED if outcome.verified is not None else TimelineKind.ACTION_EXECUTED
            if outcome.action_id not in declined:  # a human's no stands; the executor only passed it by
                self.store.upsert_action(session, incident_id, outcome.action_id, outcome.status)
            self.store.audit(
                session,
                incident_id,
                outcome.action_id,
                outcome.status,
                agent,
                at,
                {"detail": outcome.detail, **outcome.data},
            )
            summary = f"{outcome.action_id}: {outcome.status}" + (f" — {outcome.detail}" if outcome.detail else "")
            data = {"action_id": outcome.action_id, "status": outcome.status, "verified": outcome.verified}
            event(kind, summary, data, f"{run_id}:outcome:{key}:{outcome.action_id}:{outcome.status}")
        events.extend((item, f"{run_id}:event:{key}:{index}") for index, item in enumerate(report.timeline))
        self.store.add_events(session, incident_id, events)

    def _apply_incident_update(
        self, session: Session, incident_id: str, report: AgentReport, event: Callable[..., None]
    ) -> None:
        update = report.outputs.get("incident")
        if not isinstance(update, dict):
            return
        incident = self.store.get_incident(incident_id, session)
        changes = {k: update[k] for k in INCIDENT_FIELDS if k in update and update[k] is not None}
        if not changes:
            return
        merged = Incident.model_validate({**incident.model_dump(mode="json"), **changes})
        self.store.save_incident(session, merged)
        if merged.severity != incident.severity or merged.severity_rule != incident.severity_rule:
            event(
                TimelineKind.NOTE,
                f"severity {merged.severity.value} ({merged.severity_rule})",
                {"severity": merged.severity.value, "rule": merged.severity_rule},
                f"severity:{merged.severity.value}:{merged.severity_rule}",
            )

    def _finish(self, run_id: str, incident_id: str, recorded: dict[str, Recorded], clock: Clock) -> RunResult:
        failed = [k for k, r in recorded.items() if r.status != "succeeded"]
        status = "completed_with_failures" if failed else "succeeded"
        with self.store.transaction() as session:
            self.store.set_run_status(session, run_id, status, finished=True)
            self._event(
                session,
                incident_id,
                TimelineKind.NOTE,
                "engine",
                f"workflow run {status.replace('_', ' ')}" + (f": {', '.join(failed)} failed" if failed else ""),
                {"run_id": run_id, "failed": failed},
                clock.now(),
                f"{run_id}:finished",
            )
        return RunResult(incident_id, run_id, status, [])
