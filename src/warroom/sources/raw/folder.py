"""Read one period's folder (the incident, `baseline/`, `after/<kind>/`): every file recognised by
its content, read by its reader, and the tables of each modality merged into one canonical table."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from warroom.errors import BundleError
from warroom.sources.canonical import TABLES, TS, TableSpec, Telemetry
from warroom.sources.contract import Modality, SourceQuery, TelemetryRead
from warroom.sources.manifest import Alert
from warroom.sources.raw.formats import recognise
from warroom.sources.raw.reader import RawTable, ReadOptions
from warroom.sources.tables import FORMATS

# Files and folders of a bundle that are not telemetry of the period (or belong to another period).
NOT_TELEMETRY = {"incident.yaml", "topology.yaml", "repo.bundle", "ground_truth.json", "README.md", ".gitignore"}
OTHER_PERIODS = {"baseline", "after", "repo", ".git"}


@dataclass
class FileReport:
    """What `bundle validate` says of one file: which reader took it, what it found and derived."""

    path: Path
    reader: str
    notes: list[str] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)


@dataclass
class PeriodRead:
    read: TelemetryRead
    alerts: list[Alert] = field(default_factory=list)
    files: list[FileReport] = field(default_factory=list)


def _files(folder: Path, top: bool) -> list[Path]:
    """Every file of the period, sorted; a path that cannot be followed is an error, never "absent"."""
    found: list[Path] = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        path = Path(entry.path)
        if entry.name.startswith(".") or entry.name in NOT_TELEMETRY or (top and entry.name in OTHER_PERIODS):
            continue
        try:
            path.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            reason = "a symlink loop" if isinstance(exc, RuntimeError) or "loop" in str(exc).lower() else exc
            raise BundleError(f"cannot be read ({reason})", file=path) from None
        if path.is_dir():
            found.extend(_files(path, top=False))
        elif path.is_file():
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
    if not frames:
        raise BundleError(f"no {spec.name} rows", file=tables[0].query.location)
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


def read_period(folder: Path, options: ReadOptions, *, top: bool = False) -> PeriodRead:
    """The period's telemetry from every file in `folder` (and its sub-folders)."""
    files = _files(folder, top)
    if files:
        _one_canonical_file_per_table(files)
    by_modality: dict[Modality, list[RawTable]] = {}
    period = PeriodRead(TelemetryRead(Telemetry()))
    for path in files:
        reader = recognise(path)
        if reader is None:
            period.files.append(FileReport(path, "not recognised", ["ignored: no reader knows this file's shape"]))
            continue
        raw = reader.read(path, options)
        period.files.append(FileReport(path, reader.name, raw.notes, raw.limitations))
        period.alerts.extend(raw.alerts)
        period.read.limitations.extend(raw.limitations)
        for table in raw.tables:
            by_modality.setdefault(table.modality, []).append(table)
    queries: list[SourceQuery] = []
    merged: dict[str, pl.DataFrame] = {}
    for modality, tables in by_modality.items():
        merged[modality.value] = _merge(tables, TABLES[modality.value])
        queries.extend(t.query for t in tables)
    period.read.telemetry = Telemetry(**merged)
    period.read.queries = queries
    return period
