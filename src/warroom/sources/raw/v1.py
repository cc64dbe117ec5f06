"""Format v1's canonical table files (`metrics.csv`, `logs.jsonl`, `traces.parquet`, …), read as they are."""

from __future__ import annotations

from pathlib import Path

from warroom.sources.canonical import TABLES
from warroom.sources.contract import Modality, SourceQuery
from warroom.sources.raw.reader import RawRead, RawTable, ReadOptions
from warroom.sources.tables import FORMATS, read_table


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
        return RawRead(tables=[RawTable(modality, frame, query)], notes=[f"{frame.height} {path.stem} rows"])
