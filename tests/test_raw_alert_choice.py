"""Which alert opens the incident when a folder holds several Alertmanager payloads: a capture
taken after an earlier incident still holds that incident's "resolved" notification."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from serve_support import am_payload
from warroom.sources.bundle import BundleSource
from warroom.sources.canonical import Telemetry
from warroom.sources.manifest import Alert
from warroom.sources.raw.alertmanager import AlertmanagerPayload
from warroom.sources.raw.defaults import opening_alert, window_start
from warroom.sources.raw.reader import ReadOptions


def _read(path: Path, body: dict[str, object]) -> list:  # type: ignore[type-arg]
    path.write_text(json.dumps(body))
    return AlertmanagerPayload().read(path, ReadOptions()).alerts


def test_the_firing_alert_opens_the_incident_not_an_earlier_resolved_one(tmp_path: Path) -> None:
    earlier = _read(
        tmp_path / "a.json",
        am_payload("ServiceDown", status="resolved", service="payment", starts_at="2024-05-12T18:20:00Z"),
    )
    current = _read(tmp_path / "b.json", am_payload("HighErrorRatio", service="checkout"))
    assert earlier[0].resolved_at is not None and current[0].resolved_at is None
    opening = opening_alert([*earlier, *current], tmp_path)
    assert (opening.name, opening.service) == ("HighErrorRatio", "checkout")


def test_only_resolved_alerts_still_open_the_incident(tmp_path: Path) -> None:
    resolved = _read(tmp_path / "a.json", am_payload("ServiceDown", status="resolved", service="payment"))
    assert opening_alert(resolved, tmp_path).name == "ServiceDown"


def test_a_short_capture_keeps_a_reference_period_before_the_window() -> None:
    """No onset stands out and the data begins 12 minutes before the alert, later than the usual
    30-minute lead: the window opens halfway, so the first six minutes are the reference."""
    fired = datetime(2024, 5, 12, 18, 49, 30, tzinfo=UTC)
    times = [fired - timedelta(minutes=12) + timedelta(seconds=15 * i) for i in range(49)]
    metrics = pl.DataFrame(
        {"timestamp": times, "service": ["checkout"] * 49, "metric": ["request_rate"] * 49, "value": [10.0] * 49}
    )
    start = window_start(Alert(name="HighErrors", fired_at=fired, service="checkout"), Telemetry(metrics=metrics))
    assert start == fired - timedelta(minutes=6)


def test_an_onset_soon_after_the_data_begins_still_leaves_a_reference() -> None:
    """A live read of a system with little history: the data begins 90 s before the alert and the
    errors rise 40 s after it begins. The usual margin before the onset would open the window before
    the first point (nothing left to compare with): it opens halfway from the first point to the onset."""
    fired = datetime(2024, 5, 12, 18, 49, 30, tzinfo=UTC)
    first = fired - timedelta(seconds=90)
    onset = first + timedelta(seconds=40)
    times = [first + timedelta(seconds=i) for i in range(90)]
    values = [0.4 if t >= onset else 0.0 for t in times]
    metrics = pl.DataFrame(
        {"timestamp": times, "service": ["checkout"] * 90, "metric": ["error_rate"] * 90, "value": values}
    )
    alert = Alert(name="HighErrors", fired_at=fired, service="checkout")
    start = window_start(alert, Telemetry(metrics=metrics))
    assert first < start < onset
    assert sum(t < start for t in times) >= 15  # a reference of its own, before the window
    # Logs that begin before the first scrape do not take the metrics' reference away.
    logs = pl.DataFrame(
        {"timestamp": [first - timedelta(seconds=30)], "service": ["checkout"], "level": ["INFO"], "message": ["up"]}
    )
    assert window_start(alert, Telemetry(metrics=metrics, logs=logs)) == start


def test_a_resolved_alert_that_began_before_the_data_gives_way_to_one_that_began_inside(tmp_path: Path) -> None:
    """A capture taken after its incident was over holds only resolved notifications, among them
    the previous incident's (it began before the capture's first scrape): the alert that began
    inside the data opens the incident, whichever came first."""
    start = datetime(2024, 5, 12, 18, 30, tzinfo=UTC)
    rows = ["timestamp,service,metric,value"]
    rows += [f"{(start + timedelta(seconds=15 * i)).isoformat()},checkout,error_rate,0.0" for i in range(120)]
    (tmp_path / "metrics.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "alerts").mkdir()
    previous = am_payload("ServiceDown", status="resolved", service="payment", starts_at="2024-05-12T18:20:00Z")
    current = am_payload(
        "HighErrorRatio", status="resolved", service="checkout", starts_at="2024-05-12T18:49:30Z", fingerprint="ff"
    )
    (tmp_path / "alerts" / "a.json").write_text(json.dumps(previous))
    (tmp_path / "alerts" / "b.json").write_text(json.dumps(current))
    manifest = BundleSource(tmp_path).manifest()
    assert (manifest.alert.name, manifest.alert.service) == ("HighErrorRatio", "checkout")
