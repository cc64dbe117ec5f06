"""The store on SQLite and on a real PostgreSQL (started by the test through pgserver)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect

from warroom.incident import Incident, InvalidTransition, Severity, Status, TimelineEvent, TimelineKind
from warroom.store.repository import Store

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 's.db'}")
    else:
        store = Store(request.getfixturevalue("postgres_url"))
        _wipe(store)
    yield store
    store.close()


def _wipe(store: Store) -> None:
    with store.engine.begin() as conn:
        for table in ("audit", "actions", "timeline", "steps", "runs", "incidents"):
            conn.exec_driver_sql(f"DELETE FROM {table}")


def draft(title: str = "API latency") -> Incident:
    return Incident(id="", title=title, severity=Severity.P2, detected_at=AT)


def test_migrations_create_every_table(any_store: Store) -> None:
    tables = set(inspect(any_store.engine).get_table_names())
    assert {"incidents", "runs", "steps", "timeline", "actions", "audit", "alembic_version"} <= tables
    Store(any_store.url).close()  # opening again is a no-op upgrade


def test_incident_ids_count_up_per_year(any_store: Store) -> None:
    first = any_store.create_incident(draft("one"))
    second = any_store.create_incident(draft("two"))
    assert (first.id, second.id) == ("INC-2026-001", "INC-2026-002")
    assert [i.title for i in any_store.list_incidents()] == ["one", "two"]


def test_lifecycle_refuses_invalid_moves_and_records_valid_ones(any_store: Store) -> None:
    incident = any_store.create_incident(draft())
    with any_store.transaction() as session:
        incident = any_store.transition(session, incident, Status.TRIAGED, AT, "test")
    with pytest.raises(InvalidTransition), any_store.transaction() as session:
        any_store.transition(session, incident, Status.RESOLVED, AT, "test")
    stored = any_store.get_incident(incident.id)
    assert stored.status == Status.TRIAGED and stored.acknowledged_at == AT
    assert [e.kind for e in any_store.timeline(incident.id)] == [TimelineKind.STATUS_CHANGED]


def test_timeline_is_append_only_and_deduplicated(any_store: Store) -> None:
    incident = any_store.create_incident(draft())
    event = TimelineEvent(at=AT, kind=TimelineKind.NOTE, source="test", summary="hello")
    with any_store.transaction() as session:
        assert any_store.add_event(session, incident.id, event, dedupe_key="k")
        assert not any_store.add_event(session, incident.id, event, dedupe_key="k")
        assert any_store.add_event(session, incident.id, event)
    events = any_store.timeline(incident.id)
    assert len(events) == 2 and events[0].seq is not None and events[0].seq < (events[1].seq or 0)
    assert events[0].at == AT


def test_events_added_together_skip_keys_stored_pending_or_repeated(any_store: Store) -> None:
    incident = any_store.create_incident(draft())

    def note(summary: str) -> TimelineEvent:
        return TimelineEvent(at=AT, kind=TimelineKind.NOTE, source="test", summary=summary)

    with any_store.transaction() as session:
        any_store.add_event(session, incident.id, note("stored"), dedupe_key="stored")
    with any_store.transaction() as session:
        any_store.add_event(session, incident.id, note("pending"), dedupe_key="pending")  # not flushed yet
        added = any_store.add_events(
            session,
            incident.id,
            [
                (note("a"), "a"),
                (note("again stored"), "stored"),
                (note("again pending"), "pending"),
                (note("b"), None),
                (note("a repeated"), "a"),
                (note("c"), "c"),
            ],
        )
    assert added == [True, False, False, True, False, True]
    assert [e.summary for e in any_store.timeline(incident.id)] == ["stored", "pending", "a", "b", "c"]


def test_steps_read_again_skip_the_ones_already_read(any_store: Store) -> None:
    incident = any_store.create_incident(draft())
    with any_store.transaction() as session:
        run_id = any_store.create_run(session, incident.id, "w", {}, {})
    step = {"phase_id": "p", "kind": "agent", "agent": "a", "status": "succeeded", "attempts": 1}
    times = {"started_at": AT, "finished_at": AT, "error": None, "result": {}}
    for key in ("p/one", "p/two", "p/three"):
        with any_store.transaction() as session:
            assert any_store.record_step(session, run_id, {"key": key, **step, **times})
    assert [r.key for r in any_store.steps(run_id)] == ["p/one", "p/two", "p/three"]
    assert [r.key for r in any_store.steps(run_id, skip={"p/one", "p/three"})] == ["p/two"]


def test_a_failed_transaction_leaves_nothing_behind(any_store: Store) -> None:
    incident = any_store.create_incident(draft())
    with pytest.raises(RuntimeError), any_store.transaction() as session:
        any_store.add_event(session, incident.id, TimelineEvent(at=AT, kind=TimelineKind.NOTE, source="t", summary="x"))
        raise RuntimeError("crash mid-transaction")
    assert any_store.timeline(incident.id) == []
