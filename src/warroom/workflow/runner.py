"""Runs agent steps concurrently, off the main process, with per-step timeout and retry.

Agents run in a pool of worker processes (spawned, not forked: the columnar libraries keep
thread pools that do not survive a fork), so CPU-heavy analysis in parallel branches really runs
at the same time. Each worker reads the incident's telemetry once. A thread runner with the same
interface serves benchmarks of the engine itself and agents that only wait on I/O.

A worker never outlives the process that started it: a SIGKILLed `warroom respond` cannot shut
its pool down, so each worker arms the kernel's parent-death signal (Linux) and watches its
parent's pid (everywhere). With the workers gone, multiprocessing's resource tracker (which holds
no other reference) sees its pipe close and exits too.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warroom import parent_death
from warroom.agents.base import AgentContext
from warroom.agents.registry import builtin, resolve
from warroom.sources.contract import SourceSpec
from warroom.sources.incident_telemetry import IncidentTelemetry
from warroom.sources.registry import read_spec


@dataclass(frozen=True)
class StepTask:
    key: str
    agent: str
    incident_id: str
    context: dict[str, Any]
    params: dict[str, Any]
    timeout_s: float
    retries: int


@dataclass
class StepOutcome:
    key: str
    status: str  # succeeded | failed | timed_out
    started_at: datetime
    finished_at: datetime
    attempts: int
    report: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class _Attempt:
    task: StepTask
    number: int
    first_started: datetime
    started_mono: float = field(default_factory=time.monotonic)
    pool: Executor | None = None


_OPENED: dict[str, IncidentTelemetry] = {}


def _telemetry(source: SourceSpec) -> IncidentTelemetry:
    key = source.model_dump_json()
    if key not in _OPENED:
        _OPENED.clear()  # one incident per worker at a time; do not hoard memory
        _OPENED[key] = read_spec(source)
    return _OPENED[key]


def share_telemetry(source: SourceSpec, telemetry: IncidentTelemetry) -> None:
    """Hand telemetry already read to steps that run in this process (the thread runner)."""
    _OPENED.clear()
    _OPENED[source.model_dump_json()] = telemetry


PARENT_POLL_S = 0.5


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent_pid:  # re-parented: the parent is gone
            os._exit(1)


def die_with_parent(parent_pid: int) -> None:
    """End this process as soon as `parent_pid` dies.

    Linux delivers SIGKILL on the parent's death once PR_SET_PDEATHSIG is armed (strictly: on the
    death of the parent *thread* that started the worker; pools live and die within one call on one
    thread, so that is the same here). The watchdog thread is the portable fallback, and also
    covers a parent that died before the signal was armed."""
    parent_death.arm()
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watchdog", daemon=True).start()


def _worker_init(source: SourceSpec | None, parent_pid: int) -> None:
    die_with_parent(parent_pid)
    # Ctrl-C reaches the whole process group; the parent decides what happens to running steps.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Workers may start before the main process has validated the source: bad input is reported
    # there, once, as a one-line error, so a worker stays quiet and fails on first use.
    if source is not None:
        with contextlib.suppress(Exception):
            _telemetry(source)
    # Importing the agents and their analyses costs seconds; paid here, a warm pool's first step
    # (the service's first answer to an alert) does not wait for it.
    builtin()


def _ready() -> int:
    return os.getpid()


def _open(source: SourceSpec) -> None:
    _telemetry(source)  # kept for this worker's steps


def execute_agent(source: SourceSpec, task: StepTask) -> dict[str, Any]:
    """Run one agent on the incident's telemetry (in whatever process this is) → AgentReport as JSON."""
    agent = resolve(task.agent)()
    ctx = AgentContext(
        telemetry=_telemetry(source), incident_id=task.incident_id, context=task.context, params=task.params
    )
    return agent.run(ctx).model_dump(mode="json")


def _describe(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" at {Path(last[0].filename).name}:{last[0].lineno}" if last else ""
    return f"{exc.__class__.__name__}: {exc}{where}"


class StepRunner:
    """Submits tasks to an executor and yields each outcome as soon as it is final."""

    def __init__(self, source: SourceSpec | None, *, processes: bool = True, workers: int = 2) -> None:
        # None: a pool started ahead of any run (agents imported), each run's source given by `use`
        self.source = source
        self.processes = processes
        self.workers = max(1, workers)
        self._executor: Executor | None = None

    def use(self, source: SourceSpec) -> None:
        """Serve another run's source on the same warm pool: each worker reads it on its first
        step (once per run) instead of the pool being spawned again."""
        self.source = source

    def open(self, source: SourceSpec) -> None:
        """Serve `source` and read it now, in every worker at once (each keeps it for its steps):
        a source that cannot be read raises its InputError here, before any step starts, and the
        first step does not wait for a read."""
        self.use(source)
        if not self.processes:
            share_telemetry(source, read_spec(source))
            return
        for read in [self._pool().submit(_open, source) for _ in range(self.workers)]:
            read.result()

    def _served(self) -> SourceSpec:
        if self.source is None:
            raise RuntimeError("the runner serves no source yet (use() gives it one)")
        return self.source

    def _pool(self) -> Executor:
        if self._executor is None:
            if self.processes:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_worker_init,
                    initargs=(self.source, os.getpid()),
                )
            else:
                self._executor = ThreadPoolExecutor(max_workers=self.workers)
        return self._executor

    def warm(self) -> None:
        """Start the workers now, so they import and read the telemetry while the caller works."""
        if self.processes:
            for _ in range(self.workers):
                self._pool().submit(_ready)

    def terminate(self) -> None:
        """Drop the pool now, killing its workers and whatever they run (a timed-out step, or every
        step when the run is interrupted); a later submit starts a fresh pool."""
        if self._executor is None:
            return
        if isinstance(self._executor, ProcessPoolExecutor):
            for process in list(getattr(self._executor, "_processes", {}).values()):
                process.kill()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def run(self, tasks: list[StepTask]) -> Iterator[StepOutcome]:
        running: dict[Future[dict[str, Any]], _Attempt] = {}
        abandoned = False
        source = self._served()

        def submit(attempt: _Attempt) -> None:
            attempt.started_mono = time.monotonic()
            attempt.pool = self._pool()
            try:
                future = attempt.pool.submit(execute_agent, source, attempt.task)
            except BrokenProcessPool:  # a worker died earlier: start a fresh pool and go on
                self.terminate()
                attempt.pool = self._pool()
                future = attempt.pool.submit(execute_agent, source, attempt.task)
            running[future] = attempt

        for task in tasks:
            submit(_Attempt(task, 1, datetime.now(UTC)))
        while running:
            deadline = min(a.started_mono + a.task.timeout_s for a in running.values())
            done, _ = wait(list(running), timeout=max(0.0, deadline - time.monotonic()), return_when=FIRST_COMPLETED)
            now_mono = time.monotonic()
            for future in done:
                attempt = running.pop(future)
                try:
                    report = future.result()
                except BrokenProcessPool as exc:
                    # a worker died (crash, OOM kill): the pool is unusable; replace it before retrying
                    if attempt.pool is self._executor:
                        self.terminate()
                    outcome = self._retry_or_fail(attempt, "failed", f"worker process died ({exc})", submit)
                except Exception as exc:
                    outcome = self._retry_or_fail(attempt, "failed", _describe(exc), submit)
                else:
                    outcome = StepOutcome(
                        attempt.task.key,
                        "succeeded",
                        attempt.first_started,
                        datetime.now(UTC),
                        attempt.number,
                        report,
                    )
                if outcome is not None:
                    yield outcome
            for future, attempt in list(running.items()):
                if future not in done and now_mono - attempt.started_mono >= attempt.task.timeout_s:
                    running.pop(future)
                    future.cancel()
                    abandoned = True
                    message = f"timed out after {attempt.task.timeout_s:g} s"
                    outcome = self._retry_or_fail(attempt, "timed_out", message, submit)
                    if outcome is not None:
                        yield outcome
        if abandoned:
            self.terminate()

    @staticmethod
    def _retry_or_fail(attempt: _Attempt, status: str, error: str, submit: Any) -> StepOutcome | None:
        if attempt.number <= attempt.task.retries:
            submit(_Attempt(attempt.task, attempt.number + 1, attempt.first_started))
            return None
        return StepOutcome(
            attempt.task.key, status, attempt.first_started, datetime.now(UTC), attempt.number, error=error
        )
