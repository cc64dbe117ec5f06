"""OTLP/JSON logs: `resourceLogs` → `scopeLogs` → `logRecords`, one export request per line (as
warroom's receiver and the Collector's file exporter spool them) or one document.

A record's time is `timeUnixNano`, else `observedTimeUnixNano` (the spec allows either to be
unset); the level is its `severityNumber`, else its `severityText`; the message its `body` (text,
or the JSON of a structured body); the service the resource's `service.name`; the record's
`spanId` goes into the attributes as `span_id`, which the analyses read. An attribute whose value
is a map is a bag of the record's own fields (the SDK's LoggingHandler turns `extra={"fields":
{"client.address": …}}` into one): its members join the record's attributes where the name is free,
so `client.address` in it is read as any record's is.

A PostgreSQL server's own log shipped as OTLP (a Collector's filelog receiver, or any shipper,
marking the resource or the record `db.system=postgresql`) is read as the database's evidence, as
its log files are (`postgres_log.py`): each message is classified by what it says (a slow
statement with its duration, a lock wait, a deadlock, a timeout, an error), its statement taken from
`db.statement`, `db.query.text` or `statement`, and the service is `ReadOptions.database_service`
when set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from warroom.sources.raw import otlp, postgres_log
from warroom.sources.raw.logs import LogLine, log_read
from warroom.sources.raw.otlp_messages import (
    LogRecord,
    LogsRequest,
    attributes_of,
    export_requests,
    resource_of,
    value_of,
)
from warroom.sources.raw.reader import RawRead, ReadOptions
from warroom.sources.raw.semconv import hex_id, level_of, severity_number_level


def _time(record: LogRecord) -> Any:
    for value in (record.time_unix_nano, record.observed_time_unix_nano):
        if value not in (None, "", "0", 0):
            return value
    return None


STATEMENT_KEYS = ("db.statement", "db.query.text", "statement")


def _lifted(attributes: dict[str, Any]) -> dict[str, Any]:
    """The attributes with the members of map-valued ones in their place (the record's own names
    first: a member never overwrites one)."""
    bags = [key for key, value in attributes.items() if isinstance(value, dict)]
    if not bags:
        return attributes
    flat = {key: value for key, value in attributes.items() if key not in bags}
    for key in bags:
        for name, value in _lifted(attributes[key]).items():
            flat.setdefault(name, value)
    return flat


def _line(resource: otlp.Resource, record: LogRecord, number: int, database: str | None) -> LogLine:
    body = value_of(record.body)
    message = body if isinstance(body, str) else orjson.dumps(body, default=str).decode() if body is not None else ""
    attributes = _lifted(attributes_of(record.attributes))
    span_id = hex_id(record.span_id, 16)
    if span_id:
        attributes.setdefault("span_id", span_id)
    level = severity_number_level(record.severity_number) or level_of(record.severity_text)
    service = resource.service
    if (attributes.get("db.system") or resource.attributes.get("db.system")) == postgres_log.SERVICE:
        statement = next((str(attributes[k]) for k in STATEMENT_KEYS if attributes.get(k)), None)
        attributes.update(postgres_log.classify((record.severity_text or "").upper(), message, statement))
        service = database or service or postgres_log.SERVICE
    return LogLine(
        line=number,
        timestamp=_time(record),
        service=service,
        level=level,
        message=message or "(empty body)",
        trace_id=record.trace_id or None,
        instance=resource.instance,
        attributes=attributes,
    )


def otlp_log_lines(requests: list[LogsRequest], lines: list[int], database: str | None = None) -> list[LogLine]:
    """The records of the export requests (`lines`: where each request was read), a database's own
    records named `database` when given."""
    return [
        _line(resource, record, number, database)
        for request, number in zip(requests, lines, strict=True)
        for batch in request.batches()
        for resource in (resource_of(batch.resource),)
        for record in batch.items()
    ]


class OtlpLogs:
    name = "OTLP/JSON logs (resourceLogs)"

    def sniff(self, path: Path, head: bytes) -> bool:
        return otlp.sniff(head, b"resourceLogs")

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        requests = export_requests(path, LogsRequest)
        read = log_read(
            otlp_log_lines(requests.records, requests.line_numbers, options.database_service),
            path,
            requests.skipped,
            "OTLP logs",
        )
        read.limitations.extend(requests.left_out())
        return read
