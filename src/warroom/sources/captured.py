"""What a live event source returns: the raw responses as received, and their canonical tables.

A live read is a replay of its own responses: the Loki pages, the OTLP spool lines, git's output
and the deploy log are written (to the snapshot, or to a scratch folder) exactly as a snapshot
holds them and read back by the same format readers (`sources/raw/`). So `respond SNAPSHOT` reads
the same tables the live investigation read, by construction, and the tests check it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from warroom.sources.contract import SourceQuery
from warroom.sources.raw.formats import recognise
from warroom.sources.raw.reader import RawTable, ReadOptions


@dataclass(frozen=True)
class RawResponse:
    """One response as received, and the file name it is saved under in a snapshot."""

    name: str  # relative path in the snapshot folder: `loki/query_range.jsonl`, `otlp/traces.jsonl`
    body: bytes


@dataclass
class EventRead:
    tables: list[RawTable] = field(default_factory=list)
    queries: list[SourceQuery] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    responses: list[RawResponse] = field(default_factory=list)


def save(responses: list[RawResponse], folder: Path) -> list[Path]:
    """Write the responses under `folder` (a snapshot's period folder)."""
    paths = []
    for response in responses:
        path = folder / response.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(response.body)
        paths.append(path)
    return paths


def read_back(responses: list[RawResponse], queries: list[SourceQuery], options: ReadOptions) -> EventRead:
    """The canonical tables of the responses, read by the readers a snapshot is read with; each
    table carries the live query that produced it."""
    read = EventRead(queries=list(queries), responses=list(responses))
    with tempfile.TemporaryDirectory(prefix="warroom-live-") as scratch:
        for path, query in zip(save(responses, Path(scratch)), queries, strict=True):
            reader = recognise(path)
            if reader is None:  # the sources write only shapes a reader knows
                raise AssertionError(f"no reader for a saved live response {path.name}")
            raw = reader.read(path, options)
            read.tables.extend(RawTable(t.modality, t.frame, query) for t in raw.tables)
            read.limitations.extend(raw.limitations)
            read.notes.extend(raw.notes)
    return read
