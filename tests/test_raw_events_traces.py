"""Trace readers on what the real OpenTelemetry SDK writes: console exporter output, OTLP export
requests (protobuf JSON with base64 ids, and the hex OTLP/JSON the receiver spools), old and new
semantic conventions, exceptions, callee attribution and bad spans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from support_events import console_spans, otlp_trace_request, record_spans, write_lines
from warroom.errors import BundleError
from warroom.sources.raw.formats import recognise
from warroom.sources.raw.reader import RawRead, ReadOptions


def _read(path: Path) -> RawRead:
    reader = recognise(path)
    assert reader is not None, path
    return reader.read(path, ReadOptions())


def _checkout(tracers: dict[str, Tracer]) -> None:
    gateway, checkout = tracers["gateway"], tracers["checkout"]
    with (
        gateway.start_as_current_span("GET /checkout", kind=SpanKind.SERVER, attributes={"http.status_code": 500}),
        gateway.start_as_current_span("POST", kind=SpanKind.CLIENT, attributes={"server.address": "checkout"}),
        checkout.start_as_current_span(
            "POST /orders", kind=SpanKind.SERVER, attributes={"http.response.status_code": 500}
        ) as server,
    ):
        with checkout.start_as_current_span(
            "SELECT orders",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": "postgresql",
                "db.query.text": "SELECT * FROM orders WHERE email = $1",
                "server.address": "db.internal",
                "server.port": 5432,
            },
        ):
            pass
        try:
            raise TimeoutError("pool exhausted")
        except TimeoutError as exc:
            server.record_exception(exc)
            server.set_status(Status(StatusCode.ERROR, "pool exhausted"))


@pytest.fixture(scope="module")
def spans() -> list:
    return record_spans(["gateway", "checkout"], _checkout)


def _by_operation(read: RawRead) -> dict[str, dict]:
    frame = read.tables[0].frame
    return {row["operation"]: {**row, "attrs": json.loads(row["attributes"])} for row in frame.to_dicts()}


def _check_checkout_trace(read: RawRead) -> None:
    spans = _by_operation(read)
    assert len(spans) == 4
    assert {s["trace_id"] for s in spans.values()} and all(len(s["trace_id"]) == 32 for s in spans.values())
    server = spans["POST /orders"]
    assert server["service"] == "checkout" and server["status"] == "ERROR"
    # new convention kept, old added; the exception event became attributes
    assert server["attrs"]["http.response.status_code"] == 500 and server["attrs"]["http.status_code"] == 500
    assert server["attrs"]["exception.type"] == "TimeoutError"
    assert server["attrs"]["exception.message"] == "pool exhausted"
    # the database client span belongs to the database, its caller recorded, statement under both names
    db = spans["SELECT orders"]
    assert db["service"] == "postgresql" and db["instance"] == "db.internal:5432"
    assert db["attrs"]["warroom.caller"] == "checkout"
    assert db["attrs"]["db.statement"] == db["attrs"]["db.query.text"]
    assert db["parent_span_id"] == server["span_id"]
    # the gateway's client span has the checkout server span as its child: it stays the gateway's
    assert spans["POST"]["service"] == "gateway"
    assert spans["POST /orders"]["parent_span_id"] == spans["POST"]["span_id"]
    assert spans["GET /checkout"]["parent_span_id"] is None


def test_console_exporter_output(tmp_path: Path, spans: list) -> None:
    path = console_spans(spans, tmp_path / "spans.json")
    assert recognise(path).name.startswith("span records")  # type: ignore[union-attr]
    _check_checkout_trace(_read(path))


def test_otlp_json_lines_hex_ids_as_spooled(tmp_path: Path, spans: list) -> None:
    first, rest = spans[:1], spans[1:]
    path = write_lines(
        tmp_path / "traces-20240527T150000Z.jsonl", [otlp_trace_request(first), otlp_trace_request(rest)]
    )
    read = _read(path)
    assert "OTLP" in recognise(path).name  # type: ignore[union-attr]
    _check_checkout_trace(read)


def test_protobuf_json_document_base64_ids_and_enum_names(tmp_path: Path, spans: list) -> None:
    document = otlp_trace_request(spans, hex_ids=False)
    assert document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["kind"].startswith("SPAN_KIND_")
    path = tmp_path / "export.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    _check_checkout_trace(_read(path))


def test_uninstrumented_http_callee_is_attributed_and_instrumented_one_is_not(tmp_path: Path) -> None:
    def body(tracers: dict[str, Tracer]) -> None:
        payment = tracers["payment"]
        client = {"peer.service": "stripe", "http.request.method": "POST"}
        with (
            payment.start_as_current_span("charge", kind=SpanKind.SERVER),
            payment.start_as_current_span("POST", kind=SpanKind.CLIENT, attributes=client),
        ):
            pass

    path = write_lines(tmp_path / "t.jsonl", [otlp_trace_request(record_spans(["payment"], body))])
    spans = _by_operation(_read(path))
    assert spans["POST"]["service"] == "stripe"
    assert spans["POST"]["attrs"]["http.method"] == "POST"
    assert spans["charge"]["service"] == "payment"


def test_a_call_an_instrumented_callee_left_unanswered_is_the_callee_s(tmp_path: Path) -> None:
    # payment answers the first call with a server span of its own, then is down: the second call's
    # client span has no child, and it is all there is of payment's failure
    def body(tracers: dict[str, Tracer]) -> None:
        checkout, payment = tracers["checkout"], tracers["payment"]
        client = {"peer.service": "payment", "http.request.method": "POST"}
        with (
            checkout.start_as_current_span("answered", kind=SpanKind.SERVER),
            checkout.start_as_current_span("POST answered", kind=SpanKind.CLIENT, attributes=client),
            payment.start_as_current_span("charge", kind=SpanKind.SERVER),
        ):
            pass
        with (
            checkout.start_as_current_span("unanswered", kind=SpanKind.SERVER),
            checkout.start_as_current_span("POST unanswered", kind=SpanKind.CLIENT, attributes=client) as call,
        ):
            call.set_status(Status(StatusCode.ERROR))

    path = write_lines(tmp_path / "t.jsonl", [otlp_trace_request(record_spans(["checkout", "payment"], body))])
    spans = _by_operation(_read(path))
    assert spans["POST answered"]["service"] == "checkout"
    assert spans["POST unanswered"]["service"] == "payment"
    assert spans["POST unanswered"]["attrs"]["warroom.caller"] == "checkout"
    assert spans["charge"]["service"] == "payment"


def test_other_span_line_shapes(tmp_path: Path) -> None:
    lines = [
        {  # snake case with unix nanos and OTLP-style attribute list
            "trace_id": "4BF92F3577B34DA6A3CE929D0E0E4736",
            "span_id": "00F067AA0BA902B7",
            "parent_span_id": "",
            "name": "GET /cart",
            "start_time_unix_nano": 1716823290000000000,
            "end_time_unix_nano": 1716823290250000000,
            "kind": "SPAN_KIND_SERVER",
            "status": {"code": "STATUS_CODE_ERROR"},
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]},
            "attributes": [{"key": "url.path", "value": {"stringValue": "/cart"}}],
        },
        {  # Zipkin v2
            "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
            "id": "00f067aa0ba902b8",
            "parentId": "00f067aa0ba902b7",
            "name": "get",
            "timestamp": 1716823290010000,
            "duration": 120000,
            "kind": "CLIENT",
            "localEndpoint": {"serviceName": "cart"},
            "tags": {"db.system": "redis", "net.peer.name": "cache"},
        },
    ]
    read = _read(write_lines(tmp_path / "zipkin.jsonl", lines))
    spans = _by_operation(read)
    assert spans["GET /cart"]["status"] == "ERROR" and spans["GET /cart"]["attrs"]["http.target"] == "/cart"
    get = spans["get"]
    assert get["service"] == "redis" and get["parent_span_id"] == "00f067aa0ba902b7"
    assert (get["end_time"] - get["start_time"]).total_seconds() == pytest.approx(0.12)


def test_bad_spans_are_skipped_and_counted(tmp_path: Path, spans: list) -> None:
    good = otlp_trace_request(spans)
    broken = otlp_trace_request(spans[:2])
    items = broken["resourceSpans"][0]["scopeSpans"][0]["spans"]
    items[0]["endTimeUnixNano"] = str(int(items[0]["startTimeUnixNano"]) - 1000)
    items[1]["traceId"] = "abc123"
    path = tmp_path / "traces.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(broken) + "\n{not json\n", encoding="utf-8")
    read = _read(path)
    text = " | ".join(read.limitations)
    assert "1 span skipped (span ends before it starts; first at line 2)" in text
    assert "1 span skipped (trace id not 32 hex digits; first at line 2)" in text
    assert "1 line skipped (not JSON; first at line 3)" in text
    assert read.tables[0].frame.height == 4


def test_otlp_shapes_writers_differ_in(tmp_path: Path) -> None:
    """The typed decoding keeps what plain JSON read: the pre-0.15 scope key, attributes as an
    object, plain values, arrays and key-value lists, a double written as an integer; a line of JSON
    out of the shape is skipped and counted, what a live read left out is said."""
    ids = {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "startTimeUnixNano": "1716822000000000000"}
    values = [
        {"key": "http.response.status_code", "value": {"intValue": "503"}},
        {"key": "ratio", "value": {"doubleValue": 1}},
        {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"boolValue": True}]}}},
        {"key": "peer", "value": {"kvlistValue": {"values": [{"key": "zone", "value": {"stringValue": "b"}}]}}},
        {"key": "plain", "value": 7},
    ]
    first = {
        **ids,
        "name": "GET",
        "spanId": "00f067aa0ba902b7",
        "endTimeUnixNano": "1716822000100000000",
        "attributes": values,
    }
    second = {
        **ids,
        "name": "GET cart",
        "spanId": "00f067aa0ba902b8",
        "endTimeUnixNano": "1716822000200000000",
        "attributes": {"db.system": {"stringValue": "redis"}},
        "kind": "SPAN_KIND_CLIENT",
        "status": {"code": "STATUS_CODE_ERROR", "message": "timeout"},
    }
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]}
    legacy = {"resourceSpans": [{"resource": resource, "instrumentationLibrarySpans": [{"spans": [first, second]}]}]}
    out_of_shape = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": "none"}]}]}
    path = write_lines(tmp_path / "otlp-traces.jsonl", [legacy, out_of_shape, {"left_out": "a budget was reached"}])
    read = _read(path)
    spans = _by_operation(read)
    attrs = spans["GET"]["attrs"]
    assert attrs["http.status_code"] == 503 and attrs["ratio"] == 1 and attrs["plain"] == 7
    assert attrs["tags"] == ["a", True] and attrs["peer"] == {"zone": "b"}
    # the client span of a database is the database's, and failed with its status
    assert spans["GET cart"]["service"] == "redis" and spans["GET cart"]["status"] == "ERROR"
    assert spans["GET cart"]["attrs"]["status.message"] == "timeout"
    text = " | ".join(read.limitations)
    assert (
        "1 line skipped (not an OTLP/JSON export request ($.resourceSpans[0].scopeSpans[0].spans out of shape)" in text
    )
    assert "a budget was reached" in text


def test_a_root_that_is_not_a_list_is_one_line_error(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "otlp-traces.jsonl", [{"resourceSpans": {"spans": []}}])
    with pytest.raises(BundleError) as caught:
        _read(path)
    assert caught.value.one_line() == f"{path}:1: field 'resourceSpans': expected a list of resourceSpans"


def test_nothing_usable_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    document = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "1"}]}]}]}
    path.write_text(json.dumps(document) + "\n", encoding="utf-8")
    with pytest.raises(BundleError) as caught:
        _read(path)
    assert caught.value.one_line() == (
        f"{path}:1: trace id not 32 hex digits; expected spans with trace and span ids, a service and times"
    )


def test_unknown_encoding_is_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    line = '{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","start_time":1,"name":"é"}\n'
    path.write_bytes(line.encode() + line.encode("latin-1"))
    with pytest.raises(BundleError, match=r"spans.jsonl:2: not UTF-8 text \(byte 0xe9\)"):
        _read(path)


def test_v1_traces_file_stays_with_the_v1_reader(tmp_path: Path) -> None:
    row = {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7", "parent_span_id": None,
           "service": "a", "operation": "GET /", "start_time": "2024-05-27T15:00:00Z",
           "end_time": "2024-05-27T15:00:01Z", "status": "OK", "attributes": "{}"}  # fmt: skip
    path = write_lines(tmp_path / "traces.jsonl", [row])
    assert recognise(path).name == "canonical table (format v1)"  # type: ignore[union-attr]


def test_database_service_names_the_callee_of_database_spans(tmp_path: Path, spans: list) -> None:
    path = write_lines(tmp_path / "traces.jsonl", [otlp_trace_request(spans)])
    read = recognise(path).read(path, ReadOptions(database_service="database"))  # type: ignore[union-attr]
    by_operation = _by_operation(read)
    assert by_operation["SELECT orders"]["service"] == "database"
    assert by_operation["POST"]["service"] == "gateway"  # not a database call: unchanged
