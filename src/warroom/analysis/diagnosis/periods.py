"""The two periods a diagnosis compares: the incident window and the reference before it.

Logs and traces are compared with the bundle's `baseline/` telemetry when there is one, else with
the data before the window, up to a guard before it (`REFERENCE_GUARD`). Metrics are compared with
both together (minute-level series need more than the handful of points a short fault-free capture
holds; the robust statistics tolerate some contamination). Detectors read their frames from here so
that every one of them compares the same two periods and says the same thing about them in its
limitations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import polars as pl

from warroom.sources.canonical import Telemetry

ReferenceKind = Literal["baseline", "before-window", "absent"]
# The window opens at the measured onset, and the onset is measured on metrics that are rates over a
# window (a minute, or four scrapes) and must stay beyond their baseline for consecutive samples: the
# fault may have begun up to about this long before it. What ran then is not the reference (a new
# statement or log line seen there first would read as an old one).
REFERENCE_GUARD = timedelta(minutes=1)


@dataclass(frozen=True)
class Split:
    """One modality's rows in the window and in the reference."""

    during: pl.DataFrame | None
    reference: pl.DataFrame | None
    kind: ReferenceKind


@dataclass
class Periods:
    current: Telemetry
    baseline: Telemetry
    start: datetime  # window start (the alert time when it fired earlier)
    end: datetime
    topology: dict[str, list[str]] = field(default_factory=dict)

    @property
    def reference_end(self) -> datetime:
        """Where the incident's own data stops being its reference (a guard before the window)."""
        return self.start - REFERENCE_GUARD

    def split(self, table: Literal["logs", "traces"]) -> Split:
        column = "timestamp" if table == "logs" else "start_time"
        current: pl.DataFrame | None = getattr(self.current, table)
        baseline: pl.DataFrame | None = getattr(self.baseline, table)
        if current is None or current.height == 0:
            return Split(None, None, "absent")
        during = current.filter(pl.col(column).is_between(self.start, self.end))
        if baseline is not None and baseline.height:
            return Split(during, baseline, "baseline")
        before = current.filter(pl.col(column) < self.reference_end)
        return Split(during, before if before.height else None, "before-window" if before.height else "absent")

    def reference_spans(self, kind: ReferenceKind) -> pl.DataFrame | None:
        """The spans the reference log lines ran in: the baseline's, or the incident's own before the window."""
        return self.baseline.traces if kind == "baseline" else self.current.traces

    def services(self) -> list[str]:
        """Every service named in the logs, spans or metrics of either period, and in the topology."""
        names: set[str] = set(self.topology) | {d for deps in self.topology.values() for d in deps}
        for tel in (self.current, self.baseline):
            for frame in (tel.logs, tel.traces, tel.metrics):
                if frame is not None and "service" in frame.columns:
                    names.update(str(x) for x in frame.get_column("service").unique().drop_nulls())
        return sorted(names)
