"""Inline SVG sparklines for the numeric series that evidence carries (no external assets)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from warroom.incident import Evidence

MIN_POINTS = 3
MAX_POINTS = 240  # a sparkline is ~240 px wide: more points only make the file heavier


@dataclass(frozen=True)
class Series:
    evidence_id: str
    label: str
    values: list[float]
    references: dict[str, float] = field(default_factory=dict)  # baseline / threshold lines

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    @property
    def last(self) -> float:
        return self.values[-1]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _as_numbers(value: Any) -> list[float] | None:
    """A list of numbers, of [time, value] pairs, or of {"value": …} rows → the numbers."""
    if not isinstance(value, list) or len(value) < MIN_POINTS:
        return None
    out: list[float] = []
    for item in value:
        if isinstance(item, list | tuple) and len(item) == 2:
            item = item[1]
        elif isinstance(item, dict):
            item = item.get("value", item.get("v"))
        number = _number(item)
        if number is None:
            return None
        out.append(number)
    return out


def _references(values: dict[str, Any]) -> dict[str, float]:
    refs: dict[str, float] = {}
    for key, value in values.items():
        lowered = key.lower()
        if any(word in lowered for word in ("baseline", "threshold", "slo")):
            number = _number(value)
            if number is not None:
                refs[key] = number
    return refs


def series_in(ev: Evidence) -> list[Series]:
    """The numeric series in one piece of evidence's values (one level of nesting looked into)."""
    found: list[Series] = []
    refs = _references(ev.values)
    for key, value in ev.values.items():
        numbers = _as_numbers(value)
        if numbers is not None:
            found.append(Series(ev.id, key, numbers[-MAX_POINTS:], refs))
        elif isinstance(value, dict):
            for sub, inner in value.items():
                numbers = _as_numbers(inner)
                if numbers is not None:
                    found.append(Series(ev.id, f"{key}.{sub}", numbers[-MAX_POINTS:], refs))
    return found


def sparkline_svg(series: Series, width: int = 240, height: int = 48) -> str:
    """SVG markup built from numbers only, so it is safe to embed in HTML unescaped."""
    pad = 3.0
    lines = list(series.references.values())
    low = min([series.low, *lines])
    high = max([series.high, *lines])
    span = high - low or 1.0
    n = len(series.values)
    step = (width - 2 * pad) / max(n - 1, 1)

    def y(v: float) -> float:
        return height - pad - (v - low) / span * (height - 2 * pad)

    points = " ".join(f"{pad + i * step:.1f},{y(v):.1f}" for i, v in enumerate(series.values))
    refs = "".join(
        f'<line x1="{pad}" x2="{width - pad}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
        'stroke="#b0b0b0" stroke-dasharray="3,3" stroke-width="1"/>'
        for v in lines
    )
    peak_i = max(range(n), key=lambda i: series.values[i])
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
        f"{refs}"
        f'<polyline fill="none" stroke="#c0392b" stroke-width="1.5" points="{points}"/>'
        f'<circle cx="{pad + peak_i * step:.1f}" cy="{y(series.values[peak_i]):.1f}" r="2.5" fill="#c0392b"/>'
        "</svg>"
    )


# Aggregates that agents report instead of whole series: "before" first, then "during", then peak.
_BASELINE = ("baseline",)
_DURING = ("window", "after", "current", "observed")
_PEAK = ("peak", "max")
_REFERENCE = ("limit", "threshold", "slo")


@dataclass(frozen=True)
class Comparison:
    """Baseline against the incident window (and peak) for evidence that carries no series."""

    evidence_id: str
    bars: list[tuple[str, float]]
    references: dict[str, float] = field(default_factory=dict)


def comparison_in(ev: Evidence) -> Comparison | None:
    """Baseline, during and peak values of one piece of evidence; None unless there is a baseline
    and something to compare it with."""
    groups: list[list[tuple[str, float]]] = [[], [], []]
    refs: dict[str, float] = {}
    for key, value in ev.values.items():
        number = _number(value)
        if number is None or number < 0:
            continue
        lowered = key.lower()
        for i, prefixes in enumerate((_BASELINE, _DURING, _PEAK)):
            if lowered.startswith(prefixes):
                groups[i].append((key, number))
                break
        else:
            if lowered.startswith(_REFERENCE):
                refs[key] = number
    bars = [bar for group in groups for bar in group]
    if not groups[0] or len(bars) < 2:
        return None
    return Comparison(ev.id, bars, refs)


def bars_svg(comparison: Comparison, width: int = 240, row: int = 12) -> str:
    """Horizontal bars from zero, one per value, top to bottom; numbers only (safe to embed)."""
    pad = 3.0
    high = max([v for _, v in comparison.bars] + list(comparison.references.values())) or 1.0
    height = int(pad * 2 + row * len(comparison.bars))
    span = width - 2 * pad

    def x(v: float) -> float:
        return pad + v / high * span

    rects = "".join(
        f'<rect x="{pad}" y="{pad + i * row + 1:.1f}" width="{max(x(v) - pad, 1.0):.1f}" height="{row - 3}" '
        f'fill="{"#8e8e93" if i == 0 else "#c0392b"}"/>'
        for i, (_, v) in enumerate(comparison.bars)
    )
    refs = "".join(
        f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="0" y2="{height}" stroke="#1d1d1f" '
        'stroke-dasharray="3,3" stroke-width="1"/>'
        for v in comparison.references.values()
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">{rects}{refs}</svg>'
    )
