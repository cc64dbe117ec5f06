"""A manifest for a folder of raw exports that has no incident.yaml: derived from the alert and the data."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from warroom.analysis.changepoint import detect_onset
from warroom.errors import BundleError
from warroom.sources.canonical import Telemetry
from warroom.sources.manifest import Alert, Manifest, Window
from warroom.sources.raw.formats import recognise, why_unrecognised
from warroom.sources.raw.reader import ReadOptions

# Without a detected onset, the window reaches this far before the alert (the manifest default);
# everything earlier is the baseline.
LEAD_BEFORE_ALERT = timedelta(minutes=30)
# With one, the window opens this share of the onset's lead on the alert before the onset (at least
# a minute), so the change itself is inside the window and the level before it is the baseline.
ONSET_MARGIN = 0.1
MIN_MARGIN = timedelta(minutes=1)


def read_alert_file(path: Path, options: ReadOptions) -> list[Alert]:
    """The alerts in a file given beside the folder (`respond DIR --alert FILE`)."""
    if not path.is_file():
        raise BundleError("alert file not found", file=path)
    reader = recognise(path)
    if reader is None:
        raise BundleError(f"{why_unrecognised(path)}; expected an Alertmanager webhook payload", file=path)
    alerts = reader.read(path, options).alerts
    if not alerts:
        raise BundleError("holds no alert (expected an Alertmanager webhook payload)", file=path)
    return alerts


def _modality_spans(telemetry: Telemetry) -> list[tuple[datetime, datetime]]:
    """(first, last) time of each modality that has data."""
    spans = []
    for frame, column in (
        (telemetry.metrics, "timestamp"),
        (telemetry.logs, "timestamp"),
        (telemetry.traces, "start_time"),
    ):
        if frame is not None and frame.height:
            times = frame.get_column(column)
            spans.append((times.min(), times.max()))
    return spans  # type: ignore[return-value]


def _data_span(telemetry: Telemetry) -> tuple[datetime, datetime] | None:
    spans = _modality_spans(telemetry)
    return (min(s[0] for s in spans), max(s[1] for s in spans)) if spans else None


def window_start(alert: Alert, telemetry: Telemetry) -> datetime:
    """Where the incident window opens: a margin before the detected onset of the golden signals,
    else LEAD_BEFORE_ALERT before the alert — or, when the data begins later than that (a short
    capture, a live read of a system with little history), halfway from its first point to the
    onset (or the alert), so that what precedes the window is still a reference to compare with
    (for every modality: metrics scraped from a few seconds after the first log line need theirs)."""
    onset = detect_onset(telemetry.metrics, alert.fired_at) if telemetry.metrics is not None else None
    if onset is None:
        opening = alert.fired_at
        start = opening - LEAD_BEFORE_ALERT
    else:
        opening = min(onset.at, alert.fired_at)
        start = opening - max(MIN_MARGIN, ONSET_MARGIN * max(alert.fired_at - onset.at, timedelta(0)))
    # Every modality needs its reference: the one whose data begins last sets the floor.
    spans = _modality_spans(telemetry)
    floor = max(first for first, _ in spans) if spans else None
    if floor is not None and start <= floor < opening:
        start = floor + (opening - floor) / 2
    return start


def opening_alert(alerts: list[Alert], root: Path, data_from: datetime | None = None) -> Alert:
    """The alert that opens the incident: the earliest one still firing. A folder captured after
    an earlier incident often still holds that incident: its "resolved" notification stands in
    only when nothing in the folder is firing, and among firing or resolved ones an alert that
    began inside the data (`data_from`, its first point) comes before one that began earlier, whose
    incident the capture only saw the end of."""
    if not alerts:
        raise BundleError(
            "no incident.yaml and no alert: give the alert (`--alert FILE`, an Alertmanager webhook payload), "
            "put its payload in the folder, or write incident.yaml",
            file=root,
        )
    firing = [a for a in alerts if a.resolved_at is None]
    chosen = firing or alerts
    inside = [a for a in chosen if data_from is not None and a.fired_at >= data_from]
    return min(inside or chosen, key=lambda a: a.fired_at)


def derive_manifest(alert: Alert, telemetry: Telemetry) -> Manifest:
    """The alert opens the incident; the window runs from before the onset of the change (or before
    the alert) to the end of the (validated) data."""
    span = _data_span(telemetry)
    start = window_start(alert, telemetry)
    end = max(span[1], alert.fired_at + timedelta(minutes=1)) if span else alert.fired_at + LEAD_BEFORE_ALERT
    title = f"{alert.name}: {alert.summary}" if alert.summary else alert.name
    return Manifest(title=title, alert=alert, window=Window(start=start, end=end))
