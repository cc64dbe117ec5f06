"""The key series of an incident: the series behind its key signal onsets (the diagnosed
indicator and the user-facing signals first) with their baseline band, and the same series after
an action. The monitoring specialist records them as soon as the investigation has them, so the
incident room can draw them while the run waits at an approval; the documentation records them
again at the end with the data after the action."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from warroom.analysis.onset import SignalOnset, series_points, signal_onsets
from warroom.analysis.recovery import bucket_size, signal_series, span_of
from warroom.sources.canonical import Telemetry
from warroom.sources.incident_telemetry import IncidentTelemetry
from warroom.values import as_dict

CHART_SERIES = 8  # series kept for the charts: the key ones, not every signal of every service


def scope_services(telemetry: IncidentTelemetry, context: Mapping[str, Any]) -> list[str]:
    """The services the timeline follows: suspect, alerting, front door, then the affected ones."""
    incident = as_dict(context.get("incident"))
    affected = [s for s in incident.get("affected_services") or [] if isinstance(s, str)]
    names = [
        context.get("suspect_service"),
        telemetry.manifest.alert.service,
        telemetry.manifest.entry_service,
        *affected,
    ]
    return [s for s in dict.fromkeys(n for n in names if isinstance(n, str) and n)]


@dataclass(frozen=True)
class AfterAction:
    """The data recorded after an action, and how it came about: observed after a real change, or
    replayed from a recording."""

    action: str
    basis: str
    telemetry: Telemetry


def onsets_of(telemetry: IncidentTelemetry, context: Mapping[str, Any]) -> list[SignalOnset]:
    """The signal onsets of the services in scope."""
    return signal_onsets(telemetry, scope_services(telemetry, context))


def key_series(
    telemetry: IncidentTelemetry,
    context: Mapping[str, Any],
    onsets: list[SignalOnset],
    after: AfterAction | None = None,
) -> list[dict[str, Any]]:
    """The series behind the key onsets (the diagnosed indicator and the user-facing signals first),
    with their baseline band; and, given the data recorded after an action (read by the caller:
    analysis does no I/O), the same series in it, labelled with how that data came about."""
    diagnosis = [d for d in context.get("diagnosis") or [] if isinstance(d, dict)]
    indicator = diagnosis[0].get("indicator") if diagnosis else None
    suspect = diagnosis[0].get("service") if diagnosis else context.get("suspect_service")
    entry = telemetry.manifest.entry_service or telemetry.manifest.alert.service

    def rank(o: SignalOnset) -> tuple[int, datetime]:
        if o.signal == indicator and o.service == suspect:
            return 0, o.at
        if o.service == entry and o.signal in ("error_rate", "latency_p99_ms"):
            return 1, o.at
        return 2, o.at

    out: list[dict[str, Any]] = []
    for onset in sorted(onsets, key=rank)[:CHART_SERIES]:
        item: dict[str, Any] = {
            "service": onset.service,
            "signal": onset.signal,
            "query": onset.query,
            "baseline": onset.baseline,
            "limit": onset.limit,
            "higher_is_worse": onset.higher_is_worse,
            "onset": onset.at.isoformat(),
            "points": [[p.at.isoformat(), p.value] for p in onset.points],
        }
        if after is not None:
            spans = [s for s in (span_of(after.telemetry),) if s is not None]
            bucket = bucket_size(*spans) if spans else timedelta(minutes=1)
            series = signal_series(after.telemetry, onset.signal, [onset.service], bucket)
            points = series_points(series)
            if points:
                item["after"] = {
                    "action": after.action,
                    "basis": after.basis,
                    "points": [[p.at.isoformat(), p.value] for p in points],
                }
        out.append(item)
    return out
