"""The append-only audit journal of actions: what was proposed, approved, executed, verified, undone.

The mitigation loop writes every step here *before* it moves on, and asks `completed(action_id)`
before it acts, so a run resumed after a crash never repeats an action that was already executed.
The store-backed journal lives with the store; this module ships an in-memory and a JSON-Lines one.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field, ValidationError

from warroom.incident import ActionOutcome, TimelineEvent, TimelineKind
from warroom.redact import redact, redact_obj


class AuditStep(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    BLOCKED = "blocked"  # needs an approval it does not have
    STARTED = "started"  # written before a real change, so a crash mid-action is visible
    EXECUTED = "executed"
    DRY_RUN = "dry_run"
    VERIFIED = "verified"  # the system recovered after this action
    NOT_RECOVERED = "not_recovered"
    UNDONE = "undone"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    RECHECKED = "rechecked"  # one re-query of a live recovery check that waits for the system
    COMPLETED = "completed"  # the action's final outcome (data.outcome); the resume marker
    FINISHED = "finished"  # the loop's conclusion: recovered by which action, or exhausted


class AuditEvent(BaseModel):
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    action_id: str  # "" for loop-level events (FINISHED)
    kind: str = ""  # the action kind (kill_long_queries, restart, …)
    step: AuditStep
    actor: str = "warroom"  # who did it: an agent, a person (approvals), "warroom"
    detail: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    incident_id: str = ""  # set by a journal scoped to one incident (several may share a file)

    def redacted(self) -> AuditEvent:
        return self.model_copy(update={"detail": redact(self.detail), "data": redact_obj(self.data)})


@runtime_checkable
class ActionJournal(Protocol):
    def record(self, event: AuditEvent) -> None:
        """Append one event durably before returning."""

    def completed(self, action_id: str) -> ActionOutcome | None:
        """The final outcome of an action already taken in this run, if any."""

    def events(self) -> list[AuditEvent]:
        """Every event, in the order recorded."""


def _outcome_of(event: AuditEvent) -> ActionOutcome | None:
    if event.step is not AuditStep.COMPLETED or "outcome" not in event.data:
        return None
    try:
        return ActionOutcome.model_validate(event.data["outcome"])
    except ValidationError:
        return None


def started_without_outcome(journal: ActionJournal, action_id: str) -> bool:
    """True when an action was started but its outcome never recorded (the run died mid-action)."""
    started = False
    for event in journal.events():
        if event.action_id != action_id:
            continue
        if event.step is AuditStep.STARTED:
            started = True
        elif event.step is AuditStep.COMPLETED:
            started = False
    return started


def executed_without_outcome(journal: ActionJournal, action_id: str) -> AuditEvent | None:
    """The `executed` step of an action whose outcome was never recorded (the run stopped while
    its effect was being verified), or None."""
    found: AuditEvent | None = None
    for event in journal.events():
        if event.action_id != action_id:
            continue
        if event.step is AuditStep.STARTED or event.step is AuditStep.COMPLETED:
            found = None
        elif event.step is AuditStep.EXECUTED:
            found = event
    return found


class InMemoryJournal:
    """A journal in a list: for tests and for runs that keep the record elsewhere."""

    def __init__(self) -> None:
        self._events: list[AuditEvent] = []
        self._lock = threading.Lock()

    def record(self, event: AuditEvent) -> None:
        with self._lock:
            self._events.append(event.redacted())

    def completed(self, action_id: str) -> ActionOutcome | None:
        found = None
        for event in self.events():
            if event.action_id == action_id and (outcome := _outcome_of(event)) is not None:
                found = outcome
        return found

    def events(self) -> list[AuditEvent]:
        with self._lock:
            return list(self._events)


class JsonlJournal:
    """A journal in a JSON Lines file, one event per line, flushed and fsynced on every record.

    A torn last line (the process died mid-write) is ignored on reading; earlier lines are intact
    because the file is only ever appended to.
    """

    def __init__(self, path: str | Path, incident_id: str = "") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # With an incident id, this journal writes and sees only that incident's events, so a file
        # reused by another incident's run never makes its actions look already taken.
        self.incident_id = incident_id
        self._lock = threading.Lock()

    def record(self, event: AuditEvent) -> None:
        if self.incident_id:
            event = event.model_copy(update={"incident_id": self.incident_id})
        line = event.redacted().model_dump_json() + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def events(self) -> list[AuditEvent]:
        if not self.path.is_file():
            return []
        events: list[AuditEvent] = []
        with self._lock, self.path.open(encoding="utf-8") as handle:
            for text in handle:
                if not text.strip():
                    continue
                try:
                    event = AuditEvent.model_validate(json.loads(text))
                except (json.JSONDecodeError, ValidationError):
                    continue  # a torn line from a crash
                if not self.incident_id or event.incident_id == self.incident_id:
                    events.append(event)
        return events

    def completed(self, action_id: str) -> ActionOutcome | None:
        found = None
        for event in self.events():
            if event.action_id == action_id and (outcome := _outcome_of(event)) is not None:
                found = outcome
        return found


# Audit steps as timeline events. "proposed" and "completed" are left out: the engine puts the
# proposed actions and the final outcomes on the timeline itself, from AgentReport.actions/outcomes.
_TIMELINE_KIND: dict[AuditStep, TimelineKind] = {
    AuditStep.APPROVED: TimelineKind.ACTION_APPROVED,
    AuditStep.BLOCKED: TimelineKind.NOTE,
    AuditStep.STARTED: TimelineKind.ACTION_EXECUTED,
    AuditStep.EXECUTED: TimelineKind.ACTION_EXECUTED,
    AuditStep.DRY_RUN: TimelineKind.ACTION_EXECUTED,
    AuditStep.FAILED: TimelineKind.ACTION_EXECUTED,
    AuditStep.TIMED_OUT: TimelineKind.ACTION_EXECUTED,
    AuditStep.UNDONE: TimelineKind.ACTION_EXECUTED,
    AuditStep.SKIPPED: TimelineKind.NOTE,
    AuditStep.VERIFIED: TimelineKind.ACTION_VERIFIED,
    AuditStep.NOT_RECOVERED: TimelineKind.ACTION_VERIFIED,
    AuditStep.RECHECKED: TimelineKind.ACTION_VERIFIED,
    AuditStep.FINISHED: TimelineKind.NOTE,
}


# the audit data a timeline event keeps (a replay's `simulated` says nothing was changed)
TIMELINE_DATA = ("approved_at", "command", "recovered_by", "recovered_by_action", "exhausted", "dry_run", "simulated")


def timeline_events(events: Iterable[AuditEvent]) -> list[TimelineEvent]:
    """The audit trail as typed timeline events (redacted), in order."""
    out: list[TimelineEvent] = []
    for event in events:
        kind = _TIMELINE_KIND.get(event.step)
        if kind is None:
            continue
        label = f"{event.action_id}: {event.step.value}" if event.action_id else f"mitigation {event.step.value}"
        data: dict[str, Any] = {"action_id": event.action_id, "step": event.step.value, "kind": event.kind}
        for key in TIMELINE_DATA:
            if key in event.data:
                data[key] = event.data[key]
        out.append(
            TimelineEvent(
                at=event.at,
                kind=kind,
                source=event.actor,
                summary=redact(f"{label} — {event.detail}" if event.detail else label)[:500],
                data=redact_obj(data),
            )
        )
    return out
