"""A bundle served as if it were live: the source behind `warroom serve --replay BUNDLE`.

The replay's clock starts at the bundle's alert time when the incident's first alert arrives
(`started_at`, engine time) and runs at wall-clock speed. Each read of the incident sees only
what had been recorded by the replay's now — rows stamped later are not there yet, as they would
not be in Prometheus or Loki — so a service tried on a replay answers from the same partial view
a live investigation has. The baseline (the past) and what was recorded after each action are
read as the bundle holds them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from warroom.sources.bundle import BundleSource
from warroom.sources.canonical import TABLES, Telemetry
from warroom.sources.contract import ReplaySpec, TelemetryRead


def _wall() -> datetime:
    return datetime.now(UTC)


class ReplaySource(BundleSource):
    def __init__(self, path: str | Path, *, started_at: datetime, wall_clock: Callable[[], datetime] = _wall) -> None:
        super().__init__(path)
        self.started_at = started_at
        self.wall_clock = wall_clock

    def spec(self) -> ReplaySpec:  # type: ignore[override]  # a replay reopens as a replay
        return ReplaySpec(path=str(self.root.resolve()), started_at=self.started_at)

    def describe(self) -> str:
        return f"replay of bundle {self.root}"

    def now(self) -> datetime:
        """The replay's now: the bundle's alert time plus the time since the replay started."""
        return self.manifest().alert.fired_at + (self.wall_clock() - self.started_at)

    def incident(self) -> TelemetryRead:
        read = super().incident()
        cut = self.now()
        tables: dict[str, pl.DataFrame | None] = {}
        dropped = 0
        for name, spec in TABLES.items():
            frame = getattr(read.telemetry, name)
            if frame is None:
                tables[name] = None
                continue
            # a row is visible once it has started (a span that began before now, a sample taken)
            visible = frame.filter(pl.col(spec.time_columns[0]) <= cut)
            dropped += frame.height - visible.height
            tables[name] = visible
        queries = [q.model_copy(update={"end": cut}) for q in read.queries]
        limitations = list(read.limitations)
        if dropped:
            limitations.append(
                f"replay: {dropped} recorded row(s) after the replay's now ({cut:%Y-%m-%d %H:%M:%S} UTC) "
                "were not visible yet"
            )
        return TelemetryRead(Telemetry(**tables), queries, limitations)
