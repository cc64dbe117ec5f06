"""Incident time for what people do in the service (notes, approvals, rejections).

A replayed incident lives on its bundle's clock: the bundle's alert time plus the time since the
incident's first alert arrived. Stamping a note with the wall clock would put it years after the
telemetry and move the run's own clock, which continues from the latest event.
"""

from __future__ import annotations

from datetime import UTC, datetime

from warroom.errors import NotFoundError
from warroom.store import alerts as alert_store
from warroom.store.repository import Store
from warroom.workflow.engine import RunOptions


def incident_now(store: Store, incident_id: str) -> datetime:
    now = datetime.now(UTC)
    incident = store.get_incident(incident_id)
    try:
        replayed = RunOptions.model_validate(store.latest_run(incident_id).options).replay_clock
    except NotFoundError:
        replayed = False
    with store.transaction() as session:
        first = alert_store.first_received(session, incident_id)
    if not replayed or first is None or incident.detected_at is None:
        return now
    return incident.detected_at + (now - first)
