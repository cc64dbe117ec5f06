"""Prometheus samples in long form: one sample per row, as JSON Lines, CSV or Parquet (gzip allowed).

The metric name is in `__name__`, `metric` or `name`; the time in `timestamp`, `time` or `ts`
(epoch seconds/ms/µs/ns or ISO 8601); the value in `value` (a number, or text such as "NaN" and
"+Inf"). The labels are either one `labels` object per row (JSON, or a struct in Parquet) or one
column per label. This is what `query_range` dumps and the lab's captures look like:

    {"timestamp": 1716823290.0, "metric": "http_requests_total",
     "labels": {"service": "checkout", "status": "503", "instance": "10.0.0.7:8000"}, "value": "1207"}

A file shaped exactly like a v1 metrics table (timestamp, service, metric, value, instance) is one,
unless its names are raw Prometheus names (`_total`, `_bucket`, `_sum`, `_count`): then its
counters and histograms are derived like any other samples.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import polars as pl

from warroom.errors import BundleError
from warroom.sources.mapping.samples import NAME_FIELDS, Samples, from_long
from warroom.sources.raw.compressed import content, head_text, suffix
from warroom.sources.raw.prometheus_read import samples_read
from warroom.sources.raw.reader import SNIFF_BYTES, RawRead, ReadOptions
from warroom.sources.tables import _locate_bad_line, to_timestamp

TIME_FIELDS = ("timestamp", "time", "ts")
V1_COLUMNS = frozenset({"timestamp", "service", "metric", "value", "instance"})
RAW_NAME_ENDINGS = ("_total", "_bucket", "_sum", "_count", "_created")
FORMATS = (".jsonl", ".ndjson", ".csv", ".parquet")


def _pick(columns: list[str] | set[str], names: tuple[str, ...]) -> str | None:
    return next((n for n in names if n in columns), None)


def _columns_are_samples(columns: set[str], names: list[str]) -> bool:
    """Whether a table with these columns (and these metric names in its first rows) holds samples."""
    name, time = _pick(columns, NAME_FIELDS), _pick(columns, TIME_FIELDS)
    if time is None or "value" not in columns or (name is None and "labels" not in columns):
        return False
    if columns <= V1_COLUMNS:
        return any(n.endswith(RAW_NAME_ENDINGS) for n in names)
    return True


def _head_rows(path: Path, head: bytes) -> tuple[set[str], list[str]]:
    """The columns and metric names of the first rows of a text file."""
    text = head_text(path, head).decode("utf-8", errors="replace")
    lines = text.splitlines()[:-1] or text.splitlines()  # the last line of a head may be cut short
    if suffix(path) == ".csv":
        rows = list(csv.DictReader(lines))
        header = set(rows[0]) if rows else set(next(csv.reader(lines[:1]), []))
        name = _pick(header, NAME_FIELDS)
        return header, [r[name] for r in rows if name and r.get(name)]
    columns: set[str] = set()
    names: list[str] = []
    for line in lines[:50]:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            break
        if not isinstance(row, dict):
            return set(), []
        columns |= set(row)
        name = _pick(set(row), NAME_FIELDS)
        if name and isinstance(row[name], str):
            names.append(row[name])
        elif isinstance(row.get("labels"), dict) and "__name__" in row["labels"]:
            names.append(str(row["labels"]["__name__"]))
    return columns, names


def _read_ndjson(source: Path | io.BytesIO, columns: set[str]) -> pl.DataFrame:
    """Values and times as numbers where the file writes numbers; as text (converted after) where
    it writes text ("NaN", "+Inf", ISO times, Prometheus' own quoted values). Labels as a JSON
    object's text, parsed once per series."""
    time = _pick(columns, TIME_FIELDS) or "timestamp"
    labels = {"labels": pl.String()} if "labels" in columns else {}
    # Label columns can first appear anywhere: then the whole file decides the schema.
    depth = 1000 if labels else None
    try:
        numbers = {**labels, "value": pl.Float64(), time: pl.Float64()}
        return pl.read_ndjson(source, schema_overrides=numbers, infer_schema_length=depth)
    except pl.exceptions.ComputeError:  # some value or time is text
        if isinstance(source, io.BytesIO):
            source.seek(0)
        texts = {**labels, "value": pl.String(), time: pl.String()}
        return pl.read_ndjson(source, schema_overrides=texts, infer_schema_length=depth)


def _read_frame(path: Path, columns: set[str]) -> pl.DataFrame:
    fmt = suffix(path)
    source: Path | io.BytesIO = path if path.suffix != ".gz" else io.BytesIO(content(path))
    try:
        if fmt == ".parquet":
            return pl.read_parquet(source)
        if fmt == ".csv":
            return pl.read_csv(source, infer_schema=False)
        return _read_ndjson(source, columns)
    except pl.exceptions.PolarsError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        line = _locate_bad_line(path) if path.suffix != ".gz" else None
        raise BundleError(f"cannot parse {fmt.lstrip('.')} ({reason[:160]})", file=path, line=line) from None


def _first_bad(bad: pl.Series, frame: pl.DataFrame, column: str, path: Path, expected: str) -> None:
    index = bad.arg_true()
    if index.len():
        row = int(index[0])
        offset = 2 if suffix(path) == ".csv" else 1
        value = frame.get_column(column)[row]
        problem = f"no value (expected {expected})" if value is None else f"value {str(value)[:60]!r} is not {expected}"
        raise BundleError(problem, file=path, line=row + offset, field=column)


def _labels_column(frame: pl.DataFrame, path: Path) -> pl.DataFrame:
    """A `labels` struct (Parquet) as JSON text, like the JSON Lines and CSV shapes hold it."""
    if "labels" not in frame.columns or frame.schema["labels"] == pl.String:
        return frame
    if isinstance(frame.schema["labels"], pl.Struct):
        return frame.with_columns(pl.col("labels").struct.json_encode())
    raise BundleError(f"labels of type {frame.schema['labels']} (expected a JSON object or a struct)", file=path)


def _times(column: pl.Series) -> pl.Series:
    """Epoch numbers and ISO 8601 text, even mixed in one column (each row converted as what it is,
    not rejected for its neighbours' form)."""
    if column.dtype != pl.String:
        return to_timestamp(column)
    numeric = column.str.strip_chars().cast(pl.Float64, strict=False)
    if numeric.is_null().all() or numeric.is_not_null().all():
        return _iso(column) if numeric.is_null().all() else to_timestamp(column)
    return to_timestamp(numeric).fill_null(_iso(column.set(numeric.is_not_null(), None)))


def _iso(column: pl.Series) -> pl.Series:
    """ISO 8601 text as times; text that is no time at all is null (reported by the caller)."""
    try:
        return to_timestamp(column)
    except pl.exceptions.ComputeError:  # not one value polars can read a date format from
        return pl.Series(column.name, [None] * column.len(), dtype=pl.Datetime("us", "UTC"))


def long_samples(frame: pl.DataFrame, path: Path) -> Samples:
    """A long table of samples → Samples; the first row that is not a sample is a BundleError."""
    frame = _labels_column(frame, path)
    columns = set(frame.columns)
    name = _pick(columns, NAME_FIELDS)
    time = _pick(columns, TIME_FIELDS)
    assert time is not None and "value" in columns  # sniffed
    names = frame.get_column(name).cast(pl.String) if name else pl.Series("metric", [None] * frame.height, pl.String)
    if "labels" in columns:
        has_name = names.is_not_null() | frame.get_column("labels").str.contains('"__name__"').fill_null(False)
    else:
        has_name = names.is_not_null() & (names != "")
    _first_bad(~has_name, frame, name or "labels", path, "a metric name")
    values = frame.get_column("value")
    numbers = (
        values.cast(pl.Float64)
        if values.dtype.is_numeric()
        else values.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
    )
    _first_bad(numbers.is_null(), frame, "value", path, "a number (or NaN, +Inf, -Inf)")
    times = _times(frame.get_column(time))
    _first_bad(times.is_null(), frame, time, path, "a timestamp (epoch seconds/ms/µs/ns or ISO 8601)")
    labels = [c for c in frame.columns if c not in {name, time, "value", "labels"}]
    long = frame.select(
        [pl.col(c).cast(pl.String) for c in labels] + ([pl.col("labels")] if "labels" in columns else [])
    ).with_columns(metric=names.fill_null(""), timestamp=times, value=numbers)
    try:
        return from_long(long, labels, "labels" if "labels" in columns else None)
    except (ValueError, json.JSONDecodeError) as exc:
        raise BundleError(f"labels: {exc}", file=path, field="labels") from None


class PrometheusSamples:
    name = "Prometheus samples (long form)"

    def sniff(self, path: Path, head: bytes) -> bool:
        if suffix(path) not in FORMATS:
            return False
        if suffix(path) == ".parquet":
            if path.suffix == ".gz":
                return False
            try:
                schema = pl.read_parquet_schema(path)
                columns = set(schema)
                name = _pick(columns, NAME_FIELDS)
                names = pl.scan_parquet(path).select(name).head(200).collect().to_series().to_list() if name else []
            except (OSError, pl.exceptions.PolarsError):
                return False
            return _columns_are_samples(columns, [str(n) for n in names])
        columns, names = _head_rows(path, head)
        return _columns_are_samples(columns, names)

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
        columns = _head_rows(path, head)[0] if suffix(path) != ".parquet" else set()
        samples = long_samples(_read_frame(path, columns), path)
        fmt = {".csv": "CSV", ".parquet": "Parquet"}.get(suffix(path), "JSON Lines")
        return samples_read(samples, path, options, f"Prometheus samples ({fmt})")
