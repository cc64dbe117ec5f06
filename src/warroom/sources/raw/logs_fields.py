"""The names log fields go by: the keys common loggers write for a line's time, level, message,
error, trace and span ids, service and instance (each tuple in order of preference), how a key
is looked up (flat `service.name` or nested `{"service": {"name": …}}`), and the exception an
error field describes. The JSON lines and logfmt readers read records by these names, per line or
as columns (logs_json.py, logs_columnar.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from warroom.sources.canonical import TABLES

TIME_KEYS = ("timestamp", "time", "ts", "@timestamp", "asctime", "datetime", "date", "t", "__REALTIME_TIMESTAMP")
LEVEL_KEYS = ("level", "severity", "levelname", "lvl", "log.level", "loglevel", "severity_text", "@level", "PRIORITY")
MESSAGE_KEYS = ("message", "msg", "event", "@message", "log", "text", "body", "short_message", "MESSAGE")
ERROR_KEYS = (
    "error",
    "err",
    "exception",
    "exc_info",
    "exc_text",
    "stack",
    "stacktrace",
    "stack_trace",
    "error.message",
    "error.stack_trace",
)
TRACE_KEYS = ("trace_id", "traceId", "traceID", "trace.id", "otelTraceID", "dd.trace_id")
SPAN_KEYS = ("span_id", "spanId", "spanID", "span.id", "otelSpanID", "dd.span_id")
SERVICE_KEYS = (
    "service",
    "service.name",
    "service_name",
    "serviceName",
    "app",
    "application",
    "kubernetes.labels.app",
    "container_name",
)
INSTANCE_KEYS = ("instance", "host", "hostname", "pod", "k8s.pod.name", "host.name")
GENERIC_FILE_NAMES = {
    "log",
    "logs",
    "app",
    "application",
    "output",
    "out",
    "stdout",
    "stderr",
    "events",
    "all",
    "messages",
    "combined",
    "service",
    "services",
    "export",
    "json",
    "structured",
}


def lookup(record: Mapping[str, Any], key: str) -> tuple[str, Any] | None:
    """(top-level key consumed, value) of `key` written flat (`"log.level"`) or nested
    (`{"log": {"level": …}}`); None when absent, null or empty."""
    value = record.get(key)
    if value not in (None, ""):
        return key, value
    head, _, rest = key.partition(".")
    if rest and isinstance(record.get(head), Mapping):
        inner = lookup(record[head], rest)
        if inner is not None:
            return head, inner[1]
    return None


def first_field(record: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str, Any] | None:
    return next((found for key in keys if (found := lookup(record, key)) is not None), None)


def service_from_file_name(path: Path) -> str | None:
    """`checkout.jsonl`, `checkout-2024-05-27.log.1`, `checkout_json.log` → `checkout`; None for
    generic names."""
    name = path.name.split(".")[0]
    name = re.sub(r"[-_.]?\d{4}-?\d{2}-?\d{2}.*$", "", name)
    name = re.sub(r"[-_](json|logs?|events|structured)$", "", name, flags=re.IGNORECASE)
    return None if not name or name.lower() in GENERIC_FILE_NAMES or name in TABLES else name


def text_of(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, default=str).decode()


def exception_fields(value: Any) -> dict[str, Any]:
    """exception.type / message / stacktrace from an error field (text, or an object)."""
    if isinstance(value, Mapping):
        found = {
            "exception.type": value.get("type") or value.get("kind") or value.get("name") or value.get("class"),
            "exception.message": value.get("message") or value.get("msg"),
            "exception.stacktrace": value.get("stack") or value.get("stack_trace") or value.get("stacktrace"),
        }
        return {k: text_of(v) for k, v in found.items() if v}
    if isinstance(value, list):  # some loggers write the traceback as a list of lines
        value = "\n".join(text_of(item) for item in value)
    text = text_of(value).strip()
    if not text or text.lower() in ("none", "null", "false"):
        return {}
    if "\n" not in text:
        return {"exception.message": text}
    result = {"exception.stacktrace": text}
    # Python's last traceback line, Java's and .NET's first: `Type: message`.
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    headline = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    kind, sep, message = headline.partition(": ")
    if sep and re.fullmatch(r"[\w.$]+", kind):
        result.update({"exception.type": kind, "exception.message": message})
    else:
        result["exception.message"] = headline
    return result


def headline(exception: Mapping[str, Any]) -> str:
    kind, message = exception.get("exception.type"), exception.get("exception.message")
    return f"{kind}: {message}" if kind and message else str(kind or message or "")
