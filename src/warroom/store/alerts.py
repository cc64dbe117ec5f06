"""Alerts received by the service and the alert groups that feed incidents (tables of migration 0002).

Functions take the caller's session: the service stores an alert, attaches it or opens its
incident, and queues the run in one transaction, before it acknowledges the alert.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warroom.incident import Status
from warroom.store.models import AlertGroupRow, AlertRow, IncidentRow

CLOSED = (Status.RESOLVED.value, Status.CLOSED.value)


def group_digest(group_key: str) -> str:
    return hashlib.sha256(group_key.encode("utf-8")).hexdigest()


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@dataclass(frozen=True)
class StoredAlert:
    """The stored occurrence and what it was before this receipt (None when new)."""

    row: AlertRow
    previous_status: str | None


def upsert_alert(
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
) -> StoredAlert:
    """Store a received alert; a re-send of the same occurrence updates status and end time."""
    row = session.scalars(
        select(AlertRow).where(AlertRow.fingerprint == fingerprint, AlertRow.starts_at == starts_at)
    ).first()
    if row is None:
        row = AlertRow(
            fingerprint=fingerprint,
            starts_at=starts_at,
            ends_at=ends_at,
            status=status,
            source=source,
            group_key=group_key,
            labels=labels,
            annotations=annotations,
            incident_id=None,
            outcome="stored",
            detail="",
            received_at=received_at,
            updated_at=received_at,
        )
        session.add(row)
        session.flush()
        return StoredAlert(row, None)
    previous = row.status
    row.status = status
    row.ends_at = ends_at
    row.annotations = annotations
    row.updated_at = received_at
    return StoredAlert(row, previous)


def open_incident_of_group(session: Session, group_key: str) -> str | None:
    """The incident an alert group currently feeds, unless that incident is resolved or closed."""
    return session.scalar(
        select(AlertGroupRow.incident_id)
        .join(IncidentRow, IncidentRow.id == AlertGroupRow.incident_id)
        .where(AlertGroupRow.group_key == group_digest(group_key), IncidentRow.status.not_in(CLOSED))
        .order_by(AlertGroupRow.id.desc())
        .limit(1)
    )


def storm_incident(session: Session, route: str, since: datetime) -> str | None:
    """The newest open incident that `route` opened at or after `since` (a storm joins it)."""
    return session.scalar(
        select(AlertGroupRow.incident_id)
        .join(IncidentRow, IncidentRow.id == AlertGroupRow.incident_id)
        .where(AlertGroupRow.route == route, AlertGroupRow.opened_at >= since, IncidentRow.status.not_in(CLOSED))
        .order_by(AlertGroupRow.id.desc())
        .limit(1)
    )


def link_group(session: Session, group_key: str, route: str, incident_id: str, at: datetime) -> None:
    session.add(AlertGroupRow(group_key=group_digest(group_key), route=route, incident_id=incident_id, opened_at=at))


def first_received(session: Session, incident_id: str) -> datetime | None:
    """When the incident's first alert arrived (engine time): replayed incidents count from it."""
    return _utc(session.scalar(select(func.min(AlertRow.received_at)).where(AlertRow.incident_id == incident_id)))


def alerts_of(session: Session, incident_id: str) -> list[AlertRow]:
    rows = list(session.scalars(select(AlertRow).where(AlertRow.incident_id == incident_id).order_by(AlertRow.id)))
    for row in rows:
        row.starts_at = _utc(row.starts_at) or row.starts_at
        row.ends_at = _utc(row.ends_at)
        row.received_at = _utc(row.received_at) or row.received_at
        session.expunge(row)
    return rows


def count_alerts(session: Session) -> int:
    return session.scalar(select(func.count(AlertRow.id))) or 0


def storm_window_start(now: datetime, window_s: float) -> datetime:
    return now - timedelta(seconds=window_s)
