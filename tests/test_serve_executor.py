"""The local executor: one run at a time, status from memory then the store, cancel before start,
and recovery of the runs a dead process left running (with a `resumed` event each)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from warroom.incident import Incident, Severity
from warroom.sources.contract import BundleSpec
from warroom.store.repository import Store
from warroom.workflow.engine import RunOptions, RunResult
from warroom.workflow.executor import LocalExecutor
from warroom.workflow.runner import StepRunner


def _run(store: Store, title: str) -> str:
    with store.transaction() as session:
        incident = store.add_incident(
            session, Incident(id="", title=title, severity=Severity.P2, detected_at=datetime(2024, 5, 12, tzinfo=UTC))
        )
        options = RunOptions(source=BundleSpec(path="/nonexistent"), processes=False, workers=1)
        return store.create_run(session, incident.id, "wf", {}, options.model_dump(mode="json"))


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
