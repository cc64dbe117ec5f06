"""The local executor: one run at a time, status from memory then the store, cancel before start,
and recovery of the runs a dead process left running (with a `resumed` event each)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from warroom.incident import Incident, Severity, TimelineEvent, TimelineKind
from warroom.sources.contract import BundleSpec
from warroom.store.repository import Store
from warroom.workflow.engine import Engine, RunOptions, RunResult
from warroom.workflow.executor import LocalExecutor
from warroom.workflow.runner import StepRunner


def _run(store: Store, title: str) -> str:
    with store.transaction() as session:
        incident = store.add_incident(
            session, Incident(id="", title=title, severity=Severity.P2, detected_at=datetime(2024, 5, 12, tzinfo=UTC))
        )
        options = RunOptions(source=BundleSpec(path="/nonexistent"), processes=False, workers=1)
        return store.create_run(session, incident.id, "wf", {}, options.model_dump(mode="json"))


def _awaiting(store: Store, session: Session, incident_id: str, *action_ids: str) -> None:
    """High-risk actions waiting at a gate for a human."""
    for action_id in action_ids:
        data = {"id": action_id, "title": action_id, "risk": "high"}
        store.upsert_action(session, incident_id, action_id, "awaiting_approval", data)


def test_queue_status_cancel_and_recover(store: Store) -> None:
    release = threading.Event()
    driven: list[str] = []

    def drive(run_id: str, runner: StepRunner) -> RunResult:
        driven.append(run_id)
        release.wait(10)
        with store.transaction() as session:
            store.set_run_status(session, run_id, "succeeded", finished=True)
        return RunResult("", run_id, "succeeded", [])

    first, second, third = (_run(store, f"incident {n}") for n in range(3))
    executor = LocalExecutor(store, drive, workers=1)
    try:
        executor.submit(first)
        executor.submit(second)
        executor.submit(second)  # a run is queued once
        while not driven:
            threading.Event().wait(0.01)
        assert executor.status(first) == "running" and executor.status(second) == "queued"
        assert executor.cancel(second) and not executor.cancel(first)
        assert store.get_run(second).status == "cancelled"
        release.set()
        resumed = executor.recover()  # `third` was left "running" in the store by nobody
        assert resumed == [third]
        for _ in range(500):
            if store.get_run(third).status == "succeeded":
                break
            threading.Event().wait(0.01)
        assert driven == [first, third]
        events = store.timeline(store.get_run(third).incident_id)
        assert [e.kind.value for e in events] == ["resumed"]
    finally:
        executor.close()


def test_a_decision_given_later_is_stamped_in_the_replayed_runs_incident_time(store: Store) -> None:
    """`warroom approve` / `reject` on a replayed run: the decision lands where the run's clock
    stands (its last engine event), not at today's wall clock."""
    run_id = _run(store, "replayed")
    incident_id = store.get_run(run_id).incident_id
    gate = datetime(2024, 5, 12, 18, 52, tzinfo=UTC)
    with store.transaction() as session:
        store.add_event(
            session,
            incident_id,
            TimelineEvent(at=gate, kind=TimelineKind.PHASE_STARTED, source="engine", summary="mitigation"),
        )
        _awaiting(store, session, incident_id, "a1", "a2")
    engine = Engine(store)
    engine.approve(incident_id, "a1", "ops")
    engine.reject(incident_id, "a2", "ops", "one change at a time")
    assert [(a.event, a.at) for a in store.audit_log(incident_id)] == [("approved", gate), ("rejected", gate)]


def test_a_decision_queues_only_a_run_waiting_at_its_gate(store: Store) -> None:
    """The wakeup is a compare-and-set on the run's row, in the decision's transaction: a run
    waiting at its gate becomes `queued` (and is handed back); a running one is left alone (it
    reads the decision at its gate); a cancelled one stays cancelled."""
    run_id = _run(store, "gated")
    incident_id = store.get_run(run_id).incident_id
    with store.transaction() as session:
        _awaiting(store, session, incident_id, "a1", "a2", "a3")
    engine = Engine(store)
    assert engine.approve(incident_id, "a1", "ops") is None  # still "running": nothing to wake
    assert store.get_run(run_id).status == "running"
    with store.transaction() as session:
        store.set_run_status(session, run_id, "waiting_approval")
    assert engine.reject(incident_id, "a2", "ops", "not now") == run_id
    assert store.get_run(run_id).status == "queued"
    engine.cancel(incident_id, "ops", "duplicate")
    assert engine.approve(incident_id, "a3", "ops") is None
    assert store.get_run(run_id).status == "cancelled"
