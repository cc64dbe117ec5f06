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
      `net.peer.name`) when the span has no child in the same read (an instrumented callee's
      server span is the child, and names it already): a call into a callee that is down, or was
      never instrumented, is all there is of it.
  `ReadOptions.database_service`, when set, names every database callee instead of `db.system`.
  The caller stays in the attributes as `warroom.caller`. A callee whose own spans are exported to
  another file than its callers' gets its callers' client spans as well: give its spans in the same
  file.
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
from warroom.sources.raw.times import epoch_us, epoch_us_of_numbers

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


def exception_attributes(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The first `exception` event's type, message and stack trace."""
    for event in events:
        if event.get("name") == "exception":
            attrs = event.get("attributes") or {}
            return {k: attrs[k] for k in ("exception.type", "exception.message", "exception.stacktrace") if k in attrs}
    return {}


@dataclass
class SpanColumns:
    """Decoded spans as one list per field, which a reader fills span by span (`add`, or its own
    appends where every microsecond counts) and `span_table` settles as columns."""

    line: list[int] = field(default_factory=list)
    trace_id: list[Any] = field(default_factory=list)
    span_id: list[Any] = field(default_factory=list)
    parent_span_id: list[Any] = field(default_factory=list)
    service: list[str | None] = field(default_factory=list)
    operation: list[Any] = field(default_factory=list)
    start: list[Any] = field(default_factory=list)
    end: list[Any] = field(default_factory=list)
    failed: list[bool] = field(default_factory=list)
    instance: list[str | None] = field(default_factory=list)
    kind: list[str | None] = field(default_factory=list)
    # the attributes with the names the analyses read, the exception, span.kind and status.message
    attributes: list[dict[str, Any]] = field(default_factory=list)

    def add(self, span: Span) -> None:
        attributes = canonical_attributes(span.attributes)
        for key, value in exception_attributes(span.events).items():
            attributes.setdefault(key, value)
        self.append(span.line, span.trace_id, span.span_id, span.parent_span_id, span.service, span.operation)
        self.start.append(span.start)
        self.end.append(span.end)
        self.settle(span.status_code, span.status_message, span.kind, span.instance, attributes)

    def append(self, line: int, trace_id: Any, span_id: Any, parent: Any, service: str | None, operation: Any) -> None:
        self.line.append(line)
        self.trace_id.append(trace_id)
        self.span_id.append(span_id)
        self.parent_span_id.append(parent)
        self.service.append(service)
        self.operation.append(operation)

    def settle(
        self, status_code: Any, status_message: Any, kind: Any, instance: str | None, attributes: dict[str, Any]
    ) -> None:
        """The status, kind, instance and attributes of the span last appended."""
        name = kind_name(kind)
        if name:
            attributes.setdefault("span.kind", name)
        if status_message:
            attributes.setdefault("status.message", status_message)
        self.failed.append(status_code in ERROR_CODES or attributes.get("error") is True)
        self.kind.append(name)
        self.instance.append(instance)
        self.attributes.append(attributes)


def _ids(values: list[Any], length: int) -> pl.Series:
    """Ids as semconv.hex_id writes them: plain hex settled as a column, any other encoding
    (base64, integers, padded text) one by one."""
    raw = pl.Series(values, dtype=pl.String, strict=False)
    plain = raw.str.to_lowercase().str.strip_prefix("0x").str.replace_all("-", "", literal=True)
    ok = plain.str.contains(f"^[0-9a-f]{{{length}}}$").fill_null(False)
    settled = pl.select(pl.when(ok & ~plain.str.contains("^0+$")).then(plain)).to_series()
    others = (~ok & raw.is_not_null()).arg_true()
    if others.len() == 0 and raw.null_count() == sum(v is None for v in values):
        return settled
    result = settled.to_list()
    for index, value in enumerate(values):
        if value is not None and (result[index] is None) and (raw[index] is None or not ok[index]):
            result[index] = hex_id(value, length)
    return pl.Series(result, dtype=pl.String)


def _times(values: list[Any]) -> pl.Series:
    """Epoch µs of every value: digit strings and numbers as a column, anything else one by one."""
    try:
        raw = pl.Series(values)
    except (TypeError, pl.exceptions.PolarsError):
        return pl.Series([epoch_us(v) for v in values], dtype=pl.Int64)
    if raw.dtype == pl.String:
        digits = raw.str.contains(r"^\d+$").fill_null(False)
        micros = epoch_us_of_numbers(raw.cast(pl.Int64, strict=False))
        if bool(digits.all()):
            return micros
        return pl.Series(
            [m if d else epoch_us(v) for m, d, v in zip(micros.to_list(), digits.to_list(), values, strict=True)],
            dtype=pl.Int64,
        )
    if raw.dtype.is_numeric():
        return epoch_us_of_numbers(raw)
    return pl.Series([epoch_us(v) for v in values], dtype=pl.Int64)


_SKIPS = (
    ("trace id not 32 hex digits", pl.col("trace_id").is_null() | (pl.col("trace_id").str.len_bytes() != 32)),
    ("span id not 16 hex digits", pl.col("span_id").is_null() | (pl.col("span_id").str.len_bytes() != 16)),
    ("parent span id not 16 hex digits", pl.col("parent_span_id").str.len_bytes().fill_null(16) != 16),
    ("start or end time unreadable", pl.col("start").is_null() | pl.col("end").is_null()),
    ("span ends before it starts", pl.col("end") < pl.col("start")),
    ("no service.name in its resource", pl.col("service").is_null() | (pl.col("service") == "")),
)


def _attribute_callees(
    frame: pl.DataFrame, attributes: list[dict[str, Any]], database: str | None
) -> tuple[pl.DataFrame, int]:
    """Re-attribute client spans to the callee they name (module docstring); how many."""
    parents = set(frame.get_column("parent_span_id").drop_nulls().unique().to_list())
    services = frame.get_column("service").to_list()
    instances = frame.get_column("instance").to_list()
    moved = 0
    calls = frame.select(pl.arg_where((pl.col("kind") == "client") | pl.col("kind").is_null())).to_series()
    span_ids = frame.get_column("span_id").to_list()
    kinds = frame.get_column("kind").to_list()
    for index in calls.to_list():
        attrs = attributes[index]
        system = database_service(attrs)
        if kinds[index] is None and not system:
            continue
        span_id = span_ids[index]
        callee = peer_of(attrs, database)
        service = services[index]
        if not callee or callee == service:
            continue
        # An instrumented callee's server span is the call's child and names it already; a call with
        # no child went unanswered (the callee is down, or never instrumented): it stands for the callee.
        if not system and span_id in parents:
            continue
        attrs.setdefault("peer.service", callee)
        attrs["warroom.caller"] = service
        address, port = attrs.get("net.peer.name"), attrs.get("net.peer.port")
        instances[index] = f"{address}:{port}" if address and port else str(address) if address else None
        services[index] = callee
        moved += 1
    if moved:
        frame = frame.with_columns(
            pl.Series("service", services, dtype=pl.String), pl.Series("instance", instances, dtype=pl.String)
        )
    return frame, moved


@dataclass
class SpanTable:
    frame: pl.DataFrame
    notes: list[str]
    limitations: list[str]


def span_table(
    spans: SpanColumns, path: Path, *, default_service: str | None = None, database: str | None = None
) -> SpanTable:
    """The canonical traces frame of a file's spans, with what was skipped and re-attributed."""
    frame = pl.DataFrame(
        {
            "line": pl.Series(spans.line, dtype=pl.Int64),
            "trace_id": _ids(spans.trace_id, 32),
            "span_id": _ids(spans.span_id, 16),
            "parent_span_id": _ids(spans.parent_span_id, 16),
            "service": pl.Series([s or default_service for s in spans.service], dtype=pl.String),
            "operation": pl.Series([o if o is None else str(o) for o in spans.operation], dtype=pl.String),
            "start": _times(spans.start),
            "end": _times(spans.end),
            "failed": pl.Series(spans.failed, dtype=pl.Boolean),
            "instance": pl.Series(spans.instance, dtype=pl.String),
            "kind": pl.Series(spans.kind, dtype=pl.String),
            "index": pl.int_range(len(spans.line), eager=True),
        }
    )
    skipped = Skipped()
    reason = pl.lit(None, dtype=pl.String)
    for text, test in reversed(_SKIPS):
        reason = pl.when(test).then(pl.lit(text)).otherwise(reason)
    frame = frame.with_columns(reason.alias("skip"))
    for text, count, first in (
        frame.filter(pl.col("skip").is_not_null())
        .group_by("skip")
        .agg(pl.len(), pl.col("line").min())
        .sort("line")
        .iter_rows()
    ):
        skipped.counts[text], skipped.first[text] = count, first
    frame = frame.filter(pl.col("skip").is_null())
    skipped.fail_if_nothing_left(frame.height, path, "spans with trace and span ids, a service and times")
    attributes = [spans.attributes[i] for i in frame.get_column("index").to_list()]
    frame, moved = _attribute_callees(frame, attributes, database)
    frame = frame.select(
        "trace_id",
        "span_id",
        "parent_span_id",
        "service",
        pl.col("operation").fill_null(""),
        pl.col("start").cast(TS).alias("start_time"),
        pl.col("end").cast(TS).alias("end_time"),
        pl.when("failed").then(pl.lit("ERROR")).otherwise(pl.lit("OK")).alias("status"),
        "instance",
        pl.Series("attributes", [orjson.dumps(a, default=str).decode() for a in attributes], dtype=pl.String),
    ).sort("start_time", maintain_order=True)
    services = frame.get_column("service").n_unique()
    errors = int((frame.get_column("status") == "ERROR").sum())
    notes = [f"{frame.height} spans of {services} service(s), {errors} with status ERROR"]
    if moved:
        notes.append(f"{moved} client span(s) attributed to the uninstrumented service they call")
    return SpanTable(frame, notes, skipped.limitations(path, "span"))


def traces_query(path: Path, text: str, source: str = "bundle") -> SourceQuery:
    return SourceQuery(source=source, modality=Modality.TRACES, text=text, location=str(path))
