"""Open a telemetry source from its spec: how a worker process or a resumed run gets the same source."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from warroom.sources.bundle import BundleSource
from warroom.sources.contract import LiveSpec, ReplaySpec, SourceSpec, TelemetrySource
from warroom.sources.incident_telemetry import IncidentTelemetry, read_incident
from warroom.sources.replay import ReplaySource
from warroom.sources.snapshot import SnapshotSource, is_snapshot


def open_source(spec: SourceSpec) -> TelemetrySource:
    if isinstance(spec, ReplaySpec):
        return ReplaySource(spec.path, started_at=spec.started_at)
    if isinstance(spec, LiveSpec):
        from warroom.config import load_config  # the whole configuration: only a live source needs it
        from warroom.sources.live import LiveSource

        return LiveSource(spec, load_config(spec.config).sources)
    if is_snapshot(Path(spec.path)):
        return SnapshotSource(spec.path, alert=spec.alert)
    return BundleSource(spec.path, alert=spec.alert)


def capture_source(spec: SourceSpec) -> None:
    """What must happen once, in the process that drives a run, before its workers read the
    source: a live source's read of its systems into the snapshot (a LiveError when none
    answers). A recording needs nothing: reading it is the workers' part."""
    if isinstance(spec, LiveSpec):
        open_source(spec)  # captures, unless the snapshot is there already; reads nothing back


def read_spec(spec: SourceSpec) -> IncidentTelemetry:
    """Open the source and read the incident's telemetry from it."""
    return read_incident(open_source(spec))


def read_again(spec: SourceSpec, now: datetime) -> SourceSpec:
    """What a run started again at `now` (engine time) reads: a live read's period reaches up to
    now (the sources came back since the first read failed; the snapshot folder it left is still
    empty); a bundle or a replay is the same recording."""
    return spec.model_copy(update={"end": now}) if isinstance(spec, LiveSpec) else spec
