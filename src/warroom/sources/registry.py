"""Open a telemetry source from its spec: how a worker process or a resumed run gets the same source."""

from __future__ import annotations

from warroom.sources.bundle import BundleSource
from warroom.sources.contract import ReplaySpec, SourceSpec, TelemetrySource
from warroom.sources.incident_telemetry import IncidentTelemetry, read_incident
from warroom.sources.replay import ReplaySource


def open_source(spec: SourceSpec) -> TelemetrySource:
    if isinstance(spec, ReplaySpec):
        return ReplaySource(spec.path, started_at=spec.started_at)
    return BundleSource(spec.path, alert=spec.alert)


def read_spec(spec: SourceSpec) -> IncidentTelemetry:
    """Open the source and read the incident's telemetry from it."""
    return read_incident(open_source(spec))
