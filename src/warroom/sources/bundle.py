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
import errno
import hashlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from warroom.errors import BundleError
from warroom.sources.manifest import Manifest
from warroom.sources.validate import Limits, Origin, Problem, validate_frame
from warroom.yamlfile import line_of, load_model, read_yaml

FORMATS = (".parquet", ".jsonl", ".ndjson", ".csv")
MAX_FIELD_BYTES = 1 << 20  # a single log message larger than 1 MiB is not a log line

TS = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class TableSpec:
    name: str
    required: dict[str, pl.DataType]
    optional: dict[str, pl.DataType]
    time_columns: tuple[str, ...]
    # Few distinct values repeated on millions of rows: held as dictionary codes (categories), which
    # keeps a large bundle's telemetry in far less memory and makes grouping by them cheap.
    categorical: tuple[str, ...] = ()


TABLES: dict[str, TableSpec] = {
    "metrics": TableSpec(
        "metrics",
        {"timestamp": TS, "service": pl.String(), "metric": pl.String(), "value": pl.Float64()},
        {"instance": pl.String()},
        ("timestamp",),
        categorical=("service", "metric", "instance"),
    ),
    "logs": TableSpec(
        "logs",
        {"timestamp": TS, "service": pl.String(), "level": pl.String(), "message": pl.String()},
        {"trace_id": pl.String(), "instance": pl.String(), "attributes": pl.String()},
        ("timestamp",),
        categorical=("service", "level", "instance"),
    ),
    "traces": TableSpec(
        "traces",
        {
            "trace_id": pl.String(),
            "span_id": pl.String(),
            "parent_span_id": pl.String(),
            "service": pl.String(),
            "operation": pl.String(),
            "start_time": TS,
            "end_time": TS,
        },
        {"status": pl.String(), "instance": pl.String(), "attributes": pl.String()},
        ("start_time", "end_time"),
        categorical=("service", "operation", "status", "instance"),
    ),
    "changes": TableSpec(
        "changes",
        {"id": pl.String(), "time": TS, "service": pl.String(), "kind": pl.String()},
        {
            "version": pl.String(),
            "commit": pl.String(),
            "author": pl.String(),
            "description": pl.String(),
        },
        ("time",),
    ),
}

NULLABLE = {
    "parent_span_id",
    "trace_id",
    "instance",
    "status",
    "attributes",
    "version",
    "commit",
    "author",
    "description",
}


@dataclass
class Telemetry:
    """The four modalities for one period; a modality that is absent is None. `problems` are the
    validation warnings met reading them (rows dropped or repaired): the run's limitations."""

    metrics: pl.DataFrame | None = None
    logs: pl.DataFrame | None = None
    traces: pl.DataFrame | None = None
    changes: pl.DataFrame | None = None
    problems: list[Problem] = field(default_factory=list)

    def present(self) -> list[str]:
        return [name for name in TABLES if getattr(self, name) is not None]


class AfterActions(Mapping[str, Telemetry]):
    """`after/<action-kind>/` folders, each read when used: a large bundle keeps telemetry for
    every possible mitigation, and a run looks at the few it tries. Only the last `keep` read stay
    in memory (a mitigation loop walks through several in turn). Their files were probed when the
    bundle was loaded; rows are validated when a folder is read."""

    def __init__(self, folders: dict[str, Path], alert_at: datetime, limits: Limits, keep: int = 2) -> None:
        self._folders = folders
        self._alert_at = alert_at
        self._limits = limits
        self._keep = keep
        self._loaded: dict[str, Telemetry] = {}
        self._lock = threading.Lock()  # steps on threads share one bundle
        self.problems: dict[str, list[Problem]] = {}  # validation warnings of each folder read so far

    def __getitem__(self, kind: str) -> Telemetry:
        with self._lock:
            telemetry = self._loaded.pop(kind, None)
        if telemetry is None:
            telemetry = read_telemetry(self._folders[kind], self._alert_at, self._limits)
            self.problems[kind] = telemetry.problems
        with self._lock:
            self._loaded[kind] = telemetry  # most recently used last
            while len(self._loaded) > self._keep:
                del self._loaded[next(iter(self._loaded))]
        return telemetry

    def __iter__(self) -> Iterator[str]:
        return iter(self._folders)

    def __len__(self) -> int:
        return len(self._folders)

    def load_all(self) -> None:
        """Read (and so validate) every folder."""
        for kind in self._folders:
            self[kind]


@dataclass
class Bundle:
    path: Path
    manifest: Manifest
    telemetry: Telemetry
    baseline: Telemetry | None = None
    after: Mapping[str, Telemetry] = field(default_factory=dict)
    topology: dict[str, list[str]] = field(default_factory=dict)
    repo: Path | None = None

    @property
    def problems(self) -> list[Problem]:
        """Validation warnings of the incident's and the baseline's telemetry, and of the after/
        folders read so far."""
        after = self.after.problems.values() if isinstance(self.after, AfterActions) else []
        return [
            *self.telemetry.problems,
            *(self.baseline.problems if self.baseline else []),
            *(p for problems in after for p in problems),
        ]

    @property
    def metrics(self) -> pl.DataFrame | None:
        return self.telemetry.metrics

    @property
    def logs(self) -> pl.DataFrame | None:
        return self.telemetry.logs

    @property
    def traces(self) -> pl.DataFrame | None:
        return self.telemetry.traces

    @property
    def changes(self) -> pl.DataFrame | None:
        return self.telemetry.changes

    def missing_modalities(self) -> list[str]:
        return [name for name in ("metrics", "logs", "traces", "changes") if getattr(self, name) is None]


def present(path: Path, kind: str = "file") -> bool:
    """Whether `path` is there to read; False only when nothing is there at all. Something that is
    there but cannot be read as a `kind` ("file" or "folder") — a symbolic link loop, a dangling
    link, a file where a folder belongs, no permission — is an error, never "absent"."""
    try:
        path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise BundleError("is a dangling symbolic link", file=path) from None
        return False
    except OSError as exc:
        what = "a symbolic link loop" if exc.errno == errno.ELOOP else exc.strerror or exc.__class__.__name__
        raise BundleError(f"cannot be read ({what})", file=path) from None
    is_dir = os.path.isdir(path)
    if kind == "folder" and not is_dir:
        raise BundleError("expected a folder, found a file", file=path)
    if kind == "file" and (is_dir or not os.path.isfile(path)):
        raise BundleError("expected a file, found a folder" if is_dir else "not a regular file", file=path)
    if not os.access(path, os.R_OK | (os.X_OK if is_dir else 0)):
        raise BundleError("cannot be read (permission denied)", file=path)
    return True


def _find_table(folder: Path, name: str) -> Path | None:
    found = [folder / f"{name}{ext}" for ext in FORMATS if present(folder / f"{name}{ext}")]
    if len(found) > 1:
        raise BundleError(
            f"more than one file for '{name}' ({', '.join(p.name for p in found)}); keep one",
            file=folder,
        )
    return found[0] if found else None


def _read_raw(path: Path, rows: int | None = None) -> pl.DataFrame:
    suffix = path.suffix
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path, n_rows=rows)
        if suffix in (".jsonl", ".ndjson"):
            return pl.read_ndjson(path, infer_schema_length=None, n_rows=rows)
        return pl.read_csv(path, infer_schema=False, truncate_ragged_lines=False, n_rows=rows)
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


def _origin(path: Path) -> Origin:
    first_line = {".csv": 2, ".jsonl": 1, ".ndjson": 1}.get(path.suffix)  # Parquet: rows are counted
    return Origin(path, first_line)


def read_table(
    path: Path, name: str, alert_at: datetime, limits: Limits | None = None
) -> tuple[pl.DataFrame, list[Problem]]:
    """One table, converted and validated (rows in file order until then, so problems name lines)."""
    spec = TABLES[name]
    checked = validate_frame(name, _coerce(_read_raw(path), spec, path), _origin(path), alert_at, limits)
    frame = checked.frame
    order = spec.time_columns[0]
    return (frame if frame.get_column(order).is_sorted() else frame.sort(order)), checked.warnings


# Rows read from each after/ table when the bundle is loaded: enough to reject a file that is not
# what it claims to be before anything is recorded, without reading every mitigation's telemetry.
PROBE_ROWS = 1000


def probe_telemetry(folder: Path) -> None:
    """Check that a folder holds readable tables whose first rows convert (errors only)."""
    paths = {name: _find_table(folder, name) for name in TABLES}
    if not any(paths.values()):
        raise BundleError(
            f"no telemetry: expected at least one of {', '.join(TABLES)} ({'/'.join(FORMATS)})", file=folder
        )
    for name, path in paths.items():
        if path is not None:
            _coerce(_read_raw(path, PROBE_ROWS), TABLES[name], path)


def read_telemetry(folder: Path, alert_at: datetime, limits: Limits | None = None) -> Telemetry:
    found: dict[str, Any] = {}
    problems: list[Problem] = []
    for name in TABLES:
        path = _find_table(folder, name)
        if path is None:
            found[name] = None
            continue
        found[name], warnings = read_table(path, name, alert_at, limits)
        problems.extend(warnings)
    return Telemetry(**found, problems=problems)


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
    if present(root / "repo", "folder"):
        return root / "repo"
    packed = root / "repo.bundle"
    if not present(packed):
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


def load_bundle(path: str | Path, *, eager: bool = False) -> Bundle:
    """Load and validate a bundle; raise BundleError naming the file, line and field.

    The `after/` folders are probed (readable, first rows convert) now and read when first used,
    unless `eager` (which reads and validates every row of them too)."""
    root = Path(path)
    if not root.is_dir():
        raise BundleError("not a directory (expected an incident bundle)", file=root)
    if not present(root / "incident.yaml"):
        raise BundleError("file not found", file=root / "incident.yaml")
    manifest = load_model(root / "incident.yaml", Manifest, BundleError)
    alert_at = manifest.alert.fired_at
    limits = Limits.from_env()
    telemetry = read_telemetry(root, alert_at, limits)
    if not telemetry.present():
        raise BundleError(
            f"no telemetry: expected at least one of metrics, logs, traces, changes ({'/'.join(FORMATS)})",
            file=root,
        )
    baseline = read_telemetry(root / "baseline", alert_at, limits) if present(root / "baseline", "folder") else None
    folders = {}
    if present(root / "after", "folder"):
        # a stray file beside the folders (a README) is not telemetry; anything else must be a folder
        entries = sorted((root / "after").iterdir())
        folders = {p.name: p for p in entries if not p.is_file() and present(p, "folder")}
    for folder in folders.values():
        probe_telemetry(folder)
    after = AfterActions(folders, alert_at, limits)
    if eager:
        after.load_all()
    topology = _read_topology(root / "topology.yaml") if present(root / "topology.yaml") else {}
    repo = _checkout(root)
    return Bundle(root, manifest, telemetry, baseline, after, topology, repo)


def describe(bundle: Bundle) -> dict[str, Any]:
    """A short, JSON-friendly inventory of a bundle (what `bundle validate` prints)."""
    frames = {name: getattr(bundle.telemetry, name) for name in TABLES}
    counts = {name: (frame.height if frame is not None else None) for name, frame in frames.items()}
    return {
        "path": str(bundle.path),
        "title": bundle.manifest.title,
        "alert": bundle.manifest.alert.name,
        "fired_at": bundle.manifest.alert.fired_at.isoformat(),
        "rows": counts,
        "baseline": bundle.baseline.present() if bundle.baseline else [],
        "after": sorted(bundle.after),
        "topology_services": len(bundle.topology),
        "repo": str(bundle.repo) if bundle.repo else None,
        "warnings": [p.limitation() for p in bundle.problems],
    }
