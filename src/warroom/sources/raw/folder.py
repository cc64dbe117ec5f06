"""Read one period's folder (the incident, `baseline/`, `after/<kind>/`): every file recognised by
its content, read by its reader, and the tables of each modality merged into one canonical table."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import polars as pl

from warroom.errors import BundleError, InputError
from warroom.sources.canonical import TABLES, TS, TableSpec, Telemetry
from warroom.sources.contract import Modality, SourceQuery, TelemetryRead
from warroom.sources.manifest import Alert
from warroom.sources.mapping.resolution import QuantileBounds, with_resolution
from warroom.sources.paths import present
from warroom.sources.raw.compressed import inflated, is_gzip
from warroom.sources.raw.formats import recognise, why_unrecognised
from warroom.sources.raw.reader import RawRead, RawTable, ReadOptions
from warroom.sources.raw.v1 import CanonicalTable
from warroom.sources.tables import FORMATS, read_table
from warroom.sources.validate import Limits, Origin, validate_frame

# Files and folders of a bundle that are not telemetry of the period (or belong to another period).
NOT_TELEMETRY = {
    "incident.yaml",
    "snapshot.json",
    "topology.yaml",
    "repo.bundle",
    "ground_truth.json",
    "README.md",
    ".gitignore",
}
OTHER_PERIODS = {"baseline", "after", "repo", ".git"}
# Top-level folders that are not this period's telemetry: other periods, and a snapshot's copy of
# the mapping rules.
SKIPPED_FOLDERS = OTHER_PERIODS | {"mapping-rules"}
# the modalities recorded over the period (a change log reaches back before it)
_RECORDED = (Modality.METRICS, Modality.LOGS, Modality.TRACES)


@dataclass
class FileReport:
    """What `bundle validate` says of one file: which reader took it, what it found and derived."""

    path: Path
    reader: str
    notes: list[str] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)


@dataclass
class PeriodFiles:
    """A period's files as read, before validation: the canonical tables file by file."""

    folder: Path
    tables: list[RawTable] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    files: list[FileReport] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)
    quantile_bounds: list[QuantileBounds] = field(default_factory=list)

    def data_from(self) -> datetime | None:
        """The first time any metric, log line or span of the period was recorded (before validation)."""
        firsts = [
            table.frame.get_column(column).min()
            for table in self.tables
            if table.modality in _RECORDED
            and (column := TABLES[table.modality.value].time_columns[0]) in table.frame.columns
            and table.frame.height
        ]
        return min((t for t in firsts if isinstance(t, datetime)), default=None)

    def validated(self, alert_at: datetime, limits: Limits | None = None) -> TelemetryRead:
        """Every table checked at the source boundary (`sources/validate.py`: invalid rows dropped
        with a named warning, an error raised when nothing usable is left), then merged per modality."""
        limits = limits or Limits.from_env()
        by_modality: dict[Modality, list[RawTable]] = {}
        limitations = list(self.limitations)
        for table in self.tables:
            origin = Origin(table.query.location or None, table.first_line)
            checked = validate_frame(table.modality.value, table.frame, origin, alert_at, limits)
            limitations.extend(problem.limitation() for problem in checked.warnings)
            by_modality.setdefault(table.modality, []).append(replace(table, frame=checked.frame))
        merged = {modality.value: _merge(tables, TABLES[modality.value]) for modality, tables in by_modality.items()}
        if "metrics" in merged:
            merged["metrics"] = with_resolution(merged["metrics"], self.quantile_bounds)
        queries = [t.query for tables in by_modality.values() for t in tables]
        return TelemetryRead(Telemetry(**merged), queries, limitations)


def _files(folder: Path, top: bool) -> list[Path]:
    """Every file of the period, sorted; a path that cannot be followed is an error, never "absent"."""
    found: list[Path] = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        path = Path(entry.path)
        if entry.name.startswith(".") or entry.name in NOT_TELEMETRY or (top and entry.name in SKIPPED_FOLDERS):
            continue
        if path.is_dir() and present(path, "folder"):
            found.extend(_files(path, top=False))
        elif present(path):
            found.append(path)
    return found


def as_canonical(frame: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    """A reader's table in the canonical column order, dtypes and categories."""
    columns = []
    for name, dtype in {**spec.required, **spec.optional}.items():
        if name not in frame.columns:
            if name in spec.required:
                raise ValueError(f"a reader produced {spec.name} without the column '{name}'")
            continue
        column = frame.get_column(name)
        if dtype == TS:
            column = column.cast(TS)
        elif column.dtype != dtype:
            column = column.cast(dtype)
        columns.append(column.cast(pl.Categorical) if name in spec.categorical else column)
    return pl.DataFrame(columns)


def _merge(tables: list[RawTable], spec: TableSpec) -> pl.DataFrame:
    frames = [as_canonical(t.frame, spec) for t in tables if t.frame.height]
    merged = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    order = spec.time_columns[0]
    return merged if merged.get_column(order).is_sorted() else merged.sort(order)


def _one_canonical_file_per_table(files: list[Path]) -> None:
    for name in TABLES:
        same = [p for p in files if p.stem == name and p.suffix in FORMATS and p.parent == files[0].parent]
        if len(same) > 1:
            raise BundleError(
                f"more than one file for '{name}' ({', '.join(p.name for p in same)}); keep one", file=same[0].parent
            )


def read_period(folder: Path, options: ReadOptions, *, top: bool = False) -> PeriodFiles:
    """Every file in `folder` (and its sub-folders) read by the reader that recognises it."""
    files = _files(folder, top)
    if files:
        _one_canonical_file_per_table(files)
    period = PeriodFiles(folder)
    for path in files:
        found = _read_file(path, options)
        if found is None:
            period.files.append(FileReport(path, "not recognised", [f"ignored: {why_unrecognised(path)}"]))
            continue
        name, raw = found
        period.files.append(FileReport(path, name, raw.notes, raw.limitations))
        period.alerts.extend(raw.alerts)
        period.limitations.extend(raw.limitations)
        period.tables.extend(raw.tables)
        period.quantile_bounds.extend(raw.quantile_bounds)
    return period


def _read_file(path: Path, options: ReadOptions) -> tuple[str, RawRead] | None:
    """(the reader's name, what it read) of one file; a gzip file no reader takes as it is is read
    decompressed, and what the read says of the scratch copy is said of the file itself."""
    reader = recognise(path)
    if reader is not None:
        return reader.name, reader.read(path, options)
    if not is_gzip(path):
        return None
    with inflated(path) as plain:
        reader = recognise(plain)
        if reader is None:
            return None
        try:
            raw = reader.read(plain, options)
        except InputError as exc:
            if exc.file != str(plain):
                raise
            raise type(exc)(exc.message, file=path, line=exc.line, field=exc.field) from None
        return f"{reader.name}, gzip", _said_of(raw, plain, path)


def _said_of(raw: RawRead, plain: Path, path: Path) -> RawRead:
    # one pass, the full path first: the file's own name contains the scratch copy's
    said = re.compile(f"{re.escape(str(plain))}|{re.escape(plain.name)}")

    def text(value: str) -> str:
        return said.sub(lambda m: str(path) if m.group(0) == str(plain) else path.name, value)

    def query(q: SourceQuery) -> SourceQuery:
        return q.model_copy(update={"text": text(q.text), "location": text(q.location)})

    return RawRead(
        tables=[replace(t, query=query(t.query)) for t in raw.tables],
        alerts=raw.alerts,
        notes=[text(n) for n in raw.notes],
        limitations=[text(n) for n in raw.limitations],
        quantile_bounds=raw.quantile_bounds,
    )


# Rows read from each post-action table when a bundle is opened: enough to reject a file that is
# not what it claims to be before anything is recorded, without reading every mitigation's telemetry.
PROBE_ROWS = 1000


def probe_period(folder: Path) -> None:
    """Check, without reading it all, that a folder holds telemetry: every path readable, at least
    one file a reader recognises, the first rows of canonical tables converting (errors only)."""
    files = _files(folder, top=False)
    readers = {path: recognise(path) for path in files}
    # a compressed file counts here; whether a reader takes its content is said when it is read
    if not any(reader is not None or is_gzip(path) for path, reader in readers.items()):
        raise BundleError("no telemetry: no file here is a table or an export a reader recognises", file=folder)
    _one_canonical_file_per_table(files)
    for path, reader in readers.items():
        # only what the v1 reader takes is a canonical table: a snapshot's otlp/logs.jsonl is OTLP
        if isinstance(reader, CanonicalTable):
            read_table(path, path.stem, rows=PROBE_ROWS)
