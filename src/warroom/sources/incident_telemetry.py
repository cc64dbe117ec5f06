"""What agents read: one incident's telemetry, read once from its source and held for the run.

The incident window and the baseline are read when the run opens the source; what happened after
an action is read when a recovery check asks for it, through the same source (a live source
re-queries; a recorded incident reads what it recorded). Agents never see files or URLs: only the
canonical tables, the manifest, the topology, the code checkout and the queries behind it all.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from warroom.sources.canonical import TABLES, Telemetry
from warroom.sources.contract import SourceQuery, TelemetryRead, TelemetrySource
from warroom.sources.manifest import Manifest


@dataclass
class IncidentTelemetry:
    source: TelemetrySource
    manifest: Manifest
    current: Telemetry
    baseline: Telemetry | None = None
    topology: dict[str, list[str]] = field(default_factory=dict)
    repo: Path | None = None
    queries: list[SourceQuery] = field(default_factory=list)
    # Caveats of the reads themselves (rows dropped at the source boundary, budgets), post-action
    # reads included once they happen.
    limitations: list[str] = field(default_factory=list)
    keep_after: int = 2  # post-action reads held in memory: a mitigation loop walks through several
    _after: OrderedDict[str, TelemetryRead | None] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # steps on threads share it

    @property
    def metrics(self) -> pl.DataFrame | None:
        return self.current.metrics

    @property
    def logs(self) -> pl.DataFrame | None:
        return self.current.logs

    @property
    def traces(self) -> pl.DataFrame | None:
        return self.current.traces

    @property
    def changes(self) -> pl.DataFrame | None:
        return self.current.changes

    def origin(self) -> str:
        return self.source.describe()

    def missing_modalities(self) -> list[str]:
        return [name for name in TABLES if getattr(self.current, name) is None]

    def recorded_actions(self) -> list[str] | None:
        """Action kinds with recorded post-action data (replay); None when any can be observed (live)."""
        return self.source.recorded_actions()

    def forget_after(self, action_kind: str) -> None:
        """Drop the held post-action read of `action_kind`: the next `after` asks the source again
        (a live recovery check re-queries until the system recovers)."""
        with self._lock:
            self._after.pop(action_kind, None)

    def after(self, action_kind: str, since: datetime | None = None) -> Telemetry | None:
        """The telemetry after an action of `action_kind` took effect at `since` (default: the end
        of the incident window), read through the source once and then held."""
        with self._lock:
            if action_kind in self._after:
                self._after.move_to_end(action_kind)
                read = self._after[action_kind]
                return read.telemetry if read is not None else None
        read = self.source.after(action_kind, since or self.manifest.effective_window().end)
        with self._lock:
            self._after[action_kind] = read
            while len(self._after) > self.keep_after:
                self._after.popitem(last=False)
            if read is not None:
                self.queries.extend(q for q in read.queries if q not in self.queries)
                self.limitations.extend(item for item in read.limitations if item not in self.limitations)
        return read.telemetry if read is not None else None


def read_incident(source: TelemetrySource) -> IncidentTelemetry:
    """Read the incident window and the baseline from `source` (once per run and process)."""
    manifest = source.manifest()
    incident = source.incident()
    baseline = source.baseline()
    return IncidentTelemetry(
        source=source,
        manifest=manifest,
        current=incident.telemetry,
        baseline=baseline.telemetry if baseline is not None else None,
        topology=source.topology(),
        repo=source.repository(),
        queries=[*incident.queries, *(baseline.queries if baseline else [])],
        limitations=[*incident.limitations, *(baseline.limitations if baseline else [])],
    )
