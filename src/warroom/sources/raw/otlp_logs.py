"""OTLP/JSON logs: `resourceLogs` → `scopeLogs` → `logRecords`, one export request per line (as
warroom's receiver and the Collector's file exporter spool them) or one document.

A record's time is `timeUnixNano`, else `observedTimeUnixNano` (the spec allows either to be
unset); the level is its `severityNumber`, else its `severityText`; the message its `body` (text,
or the JSON of a structured body); the service the resource's `service.name`; the record's
`spanId` goes into the attributes as `span_id`, which the analyses read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from warroom.sources.raw import otlp
from warroom.sources.raw.logs import LogLine, log_read
from warroom.sources.raw.reader import RawRead, ReadOptions
from warroom.sources.raw.semconv import hex_id, level_of, severity_number_level


def _time(item: dict[str, Any]) -> Any:
    for key in ("timeUnixNano", "observedTimeUnixNano"):
        value = item.get(key)
        if value not in (None, "", "0", 0):
            return value
    return None


def _line(resource: otlp.Resource, item: dict[str, Any], number: int) -> LogLine:
    body = otlp.any_value(item.get("body"))
    message = body if isinstance(body, str) else orjson.dumps(body, default=str).decode() if body is not None else ""
    attributes = otlp.attributes(item.get("attributes"))
    span_id = hex_id(item.get("spanId"), 16)
    if span_id:
        attributes.setdefault("span_id", span_id)
    level = severity_number_level(item.get("severityNumber")) or level_of(item.get("severityText"))
    return LogLine(
        line=number,
        timestamp=_time(item),
        service=resource.service,
        level=level,
        message=message or "(empty body)",
        trace_id=item.get("traceId") or None,
        instance=resource.instance,
        attributes=attributes,
    )


def otlp_log_lines(requests: list[dict[str, Any]], lines: list[int]) -> list[LogLine]:
    return [
        _line(resource, item, number)
        for request, number in zip(requests, lines, strict=True)
        for resource, item in otlp.scoped_items(request, "resourceLogs", "scopeLogs", "logRecords")
    ]


class OtlpLogs:
    name = "OTLP/JSON logs (resourceLogs)"

    def sniff(self, path: Path, head: bytes) -> bool:
        return otlp.sniff(head, b"resourceLogs")

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        requests = otlp.export_requests(path, "resourceLogs")
        read = log_read(otlp_log_lines(requests.records, requests.line_numbers), path, requests.skipped, "OTLP logs")
        read.limitations.extend(otlp.left_out(requests))
        return read
