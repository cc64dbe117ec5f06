"""Canonical table files (format v1): read, check the columns, convert the types, name bad rows.

Also the conversions every reader shares: time columns in any common encoding to UTC timestamps,
and `conform`, which turns a reader's frame into the canonical dtypes with errors that name the
file, line and field.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import polars as pl

from warroom.errors import BundleError
from warroom.sources.canonical import NULLABLE, TABLES, TS, TableSpec

FORMATS = (".parquet", ".jsonl", ".ndjson", ".csv")
MAX_FIELD_BYTES = 1 << 20  # a single log message larger than 1 MiB is not a log line


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


def conform(frame: pl.DataFrame, spec: TableSpec, path: Path) -> pl.DataFrame:
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
            value, what = source[row], _describe(dtype)
            raise BundleError(
                f"no value; expected {what if what == 'text' else 'a ' + what}"
                if value is None
                else f"value {str(value)[:60]!r} is not a valid {what}",
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
        return to_timestamp(series)
    if dtype == pl.Float64:
        if series.dtype.is_numeric():
            return series.cast(pl.Float64)
        return series.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
    if series.dtype == pl.String:
        return series
    return series.cast(pl.String, strict=False)


def to_timestamp(series: pl.Series) -> pl.Series:
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


def first_line(path: Path) -> int | None:
    """The line of a table file's first row (None for Parquet, whose rows are counted)."""
    return {".csv": 2, ".jsonl": 1, ".ndjson": 1}.get(path.suffix)


def read_table(path: Path, name: str, rows: int | None = None) -> pl.DataFrame:
    """A canonical table file, converted, its rows in file order (so that problems name lines);
    only the first `rows` when given."""
    return conform(_read_raw(path, rows), TABLES[name], path)
