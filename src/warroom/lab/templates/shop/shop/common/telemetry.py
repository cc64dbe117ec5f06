"""Telemetry of a shop service: OpenTelemetry traces and logs (OTLP/HTTP), Prometheus metrics, JSON logs.

The OTLP endpoint, service name and batching come from the standard OTEL_* environment variables.
Every request gets a SERVER span (current semantic conventions), a Prometheus count and latency
observation, and one JSON log line carrying the trace and span ids.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Counter, Gauge, Histogram
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("http_requests_total", "HTTP requests served.", ["method", "handler", "status"])
LATENCY = Histogram("http_request_duration_seconds", "Time to serve an HTTP request.", ["method", "handler"])
IN_PROGRESS = Gauge("http_requests_inprogress", "HTTP requests being served.", ["method", "handler"])

log = logging.getLogger("shop")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra={"fields": {...}}` adds attributes, the span adds its ids."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "service": self.service,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            doc["trace_id"] = format(context.trace_id, "032x")
            doc["span_id"] = format(context.span_id, "016x")
        doc.update(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[0] is not None:
            doc["error"] = {
                "type": record.exc_info[0].__name__,
                "message": str(record.exc_info[1]),
                "stack": "".join(traceback.format_exception(*record.exc_info)),
            }
        return json.dumps(doc, default=str)


def setup(service: str) -> tuple[TracerProvider, LoggerProvider]:
    resource = Resource.create({"service.name": service, "service.namespace": "shop"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(tracer_provider)
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    set_logger_provider(logger_provider)

    path = os.environ.get("SHOP_LOG_FILE")
    handler = logging.FileHandler(path, encoding="utf-8") if path else logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler, LoggingHandler(logger_provider=logger_provider)]
    root.setLevel(logging.INFO)
    for noisy in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return tracer_provider, logger_provider


def shutdown(providers: tuple[TracerProvider, LoggerProvider]) -> None:
    for provider in providers:
        provider.shutdown()


def _route(app: ASGIApp, scope: Scope) -> str:
    for route in getattr(app, "routes", []):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", scope["path"]))
    return "unmatched"


def client_address(headers: dict[str, str], scope: Scope) -> str:
    forwarded = headers.get("x-forwarded-for")
    if forwarded:
        return forwarded.split(",")[0].strip()
    client = scope.get("client")
    return str(client[0]) if client else ""


class ObservabilityMiddleware:
    """Span, metrics and a log line for every HTTP request (the app's outermost own layer)."""

    def __init__(self, app: ASGIApp, service: str, router: ASGIApp) -> None:
        self.app = app
        self.router = router
        self.tracer = trace.get_tracer(f"shop.{service}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(("/metrics", "/healthz")):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method, handler = scope["method"], _route(self.router, scope)
        host, _, port = headers.get("host", "").partition(":")
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        IN_PROGRESS.labels(method, handler).inc()
        with self.tracer.start_as_current_span(
            f"{method} {handler}",
            context=propagate.extract(headers),
            kind=SpanKind.SERVER,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            span.set_attributes(
                {
                    "http.request.method": method,
                    "http.route": handler,
                    "url.path": scope["path"],
                    "url.scheme": "http",
                    "server.address": host,
                    "server.port": int(port or 0),
                    "client.address": client_address(headers, scope),
                    "user_agent.original": headers.get("user-agent", ""),
                }
            )
            error: BaseException | None = None
            try:
                await self.app(scope, receive, send_status)
            except Exception as exc:
                error = exc
                span.record_exception(exc)
                raise
            finally:
                elapsed = time.perf_counter() - started
                IN_PROGRESS.labels(method, handler).dec()
                REQUESTS.labels(method, handler, str(status)).inc()
                LATENCY.labels(method, handler).observe(elapsed)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                    span.set_attribute("error.type", type(error).__name__ if error else str(status))
                fields = {
                    "http.request.method": method,
                    "url.path": scope["path"],
                    "http.route": handler,
                    "http.response.status_code": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client.address": client_address(headers, scope),
                }
                level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
                log.log(
                    level,
                    "%s %s %s %.1fms",
                    method,
                    scope["path"],
                    status,
                    elapsed * 1000,
                    exc_info=error,
                    extra={"fields": fields},
                )
