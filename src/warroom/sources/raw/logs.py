"""Log lines from any log shape into the canonical `logs` table.

Every log reader (JSON lines, logfmt, plain text, OTLP/JSON logs, database server logs) decodes
its shape into `LogLine` values and hands them here: levels become the canonical upper-case four,
trace ids lower-case hex, attributes one JSON object per line (every field as written, never
re-encoded as anything else, with the names the analyses read added by `semconv.py`), and lines
whose time cannot be read are skipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from warroom.sources.canonical import TS
from warroom.sources.contract import Modality, SourceQuery
from warroom.sources.raw.reader import RawRead, RawTable
from warroom.sources.raw.semconv import canonical_attributes, hex_id
from warroom.sources.raw.text import Skipped
from warroom.sources.raw.times import epoch_us

LINE = "\x00line"  # the line number a row came from, while the rows of two readers are merged in file order


@dataclass
class LogLine:
    line: int
    timestamp: Any  # anything times.epoch_us reads
    service: str | None
    level: str | None  # canonical already, or None when the line says none
    message: str
    trace_id: Any = None
    instance: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class LogReadStats:
    """What a reader noticed while decoding, for `bundle validate`."""

    service_from: dict[str, int] = field(default_factory=dict)  # where the service came from → lines
    no_level: int = 0
    no_message: int = 0

    def count_service(self, origin: str) -> None:
        self.service_from[origin] = self.service_from.get(origin, 0) + 1


def log_read(
    lines: list[LogLine],
    path: Path,
    skipped: Skipped,
    what: str,
    stats: LogReadStats | None = None,
    columns: pl.DataFrame | None = None,
) -> RawRead:
    """The canonical logs table of a file's lines, with notes and limitations; `columns` holds the
    lines a columnar reader already made canonical (with their line numbers, in LINE)."""
    timestamps = [epoch_us(line.timestamp) for line in lines]
    kept = [(line, ts) for line, ts in zip(lines, timestamps, strict=True) if ts is not None]
    for line, ts in zip(lines, timestamps, strict=True):
        if ts is None:
            skipped.add("time stamp missing or unreadable", line.line)
        elif line.service is None:
            skipped.add("no service (field or file name)", line.line)
    kept = [(line, ts) for line, ts in kept if line.service]
    skipped.fail_if_nothing_left(len(kept) + (columns.height if columns is not None else 0), path, what)
    trace_ids = [hex_id(line.trace_id, 32) for line, _ in kept]
    frame = pl.DataFrame(
        {
            "timestamp": pl.Series([ts for _, ts in kept], dtype=pl.Int64).cast(TS),
            "service": [line.service for line, _ in kept],
            "level": [line.level or "INFO" for line, _ in kept],
            "message": [line.message for line, _ in kept],
            "trace_id": pl.Series(trace_ids, dtype=pl.String),
            "instance": pl.Series([line.instance for line, _ in kept], dtype=pl.String),
            "attributes": [
                orjson.dumps(canonical_attributes(line.attributes), default=str).decode() if line.attributes else None
                for line, _ in kept
            ],
            LINE: pl.Series([line.line for line, _ in kept], dtype=pl.UInt32),
        },
        schema_overrides={"attributes": pl.String},
    )
    if columns is not None:
        frame = pl.concat([columns, frame], how="vertical_relaxed")
    frame = frame.sort("timestamp", LINE).drop(LINE)
    levels = frame.get_column("level").value_counts(sort=True)
    level_text = ", ".join(f"{row[0]} {row[1]}" for row in levels.iter_rows())
    notes = [f"{what}: {frame.height} lines of {frame.get_column('service').n_unique()} service(s) ({level_text})"]
    limitations = skipped.limitations(path, "line")
    bad_ids = sum(1 for tid in trace_ids if tid is not None and len(tid) != 32)  # the columns keep none
    if bad_ids:
        limitations.append(f"{path.name}: {bad_ids} trace id(s) not 32 hex digits: kept as written, joins none")
    if stats is not None:
        if stats.service_from:
            origins = sorted(stats.service_from.items(), key=lambda item: (-item[1], item[0]))
            notes.append("service from " + ", ".join(f"{k} ({n} lines)" for k, n in origins))
        if stats.no_level:
            notes.append(f"{stats.no_level} lines without a level: INFO, or ERROR where they carry an error")
        if stats.no_message:
            notes.append(f"{stats.no_message} lines without a message field: the message is their other fields")
    query = SourceQuery(source="bundle", modality=Modality.LOGS, text=f"{path.name}: every line", location=str(path))
    return RawRead(tables=[RawTable(Modality.LOGS, frame, query)], notes=notes, limitations=limitations)
