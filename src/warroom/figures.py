"""A figure the reports quote: a value with its unit, the window and method it was computed over,
and how people read it (units, significant figures; never a raw float).

Every number a report, a message or the API shows about an incident is one of these, computed once
by the analysis that measured it and quoted from there.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel


class Basis(StrEnum):
    """Whether a figure was counted in the data or estimated from other figures."""

    MEASURED = "measured"
    ESTIMATED = "estimated"


class Window(BaseModel):
    """A time range in incident time and why its bounds are where they are."""

    start: datetime
    end: datetime
    basis: str = ""

    @property
    def minutes(self) -> float:
        return max((self.end - self.start).total_seconds(), 0.0) / 60.0


class Figure(BaseModel):
    """One number: value, unit, method, window, measured or estimated."""

    value: float | None
    unit: str  # ratio (shown as %), count, ms, min, s, or a currency code
    method: str
    window: Window | None = None
    basis: Basis = Basis.MEASURED
    noun: str = ""  # what a count counts ("requests"), shown after the number

    @property
    def known(self) -> bool:
        return self.value is not None and math.isfinite(self.value)

    def text(self) -> str:
        """The value for people: '25.6 %', '3,134 requests', '13,735 USD', '5,090 ms'."""
        if not self.known:
            return "not measured"
        assert self.value is not None
        shown = format_number(self.value, self.unit)
        if self.noun:
            shown = f"{shown} {self.noun}"
        return shown


def unit_of(signal: str) -> str:
    """The unit a conventional signal name is measured in (docs/bundle-format.md)."""
    if signal.endswith("_ms"):
        return "ms"
    if signal.endswith(("utilization", "_rate", "_ratio", "_share")):
        return "ratio"
    return "count"


CURRENCY_LIKE = 3  # ISO 4217 codes are three capital letters


def significant(value: float, digits: int = 3) -> float:
    """The value rounded to `digits` significant figures."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def _plain(value: float, digits: int = 3) -> str:
    """Three significant figures, thousands separated, no exponent, no trailing zeros."""
    rounded = significant(value, digits)
    if abs(rounded) >= 10 ** (digits - 1):
        return f"{rounded:,.0f}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded)))) if rounded else 0
    text = f"{rounded:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_number(value: float, unit: str) -> str:
    """A number with its unit, to three significant figures (counts and money exact to the unit)."""
    if not math.isfinite(value):
        return "not measured"
    if unit == "ratio":
        return f"{_plain(value * 100.0)} %"
    if unit == "count":
        return f"{round(value):,}" if abs(value) >= 10 or float(value).is_integer() else _plain(value)
    if len(unit) == CURRENCY_LIKE and unit.isalpha() and unit.isupper():
        return f"{round(value):,} {unit}" if abs(value) >= 100 else f"{value:,.2f} {unit}"
    if unit == "min":
        return format_minutes(value)
    if unit == "s":
        return format_minutes(value / 60.0)
    return f"{_plain(value)} {unit}".strip()


def format_minutes(minutes: float) -> str:
    """A duration for people: 42 s, 5.5 min, 1 h 12 min."""
    seconds = minutes * 60.0
    if seconds < 1:
        return f"{_plain(seconds, 2)} s"
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{_plain(seconds, 2)} s"
    if minutes < 60:
        return f"{_plain(minutes, 2 if minutes < 10 else 3)} min"
    whole = round(minutes)
    return f"{whole // 60} h {whole % 60:02d} min"


def format_time(at: datetime | None) -> str:
    """An incident-time stamp for people: 2024-05-12 18:47:00 UTC."""
    if at is None:
        return "unknown"
    aware = at if at.tzinfo else at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_clock(at: datetime | None) -> str:
    """Time of day only, for a line that already names the day: 18:47:00 UTC."""
    if at is None:
        return "unknown"
    aware = at if at.tzinfo else at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%H:%M:%S UTC")
