"""The Loki source against a loopback HTTP server that answers with recorded Loki `query_range`
responses (tests/fixtures/raw/events/loki/): forward pagination with overlap removed, the line
budget named, query errors as one line, and the saved pages reading back to the same table.
Also the OTLP spool read by period and replayed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qsl, urlparse

import pytest
from opentelemetry.trace import SpanKind
from polars.testing import assert_frame_equal

from support_events import otlp_trace_request, record_spans
from warroom.sources.canonical import TABLES
from warroom.sources.captured import read_back, save
from warroom.sources.config import LokiConfig, OtlpSpoolConfig
from warroom.sources.loki import LokiError, LokiSource
from warroom.sources.otlp_spool import OtlpSpoolSource
from warroom.sources.raw.folder import as_canonical, read_period
from warroom.sources.raw.reader import ReadOptions

RECORDED = json.loads((Path(__file__).parent / "fixtures/raw/events/loki/query_range.recorded.json").read_text())
START, END = datetime(2024, 5, 27, 15, 20, tzinfo=UTC), datetime(2024, 5, 27, 15, 25, tzinfo=UTC)


class _RecordedLoki(BaseHTTPRequestHandler):
    asked: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        url = urlparse(self.path)
        params = dict(parse_qsl(url.query))
        type(self).asked.append(params)
        found = (
            next((r for r in RECORDED if r["params"] == params), None) if url.path.endswith("/query_range") else None
        )
        if found is None:
            self._answer(404, "text/plain", b"no recorded response for this request")
        elif "body" in found:
            self._answer(found["status"], "application/json", json.dumps(found["body"]).encode())
        else:
            self._answer(found["status"], "text/plain; charset=utf-8", found["text"].encode())

    def _answer(self, status: int, media: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def loki() -> Iterator[str]:
    _RecordedLoki.asked = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordedLoki)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _source(url: str, **settings: object) -> LokiSource:
    return LokiSource(LokiConfig(url=url, page_size=3, slice_minutes=5, **settings))  # type: ignore[arg-type]


def test_pages_forward_without_duplicates_and_replays_the_same(loki: str, tmp_path: Path) -> None:
    read = _source(loki).read(["postgresql", "checkout"], START, END)
    assert [p["start"] for p in _RecordedLoki.asked] == ["1716823200000000000", "1716823203500000000",
                                                          "1716823206000000000"]  # fmt: skip
    frame = read.tables[0].frame
    assert frame.height == 6 and not read.limitations
    assert frame.get_column("service").to_list() == ["checkout", "postgresql"] * 3
    rows = frame.to_dicts()
    assert rows[0]["level"] == "ERROR" and rows[0]["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert json.loads(rows[0]["attributes"])["namespace"] == "shop"
    assert rows[3]["level"] == "ERROR" and "deadlock detected" in rows[3]["message"]  # plain line's own level
    assert rows[4]["level"] == "WARN" and rows[4]["message"] == "slow downstream"  # logfmt line
    assert read.queries[0].text == '{service_name=~"checkout|postgresql"}' and read.queries[0].source == "loki"
    snapshot = tmp_path / "snapshot"
    save(read.responses, snapshot)
    replayed = read_period(snapshot, ReadOptions()).validated(START).telemetry.logs
    assert replayed is not None
    assert_frame_equal(replayed, as_canonical(frame, TABLES["logs"]))


def test_line_budget_is_named(loki: str) -> None:
    read = _source(loki, max_lines=4).read(["checkout", "postgresql"], START, END)
    assert read.tables[0].frame.height == 3
    assert "line budget (4 lines over 1 slice(s)) reached in 1 slice(s)" in read.limitations[0]


def test_query_error_is_one_line(loki: str) -> None:
    source = _source(loki, selector='{service_name=~"checkout|postgresql"')
    with pytest.raises(LokiError, match=r"Loki answered 400: parse error at line 1, col 38"):
        source.read([], START, END)


def test_otlp_spool_by_period_with_budget_and_replay(tmp_path: Path) -> None:
    def body(tracers):  # type: ignore[no-untyped-def]
        for _ in range(3):
            with tracers["cart"].start_as_current_span("GET /cart", kind=SpanKind.SERVER):
                pass

    spans = record_spans(["cart"], body)
    spool = tmp_path / "spool" / "traces"
    spool.mkdir(parents=True)
    now = datetime.now(UTC)
    stamp = now.replace(minute=0, second=0, microsecond=0).strftime("%Y%m%dT%H%M%SZ")
    lines = [json.dumps(otlp_trace_request([span])) for span in spans]
    (spool / f"traces-{stamp}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (spool / "traces-29990101T000000Z.jsonl").write_text(lines[0] + "\n", encoding="utf-8")  # after the period
    start, end = now.replace(minute=0, second=0, microsecond=0), now + timedelta(days=1)
    export = OtlpSpoolSource(OtlpSpoolConfig(spool=str(tmp_path / "spool"), max_spans=2)).export(start, end)
    assert export.services == {"cart"}  # named without parsing the requests into tables
    budget = [text for text in export.limitations if "traces budget of 2 reached; 1 export request(s)" in text]
    assert len(budget) == 1
    snapshot = tmp_path / "snapshot"
    save(export.responses, snapshot)
    assert (snapshot / "otlp" / "traces.jsonl").read_text().splitlines()[:2] == lines[:2]
    replay = read_period(snapshot, ReadOptions()).validated(now)
    assert replay.telemetry.traces is not None
    assert replay.telemetry.traces.height == 2  # the budget's two spans, read by the snapshot's reader
    direct = read_back(export.responses, export.queries, ReadOptions())
    assert_frame_equal(replay.telemetry.traces, as_canonical(direct.tables[0].frame, TABLES["traces"]))
    assert budget[0] in replay.limitations  # the snapshot says what the live read left out
