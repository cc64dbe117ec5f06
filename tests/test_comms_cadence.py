"""The cadence scheduler is pure: times in, schedule out."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from warroom.comms.cadence import DEFAULT_INTERVAL_MINUTES, interval_for, next_update, schedule

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_interval_by_severity_with_overrides():
    assert interval_for("P0") == 15 and interval_for("p1") == 30
    assert interval_for("P3") > interval_for("P2") > interval_for("P1") > interval_for("P0")
    assert interval_for("P0", {"P0": 10}) == 10
    assert interval_for("P0", {"P0": 10}, incident_cadence=20) == 20  # the incident's own cadence wins
    assert interval_for("weird") == DEFAULT_INTERVAL_MINUTES["P2"]


def test_next_update_after_last_and_never_in_the_past():
    first = next_update("P0", now=T0)
    assert first.next_update_at == T0 + timedelta(minutes=15)
    later = next_update("P0", now=T0 + timedelta(minutes=5), last_update_at=T0)
    assert later.next_update_at == T0 + timedelta(minutes=15)
    overdue = next_update("P0", now=T0 + timedelta(minutes=40), last_update_at=T0)
    assert overdue.next_update_at == T0 + timedelta(minutes=40)


def test_schedule_covers_the_incident():
    times = schedule("P1", T0, T0 + timedelta(hours=2))
    assert times[0] == T0 and times[-1] == T0 + timedelta(hours=2)
    assert len(times) == 5
    assert all(b - a == timedelta(minutes=30) for a, b in itertools.pairwise(times))
