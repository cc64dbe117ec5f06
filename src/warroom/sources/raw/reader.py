"""The contract of a raw-format reader: recognise a file by its content, read it into canonical tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import polars as pl

from warroom.sources.contract import Modality, SourceQuery
from warroom.sources.manifest import Alert
from warroom.sources.mapping.resolution import QuantileBounds

SNIFF_BYTES = 64 * 1024  # enough for a header row, a few JSON lines or one pretty-printed object


@dataclass
class RawTable:
    """One canonical table (docs/bundle-format.md's columns for its modality) read from one file."""

    modality: Modality
    frame: pl.DataFrame
    query: SourceQuery
    # The file line of the frame's first row, when rows are lines of the file in order (canonical
    # CSV/JSONL tables): validation then names the line of a bad row; otherwise rows are counted.
    first_line: int | None = None


@dataclass
class RawRead:
    """What one file held: canonical tables, alerts, and notes for `bundle validate`."""

    tables: list[RawTable] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    # What the reader recognised and what it derived from it, one sentence each ("Prometheus
    # samples: 41 series, 3 histograms → latency_p99_ms for 4 services").
    notes: list[str] = field(default_factory=list)
    # What it could not use and why (named warnings that end up in the run's limitations).
    limitations: list[str] = field(default_factory=list)
    # The bucket bounds behind the period's recorded quantiles that a series discovery answer
    # gives (their samples' resolution; sources/mapping/resolution.py).
    quantile_bounds: list[QuantileBounds] = field(default_factory=list)


@dataclass(frozen=True)
class ReadOptions:
    """What a reader may need besides the file: settings from warroom.toml's [sources] section."""

    mapping_rules: tuple[Path, ...] = ()  # a user's own mapping rule files, after the shipped ones
    service_label: str | None = None  # the label that names the service, when not found by itself
    # The database's service name: the callee of database client spans and the service of the
    # database server's logs. None keeps the system's name (`db.system`: postgresql, mysql, redis);
    # set it where the metrics and topology name the database otherwise (`database`).
    database_service: str | None = None


class RawReader(Protocol):
    name: str  # what it reads, for people: "Prometheus samples (JSON lines, labels as an object)"

    def sniff(self, path: Path, head: bytes) -> bool:
        """Whether this file is in the reader's shape, from its name and first bytes."""
        ...

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        """The file as canonical tables; raise a warroom.errors.BundleError naming the line and field
        of the first bad record when the file cannot be used."""
        ...
