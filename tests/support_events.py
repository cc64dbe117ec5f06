"""Telemetry written by the real OpenTelemetry SDK, for the event readers' tests.

Spans and log records are made by the SDK's tracer and logger providers and written by its own
exporters and encoders: ConsoleSpanExporter's pretty-printed objects, and the OTLP export request
of opentelemetry-exporter-otlp-proto-common, printed as protobuf JSON (base64 ids, enum names) or
as OTLP/JSON with hex ids (what warroom's receiver spools).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer


def record_spans(services: list[str], body: Callable[[dict[str, Tracer]], None]) -> list[ReadableSpan]:
    """Run `body` with one tracer per service (each its own provider and resource)."""
    memory = InMemorySpanExporter()
    tracers = {}
    providers = []
    for service in services:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        providers.append(provider)
        tracers[service] = provider.get_tracer("warroom-tests")
    body(tracers)
    for provider in providers:
        provider.shutdown()
    return list(memory.get_finished_spans())


def console_spans(spans: list[ReadableSpan], path: Path) -> Path:
    """The spans as ConsoleSpanExporter writes them (pretty-printed objects one after another)."""
    with path.open("w", encoding="utf-8") as handle:
        ConsoleSpanExporter(out=handle).export(spans)
    return path


def _hex_ids(document: Any) -> Any:
    """Protobuf JSON's base64 ids as the hex OTLP/JSON requires (what warroom's receiver spools)."""
    if isinstance(document, dict):
        return {
            k: base64.b64decode(v).hex() if k in ("traceId", "spanId", "parentSpanId") and v else _hex_ids(v)
            for k, v in document.items()
        }
    if isinstance(document, list):
        return [_hex_ids(item) for item in document]
    return document


def otlp_trace_request(spans: list[ReadableSpan], *, hex_ids: bool = True) -> dict[str, Any]:
    document = json_format.MessageToDict(encode_spans(spans), use_integers_for_enums=hex_ids)
    return _hex_ids(document) if hex_ids else document


def record_logs(service: str, body: Callable[[logging.Logger], None], tracer: Tracer | None = None) -> list[Any]:
    """Log records made through the SDK's logging handler (what `opentelemetry-instrumentation-
    logging` or a LoggingHandler sends)."""
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": service}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = logging.getLogger(f"warroom-tests.{service}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    logger.addHandler(handler)
    try:
        body(logger)
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    return list(memory.get_finished_logs())


def otlp_logs_request(records: list[Any]) -> dict[str, Any]:
    return _hex_ids(json_format.MessageToDict(encode_logs(records), use_integers_for_enums=True))


def write_lines(path: Path, documents: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in documents), encoding="utf-8")
    return path
