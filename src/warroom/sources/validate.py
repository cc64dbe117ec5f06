"""Validation at the source boundary: what every source's canonical telemetry must satisfy.

Every source (the bundle on disk today; live and replayed sources behind the same interface) turns
what it reads into the canonical frames of docs/bundle-format.md and hands them here with where
they came from. Each problem found is typed:

- an **error** (`TelemetryError`, one line `file:line: field 'x': problem`, exit code 2) when the
  data cannot be used as it is: a name holding control or bidirectional-formatting characters
  (names are matched, joined and printed; there is no safe repair), or a table with no usable row;
- a named **warning** when the rest of the data is usable: the offending rows are dropped (or the
  value repaired), and the warning goes into the run's limitations, so no diagnosis is built on
  the invalid rows and no report claims more than the remaining data shows.

| code | what | done |
| --- | --- | --- |
| `non_finite` | a metric value NaN or ±inf | row dropped |
| `implausible_time` | a timestamp outside the plausible range around the alert (`Limits`) | row dropped |
| `negative_duration` | a span ending before it starts | row dropped |
| `duplicate_rows` | a row repeated exactly | copies dropped |
| `duplicate_key` | a second metric sample, span or change under the same key with other values | first kept |
| `level_spelling` | a level spelled otherwise than DEBUG/INFO/WARN/ERROR (`warning`, `Fatal`) | normalised |
| `unknown_level` | a level that maps to none of the four | kept, not counted as an error line |
| `unprintable_text` | control or bidirectional-formatting characters in messages, descriptions | → U+FFFD |
| `unsafe_name` | the same in a name (service, metric, instance, operation, ids, kinds), or a name too long | error |
| `no_usable_rows` | nothing left once the invalid rows are dropped | error |

Limits: timestamps must lie within `days_before_alert` (default 90: baselines are usually the same
hours of another day or week) before the alert and `days_after_alert` (default 30: telemetry
after a mitigation) after it; `$WARROOM_DAYS_BEFORE_ALERT` and `$WARROOM_DAYS_AFTER_ALERT` change
them (docs/configuration.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import polars as pl
from pydantic import BaseModel

from warroom.errors import InputError, TelemetryError

LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")
# Other spellings of the four levels that common loggers write (upper-cased before the lookup).
LEVEL_ALIASES = {
    "TRACE": "DEBUG",
    "FINE": "DEBUG",
    "NOTICE": "INFO",
    "INFORMATION": "INFO",
    "WARNING": "WARN",
    "ERR": "ERROR",
    "SEVERE": "ERROR",
    "CRITICAL": "ERROR",
    "CRIT": "ERROR",
    "FATAL": "ERROR",
    "ALERT": "ERROR",
    "EMERG": "ERROR",
    "PANIC": "ERROR",
}

# Identifiers: matched, joined and printed as they are.
NAME_COLUMNS = (
    "service",
    "metric",
    "instance",
    "level",
    "operation",
    "status",
    "trace_id",
    "span_id",
    "parent_span_id",
    "id",
    "kind",
    "version",
    "commit",
)
# Free text: may hold tabs and line breaks (stack traces), nothing else that steers a terminal.
TEXT_COLUMNS = ("message", "description", "author", "attributes")

# Cc (C0/C1 controls, ESC of terminal sequences), Cf (bidirectional overrides and isolates,
# zero-width characters, the BOM) and the Unicode line and paragraph separators.
_UNSAFE_IN_NAMES = r"[\p{Cc}\p{Cf}\x{2028}\x{2029}]"
_UNSAFE_IN_TEXT = r"[[\p{Cc}\p{Cf}\x{2028}\x{2029}]--[\t\n\r]]"
REPLACEMENT = "\ufffd"
# A name is a label, not a document: anything longer is a field written into the wrong column.
MAX_NAME_CHARS = 1024

# The key under which a second row means a second reading of the same thing.
KEYS = {
    "metrics": ("timestamp", "service", "instance", "metric"),
    "traces": ("trace_id", "span_id"),
    "changes": ("id",),
}


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Problem(BaseModel):
    """One thing wrong with one table, and how many rows it touches."""

    severity: Severity
    code: str
    table: str
    message: str
    file: str | None = None
    line: int | None = None
    field: str | None = None
    rows: int = 1

    def one_line(self) -> str:
        """`file:line: field 'x': problem`, as every bad-input error is printed."""
        return InputError(self.message, file=self.file, line=self.line, field=self.field).one_line()

    def limitation(self) -> str:
        """The run's limitation: which data it concerns, first, as the specialists filter them."""
        where = f" ({self.one_line().split(': ')[0]})" if self.file else ""
        return f"{self.table}: {self.message}{where} [{self.code}]"


@dataclass(frozen=True)
class Origin:
    """Where a frame came from: a file, and the line of its first row when it is a text file
    (None: rows are counted, as in Parquet or a query result)."""

    file: str | Path | None = None
    first_line: int | None = None

    def at(self, row: int) -> tuple[int | None, str]:
        """The line of row `row`, and how to say it in a message."""
        if self.first_line is None:
            return None, f"row {row + 1}"
        line = row + self.first_line
        return line, f"line {line}"


@dataclass(frozen=True)
class Limits:
    days_before_alert: float = 90.0
    days_after_alert: float = 30.0

    @classmethod
    def from_env(cls) -> Limits:
        values = {}
        for name, var in (
            ("days_before_alert", "WARROOM_DAYS_BEFORE_ALERT"),
            ("days_after_alert", "WARROOM_DAYS_AFTER_ALERT"),
        ):
            raw = os.environ.get(var)
            if raw is None:
                continue
            try:
                values[name] = float(raw)
            except ValueError:
                raise InputError(f"'{raw}' is not a number of days", field=f"${var}") from None
            if not values[name] > 0:
                raise InputError(f"{raw} days: expected a positive number", field=f"${var}")
        return cls(**values)


@dataclass
class Checked:
    """A table after validation: invalid rows dropped, spellings repaired; the warnings found."""

    frame: pl.DataFrame
    warnings: list[Problem] = field(default_factory=list)


@dataclass
class _Pass:
    table: str
    origin: Origin
    frame: pl.DataFrame
    drop: pl.Series
    warnings: list[Problem] = field(default_factory=list)

    def problem(self, severity: Severity, code: str, column: str | None, rows: pl.Series, message: str) -> Problem:
        index = rows.arg_true()
        first = int(index[0]) if index.len() else 0
        line, where = self.origin.at(first)
        file = str(self.origin.file) if self.origin.file is not None else None
        # placeholders filled by replacement, not str.format: the data quoted in a message may hold braces
        text = message.replace("{n}", str(int(index.len()))).replace("{where}", where)
        text = text.replace("{value}", _shown(self.frame, column, first))
        return Problem(
            severity=severity,
            code=code,
            table=self.table,
            message=text,
            file=file,
            line=line,
            field=column,
            rows=int(index.len()),
        )

    def warn_and_drop(self, code: str, column: str | None, rows: pl.Series, message: str) -> None:
        if rows.any():
            self.warnings.append(self.problem(Severity.WARNING, code, column, rows, message))
            self.drop = self.drop | rows


def _shown(frame: pl.DataFrame, column: str | None, row: int) -> str:
    if column is None or column not in frame.columns or row >= frame.height:
        return ""
    return ascii(str(frame.get_column(column)[row]))[1:-1][:80]


def _text(series: pl.Series) -> pl.Series:
    return series.cast(pl.String) if series.dtype == pl.Categorical else series


def _distinct_text(series: pl.Series) -> pl.Series:
    """The values to test: a categorical column's categories (a few strings, however many rows;
    perhaps some of other frames too, which only costs a lookup that finds no row), any other
    column whole."""
    dtype = series.dtype
    if isinstance(dtype, pl.Categorical):
        return dtype.categories.to_series()
    return series


def _rows_with(series: pl.Series, values: pl.Series, failed: pl.Series) -> pl.Series:
    """The rows holding a value that failed (`failed` is aligned with `values`; for a categorical
    column, `values` are its categories, whose position is the rows' physical code)."""
    if values is series:
        return failed
    codes = failed.arg_true().cast(series.to_physical().dtype)
    return series.to_physical().is_in(codes.implode()).fill_null(False)


def validate_frame(
    table: str,
    frame: pl.DataFrame,
    origin: Origin,
    alert_at: datetime,
    limits: Limits | None = None,
) -> Checked:
    """Check one canonical table (`table` is metrics, logs, traces or changes; columns and types
    as docs/bundle-format.md defines them, rows in the order they were read). Raises
    TelemetryError on an error; returns the usable rows and the warnings otherwise."""
    limits = limits or Limits.from_env()
    check = _Pass(table, origin, frame, pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True))
    _names(check)
    _times(check, alert_at, limits)
    if table == "metrics":
        values = frame.get_column("value")
        check.warn_and_drop(
            "non_finite",
            "value",
            ~values.is_finite().fill_null(True),
            "{n} rows with a non-finite value (NaN or ±inf) dropped; first at {where}: {value}",
        )
    if table == "traces":
        negative = frame.get_column("end_time") < frame.get_column("start_time")
        check.warn_and_drop(
            "negative_duration", "end_time", negative, "{n} spans that end before they start dropped; first at {where}"
        )
    _duplicates(check)
    if table == "logs":
        _levels(check)
    _printable(check)
    kept = check.frame.filter(~check.drop) if check.drop.any() else check.frame
    if kept.height == 0:
        first = check.warnings[0] if check.warnings else None
        why = f" (first problem: {first.message})" if first else ""
        raise TelemetryError(f"no usable rows left once the invalid ones are dropped{why}", file=origin.file)
    return Checked(kept, check.warnings)


def _names(check: _Pass) -> None:
    tests = (
        (lambda text: text.str.len_chars() > MAX_NAME_CHARS, f"a name longer than {MAX_NAME_CHARS} characters"),
        (
            lambda text: text.str.contains(_UNSAFE_IN_NAMES),
            "value '{value}' holds a control or bidirectional-formatting character; names must be plain text",
        ),
    )
    for column in NAME_COLUMNS:
        if column not in check.frame.columns:
            continue
        series = check.frame.get_column(column)
        values = _distinct_text(series)
        for test, message in tests:
            failed = test(values).fill_null(False)
            rows = _rows_with(series, values, failed) if failed.any() else None
            if rows is not None and rows.any():  # a category of another frame holds no row of this one
                problem = check.problem(Severity.ERROR, "unsafe_name", column, rows, message)
                raise TelemetryError(problem.message, file=problem.file, line=problem.line, field=problem.field)


def _shifted(at: datetime, days: float) -> datetime:
    """`at` moved by `days`, held at the ends of the calendar (an alert stamped 9999-12-31 exists)."""
    try:
        return at + timedelta(days=days)
    except OverflowError:
        return (datetime.max if days > 0 else datetime.min).replace(tzinfo=UTC)


def _times(check: _Pass, alert_at: datetime, limits: Limits) -> None:
    low = _shifted(alert_at, -limits.days_before_alert)
    high = _shifted(alert_at, limits.days_after_alert)
    for column in ("timestamp", "time", "start_time", "end_time"):
        if column not in check.frame.columns:
            continue
        stamps = check.frame.get_column(column)
        outside = ~stamps.is_between(low, high).fill_null(True)
        check.warn_and_drop(
            "implausible_time",
            column,
            outside,
            "{n} rows timestamped outside "
            f"{low:%Y-%m-%d} … {high:%Y-%m-%d} (alert − {limits.days_before_alert:g} d … + "
            f"{limits.days_after_alert:g} d) dropped; first at " + "{where}: {value}",
        )


def _duplicates(check: _Pass) -> None:
    """Repeats among the rows still kept (rows already dropped, e.g. all stamped 9999-01-01, would
    otherwise count as copies of each other). A repeated row also repeats its key, so a table with
    a key whose keys are all distinct needs no second pass."""
    kept = (~check.drop).arg_true()
    frame = check.frame[kept] if check.drop.any() else check.frame
    key = KEYS.get(check.table)
    columns = [c for c in key or () if c in frame.columns]
    if columns and _first_distinct(frame.select(columns)).all():
        return

    def on_all_rows(flags: pl.Series) -> pl.Series:
        if frame.height == check.frame.height:
            return flags
        full = pl.repeat(False, check.frame.height, dtype=pl.Boolean, eager=True)
        return full.scatter(kept.filter(flags), True)

    repeated = ~_first_distinct(frame)
    check.warn_and_drop("duplicate_rows", None, on_all_rows(repeated), "{n} duplicate rows dropped; first at {where}")
    if not columns:
        return
    conflicting = ~_first_distinct(frame.select(columns)) & ~repeated
    what = {"metrics": "samples", "traces": "spans", "changes": "changes"}[check.table]
    check.warn_and_drop(
        "duplicate_key",
        columns[-1],
        on_all_rows(conflicting),
        "{n} " + f"{what} repeat the key ({', '.join(columns)}) of an earlier row with other values; the first "
        "kept, the others dropped; first at {where}",
    )


def _first_distinct(frame: pl.DataFrame) -> pl.Series:
    """True on each row's first occurrence. Sorted row hashes answer the usual case (no repeats) at
    a fraction of the cost of a distinctness pass over whole rows (a few seconds instead of tens on
    twelve million metric rows); only when two hashes are equal are rows compared."""
    hashes = frame.hash_rows().sort()
    if not (hashes.head(-1) == hashes.tail(-1)).any():
        return pl.repeat(True, frame.height, dtype=pl.Boolean, eager=True)
    return frame.select(pl.struct(pl.all()).is_first_distinct()).to_series()


def _levels(check: _Pass) -> None:
    levels = _text(check.frame.get_column("level"))
    spelled = levels.unique().drop_nulls().to_list()
    mapping = {}
    for level in spelled:
        upper = level.strip().upper()
        mapping[level] = LEVEL_ALIASES.get(upper, upper)
    renamed = {k: v for k, v in mapping.items() if k != v and v in LEVELS}
    unknown = sorted(k for k, v in mapping.items() if v not in LEVELS)
    if renamed:
        rows = levels.is_in(list(renamed))
        example = next(iter(renamed.items()))
        check.warnings.append(
            check.problem(
                Severity.WARNING,
                "level_spelling",
                "level",
                rows,
                "{n} " + f"lines' levels normalised to {'/'.join(LEVELS)} (e.g. {example[0]!a} → {example[1]}); "
                "first at {where}",
            )
        )
        normalised = levels.replace(renamed)
        dtype = check.frame.get_column("level").dtype
        check.frame = check.frame.with_columns(normalised.cast(dtype) if dtype == pl.Categorical else normalised)
    if unknown:
        check.warnings.append(
            check.problem(
                Severity.WARNING,
                "unknown_level",
                "level",
                levels.is_in(unknown),
                "{n} " + f"lines with a level outside {'/'.join(LEVELS)} (e.g. {unknown[0]!a}) kept, "
                "not counted as errors; first at {where}",
            )
        )


def _printable(check: _Pass) -> None:
    for column in TEXT_COLUMNS:
        if column not in check.frame.columns:
            continue
        series = _text(check.frame.get_column(column))
        bad = series.str.contains(_UNSAFE_IN_TEXT).fill_null(False)
        if not bad.any():
            continue
        check.warnings.append(
            check.problem(
                Severity.WARNING,
                "unprintable_text",
                column,
                bad,
                "{n} values held control or bidirectional-formatting characters, replaced with U+FFFD; "
                "first at {where}",
            )
        )
        check.frame = check.frame.with_columns(series.str.replace_all(_UNSAFE_IN_TEXT, REPLACEMENT))
