"""warroom's own OTLP/HTTP receiver for traces and logs: no collector needed.

`POST /v1/traces` and `POST /v1/logs` take what the OpenTelemetry SDK exporters send
(`application/x-protobuf`, optionally gzip-compressed) and the OTLP/JSON encoding
(`application/json`). Every accepted request is appended as one line of OTLP/JSON — the
standard JSON encoding of the export request (`resourceSpans` / `resourceLogs`, lowerCamelCase
keys, hex trace and span ids, enums as integers), the same lines the OpenTelemetry Collector's
file exporter writes — to a spool directory, one file per signal and time period. Readers and
captures take the spool as it is.

The app is plain ASGI (FastAPI) so `warroom serve` can mount it; `warroom otlp-receive` runs it
standalone.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.concurrency import run_in_threadpool

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# A batch of the SDK's default size is far below this; anything larger is refused, not buffered.
MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Signal:
    """One OTLP signal: its URL path, request and response messages, and where its ids sit."""

    name: str
    request: type[Message]
    response: type[Message]
    # (list key, item key) pairs from the request root down to the objects that carry ids.
    path: tuple[str, ...]
    id_fields: tuple[str, ...]


TRACES = Signal(
    "traces",
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
    ("resourceSpans", "scopeSpans", "spans"),
    ("traceId", "spanId", "parentSpanId"),
)
LOGS = Signal(
    "logs",
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
    ("resourceLogs", "scopeLogs", "logRecords"),
    ("traceId", "spanId"),
)
SIGNALS = {signal.name: signal for signal in (TRACES, LOGS)}


class OtlpRequestError(ValueError):
    """A request body that is not a valid OTLP export request (answered with 400 or 415)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _items(document: dict[str, Any], path: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Every object at the end of `path` (e.g. every span of every scope of every resource)."""
    level: list[dict[str, Any]] = [document]
    for depth, key in enumerate(path):
        children = [parent.get(key, []) for parent in level]
        if not all(isinstance(c, list) and all(isinstance(item, dict) for item in c) for c in children):
            where = ".".join(path[: depth + 1])
            raise OtlpRequestError(f"{where} must be a list of objects in an OTLP/JSON export request")
        level = [child for items in children for child in items]
    yield from level


def _convert_ids(document: dict[str, Any], signal: Signal, convert: Callable[[str], str]) -> None:
    for item in _items(document, signal.path):
        targets = [item, *item.get("links", [])]
        for target in targets:
            for field in signal.id_fields:
                if target.get(field):
                    target[field] = convert(target[field])


def _b64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def _hex_to_b64(value: str) -> str:
    try:
        return base64.b64encode(bytes.fromhex(value)).decode("ascii")
    except ValueError:
        raise OtlpRequestError(f"id {value!r} is not hex as OTLP/JSON requires") from None


def to_otlp_json(message: Message, signal: Signal) -> dict[str, Any]:
    """The OTLP/JSON form of a decoded export request (proto3 JSON with hex ids, integer enums)."""
    document = json_format.MessageToDict(message, use_integers_for_enums=True)
    _convert_ids(document, signal, _b64_to_hex)
    return document


def decode(signal: Signal, body: bytes, content_type: str, content_encoding: str = "") -> Message:
    """Parse one export request as the exporter sent it; raises OtlpRequestError when it is not one."""
    encoding = content_encoding.strip().lower()
    if encoding == "gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise OtlpRequestError(f"gzip body does not decompress: {exc}") from None
    elif encoding not in ("", "identity"):
        raise OtlpRequestError(f"Content-Encoding {content_encoding!r} is not supported (gzip or none)", 415)
    media = content_type.split(";")[0].strip().lower()
    message = signal.request()
    if media == PROTOBUF:
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise OtlpRequestError(f"body is not a protobuf {signal.request.__name__}: {exc}") from None
        return message
    if media == JSON:
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise OtlpRequestError(f"body is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise OtlpRequestError(f"body must be a JSON object {signal.request.__name__}")
        _convert_ids(document, signal, _hex_to_b64)
        try:
            # Unknown fields are ignored, as the OTLP specification asks of JSON receivers.
            json_format.ParseDict(document, message, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise OtlpRequestError(f"body is not an OTLP/JSON {signal.request.__name__}: {exc}") from None
        return message
    raise OtlpRequestError(f"Content-Type {content_type!r} is not supported ({PROTOBUF} or {JSON})", 415)


class Spool:
    """Append-only OTLP/JSON lines, one file per signal and time period (rotation by time)."""

    def __init__(self, directory: Path, rotate_seconds: int = 3600) -> None:
        if rotate_seconds <= 0:
            raise ValueError("rotate_seconds must be positive")
        self.directory = directory
        self.rotate_seconds = rotate_seconds
        self._lock = threading.Lock()

    def path_for(self, signal: str, now: float) -> Path:
        period_start = int(now) - int(now) % self.rotate_seconds
        stamp = datetime.fromtimestamp(period_start, UTC).strftime("%Y%m%dT%H%M%SZ")
        return self.directory / signal / f"{signal}-{stamp}.jsonl"

    def received_between(self, signal: str, since: float, until: float) -> list[Path]:
        """The signal's files that hold requests received in [since, until], oldest first. A file
        holds what arrived from the time in its name up to the next file's time."""
        stamped = []
        for path in (self.directory / signal).glob(f"{signal}-*.jsonl"):
            try:
                moment = datetime.strptime(path.stem.removeprefix(f"{signal}-"), "%Y%m%dT%H%M%SZ")
            except ValueError:
                continue
            stamped.append((moment.replace(tzinfo=UTC).timestamp(), path))
        if not stamped:
            return []
        stamped.sort()
        ends = [begin for begin, _ in stamped[1:]] + [float("inf")]
        return [path for (begin, path), end in zip(stamped, ends, strict=True) if begin <= until and end >= since]

    def append(self, signal: str, document: dict[str, Any], now: float | None = None) -> Path:
        line = json.dumps(document, separators=(",", ":"), ensure_ascii=False) + "\n"
        path = self.path_for(signal, time.time() if now is None else now)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write(line)
        return path


def _response(signal: Signal, media: str) -> Response:
    empty = signal.response()
    if media == JSON:
        return Response(json_format.MessageToJson(empty) or "{}", media_type=JSON)
    return Response(empty.SerializeToString(), media_type=PROTOBUF)


def _error(exc: OtlpRequestError) -> Response:
    # google.rpc.Status in JSON: what OTLP/HTTP servers answer on a bad request.
    return Response(json.dumps({"code": 3, "message": str(exc)}), status_code=exc.status, media_type=JSON)


def create_app(spool: Spool) -> FastAPI:
    """The receiver as an ASGI app: mount it, or serve it with uvicorn."""
    app = FastAPI(title="warroom OTLP/HTTP receiver", docs_url=None, redoc_url=None)

    async def receive(signal: Signal, request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _error(OtlpRequestError(f"body of {declared} bytes is over {MAX_BODY_BYTES}", 413))
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        try:
            message = decode(signal, body, content_type, request.headers.get("content-encoding", ""))
        except OtlpRequestError as exc:
            return _error(exc)
        await run_in_threadpool(spool.append, signal.name, to_otlp_json(message, signal))
        return _response(signal, content_type.split(";")[0].strip().lower())

    @app.post("/v1/traces")
    async def traces(request: Request) -> Response:
        return await receive(TRACES, request)

    @app.post("/v1/logs")
    async def logs(request: Request) -> Response:
        return await receive(LOGS, request)

    return app


def app_from_environment() -> FastAPI:
    """The receiver configured by WARROOM_OTLP_DIR (and WARROOM_OTLP_ROTATE_SECONDS), for an ASGI
    server's app factory: `uvicorn --factory warroom.sources.otlp_receiver:app_from_environment`
    (the lab starts it so, without importing the whole command line)."""
    directory = os.environ.get("WARROOM_OTLP_DIR")
    if not directory:
        raise OSError("WARROOM_OTLP_DIR is not set (the spool directory of the OTLP receiver)")
    return create_app(Spool(Path(directory), int(os.environ.get("WARROOM_OTLP_ROTATE_SECONDS", "3600"))))


def serve(directory: Path, host: str, port: int, rotate_seconds: int = 3600) -> None:
    """Run the receiver until interrupted (the `warroom otlp-receive` command)."""
    import uvicorn

    uvicorn.run(create_app(Spool(directory, rotate_seconds)), host=host, port=port, log_level="warning")
