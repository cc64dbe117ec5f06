"""Spans from any trace shape into the canonical `traces` table: ids, status, exceptions, the
semantic conventions, and client spans attributed to the service they call.

Every trace reader (OTLP/JSON, SDK span lines, …) decodes its shape into `Span` values and hands
them here. What is the same whatever the shape is decided once:

- **ids** become lower-case hex (from hex, `0x…`, base64 or integers); a trace id that is not 32
  hex digits or a span id that is not 16 makes the span unusable: skipped and counted;
- **times** are read per value (`times.py`); a span with an unreadable time, or one that ends
  before it starts, is skipped and counted (a named limitation, file and first line);
- **status** is `ERROR` when the span's status code is ERROR (OTLP `2`, `STATUS_CODE_ERROR`,
  `ERROR`) or it carries the OpenTracing tag `error=true`; otherwise `OK`;
- **exceptions**: the first `exception` event's `exception.type`, `exception.message` and
  `exception.stacktrace` become attributes of the span;
- **attributes** keep every name as written and gain the names the analyses read (`semconv.py`);
  the span kind goes in as `span.kind` (`client`, `server`, …);
- **callees**: a CLIENT span is the only trace of a call into something that is not
  instrumented (PostgreSQL, Redis, a third-party API). Such a span is attributed to the callee
  (its `service` becomes the callee, its `instance` the server address) so that the parent →
  child join the analyses use gives the edge caller → callee:
    - a database client span (`db.system` set) always: databases do not emit spans; the callee is
      `peer.service` when set, else the `db.system` value (`postgresql`, `mysql`, `redis`);
    - another client span naming its peer (`peer.service`, else `server.address` /
      `net.peer.name`) when the callee has no spans of its own in the same read and the span has
      no child in it (an instrumented callee's server span is the child, and names it already).
  The caller stays in the attributes as `warroom.caller`. A callee whose own spans are exported to
  another file than its callers' is not visible to this rule: give its spans in the same file, or
  set `peer.service` only for uninstrumented callees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from warroom.sources.canonical import TS
from warroom.sources.contract import Modality, SourceQuery
from warroom.sources.raw.semconv import canonical_attributes, database_service, hex_id, peer_of
from warroom.sources.raw.text import Skipped
from warroom.sources.raw.times import epoch_us

ERROR_CODES = {2, "2", "STATUS_CODE_ERROR", "ERROR", "Error", "error"}
KIND_NAMES = {
    0: None,
    1: "internal",
    2: "server",
    3: "client",
    4: "producer",
    5: "consumer",
}


def kind_name(kind: Any) -> str | None:
    """`SPAN_KIND_CLIENT`, `SpanKind.CLIENT`, `client` or 3 → `client`."""
    if kind is None or kind == "":
        return None
    if isinstance(kind, int) or (isinstance(kind, str) and kind.isdigit()):
        return KIND_NAMES.get(int(kind))
    name = str(kind).rsplit(".", 1)[-1].lower().removeprefix("span_kind_")
    return None if name in ("unspecified", "") else name


@dataclass
class Span:
    """One span as a reader decoded it, before ids, times and conventions are settled."""

    line: int
    trace_id: Any
    span_id: Any
    parent_span_id: Any
    service: str | None
    operation: str | None
    start: Any
    end: Any
    status_code: Any = None
    status_message: str | None = None
    kind: Any = None
    instance: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)  # {"name": …, "attributes": {…}}


def _exception_attributes(events: list[dict[str, Any]]) -> dict[str, Any]:
    for event in events:
        if event.get("name") == "exception":
            attrs = event.get("attributes") or {}
            return {k: attrs[k] for k in ("exception.type", "exception.message", "exception.stacktrace") if k in attrs}
    return {}


@dataclass
class _Row:
    line: int
    trace_id: str
    span_id: str
    parent_span_id: str | None
    service: str
    operation: str
    start: int
    end: int
    status: str
    instance: str | None
    attributes: dict[str, Any]
    kind: str | None


def _settle(span: Span, skipped: Skipped, default_service: str | None) -> _Row | None:
    trace_id = hex_id(span.trace_id, 32)
    span_id = hex_id(span.span_id, 16)
    parent = hex_id(span.parent_span_id, 16)
    if trace_id is None or len(trace_id) != 32:
        skipped.add("trace id not 32 hex digits", span.line)
        return None
    if span_id is None or len(span_id) != 16:
        skipped.add("span id not 16 hex digits", span.line)
        return None
    if parent is not None and len(parent) != 16:
        skipped.add("parent span id not 16 hex digits", span.line)
        return None
    start, end = epoch_us(span.start), epoch_us(span.end)
    if start is None or end is None:
        skipped.add("start or end time unreadable", span.line)
        return None
    if end < start:
        skipped.add("span ends before it starts", span.line)
        return None
    service = span.service or default_service
    if not service:
        skipped.add("no service.name in its resource", span.line)
        return None
    attributes = canonical_attributes(span.attributes)
    attributes.update({k: v for k, v in _exception_attributes(span.events).items() if k not in attributes})
    kind = kind_name(span.kind)
    if kind:
        attributes.setdefault("span.kind", kind)
    if span.status_message:
        attributes.setdefault("status.message", span.status_message)
    failed = span.status_code in ERROR_CODES or attributes.get("error") is True
    return _Row(
        span.line,
        trace_id,
        span_id,
        parent,
        service,
        span.operation or "",
        start,
        end,
        "ERROR" if failed else "OK",
        span.instance,
        attributes,
        kind,
    )


def _attribute_callees(rows: list[_Row]) -> int:
    """Re-attribute client spans to the callee they name (module docstring); how many."""
    own_services = {row.service for row in rows}
    parents = {row.parent_span_id for row in rows if row.parent_span_id}
    moved = 0
    for row in rows:
        if row.kind not in ("client", None) or (row.kind is None and not database_service(row.attributes)):
            continue
        callee = peer_of(row.attributes)
        if not callee or callee == row.service:
            continue
        if not database_service(row.attributes) and (callee in own_services or row.span_id in parents):
            continue
        row.attributes.setdefault("peer.service", callee)
        row.attributes["warroom.caller"] = row.service
        address = row.attributes.get("net.peer.name")
        port = row.attributes.get("net.peer.port")
        row.instance = f"{address}:{port}" if address and port else str(address) if address else None
        row.service = callee
        moved += 1
    return moved


@dataclass
class SpanTable:
    frame: pl.DataFrame
    notes: list[str]
    limitations: list[str]


def span_table(spans: list[Span], path: Path, *, default_service: str | None = None) -> SpanTable:
    """The canonical traces frame of a file's spans, with what was skipped and re-attributed."""
    skipped = Skipped()
    rows = [row for row in (_settle(span, skipped, default_service) for span in spans) if row is not None]
    skipped.fail_if_nothing_left(len(rows), path, "spans with trace and span ids, a service and times")
    moved = _attribute_callees(rows)
    frame = pl.DataFrame(
        {
            "trace_id": [r.trace_id for r in rows],
            "span_id": [r.span_id for r in rows],
            "parent_span_id": [r.parent_span_id for r in rows],
            "service": [r.service for r in rows],
            "operation": [r.operation for r in rows],
            "start_time": pl.Series([r.start for r in rows], dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            "end_time": pl.Series([r.end for r in rows], dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            "status": [r.status for r in rows],
            "instance": pl.Series([r.instance for r in rows], dtype=pl.String),
            "attributes": [orjson.dumps(r.attributes, default=str).decode() for r in rows],
        },
        schema_overrides={"parent_span_id": pl.String, "start_time": TS, "end_time": TS},
    ).sort("start_time")
    services = frame.get_column("service").n_unique()
    errors = int((frame.get_column("status") == "ERROR").sum())
    notes = [f"{frame.height} spans of {services} service(s), {errors} with status ERROR"]
    if moved:
        notes.append(f"{moved} client span(s) attributed to the uninstrumented service they call")
    return SpanTable(frame, notes, skipped.limitations(path, "span"))


def traces_query(path: Path, text: str, source: str = "bundle") -> SourceQuery:
    return SourceQuery(source=source, modality=Modality.TRACES, text=text, location=str(path))
