"""Alerts received by the service and the alert groups that feed incidents (tables of migration 0002).

Functions take the caller's session: the service stores an alert, attaches it or opens its
incident, and queues the run in one transaction, before it acknowledges the alert. This is the
service's hot path (hundreds of alerts a second in a storm), so it uses SQL expressions rather
than ORM objects, lets unique keys, not prior reads, keep events from repeating, and defers its
inserts to the commit (store/deferred.py: one statement for all of a batch's alerts, another for
their events).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from warroom.incident import Status, TimelineEvent
from warroom.store.deferred import defer
from warroom.store.models import AlertGroupRow, AlertRow, IncidentRow, TimelineRow

CLOSED = (Status.RESOLVED.value, Status.CLOSED.value)
ALERTS = cast(Table, AlertRow.__table__)
GROUPS = cast(Table, AlertGroupRow.__table__)
INCIDENTS = cast(Table, IncidentRow.__table__)
TIMELINE = cast(Table, TimelineRow.__table__)


def group_digest(group_key: str) -> str:
    return hashlib.sha256(group_key.encode("utf-8")).hexdigest()


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@dataclass
class Occurrence:
    """An alert occurrence (fingerprint + start) as received, and what it was before this receipt.
    A new one is written once, by `settle_alert`, with what became of it."""

    id: int | None  # None until a new occurrence is stored
    fingerprint: str
    starts_at: datetime
    ends_at: datetime | None
    status: str
    source: str
    group_key: str
    labels: dict[str, Any]
    annotations: dict[str, Any]
    received_at: datetime
    incident_id: str | None
    previous_status: str | None  # None when this receipt is the first
    # a new occurrence stored earlier in this transaction: its row, still deferred (updated in place)
    deferred: dict[str, Any] | None = None


# Statements built once: building and hashing SQL expressions per alert costs more than SQLite
# takes to run them.
_FIND = select(ALERTS.c.id, ALERTS.c.status, ALERTS.c.incident_id).where(
    ALERTS.c.fingerprint == bindparam("fp"), ALERTS.c.starts_at == bindparam("starts")
)
_FIND_MANY = select(ALERTS.c.id, ALERTS.c.status, ALERTS.c.incident_id, ALERTS.c.fingerprint, ALERTS.c.starts_at).where(
    ALERTS.c.fingerprint.in_(bindparam("fps", expanding=True))
)
# fingerprints per look-up statement: well under every driver's limit on bound parameters
LOOK_UP_CHUNK = 500
_INSERT = insert(ALERTS)
_UPDATE = update(ALERTS).where(ALERTS.c.id == bindparam("alert_id"))
_OPEN = INCIDENTS.c.status.not_in(CLOSED)
_JOIN = GROUPS.join(INCIDENTS, INCIDENTS.c.id == GROUPS.c.incident_id)
_GROUP_INCIDENT = (
    select(GROUPS.c.incident_id)
    .select_from(_JOIN)
    .where(GROUPS.c.group_key == bindparam("key"), _OPEN)
    .order_by(GROUPS.c.id.desc())
    .limit(1)
)
_STORM_INCIDENT = (
    select(GROUPS.c.incident_id)
    .select_from(_JOIN)
    .where(GROUPS.c.route == bindparam("route"), GROUPS.c.opened_at >= bindparam("since"), _OPEN)
    .order_by(GROUPS.c.id.desc())
    .limit(1)
)
_ACTIVITY = select(func.count().filter(ALERTS.c.status == "firing"), func.max(ALERTS.c.updated_at)).where(
    ALERTS.c.incident_id == bindparam("incident")
)
_LINK = insert(GROUPS)
_FIRST = select(func.min(ALERTS.c.received_at)).where(ALERTS.c.incident_id == bindparam("incident"))
_EVENTS = {
    "postgresql": postgresql.insert(TIMELINE).on_conflict_do_nothing(constraint="uq_timeline_event"),
    "sqlite": sqlite.insert(TIMELINE).on_conflict_do_nothing(index_elements=["incident_id", "dedupe_key"]),
}


def receive_alert(
    session: Session,
    *,
    fingerprint: str,
    starts_at: datetime,
    ends_at: datetime | None,
    status: str,
    source: str,
    group_key: str,
    labels: dict[str, Any],
    annotations: dict[str, Any],
    received_at: datetime,
) -> Occurrence:
    """A received alert with what the store knows of its occurrence (a re-send carries its
    incident and previous status). Nothing is written until `settle_alert`."""
    key = (fingerprint, starts_at)
    deferred = _deferred(session).get(key)
    looked_up = _looked_up(session)
    if deferred:
        found = None
    elif key in looked_up:
        found = looked_up[key]
    else:
        row = session.execute(_FIND, {"fp": fingerprint, "starts": starts_at}).first()
        found = row._asdict() if row else None
    known = deferred or found or {}
    return Occurrence(
        found["id"] if found else None,
        fingerprint,
        starts_at,
        ends_at,
        status,
        source,
        group_key,
        labels,
        annotations,
        received_at,
        known.get("incident_id"),
        known.get("status"),
        deferred,
    )


def look_up_occurrences(session: Session, batches: list[list[tuple[str, datetime]]]) -> None:
    """Find the stored occurrences of a group commit's alerts (each job's (fingerprint, start)
    pairs, UTC) with one statement per LOOK_UP_CHUNK fingerprints, before the jobs run:
    `receive_alert` then reads them here instead of sending one statement per alert."""
    wanted = {key for keys in batches for key in keys}
    looked_up = _looked_up(session)
    fingerprints = sorted({fingerprint for fingerprint, _ in wanted})
    for start in range(0, len(fingerprints), LOOK_UP_CHUNK):
        for row in session.execute(_FIND_MANY, {"fps": fingerprints[start : start + LOOK_UP_CHUNK]}):
            key = (row.fingerprint, _utc(row.starts_at))
            if key in wanted:
                looked_up[key] = {"id": row.id, "status": row.status, "incident_id": row.incident_id}
    for key in wanted:
        looked_up.setdefault(key, None)  # looked up: not stored yet


def _looked_up(session: Session) -> dict[tuple[str, datetime], dict[str, Any] | None]:
    """Occurrences this transaction looked up ahead (None: not stored), kept current as it updates them."""
    found: dict[tuple[str, datetime], dict[str, Any] | None] = session.info.setdefault("warroom.looked_up", {})
    return found


def _deferred(session: Session) -> dict[tuple[str, datetime], dict[str, Any]]:
    """The new occurrences this transaction stored, still deferred: a re-send within the same
    batch finds its occurrence here, not in the table."""
    found: dict[tuple[str, datetime], dict[str, Any]] = session.info.setdefault("warroom.occurrences", {})
    return found


def settle_alert(session: Session, row: Occurrence, outcome: str, detail: str) -> None:
    """Store the occurrence with what became of it (the incident it feeds, or why it feeds none),
    in one statement: a new one inserted, a re-send's status, end and text updated."""
    values = {
        "status": row.status,
        "ends_at": row.ends_at,
        "annotations": row.annotations,
        "updated_at": row.received_at,
        "incident_id": row.incident_id,
        "outcome": outcome,
        "detail": detail,
    }
    if row.id is not None:
        session.execute(_UPDATE, {"alert_id": row.id, **values})
        looked_up = _looked_up(session).get((row.fingerprint, row.starts_at))
        if looked_up is not None:  # a later re-send in this batch reads what this one made of it
            looked_up.update(status=row.status, incident_id=row.incident_id)
        return
    if row.deferred is not None:  # a re-send of an occurrence this transaction stores
        row.deferred.update(values)
        return
    inserted = {
        "fingerprint": row.fingerprint,
        "starts_at": row.starts_at,
        "source": row.source,
        "group_key": row.group_key,
        "labels": row.labels,
        "received_at": row.received_at,
        **values,
    }
    _deferred(session)[(row.fingerprint, row.starts_at)] = inserted
    defer(session, _INSERT, inserted)


def open_incident_of_group(session: Session, group_key: str) -> str | None:
    """The incident an alert group currently feeds, unless that incident is resolved or closed."""
    return session.scalar(_GROUP_INCIDENT, {"key": group_digest(group_key)})


def alert_activity(session: Session, incident_id: str) -> tuple[int, datetime | None]:
    """How many of the incident's alerts still fire, and when any of them last changed."""
    row = session.execute(_ACTIVITY, {"incident": incident_id}).one()
    return int(row[0] or 0), _utc(row[1])


def storm_incident(session: Session, route: str, since: datetime) -> str | None:
    """The newest open incident that `route` opened at or after `since` (a storm joins it)."""
    return session.scalar(_STORM_INCIDENT, {"route": route, "since": since})


def link_group(session: Session, group_key: str, route: str, incident_id: str, at: datetime) -> None:
    session.execute(
        _LINK, {"group_key": group_digest(group_key), "route": route, "incident_id": incident_id, "opened_at": at}
    )


def first_received(session: Session, incident_id: str) -> datetime | None:
    """When the incident's first alert arrived (engine time): replayed incidents count from it."""
    return _utc(session.scalar(_FIRST, {"incident": incident_id}))


def add_alert_event(session: Session, incident_id: str, event: TimelineEvent, dedupe_key: str) -> None:
    """An alert's event on the incident's timeline, once per key (the unique key drops a repeat),
    written when the transaction commits."""
    defer(
        session,
        _EVENTS[session.get_bind().dialect.name],
        {
            "incident_id": incident_id,
            "dedupe_key": dedupe_key,
            "at": event.at,
            "kind": event.kind.value,
            "source": event.source,
            "summary": event.summary,
            "data": event.data,
        },
    )


def alerts_of(session: Session, incident_id: str) -> list[AlertRow]:
    rows = list(session.scalars(select(AlertRow).where(AlertRow.incident_id == incident_id).order_by(AlertRow.id)))
    for row in rows:
        row.starts_at = _utc(row.starts_at) or row.starts_at
        row.ends_at = _utc(row.ends_at)
        row.received_at = _utc(row.received_at) or row.received_at
        session.expunge(row)
    return rows
