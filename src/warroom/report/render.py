"""Jinja2 environments and the formatting filters every report template shares."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import BytecodeCache, Environment, FileSystemBytecodeCache, FileSystemLoader, StrictUndefined, Template
from markupsafe import Markup, escape

from warroom.figures import significant

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
    """A value for people: numbers to three or four significant figures with thousands separated
    (never exponent notation, never a raw float), mappings as 'key value' pairs, long numeric lists
    summarised by their length."""
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "—"}[value]
    if isinstance(value, int | float):
        return fmt_number(float(value))
    if isinstance(value, datetime):
        return fmt_ts(value)
    if isinstance(value, dict):
        parts = [f"{humanize(str(k)).lower()} {fmt_value(v)}" for k, v in value.items() if v not in (None, "", [], {})]
        return _clipped("; ".join(parts) or "—")
    if isinstance(value, list | tuple):
        if not value:
            return "—"
        if len(value) > 8 and all(isinstance(v, int | float | list | tuple) for v in value):
            return f"({len(value)} points)"
        return _clipped(", ".join(fmt_value(v) for v in value))
    return str(value)


def _clipped(text: str, limit: int = 240) -> str:
    """At most `limit` characters, cut between words: a value cut inside (`100.64…` of an address)
    reads as another value."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    return (head.rsplit(" ", 1)[0] if " " in head else head).rstrip(",;") + " …"


def fmt_number(value: float) -> str:
    """A bare number for people: integers exact with separators, others to four significant figures."""
    if math.isnan(value) or math.isinf(value):
        return "not a number" if math.isnan(value) else ("infinite" if value > 0 else "−infinite")
    if value.is_integer() and abs(value) < 1e12:
        return f"{int(value):,}"
    if abs(value) >= 1e12:
        return f"{significant(value / 1e12, 3):g} trillion"
    if abs(value) >= 1000:
        return f"{round(value):,}"
    return f"{significant(value, 4):.6f}".rstrip("0").rstrip(".")


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
    """Citation of a claim: its evidence ids, else the record it restates."""
    ids = getattr(claim, "evidence_ids", None)
    if ids:
        return cite(ids)
    source = getattr(claim, "source", "")
    return f"(source: {source})" if source else cite(None)


def cite_links(claim_or_ids: Any) -> Markup:
    """HTML citation whose evidence ids link to their row in the evidence appendix."""
    ids = claim_or_ids if isinstance(claim_or_ids, list | tuple) else getattr(claim_or_ids, "evidence_ids", None)
    if ids:
        links = ", ".join(f'<a href="#{escape(i)}">{escape(i)}</a>' for i in ids if i)
        return Markup(f"[evidence: {links}]")
    source = getattr(claim_or_ids, "source", "")
    return Markup(escape(f"(source: {source})" if source else "(no evidence cited)"))


def facts_note(claim: Any) -> str:
    """The facts a line quotes, as an HTML comment in Markdown: invisible, read by the linter."""
    keys = getattr(claim, "facts", None) or []
    return f"<!-- facts: {' '.join(keys)} -->" if keys else ""


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
    "cite_links": cite_links,
    "facts_note": facts_note,
    "tojson_pretty": to_json,
    "humanize": humanize,
}


def _compiled_templates(kind: str) -> BytecodeCache | None:
    """Where compiled templates are kept between runs: compiling the four report templates costs
    a `respond` process more than rendering them. Jinja keys each entry by template name and source
    checksum, so an edited template is compiled again; one file pattern per environment, as the two
    compile differently (autoescape). No writable temporary directory: compile every time."""
    try:
        return FileSystemBytecodeCache(pattern=f"__warroom_{kind}_%s.cache")
    except (OSError, RuntimeError):
        return None


@lru_cache(maxsize=2)
def environment(html: bool) -> Environment:
    """Markdown templates render text verbatim; HTML templates escape every value."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        bytecode_cache=_compiled_templates("html" if html else "md"),
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
