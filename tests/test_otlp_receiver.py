"""The OTLP/HTTP receiver fed by the real OpenTelemetry SDK exporters over loopback."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from support_otlp import running_receiver, spooled
from warroom.sources.otlp_receiver import Spool


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    spool_dir = tmp_path / "spool"
    with running_receiver(spool_dir) as url:
        yield url, spool_dir


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_sdk_spans_arrive_as_otlp_json(receiver: tuple[str, Path], compression: Compression) -> None:
    url, spool_dir = receiver
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces", compression=compression))
    )
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /api/checkout", kind=SpanKind.SERVER) as parent:
        parent.set_attribute("http.response.status_code", 503)
        with tracer.start_as_current_span("SELECT shop", kind=SpanKind.CLIENT) as child:
            child.set_attribute("db.query.text", "SELECT 1")
            child.set_status(StatusCode.ERROR, "pool timeout")
    provider.shutdown()

    requests = spooled(spool_dir, "traces")
    spans = [s for r in requests for rs in r["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert {s["name"] for s in spans} == {"POST /api/checkout", "SELECT shop"}
    by_name = {s["name"]: s for s in spans}
    server_span, db_span = by_name["POST /api/checkout"], by_name["SELECT shop"]
    # hex ids as OTLP/JSON requires, and the parent link intact
    assert server_span["traceId"] == format(parent.get_span_context().trace_id, "032x")
    assert server_span["spanId"] == format(parent.get_span_context().span_id, "016x")
    assert db_span["parentSpanId"] == server_span["spanId"]
    assert server_span["kind"] == 2 and db_span["kind"] == 3  # enums as integers
    assert db_span["status"] == {"message": "pool timeout", "code": 2}
    resource_attrs = requests[0]["resourceSpans"][0]["resource"]["attributes"]
    assert {"key": "service.name", "value": {"stringValue": "checkout"}} in resource_attrs
    assert int(db_span["endTimeUnixNano"]) >= int(db_span["startTimeUnixNano"]) > 0


def test_sdk_logs_arrive_with_trace_context(receiver: tuple[str, Path]) -> None:
    url, spool_dir = receiver
    provider = LoggerProvider(resource=Resource.create({"service.name": "payment"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{url}/v1/logs")))
    tracer_provider = TracerProvider()
    logger = logging.getLogger("test_otlp_receiver.payment")
    logger.propagate = False
    logger.addHandler(LoggingHandler(logger_provider=provider))
    with tracer_provider.get_tracer("t").start_as_current_span("charge") as span:
        logger.error("card declined for order %s", 42)
    provider.shutdown()

    records = [
        rec
        for r in spooled(spool_dir, "logs")
        for rl in r["resourceLogs"]
        for sl in rl["scopeLogs"]
        for rec in sl["logRecords"]
    ]
    assert len(records) == 1
    assert records[0]["body"] == {"stringValue": "card declined for order 42"}
    assert records[0]["severityText"] == "ERROR"
    assert records[0]["traceId"] == format(span.get_span_context().trace_id, "032x")
    assert records[0]["spanId"] == format(span.get_span_context().span_id, "016x")


def test_json_requests_round_trip_and_bad_bodies_are_refused(receiver: tuple[str, Path]) -> None:
    url, spool_dir = receiver
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    document = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "gateway"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "GET /",
                                "kind": 2,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000250000000",
                                "someFutureField": True,
                            }
                        ],
                    }
                ],
            }
        ]
    }
    answer = httpx.post(f"{url}/v1/traces", json=document)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    stored = spooled(spool_dir, "traces")[0]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert (stored["traceId"], stored["spanId"], stored["endTimeUnixNano"]) == (
        trace_id,
        span_id,
        "1700000000250000000",
    )
    assert "someFutureField" not in stored

    gz = httpx.post(
        f"{url}/v1/traces",
        content=gzip.compress(json.dumps(document).encode()),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert gz.status_code == 200
    assert len(spooled(spool_dir, "traces")) == 2

    assert (
        httpx.post(
            f"{url}/v1/traces", content=b"\xff\x00garbage", headers={"content-type": "application/x-protobuf"}
        ).status_code
        == 400
    )
    bad_id = httpx.post(f"{url}/v1/logs", json={"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "zz"}]}]}]})
    assert bad_id.status_code == 400 and "hex" in bad_id.json()["message"]
    assert httpx.post(f"{url}/v1/logs", content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    # JSON of the wrong shape is the client's mistake (400 naming where), not a server error
    for body, where in (
        ({"resourceSpans": 5}, "resourceSpans"),
        ({"resourceSpans": [{"scopeSpans": [{"spans": "all"}]}]}, "resourceSpans.scopeSpans.spans"),
    ):
        shaped = httpx.post(f"{url}/v1/traces", json=body)
        assert shaped.status_code == 400, shaped.text
        assert shaped.json()["message"] == f"{where} must be a list of objects in an OTLP/JSON export request"
    assert len(spooled(spool_dir, "traces")) == 2 and not (spool_dir / "logs").exists()


def test_spool_rotates_by_time(tmp_path: Path) -> None:
    spool = Spool(tmp_path, rotate_seconds=60)
    first = spool.append("traces", {"resourceSpans": []}, now=1_699_999_980)
    same = spool.append("traces", {"resourceSpans": []}, now=1_700_000_039)
    later = spool.append("traces", {"resourceSpans": []}, now=1_700_000_040)
    assert first == same != later
    assert first.name == "traces-20231114T221300Z.jsonl" and later.name == "traces-20231114T221400Z.jsonl"
    # A file holds what arrived from its own time to the next file's: only those can overlap a window.
    third = spool.append("traces", {"resourceSpans": []}, now=1_700_000_400)
    assert spool.received_between("traces", 1_700_000_041, 1_700_000_100) == [later]
    assert spool.received_between("traces", 1_700_000_000, 1_700_000_050) == [first, later]
    assert spool.received_between("traces", 1_700_000_500, 1_800_000_000) == [third]
    assert spool.received_between("logs", 0, 2_000_000_000) == []
