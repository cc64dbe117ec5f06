"""Time stamps as event sources write them, to integer microseconds since the epoch (UTC).

One value at a time, because one log file may mix encodings (a service's own lines in RFC 3339,
a library's in `2024-05-27 15:21:30,123`). Accepted: epoch numbers in s/ms/µs/ns (told apart by
magnitude, as in format v1) as numbers or digit strings; ISO 8601 / RFC 3339 with `T` or a space,
`.` or `,` before up to nine fraction digits, and `Z`, `±hh:mm`, `±hhmm`, `UTC`/`GMT` or no zone
(taken as UTC, like format v1); the common log format (`27/May/2024:15:21:30 +0000`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import polars as pl

ISO_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?|UTC|GMT)?",
    re.IGNORECASE,
)
_CLF = re.compile(r"(\d{2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})(?:\s*([+-]\d{4}))?")
_MONTHS = {
    m: i
    for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us_of_number(value: float) -> int:
    """Epoch seconds, milliseconds, microseconds or nanoseconds, by magnitude."""
    magnitude = abs(value)
    if magnitude < 1e11:
        return round(value * 1_000_000)
    if magnitude < 1e14:
        return round(value * 1_000)
    if magnitude < 1e17:
        return round(value)
    return int(value) // 1_000 if isinstance(value, int) else round(value / 1_000)


def epoch_us_of_numbers(values: pl.Series) -> pl.Series:
    """`epoch_us_of_number` over a column of numbers (null where a value is null or not finite)."""
    magnitude = values.abs()
    if values.dtype.is_integer():
        scaled = (
            pl.when(magnitude < 10**11)
            .then(values * 1_000_000)
            .when(magnitude < 10**14)
            .then(values * 1_000)
            .when(magnitude < 10**17)
            .then(values)
            .otherwise(values // 1_000)
        )
        return pl.select(scaled.cast(pl.Int64)).to_series()
    floats = values.cast(pl.Float64)
    scale = pl.when(magnitude < 1e11).then(1e6).when(magnitude < 1e14).then(1e3).when(magnitude < 1e17).then(1.0)
    scaled = (floats * scale).fill_null(floats / 1_000).round(0)
    return pl.select(pl.when(floats.is_finite()).then(scaled).cast(pl.Int64, strict=False)).to_series()


def epoch_us(value: Any) -> int | None:
    """Microseconds since the epoch, or None when the value is not a time we can read."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return epoch_us_of_number(value) if value == value and abs(value) != float("inf") else None
    text = str(value).strip()
    if not text:
        return None
    if text.isdigit():
        return epoch_us_of_number(int(text))
    match = ISO_TIME.match(text)
    if match:
        return _iso(match)
    match = _CLF.match(text)
    if match:
        return _clf(match)
    try:
        return epoch_us_of_number(float(text))
    except ValueError:
        return None


def _offset(zone: str | None) -> timezone:
    if not zone or zone.upper() in ("Z", "UTC", "GMT"):
        return UTC
    digits = zone[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) >= 4 else 0)
    return timezone(timedelta(minutes=minutes if zone[0] == "+" else -minutes))


def _iso(match: re.Match[str]) -> int | None:
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=_offset(zone))
    except ValueError:
        return None
    micros = int((fraction or "0").ljust(9, "0")[:6])
    return (moment - _EPOCH) // timedelta(microseconds=1) + micros


def _clf(match: re.Match[str]) -> int | None:
    day, month, year, hour, minute, second, zone = match.groups()
    number = _MONTHS.get(month.lower())
    if number is None:
        return None
    try:
        moment = datetime(int(year), number, int(day), int(hour), int(minute), int(second), tzinfo=_offset(zone))
    except ValueError:
        return None
    return (moment - _EPOCH) // timedelta(microseconds=1)


def leading_time(line: str) -> tuple[int, int] | None:
    """(microseconds, characters consumed) of a time stamp that opens a line, else None."""
    match = ISO_TIME.match(line)
    if match:
        value = _iso(match)
        return (value, match.end()) if value is not None else None
    bracket = line.startswith("[")
    match = _CLF.match(line, 1 if bracket else 0)
    if match:
        value = _clf(match)
        if value is not None:
            end = match.end() + (1 if bracket and line[match.end() : match.end() + 1] == "]" else 0)
            return value, end
    return None
