"""Group commit: the service's writes go through one writer thread that runs every job waiting
for it in ONE transaction and wakes each job's caller only after that transaction committed.

An alert storm then costs one commit per batch rather than one per request, with the durability
of "stored before the 2xx" unchanged: a caller's future resolves after COMMIT returned. Jobs are
functions of the batch's session; when one of them fails the batch is rolled back and every job
runs again alone, so a bad job fails only its own caller. One writer also means concurrent
intakes no longer race each other for an incident number or an alert occurrence.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warroom.store.repository import Store

T = TypeVar("T")

# A batch closes when it holds this many jobs or its first job has waited this long. The wait is
# a small share of the p99 target (50 ms) and lets the requests that arrive meanwhile share the
# commit; under no load a lone job waits only for the queue to be empty, never for the window.
MAX_JOBS = 512
LINGER_S = 0.002
# Another process on the same store (a second server, the CLI) may take a unique key first.
ATTEMPTS = 5


@dataclass(frozen=True)
class Ahead:
    """What a job's work will read, looked up once for its whole batch: before any job runs,
    `look_up(session, items)` is called once with the `item` of every job of the batch that
    names the same `look_up` (the intake: every alert's stored occurrence, one statement)."""

    look_up: Callable[[Session, list[Any]], None]
    item: Any


@dataclass
class _Job:
    work: Callable[[Session], Any]
    done: Future[Any] | asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop | None = None  # where `done` is settled, for an awaiting caller
    ahead: Ahead | None = None


class GroupCommitter:
    def __init__(self, store: Store, *, max_jobs: int = MAX_JOBS, linger_s: float = LINGER_S) -> None:
        self.store = store
        self.max_jobs = max_jobs
        self.linger_s = linger_s
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="warroom-writer", daemon=True)
        self._closed = False
        self.batches = 0  # commits made, and jobs committed in them (the service's /metrics)
        self.jobs = 0
        self._thread.start()

    def submit(self, work: Callable[[Session], T]) -> Future[T]:
        if self._closed:
            raise RuntimeError("the store's writer is closed")
        done: Future[T] = Future()
        self._queue.put(_Job(work, done))
        return done

    def waiting(self) -> int:
        return self._queue.qsize()

    async def run(self, work: Callable[[Session], T], ahead: Ahead | None = None) -> T:
        """Run `work` in the next batch; returns its result once the batch committed."""
        if self._closed:
            raise RuntimeError("the store's writer is closed")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(work, done, loop, ahead))
        return await done

    def close(self) -> None:
        """Commit what is queued, then stop the writer."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout=30)

    # -- the writer thread -------------------------------------------------------------------

    def _take(self) -> tuple[list[_Job], bool]:
        first = self._queue.get()
        if first is None:
            return [], True
        jobs = [first]
        deadline = time.monotonic() + self.linger_s
        while len(jobs) < self.max_jobs:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    job = self._queue.get(timeout=left)
                except queue.Empty:
                    break
            if job is None:
                self._commit(jobs)
                return [], True
            jobs.append(job)
        return jobs, False

    def _loop(self) -> None:
        while True:
            jobs, stop = self._take()
            if jobs:
                self._commit(jobs)
            if stop:
                return

    def _commit(self, jobs: list[_Job], attempt: int = 1) -> None:
        try:
            with self.store.transaction() as session:
                _look_ahead(session, jobs)
                results = [job.work(session) for job in jobs]
        except Exception as exc:
            if len(jobs) > 1:  # rolled back as a whole: each again in its own transaction
                for job in jobs:
                    self._commit([job])
            elif isinstance(exc, IntegrityError) and attempt < ATTEMPTS:
                self._commit(jobs, attempt + 1)  # another process took the same unique key first
            else:
                _settle([(jobs[0], _Failed(exc))])  # the caller's request answers with it
            return
        self.batches += 1
        self.jobs += len(jobs)
        _settle(list(zip(jobs, results, strict=True)))


def _look_ahead(session: Session, jobs: list[_Job]) -> None:
    shared: dict[Callable[[Session, list[Any]], None], list[Any]] = {}
    for job in jobs:
        if job.ahead is not None:
            shared.setdefault(job.ahead.look_up, []).append(job.ahead.item)
    for look_up, items in shared.items():
        look_up(session, items)


@dataclass(frozen=True)
class _Failed:
    error: Exception


def _settle(outcomes: list[tuple[_Job, Any]]) -> None:
    """Hand each job its result (a failure's exception is raised to its caller). Callers on an
    event loop are woken with one call per loop and batch, not one per job: each wake-up from
    another thread writes to the loop's self-pipe, which cost the writer a tenth of its time in
    a storm."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, Any]]] = {}
    for job, outcome in outcomes:
        if job.loop is None:
            _resolve(job.done, outcome)
        else:
            by_loop.setdefault(job.loop, []).append((job, outcome))
    for loop, waiting in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody awaits these any more
            loop.call_soon_threadsafe(_resolve_all, waiting)


def _resolve_all(waiting: list[tuple[_Job, Any]]) -> None:
    for job, outcome in waiting:
        _resolve(job.done, outcome)


def _resolve(done: Future[Any] | asyncio.Future[Any], outcome: Any) -> None:
    if done.done():  # its caller gave up (a client that went away): committed all the same
        return
    if isinstance(outcome, _Failed):
        done.set_exception(outcome.error)
    else:
        done.set_result(outcome)
