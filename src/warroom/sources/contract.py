"""The one interface every telemetry source fulfils, and the typed reads it returns.

A source is where an incident's evidence comes from: a bundle folder (v1 tables or the raw
exports of a real system), a live Prometheus / Loki / OTLP receiver / git / deploy log, or a
bundle replayed as if live. Agents and analyses never see which: they get the canonical tables
(`sources/canonical.py`) through `IncidentTelemetry`, and every table carries the queries that
produced it, so every piece of evidence cites a query a person can re-run.

In the spirit of HolmesGPT's toolsets: a source declares its prerequisites (checked before an
investigation starts, each with what is missing), and its results carry their query. In the
spirit of Keep's providers: the interface is small — the incident's manifest, a read of one
period, the periods around it, topology and code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from warroom.sources.canonical import Telemetry
from warroom.sources.manifest import Manifest


class Modality(StrEnum):
    METRICS = "metrics"
    LOGS = "logs"
    TRACES = "traces"
    CHANGES = "changes"


class SourceQuery(BaseModel):
    """One query a source ran (or one file it read): enough for a person to run it again."""

    model_config = ConfigDict(frozen=True)

    source: str  # the source kind that answered: bundle, prometheus, loki, otlp, git, deploy-log …
    modality: Modality
    text: str  # PromQL, LogQL, a file and its filter: what to re-run
    location: str = ""  # the URL or file it went to
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    derives: str = ""  # the canonical series it produced, when it is a mapping rule's query


class Prerequisite(BaseModel):
    """Something a source needs before it can answer (a reachable URL, a readable file)."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class TelemetryRead:
    """The canonical tables of one period, with the queries behind them and what was left out."""

    telemetry: Telemetry
    queries: list[SourceQuery] = field(default_factory=list)
    # What a budget or a bad row made the source leave out, and any other caveat about the data:
    # each a sentence that ends up in the run's limitations.
    limitations: list[str] = field(default_factory=list)


class BundleSpec(BaseModel):
    """A bundle folder (v1 tables, raw exports, or a snapshot of a live investigation)."""

    kind: Literal["bundle"] = "bundle"
    path: str
    alert: str | None = None  # an alert file given beside the folder (`respond DIR --alert FILE`)


class ReplaySpec(BaseModel):
    """A bundle served as if live (sources/replay.py): reads see what had happened by the
    replay's now — the bundle's alert time plus the time since `started_at` (engine time)."""

    kind: Literal["replay"] = "replay"
    path: str
    started_at: AwareDatetime


# How to open a source again, in a worker process or after a resume. Each kind of source adds its
# spec here (a discriminated union on `kind`); `sources/registry.py` opens them.
SourceSpec = Annotated[BundleSpec | ReplaySpec, Field(discriminator="kind")]


class TelemetrySource(Protocol):
    """Where an incident's telemetry comes from (implementations: sources/bundle.py, …)."""

    def spec(self) -> SourceSpec:
        """How to open this source again (in a worker process, after a resume)."""
        ...

    def describe(self) -> str:
        """A short human name: 'bundle examples/x', 'prometheus http://…'."""
        ...

    def prerequisites(self) -> list[Prerequisite]:
        """What the source needs, each checked now."""
        ...

    def manifest(self) -> Manifest:
        """The incident's alert, window, objectives and business context."""
        ...

    def incident(self) -> TelemetryRead:
        """The incident window's telemetry (with whatever precedes it that the source holds)."""
        ...

    def baseline(self) -> TelemetryRead | None:
        """A fault-free period to compare against, when the source has one apart from the window."""
        ...

    def after(self, action_kind: str, since: datetime) -> TelemetryRead | None:
        """What the system did after an action of `action_kind` took effect at `since`: a live
        source re-queries the period from `since`; a recorded incident reads what was recorded
        after that action (None when it recorded nothing for it)."""
        ...

    def recorded_actions(self) -> list[str] | None:
        """The action kinds a recorded incident holds post-action data for; None for a live source
        (any action can be observed after it is taken)."""
        ...

    def topology(self) -> dict[str, list[str]]:
        """Which service calls which, when the source knows it (else empty)."""
        ...

    def repository(self) -> Path | None:
        """A git checkout of the services' code, when the source has one."""
        ...
