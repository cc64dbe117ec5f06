"""Format v1's canonical table files (`metrics.csv`, `logs.jsonl`, `traces.parquet`, …), read as they are."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from warroom.sources.canonical import TABLES
from warroom.sources.contract import Modality, SourceQuery
from warroom.sources.raw.reader import RawRead, RawTable, ReadOptions
from warroom.sources.tables import FORMATS, first_line, read_table


def is_v1_record(path: Path, record: Mapping[str, Any], table: str) -> bool:
    """A line of a format v1 table file (`logs.jsonl`, `traces.jsonl`): canonical columns only,
    attributes as text. Raw readers whose records look alike leave it to the v1 reader."""
    spec = TABLES[table]
    return (
        path.stem == table
        and set(record) <= {*spec.required, *spec.optional}
        and not isinstance(record.get("attributes"), dict | list)
    )


class CanonicalTable:
    """A file named after a canonical table. Asked last: a `metrics.jsonl` that holds Prometheus
    samples with label sets is read by the Prometheus reader before it gets here."""

    name = "canonical table (format v1)"

    def sniff(self, path: Path, head: bytes) -> bool:
        return path.stem in TABLES and path.suffix in FORMATS

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        frame = read_table(path, path.stem)
        modality = Modality(path.stem)
        query = SourceQuery(source="bundle", modality=modality, text=path.name, location=str(path))
        table = RawTable(modality, frame, query, first_line(path))
        return RawRead(tables=[table], notes=[f"{frame.height} {path.stem} rows"])
