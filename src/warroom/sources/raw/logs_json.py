"""Structured log lines: one JSON object per line with whatever fields the service writes.

Fields are looked up by the names common loggers use (flat `service.name` or nested
`{"service": {"name": …}}` alike), in this order:

- time: `timestamp`, `time`, `ts`, `@timestamp`, `asctime`, `datetime`, `date`, `t`,
  `__REALTIME_TIMESTAMP` (journald, µs);
- level: `level`, `severity`, `levelname`, `lvl`, `log.level`, `loglevel`, `severity_text`,
  `@level`, `PRIORITY` (journald, syslog numbers); numbers as pino/bunyan write them;
- message: `message`, `msg`, `event` (structlog), `@message`, `log`, `text`, `body`,
  `short_message` (GELF), `MESSAGE` (journald);
- error: `error`, `err`, `exception`, `exc_info`, `exc_text`, `stack`, `stacktrace`,
  `stack_trace`, `error.message`, `error.stack_trace`: kept as written, plus `exception.type`,
  `exception.message` and `exception.stacktrace`, and the exception's headline (`Type: message`)
  appended to the message so the log analyses see it;
- trace and span ids: `trace_id`, `traceId`, `traceID`, `trace.id`, `otelTraceID`,
  `dd.trace_id`; `span_id`, `spanId`, `spanID`, `span.id`, `otelSpanID`, `dd.span_id` (the span
  id also as the attribute `span_id`, which the analyses read);
- service: `service`, `service.name`, `service_name`, `serviceName`, `app`, `application`,
  `kubernetes.labels.app`, `container_name`; else the file's name (`checkout.jsonl`,
  `checkout-2024-05-27.log`), unless it is a generic one (`logs`, `app`, `output`, …); else
  `logger`. The notes say which.
- instance: `instance`, `host`, `hostname`, `pod`, `k8s.pod.name`, `host.name`.

Every other field is kept in `attributes` as the JSON object the line wrote (nested values as
JSON; the fields of a line's own `attributes` object merged in), with the names the analyses read
added (`semconv.py`). A line without a level is INFO, or ERROR when it carries an error; a line
without a message gets its other fields as the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from warroom.sources.raw.logs import LogLine, LogReadStats, log_read
from warroom.sources.raw.logs_columnar import read_columns
from warroom.sources.raw.logs_fields import (
    ERROR_KEYS,
    INSTANCE_KEYS,
    LEVEL_KEYS,
    MESSAGE_KEYS,
    SERVICE_KEYS,
    SPAN_KEYS,
    TIME_KEYS,
    TRACE_KEYS,
    exception_fields,
    first_field,
    headline,
    lookup,
    service_from_file_name,
    text_of,
)
from warroom.sources.raw.reader import RawRead, ReadOptions
from warroom.sources.raw.semconv import hex_id, level_of
from warroom.sources.raw.text import first_record, json_lines, json_records, read_text
from warroom.sources.raw.v1 import is_v1_record


def structured_line(
    record: dict[str, Any], number: int, file_service: str | None, stats: LogReadStats, options: ReadOptions
) -> LogLine:
    """One log line from a record of named fields (a JSON object or a logfmt line)."""
    consumed: set[str] = set()

    def take(keys: tuple[str, ...]) -> Any:
        found = first_field(record, keys)
        if found is None:
            return None
        consumed.add(found[0])
        return found[1]

    timestamp = take(TIME_KEYS)
    raw_level = take(LEVEL_KEYS)
    message = take(MESSAGE_KEYS)
    found_trace = first_field(record, TRACE_KEYS)
    if found_trace is not None:
        consumed.add(found_trace[0])
    configured = options.service_label
    service = take((configured,)) if configured else None
    if service is not None:
        stats.count_service(f"the configured field '{configured}'")
    else:
        service = take(SERVICE_KEYS)
        origin = "a field of the line"
        if service is None and file_service:
            service, origin = file_service, "the file name"
        if service is None:
            service = take(("logger", "logger_name", "name"))
            origin = "the logger name"
        if service is not None:
            stats.count_service(origin)
    instance = take(INSTANCE_KEYS)
    attributes = without_nulls({k: v for k, v in record.items() if k not in consumed})
    nested = _nested_attributes(attributes.get("attributes"))
    if nested is not None:
        # An OpenTelemetry-shaped line: its own `attributes` object holds the fields.
        del attributes["attributes"]
        attributes = {**without_nulls(nested), **attributes}
    exception: dict[str, Any] = {}
    for key in ERROR_KEYS:
        found = lookup(record, key)
        if found is not None and not exception:
            exception = exception_fields(found[1])
    for key, value in exception.items():
        attributes.setdefault(key, value)
    span = first_field(record, SPAN_KEYS)
    if span is not None and "span_id" not in attributes:
        attributes["span_id"] = hex_id(_decimal_id(span), 16)
    level = level_of(raw_level)
    if level is None:
        stats.no_level += int(raw_level is None)
        level = "ERROR" if exception else None
        if raw_level is not None:
            attributes.setdefault("log.level", raw_level)
    if message is None:
        stats.no_message += 1
        message = " ".join(f"{k}={text_of(v)}" for k, v in attributes.items()) or "(empty record)"
    text = text_of(message)
    title = headline(exception)
    if title and title not in text:
        text = f"{text}: {title}"
    return LogLine(
        line=number,
        timestamp=timestamp,
        service=str(service) if service is not None else None,
        level=level,
        message=text,
        trace_id=_decimal_id(found_trace) if found_trace is not None else None,
        instance=str(instance) if instance is not None else None,
        attributes=attributes,
    )


def without_nulls(value: Any) -> Any:
    """The value with the fields written as null left out, at any depth: a null says nothing, and
    the columnar reader (logs_columnar.py), whose rows hold every field of the file, cannot tell a
    null from an absent field."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def _nested_attributes(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.startswith("{"):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def _decimal_id(found: tuple[str, Any]) -> Any:
    """Datadog writes ids as decimal 64-bit integers; everyone else writes hex."""
    key, value = found
    if (key == "dd" or key.startswith("dd.")) and str(value).isdigit():
        return int(value)
    return value


def has_message(record: Mapping[str, Any]) -> bool:
    return first_field(record, MESSAGE_KEYS) is not None


def is_log_record(record: Mapping[str, Any]) -> bool:
    return has_message(record) and first_field(record, TIME_KEYS) is not None


class JsonLogs:
    name = "JSON log lines"

    def sniff(self, path: Path, head: bytes) -> bool:
        record = first_record(head)
        return record is not None and is_log_record(record) and not is_v1_record(path, record, "logs")

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        file_service = service_from_file_name(path)
        stats = LogReadStats()
        # Most lines as columns (logs_columnar.py); those the columns do not fit, line by line.
        columns = read_columns(path, file_service, stats, options)
        expected = "JSON log lines (objects with a time and a message)"
        records = json_lines(read_text(path), path, expected) if columns is None else json_records(columns.rest)
        lines = [
            structured_line(record, number, file_service, stats, options)
            for record, number in zip(records.records, records.line_numbers, strict=True)
        ]
        read = log_read(lines, path, records.skipped, "JSON log lines", stats, columns.frame if columns else None)
        if columns is not None:
            as_columns = columns.frame.height if columns.frame is not None else 0
            read.notes.append(f"{as_columns} lines read as columns, {len(lines)} line by line")
        return read
