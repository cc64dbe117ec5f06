"""The lab's PostgreSQL log shipper, for real: jsonlog lines appended to a file reach warroom's
OTLP receiver through the OpenTelemetry SDK exporter, and read back as the database's evidence."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from support_otlp import running_receiver, spooled
from warroom.lab.pglog_shipper import Tail, record_of, ship
from warroom.sources.raw.otlp_logs import OtlpLogs
from warroom.sources.raw.reader import ReadOptions

WAIT = {
    "timestamp": "2026-12-02 18:04:43.111 UTC",
    "user": "postgres",
    "dbname": "shop",
    "pid": 6182,
    "error_severity": "LOG",
    "message": "process 6182 still waiting for ShareLock on transaction 23098 after 1000.099 ms",
    "detail": "Process holding the lock: 6646. Wait queue: 6182, 6181.",
    "statement": "UPDATE inventory SET stock = stock - $1 WHERE product_id = $2",
    "application_name": "checkout",
    "backend_type": "client backend",
}


def _line(**changes: object) -> str:
    return json.dumps({**WAIT, **changes}) + "\n"


def test_appended_lines_arrive_and_read_as_postgresql(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logs, spool = tmp_path / "pg", tmp_path / "spool"
    logs.mkdir()
    log = logs / "postgresql-2026-12-02_180000.json"
    log.write_text(_line(message="database system is ready to accept connections", statement=None))
    with running_receiver(spool) as url:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
        monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "100")
        tail = Tail(logs)  # what the file held before is not sent
        with log.open("a") as handle:
            handle.write(_line())
            handle.write(_line(error_severity="ERROR", message="deadlock detected", pid=6181)[:40])  # not complete
        stop = threading.Event()
        shipper = threading.Thread(target=ship, args=(tail, stop))
        shipper.start()
        deadline = time.monotonic() + 15
        while not spooled(spool, "logs") and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        shipper.join(10)
    files = sorted((spool / "logs").glob("*.jsonl"))
    assert files, "nothing reached the receiver"
    lines = [
        line
        for path in files
        for table in OtlpLogs().read(path, ReadOptions()).tables
        for line in table.frame.to_dicts()
    ]
    assert len(lines) == 1  # neither the line from before the start nor the incomplete one
    (line,) = lines
    attributes = json.loads(line["attributes"])
    assert line["service"] == "postgresql" and line["message"].startswith("process 6182 still waiting")
    assert attributes["db.event"] == "lock_wait" and attributes["duration_ms"] == pytest.approx(1000.099)
    assert attributes["db.statement"] == WAIT["statement"] and attributes["db.application"] == "checkout"
    assert line["timestamp"].isoformat().startswith("2026-12-02T18:04:43.111")
    # where Prometheus names the database otherwise, `database_service` names its lines the same
    renamed = OtlpLogs().read(files[0], ReadOptions(database_service="postgres")).tables[0].frame
    assert renamed.get_column("service").to_list() == ["postgres"]


def test_a_jsonlog_line_is_one_record_and_anything_else_none() -> None:
    record = record_of(_line())
    assert record is not None and record["severity_text"] == "LOG" and record["attributes"]["process.pid"] == 6182
    assert record_of("not json") is None and record_of(json.dumps({"message": "x", "timestamp": "yesterday"})) is None
