"""Span records one per JSON object, as SDKs and tracers write them outside OTLP.

Shapes read: the Python SDK's ConsoleSpanExporter (pretty-printed objects, `context.trace_id`
"0x…", `parent_id`, ISO times, `resource.attributes`), span JSON lines of other SDKs and tracers
(`trace_id`/`traceId`, `start_time_unix_nano`/`startTimeUnixNano`/`start_ns`/`start_time`, …) and
Zipkin v2 (`id`, `parentId`, `timestamp` + `duration` in µs, `localEndpoint.serviceName`, `tags`).
The keys looked up, in order, are the tuples below; docs/bundle-format.md lists them.

Times are numbers or text (`times.py`); an integer without unit follows the epoch magnitude rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from warroom.sources.contract import Modality
from warroom.sources.raw import otlp
from warroom.sources.raw.reader import RawRead, RawTable, ReadOptions
from warroom.sources.raw.spans import Span, SpanColumns, span_table, traces_query
from warroom.sources.raw.text import first_record, json_documents, read_text
from warroom.sources.raw.times import epoch_us
from warroom.sources.raw.v1 import is_v1_record

TRACE_KEYS = ("trace_id", "traceId", "traceID")
SPAN_KEYS = ("span_id", "spanId", "spanID", "id")
PARENT_KEYS = ("parent_id", "parent_span_id", "parentSpanId", "parentId", "parentSpanID")
NAME_KEYS = ("name", "operation", "operationName", "span_name")
START_KEYS = ("start_time_unix_nano", "startTimeUnixNano", "start_ns", "start_time", "startTime", "start")
END_KEYS = ("end_time_unix_nano", "endTimeUnixNano", "end_ns", "end_time", "endTime", "end")
SERVICE_KEYS = ("service.name", "service", "serviceName", "service_name")


def _first(record: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    return next((record[k] for k in keys if record.get(k) not in (None, "")), None)


def _is_span(record: Mapping[str, Any]) -> bool:
    context = record.get("context")
    has_ids = (isinstance(context, dict) and "span_id" in context) or (
        _first(record, TRACE_KEYS) is not None and _first(record, SPAN_KEYS) is not None
    )
    has_time = _first(record, START_KEYS) is not None or ("timestamp" in record and "duration" in record)
    return bool(has_ids and has_time)


def _resource(record: Mapping[str, Any]) -> otlp.Resource:
    resource = record.get("resource")
    if isinstance(resource, dict):
        return otlp.Resource.of({"attributes": resource.get("attributes", resource)})
    return otlp.Resource(None, None, {})


def _service(record: Mapping[str, Any], resource: otlp.Resource) -> str | None:
    if resource.service:
        return resource.service
    for holder in (record.get("localEndpoint"), record.get("process"), record):
        if isinstance(holder, dict):
            value = _first(holder, SERVICE_KEYS)
            if value is not None:
                return str(value)
    return None


def _end(record: Mapping[str, Any], start: Any) -> Any:
    end = _first(record, END_KEYS)
    if end is not None:
        return end
    begin = epoch_us(start)
    if begin is None:
        return None
    for key, micros_per_unit in (("duration", 1.0), ("duration_ns", 0.001), ("duration_us", 1.0), ("duration_ms", 1e3)):
        value = record.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return begin + round(value * micros_per_unit)
    return None


def _status(record: Mapping[str, Any]) -> tuple[Any, str | None]:
    status = record.get("status")
    if isinstance(status, dict):
        code = status.get("status_code", status.get("code"))
        message = status.get("description") or status.get("message")
        return code, str(message) if message else None
    return status, None


def _events(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    events = record.get("events") or []
    return [
        {"name": e.get("name"), "attributes": otlp.attributes(e.get("attributes"))}
        for e in events
        if isinstance(e, dict)
    ]


def _span(record: dict[str, Any], line: int) -> Span:
    context = record.get("context") if isinstance(record.get("context"), dict) else {}
    start = _first(record, START_KEYS) if _first(record, START_KEYS) is not None else record.get("timestamp")
    code, message = _status(record)
    attributes = otlp.attributes(record.get("attributes") or record.get("tags") or {})
    resource = _resource(record)
    return Span(
        line=line,
        trace_id=context.get("trace_id") if context else _first(record, TRACE_KEYS),
        span_id=context.get("span_id") if context else _first(record, SPAN_KEYS),
        parent_span_id=_first(record, PARENT_KEYS),
        service=_service(record, resource),
        instance=resource.instance,
        operation=_first(record, NAME_KEYS),
        start=start,
        end=_end(record, start),
        status_code=code,
        status_message=message,
        kind=record.get("kind"),
        attributes=attributes,
        events=_events(record),
    )


class SdkSpans:
    name = "span records (SDK console exporter, JSON lines, Zipkin v2)"

    def sniff(self, path: Path, head: bytes) -> bool:
        record = first_record(head)
        return record is not None and _is_span(record) and not is_v1_record(path, record, "traces")

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        records = json_documents(read_text(path), path, "span records (JSON objects with trace and span ids)")
        spans = SpanColumns()
        for record, line in zip(records.records, records.line_numbers, strict=True):
            if _is_span(record):
                spans.add(_span(record, line))
        not_spans = len(records.records) - len(spans.line)
        table = span_table(spans, path, database=options.database_service)
        query = traces_query(path, f"{path.name}: every span record")
        limitations = records.skipped.limitations(path, "line") + table.limitations
        if not_spans:
            limitations.append(f"{path.name}: {not_spans} JSON object(s) skipped (not span records)")
        tables = [RawTable(Modality.TRACES, table.frame, query)]
        return RawRead(tables=tables, notes=table.notes, limitations=limitations)
