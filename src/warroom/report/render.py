"""Jinja2 environments and the formatting filters every report template shares."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

TEMPLATES = Path(__file__).parent / "templates"


def fmt_ts(value: datetime | None) -> str:
    """A timestamp in UTC to the second, e.g. 2024-01-15 14:23:00Z."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def fmt_date(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d")


def fmt_seconds(seconds: float | None) -> str:
    """A duration for people: 0.042 s, 12.3 s, 5 min 03 s, 1 h 02 min."""
    if seconds is None or math.isnan(seconds):
        return "—"
    if seconds < 1:
        return f"{seconds:.3f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {(whole % 3600) // 60:02d} min"


def fmt_minutes(minutes: float | None) -> str:
    return "—" if minutes is None else fmt_seconds(minutes * 60.0)


def fmt_offset(at: datetime, origin: datetime | None) -> str:
    """Time since the origin (detection), e.g. T+3m12s; negative before detection."""
    if origin is None:
        return ""
    delta: timedelta = at - origin
    total = int(delta.total_seconds())
    sign = "+" if total >= 0 else "-"
    total = abs(total)
    hours, rest = divmod(total, 3600)
    mins, secs = divmod(rest, 60)
    if hours:
        return f"T{sign}{hours}h{mins:02d}m{secs:02d}s"
    return f"T{sign}{mins}m{secs:02d}s"


def fmt_value(value: Any) -> str:
    """A value for a table cell: floats to four significant digits, containers as compact JSON."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        # Four significant digits, but never exponent notation for amounts people read (revenue).
        return f"{value:.1f}" if abs(value) >= 1000 else f"{value:.4g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return fmt_ts(value)
    if isinstance(value, dict | list | tuple):
        text = json.dumps(value, default=str, ensure_ascii=False)
        return text if len(text) <= 200 else text[:197] + "…"
    return str(value)


def fmt_confidence(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def md_cell(value: Any) -> str:
    """Text safe inside one Markdown table cell: no line breaks, pipes escaped."""
    text = value if isinstance(value, str) else fmt_value(value)
    # Fast path for the common case (timeline.md meets it ten thousand times): printable text has
    # no line breaks or odd whitespace, so only pipes, backslashes and runs of spaces need work.
    if text.isprintable() and "|" not in text and "\\" not in text and "  " not in text and text == text.strip():
        return text
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split())


def md_inline(value: Any) -> str:
    """Text safe on one Markdown line (list item, paragraph)."""
    text = value if isinstance(value, str) else fmt_value(value)
    return " ".join(text.split())


def cite(ids: Iterable[str] | None) -> str:
    """Evidence citation: [evidence: E-1, E-2], or a visible note that there is none."""
    ids = [i for i in (ids or []) if i]
    if not ids:
        return "(no evidence cited)"
    return "[evidence: " + ", ".join(ids) + "]"


def claim_cite(claim: Any) -> str:
    """Citation of a claim: its evidence ids, else the run-record fact it restates."""
    ids = getattr(claim, "evidence_ids", None)
    if ids:
        return cite(ids)
    source = getattr(claim, "source", "")
    return f"(source: {source})" if source else cite(None)


def to_json(value: Any, indent: int | None = 2) -> str:
    return json.dumps(value, indent=indent, default=str, ensure_ascii=False)


def humanize(key: str) -> str:
    """A context key as a label: revenue_per_minute → Revenue per minute."""
    text = key.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


FILTERS = {
    "ts": fmt_ts,
    "date": fmt_date,
    "seconds": fmt_seconds,
    "minutes": fmt_minutes,
    "offset": fmt_offset,
    "value": fmt_value,
    "conf": fmt_confidence,
    "cell": md_cell,
    "inline": md_inline,
    "cite": cite,
    "claim_cite": claim_cite,
    "tojson_pretty": to_json,
    "humanize": humanize,
}


@lru_cache(maxsize=2)
def environment(html: bool) -> Environment:
    """Markdown templates render text verbatim; HTML templates escape every value."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


def template(name: str) -> Template:
    return environment(name.endswith(".html.j2")).get_template(name)
