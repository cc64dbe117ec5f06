"""The communication cadence: how often stakeholders hear from us, by severity. Pure: times in, schedule out."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from pydantic import BaseModel

# Minutes between updates by severity: the usual incident-management practice (P0 every 15 minutes,
# as the seed documents do; lower severities less often). Overridable in warroom.toml.
DEFAULT_INTERVAL_MINUTES: dict[str, float] = {"P0": 15.0, "P1": 30.0, "P2": 60.0, "P3": 240.0}


class Cadence(BaseModel):
    severity: str
    interval_minutes: float
    last_update_at: datetime | None
    next_update_at: datetime


def interval_for(
    severity: str, overrides: Mapping[str, float] | None = None, incident_cadence: float | None = None
) -> float:
    """Minutes between updates: the incident's own cadence wins, then the configured one, then the default."""
    if incident_cadence is not None and incident_cadence > 0:
        return float(incident_cadence)
    table = {**DEFAULT_INTERVAL_MINUTES, **(overrides or {})}
    return float(table.get(severity.upper(), table["P2"]))


def next_update(
    severity: str,
    now: datetime,
    last_update_at: datetime | None = None,
    overrides: Mapping[str, float] | None = None,
    incident_cadence: float | None = None,
) -> Cadence:
    """When the next update is due: one interval after the last one (or after now when none was
    sent), and never in the past — an overdue update is due now."""
    minutes = interval_for(severity, overrides, incident_cadence)
    base = last_update_at if last_update_at is not None else now
    due = base + timedelta(minutes=minutes)
    if due < now:
        due = now
    return Cadence(severity=severity, interval_minutes=minutes, last_update_at=last_update_at, next_update_at=due)


def schedule(
    severity: str,
    start: datetime,
    until: datetime,
    overrides: Mapping[str, float] | None = None,
    incident_cadence: float | None = None,
) -> list[datetime]:
    """Every update time from `start` (the first update) up to and including `until`."""
    minutes = interval_for(severity, overrides, incident_cadence)
    step = timedelta(minutes=minutes)
    times: list[datetime] = []
    at = start
    while at <= until:
        times.append(at)
        at += step
    return times
