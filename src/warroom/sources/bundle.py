"""The incident bundle: one incident's evidence in a directory, validated on load.

Layout (see docs/bundle-format.md):

    incident.yaml                 manifest (alert, symptoms, window, SLOs, business context)
    metrics.{csv,jsonl,parquet}   timestamp, service, metric, value [, instance]
    logs.{csv,jsonl,parquet}      timestamp, service, level, message [, trace_id, instance, attributes]
    traces.{csv,jsonl,parquet}    trace_id, span_id, parent_span_id, service, operation,
                                  start_time, end_time [, status, instance, attributes]
                                  (attributes: a JSON object as text, e.g. {"http.status_code": 500})
    changes.{csv,jsonl,parquet}   id, time, service, kind, version, commit, author, description
    topology.yaml                 optional: {services: {name: {depends_on: [..]}}}
    baseline/                     optional: fault-free telemetry with the same files
    after/<action-kind>/          optional: telemetry observed after a mitigation was applied
    repo/ or repo.bundle          optional: the services' code, as a git checkout or a git bundle file
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from warroom.errors import BundleError
from warroom.sources.canonical import NULLABLE, TABLES, TS, TableSpec, Telemetry
from warroom.sources.contract import BundleSpec, Modality, Prerequisite, SourceQuery, TelemetryRead
from warroom.sources.incident_telemetry import IncidentTelemetry, read_incident
from warroom.sources.manifest import Manifest
from warroom.yamlfile import line_of, load_model, read_yaml

FORMATS = (".parquet", ".jsonl", ".ndjson", ".csv")
MAX_FIELD_BYTES = 1 << 20  # a single log message larger than 1 MiB is not a log line


def _find_table(folder: Path, name: str) -> Path | None:
    found = [folder / f"{name}{ext}" for ext in FORMATS if (folder / f"{name}{ext}").is_file()]
    if len(found) > 1:
        raise BundleError(
            f"more than one file for '{name}' ({', '.join(p.name for p in found)}); keep one",
            file=folder,
        )
    return found[0] if found else None


def _read_raw(path: Path) -> pl.DataFrame:
    suffix = path.suffix
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path)
        if suffix in (".jsonl", ".ndjson"):
            return pl.read_ndjson(path, infer_schema_length=None)
        return pl.read_csv(path, infer_schema=False, truncate_ragged_lines=False)
    except Exception as exc:  # polars raises several exception types; locate the bad line ourselves
        line = _locate_bad_line(path)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise BundleError(f"cannot parse {suffix.lstrip('.')} ({reason[:160]})", file=path, line=line) from None


def _locate_bad_line(path: Path) -> int | None:
    """Best effort: the first line that does not parse on its own (JSON Lines) or whose field
    count differs from the header's (CSV)."""
    if path.suffix == ".parquet":
        return None
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            if path.suffix in (".jsonl", ".ndjson"):
                for number, text in enumerate(handle, start=1):
                    if text.strip():
                        try:
                            if not isinstance(json.loads(text), dict):
                                return number
                        except json.JSONDecodeError:
                            return number
                return None
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                return 1
            for row in reader:
                if len(row) != len(header):
                    return reader.line_num
    except (UnicodeDecodeError, csv.Error):
        return None
    return None


def _coerce(frame: pl.DataFrame, spec: TableSpec, path: Path) -> pl.DataFrame:
    """Check columns, convert types, and name the first row that does not convert."""
    if frame.height == 0:
        raise BundleError("no rows (an absent modality is expressed by omitting the file)", file=path)
    missing = [col for col in spec.required if col not in frame.columns]
    if missing:
        raise BundleError(
            f"missing column(s) {', '.join(missing)}; expected {', '.join(spec.required)}",
            file=path,
            line=1 if path.suffix == ".csv" else None,
            field=missing[0],
        )
    header_offset = 2 if path.suffix == ".csv" else 1
    wanted = {**spec.required, **{k: v for k, v in spec.optional.items() if k in frame.columns}}
    columns = []
    for name, dtype in wanted.items():
        source = frame.get_column(name)
        converted = _convert(source, dtype)
        bad = converted.is_null() & source.is_not_null()
        if name not in NULLABLE:
            bad = bad | source.is_null()
        if name not in NULLABLE and source.dtype == pl.String:
            # a pattern test, not stripped copies: this runs over millions of values
            bad = bad | source.str.contains(r"^\s*$").fill_null(False)
        index = bad.arg_true()
        if index.len():
            row = int(index[0])
            shown = str(source[row])[:60]
            raise BundleError(
                f"value {shown!r} is not a valid {_describe(dtype)}",
                file=path,
                line=row + header_offset,
                field=name,
            )
        columns.append(converted.cast(pl.Categorical) if name in spec.categorical else converted)
    result = pl.DataFrame(columns)
    for text_col in ("message",):
        if text_col in result.columns:
            too_long = (result.get_column(text_col).str.len_bytes() > MAX_FIELD_BYTES).arg_true()
            if too_long.len():
                row = int(too_long[0])
                size = len(result.get_column(text_col)[row].encode())
                raise BundleError(
                    f"{size} bytes; at most {MAX_FIELD_BYTES} expected for one log message",
                    file=path,
                    line=row + header_offset,
                    field=text_col,
                )
    return result


def _describe(dtype: pl.DataType) -> str:
    if dtype == TS:
        return "timestamp (ISO 8601 with offset, or epoch seconds/milliseconds)"
    if dtype == pl.Float64:
        return "number"
    return "text"


def _convert(series: pl.Series, dtype: pl.DataType) -> pl.Series:
    if dtype == TS:
        return _to_timestamp(series)
    if dtype == pl.Float64:
        if series.dtype.is_numeric():
            return series.cast(pl.Float64)
        return series.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
    if series.dtype == pl.String:
        return series
    return series.cast(pl.String, strict=False)


def _to_timestamp(series: pl.Series) -> pl.Series:
    if isinstance(series.dtype, pl.Datetime):
        if series.dtype.time_zone is None:
            return series.dt.replace_time_zone("UTC").dt.cast_time_unit("us")
        return series.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if series.dtype.is_numeric():
        return _epoch_to_timestamp(series.cast(pl.Float64))
    text = series.cast(pl.String).str.strip_chars()
    numeric = text.cast(pl.Float64, strict=False)
    if numeric.is_not_null().sum() == text.is_not_null().sum() and text.is_not_null().any():
        return _epoch_to_timestamp(numeric)
    parsed = text.str.to_datetime(time_zone="UTC", time_unit="us", strict=False)
    naive = text.str.to_datetime(time_unit="us", strict=False).dt.replace_time_zone("UTC")
    return parsed.fill_null(naive)


def _epoch_to_timestamp(values: pl.Series) -> pl.Series:
    """Epoch numbers in s, ms, µs or ns, told apart by magnitude."""
    median = values.abs().median()
    magnitude = float(median) if isinstance(median, int | float) else 0.0
    scale = 1e6 if magnitude < 1e11 else 1e3 if magnitude < 1e14 else 1.0 if magnitude < 1e17 else 1e-3
    return (values * scale).round(0).cast(pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def read_table(path: Path, name: str) -> pl.DataFrame:
    spec = TABLES[name]
    frame = _coerce(_read_raw(path), spec, path)
    order = spec.time_columns[0]
    return frame if frame.get_column(order).is_sorted() else frame.sort(order)


def _read_topology(path: Path) -> dict[str, list[str]]:
    data, node = read_yaml(path, BundleError)
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict):
        raise BundleError("expected 'services:' mapping of service → {depends_on: [...]}", file=path, line=1)
    graph: dict[str, list[str]] = {}
    for name, spec in services.items():
        deps = (spec or {}).get("depends_on", []) if isinstance(spec, dict) else None
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise BundleError(
                "expected a list of service names",
                file=path,
                line=line_of(node, ["services", name]),
                field=f"services.{name}.depends_on",
            )
        graph[str(name)] = deps
    return graph


def _checkout(root: Path) -> Path | None:
    """The bundle's code repository: `repo/` as is, or `repo.bundle` (a git bundle file, which
    can be committed where a nested .git cannot) cloned once into a cache keyed by its content."""
    if (root / "repo").is_dir():
        return root / "repo"
    packed = root / "repo.bundle"
    if not packed.is_file():
        return None
    digest = hashlib.sha256(packed.read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "warroom" / "repos" / digest
    if (cache / ".git").is_dir():
        return cache
    staging = cache.with_name(f"{digest}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["git", "clone", "--quiet", str(packed.resolve()), str(staging)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        reason = (done.stderr.strip().splitlines() or ["git clone failed"])[-1]
        raise BundleError(f"not a readable git bundle ({reason[:160]})", file=packed)
    try:
        staging.rename(cache)  # atomic: a concurrent loader either sees the whole clone or none
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return cache


class BundleSource:
    """A bundle folder as a telemetry source: everything it holds was recorded, so a read after an
    action is the folder `after/<kind>/` recorded for it."""

    def __init__(self, path: str | Path, *, alert: str | Path | None = None) -> None:
        self.root = Path(path)
        if not self.root.is_dir():
            raise BundleError("not a directory (expected an incident bundle)", file=self.root)
        self.alert_file = Path(alert) if alert is not None else None
        self._manifest = load_model(self.root / "incident.yaml", Manifest, BundleError)

    def spec(self) -> BundleSpec:
        return BundleSpec(path=str(self.root.resolve()), alert=str(self.alert_file) if self.alert_file else None)

    def describe(self) -> str:
        return f"bundle {self.root}"

    def prerequisites(self) -> list[Prerequisite]:
        return [Prerequisite(name="bundle folder", ok=self.root.is_dir(), detail=str(self.root))]

    def manifest(self) -> Manifest:
        return self._manifest

    def incident(self) -> TelemetryRead:
        read = _read_folder(self.root)
        if not read.telemetry.present():
            raise BundleError(
                f"no telemetry: expected at least one of metrics, logs, traces, changes ({'/'.join(FORMATS)})",
                file=self.root,
            )
        return read

    def baseline(self) -> TelemetryRead | None:
        folder = self.root / "baseline"
        return _read_folder(folder) if folder.is_dir() else None

    def after(self, action_kind: str, since: datetime) -> TelemetryRead | None:
        folder = self.root / "after" / action_kind
        return _read_folder(folder) if action_kind in self.recorded_actions() else None

    def recorded_actions(self) -> list[str]:
        folder = self.root / "after"
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def topology(self) -> dict[str, list[str]]:
        path = self.root / "topology.yaml"
        return _read_topology(path) if path.is_file() else {}

    def repository(self) -> Path | None:
        return _checkout(self.root)


def _read_folder(folder: Path) -> TelemetryRead:
    found: dict[str, Any] = {}
    queries: list[SourceQuery] = []
    for name in TABLES:
        path = _find_table(folder, name)
        found[name] = read_table(path, name) if path is not None else None
        if path is not None:
            queries.append(SourceQuery(source="bundle", modality=Modality(name), text=path.name, location=str(path)))
    return TelemetryRead(Telemetry(**found), queries)


def load_bundle(path: str | Path, *, eager: bool = False) -> IncidentTelemetry:
    """Read and validate a bundle folder; raise BundleError naming the file, line and field.

    Post-action folders are read when a recovery check asks for them, unless `eager` (which reads,
    and so validates, every one of them now)."""
    source = BundleSource(path)
    telemetry = read_incident(source)
    if eager:
        for kind in source.recorded_actions():
            source.after(kind, source.manifest().effective_window().end)
    return telemetry


def describe(telemetry: IncidentTelemetry) -> dict[str, Any]:
    """A short, JSON-friendly inventory of an incident's telemetry (what `bundle validate` prints)."""
    counts = {name: (frame.height if frame is not None else None) for name, frame in vars(telemetry.current).items()}
    return {
        "source": telemetry.origin(),
        "title": telemetry.manifest.title,
        "alert": telemetry.manifest.alert.name,
        "fired_at": telemetry.manifest.alert.fired_at.isoformat(),
        "rows": counts,
        "baseline": telemetry.baseline.present() if telemetry.baseline else [],
        "after": telemetry.recorded_actions() or [],
        "topology_services": len(telemetry.topology),
        "repo": str(telemetry.repo) if telemetry.repo else None,
    }
