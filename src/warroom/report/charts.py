"""Time-series charts as inline SVG: series + markers in, one self-contained SVG string out.

No scripts, no fonts or styles fetched: the markup is built from numbers and escaped labels only,
so it is safe to embed in any HTML page (the postmortem, the web incident room).

    svg = time_series_svg(
        [Line("p99 latency", points)], unit="ms",
        band=Band(low=0, high=286.0, label="baseline band"),
        markers=[Marker(onset_at, "onset", "onset"), Marker(deploy_at, "CHG-1030", "deploy")],
    )
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape

from warroom.figures import format_number

# Marker kinds and their colours (colour-blind-safe palette, Okabe–Ito).
MARKER_COLOURS = {
    "deploy": "#0072B2",
    "onset": "#D55E00",
    "alert": "#CC79A7",
    "action": "#009E73",
    "replay": "#999999",
    "recovery": "#56B4E9",
}
LINE_COLOURS = ("#1d1d1f", "#E69F00", "#0072B2", "#D55E00")
LABEL_ROWS = 3  # marker labels stack in up to three rows above the plot


@dataclass(frozen=True)
class Line:
    """One series; `dashed` for data that is not this incident's own (a replayed recording)."""

    label: str
    points: Sequence[tuple[datetime, float]]
    dashed: bool = False


@dataclass(frozen=True)
class Band:
    """The normal range (baseline), drawn as a shaded strip."""

    low: float
    high: float
    label: str = "baseline band"


@dataclass(frozen=True)
class Marker:
    at: datetime
    label: str
    kind: str = "action"  # deploy | onset | alert | action | replay | recovery


@dataclass(frozen=True)
class Frame:
    """Where the plot area sits inside the SVG and what it spans."""

    width: int
    height: int
    left: int = 64
    right: int = 16
    top: int = 50
    bottom: int = 40
    t0: datetime = field(default_factory=lambda: datetime.now(UTC))
    t1: datetime = field(default_factory=lambda: datetime.now(UTC))
    y0: float = 0.0
    y1: float = 1.0

    def x(self, at: datetime) -> float:
        span = (self.t1 - self.t0).total_seconds() or 1.0
        return self.left + (at - self.t0).total_seconds() / span * (self.width - self.left - self.right)

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.height - self.bottom - (value - self.y0) / span * (self.height - self.top - self.bottom)


def nice_step(span: float, ticks: int = 4) -> float:
    """A round step (1, 2 or 5 × 10^n) that cuts the span into about `ticks` parts."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


TIME_STEPS = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def time_ticks(t0: datetime, t1: datetime, ticks: int = 6) -> list[datetime]:
    span = (t1 - t0).total_seconds()
    step = next((s for s in TIME_STEPS if span / s <= ticks), TIME_STEPS[-1])
    first = datetime.fromtimestamp(math.ceil(t0.timestamp() / step) * step, tz=UTC)
    out = []
    at = first
    while at <= t1:
        out.append(at)
        at += timedelta(seconds=step)
    return out


def _label(value: float, unit: str) -> str:
    return format_number(value, unit) if unit != "count" else f"{value:,.0f}"


def _axes(frame: Frame, unit: str) -> str:
    parts: list[str] = []
    step = nice_step(frame.y1 - frame.y0)
    value = math.ceil(frame.y0 / step) * step
    while value <= frame.y1 + step * 1e-9:
        y = frame.y(value)
        parts.append(
            f'<line x1="{frame.left}" x2="{frame.width - frame.right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5ea"/>'
            f'<text x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(_label(value, unit))}</text>'
        )
        value += step
    bottom = frame.height - frame.bottom
    for at in time_ticks(frame.t0, frame.t1):
        x = frame.x(at)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}" stroke="#6e6e73"/>'
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{at:%H:%M}</text>'
        )
    parts.append(
        f'<line x1="{frame.left}" x2="{frame.width - frame.right}" y1="{bottom}" y2="{bottom}" stroke="#6e6e73"/>'
        f'<line x1="{frame.left}" x2="{frame.left}" y1="{frame.top}" y2="{bottom}" stroke="#6e6e73"/>'
        f'<text x="{frame.left - 6}" y="{bottom + 16}" text-anchor="end">UTC</text>'
    )
    return "".join(parts)


def _polyline(frame: Frame, line: Line, colour: str) -> str:
    points = " ".join(f"{frame.x(t):.1f},{frame.y(v):.1f}" for t, v in line.points)
    dash = ' stroke-dasharray="5,3"' if line.dashed else ""
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.6"{dash} points="{points}"/>'


def _markers(frame: Frame, markers: Sequence[Marker]) -> str:
    """Vertical lines with labels in rows above the plot, so labels of close events do not overlap."""
    parts: list[str] = []
    rows: list[float] = []  # right edge of the last label in each row
    for marker in sorted(markers, key=lambda m: m.at):
        if not frame.t0 <= marker.at <= frame.t1:
            continue
        x = frame.x(marker.at)
        colour = MARKER_COLOURS.get(marker.kind, "#6e6e73")
        text = marker.label if len(marker.label) <= 28 else marker.label[:27] + "…"
        width = 7.0 * len(text)
        row = next((i for i, edge in enumerate(rows) if x > edge + 4), None)
        if row is None and len(rows) < LABEL_ROWS:
            rows.append(0.0)
            row = len(rows) - 1
        elif row is None:
            row = min(range(LABEL_ROWS), key=lambda i: rows[i])
        rows[row] = x + width
        y = 13 + row * 13
        dash = ' stroke-dasharray="2,2"' if marker.kind == "replay" else ""
        anchor = "end" if x + width > frame.width else "start"
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y + 2}" y2="{frame.height - frame.bottom}" stroke="{colour}" '
            f'stroke-width="1.2"{dash}/>'
            f'<text x="{x + (-2 if anchor == "end" else 2):.1f}" y="{y}" fill="{colour}" text-anchor="{anchor}">'
            f"{escape(text)}</text>"
        )
    return "".join(parts)


def _extent(
    lines: Sequence[Line], band: Band | None, markers: Sequence[Marker]
) -> tuple[datetime, datetime, float, float]:
    times = [t for line in lines for t, _ in line.points] + [m.at for m in markers]
    values = [v for line in lines for _, v in line.points if math.isfinite(v)]
    if band is not None:
        values += [band.low, band.high]
    t0, t1 = min(times), max(times)
    if t1 == t0:
        t1 = t0 + timedelta(minutes=1)
    low, high = min([*values, 0.0]), max([*values, 0.0])
    if high == low:
        high = low + 1.0
    step = nice_step(high - low)
    return t0, t1, math.floor(low / step) * step, math.ceil(high / step) * step


def time_series_svg(
    lines: Sequence[Line],
    *,
    unit: str,
    markers: Sequence[Marker] = (),
    band: Band | None = None,
    title: str = "",
    width: int = 640,
    height: int = 230,
) -> str:
    """One chart: time on x (UTC), the value in `unit` on y (ratio shows as %), a shaded baseline
    band, a vertical line per marker, a legend; '' when there is nothing to draw."""
    drawn = [line for line in lines if line.points]
    if not drawn:
        return ""
    t0, t1, y0, y1 = _extent(drawn, band, markers)
    frame = Frame(width=width, height=height, t0=t0, t1=t1, y0=y0, y1=y1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="12" fill="#3a3a3c">',
        f"<title>{escape(title)}</title>",
    ]
    if band is not None:
        top, bottom = frame.y(min(band.high, y1)), frame.y(max(band.low, y0))
        parts.append(
            f'<rect x="{frame.left}" y="{top:.1f}" width="{width - frame.left - frame.right}" '
            f'height="{max(bottom - top, 1.0):.1f}" fill="#34c759" fill-opacity="0.15"/>'
        )
    parts.append(_axes(frame, unit))
    for index, line in enumerate(drawn):
        parts.append(_polyline(frame, line, LINE_COLOURS[index % len(LINE_COLOURS)]))
    parts.append(_markers(frame, markers))
    legend = [(line.label, LINE_COLOURS[i % len(LINE_COLOURS)], line.dashed) for i, line in enumerate(drawn)]
    if band is not None:
        legend.append((band.label, "#34c759", False))
    x = float(frame.left)
    for label, colour, dashed in legend:
        dash = ' stroke-dasharray="5,3"' if dashed else ""
        parts.append(
            f'<line x1="{x:.1f}" x2="{x + 14:.1f}" y1="{height - 6}" y2="{height - 6}" stroke="{colour}" '
            f'stroke-width="3"{dash}/><text x="{x + 18:.1f}" y="{height - 3}">{escape(label)}</text>'
        )
        x += 26 + 7 * len(label)
    parts.append("</svg>")
    return "".join(parts)
