"""Where runs execute: a small interface (submit a run id, ask its status, cancel it) and a local
implementation on the engine and one warm worker pool.

The durable state is the store's `runs` table, which the engine already resumes from: a run is
submitted by id, and after a crash `recover()` submits again every run the store still shows as
running. A multi-node executor (Temporal running the same pure interpreter) replaces
`LocalExecutor` behind the same interface; this module is not a queue that survives anything.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from warroom.incident import TimelineEvent, TimelineKind
from warroom.sources.contract import SourceSpec
from warroom.store.repository import Store
from warroom.workflow.engine import CANCELLED, QUEUED, RunOptions, RunResult
from warroom.workflow.runner import StepRunner

log = logging.getLogger(__name__)

# What a run's row says while it is executing (or its process died) or decided and waiting to be
# picked up: the runs a restart submits again.
UNFINISHED = ("running", QUEUED)

# Drives one run to its end or its next approval gate on the given runner (the application's
# `continue_run`: engine, then reports).
Drive = Callable[[str, StepRunner], RunResult]


class RunExecutor(Protocol):
    def submit(self, run_id: str) -> None: ...
    def status(self, run_id: str) -> str: ...
    def cancel(self, run_id: str) -> bool: ...
    def recover(self) -> list[str]: ...
    def close(self) -> None: ...


class LocalExecutor:
    """Runs one workflow at a time on a dispatcher thread; its steps run in a warm process pool.

    The pool is spawned once and kept: each run hands it its source, which the workers read once
    per run, so an incident's investigation starts without spawning or importing anything."""

    def __init__(self, store: Store, drive: Drive, workers: int = 2) -> None:
        self.store = store
        self.drive = drive
        self.workers = workers
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._queued: set[str] = set()
        self._current: str | None = None
        self._lock = threading.Lock()
        self._runner: StepRunner | None = None
        self._thread = threading.Thread(target=self._loop, name="warroom-runs", daemon=True)
        self._thread.start()

    # -- the interface ---------------------------------------------------------------------

    def submit(self, run_id: str) -> None:
        with self._lock:
            if run_id in self._queued:
                return
            self._queued.add(run_id)
        self._queue.put(run_id)

    def status(self, run_id: str) -> str:
        with self._lock:
            if run_id == self._current:
                return "running"
            if run_id in self._queued:
                return "queued"
        return self.store.get_run(run_id).status

    def cancel(self, run_id: str) -> bool:
        """Stop a run: a queued one never starts (True). One in progress is not interrupted here
        (False): it stops at its next step boundary once the store marks it cancelled
        (`Engine.cancel`), which a run also reads when it is resumed after a restart."""
        with self._lock:
            if run_id not in self._queued:
                return False
            self._queued.discard(run_id)
        with self.store.transaction() as session:
            self.store.set_run_status(session, run_id, CANCELLED, finished=True)
        return True

    def recover(self) -> list[str]:
        """Resubmit every run the store shows as unfinished (the process that ran it died)."""
        stamp = datetime.now(UTC)
        with self._lock:
            mine = {*self._queued, self._current}
        found = [run for run in self.store.runs_with_status(UNFINISHED) if run.id not in mine]
        for run in found:
            with self.store.transaction() as session:
                self.store.add_event(
                    session,
                    run.incident_id,
                    TimelineEvent(
                        at=self._last_event_time(run.incident_id) or stamp,
                        kind=TimelineKind.RESUMED,
                        source="engine",
                        summary=f"workflow run resumed after a restart of the service ({run.workflow})",
                        data={"run_id": run.id, "restarted_at": stamp.isoformat()},
                    ),
                    dedupe_key=f"{run.id}:resumed:{stamp.isoformat()}",
                )
            self.submit(run.id)
        return [run.id for run in found]

    def warm(self, source: SourceSpec | None = None) -> None:
        """Start the worker pool now (agents imported, `source` read if given: a bundle the routes
        replay), so the first alert finds it warm whatever its route reads (a live route's
        snapshot exists only once its incident opened)."""
        self._runner_for(source).warm()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    # -- the dispatcher --------------------------------------------------------------------

    def _last_event_time(self, incident_id: str) -> datetime | None:
        # Incident time (a replay's clock) continues from the last event, never the wall clock.
        events = self.store.timeline(incident_id)
        return max(e.at for e in events) if events else None

    def _runner_for(self, source: SourceSpec | None) -> StepRunner:
        if self._runner is None:
            self._runner = StepRunner(source, processes=True, workers=self.workers)
        elif source is not None:
            self._runner.use(source)
        return self._runner

    def _loop(self) -> None:
        while True:
            run_id = self._queue.get()
            if run_id is None:
                return
            with self._lock:
                if run_id not in self._queued:  # cancelled while it waited
                    continue
                self._queued.discard(run_id)
                self._current = run_id
            try:
                run = self.store.get_run(run_id)
                if run.status not in UNFINISHED:
                    continue  # cancelled (or ended) while it waited in the queue
                options = RunOptions.model_validate(run.options)
                self.drive(run_id, self._runner_for(options.source))
            except Exception:
                # The run stays "running" in the store: the next start (or submit) resumes it.
                log.exception("run %s stopped with an error", run_id)
            finally:
                with self._lock:
                    self._current = None
