"""Log readers: JSON lines with common field names, logfmt, plain text, OTLP/JSON logs from the real
SDK, PostgreSQL and MySQL server logs; attributes kept as written; bad lines counted."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from support_events import otlp_logs_request, record_logs, write_lines
from warroom.errors import BundleError
from warroom.sources.raw.formats import recognise
from warroom.sources.raw.reader import RawRead, ReadOptions

FIXTURES = Path(__file__).parent / "fixtures" / "raw" / "events"


def _read(path: Path) -> RawRead:
    reader = recognise(path)
    assert reader is not None, path
    return reader.read(path, ReadOptions())


def _rows(read: RawRead) -> list[dict]:
    return [{**r, "attrs": json.loads(r["attributes"] or "{}")} for r in read.tables[0].frame.to_dicts()]


def test_json_lines_with_common_field_names() -> None:
    read = _read(FIXTURES / "checkout.jsonl")
    rows = _rows(read)
    assert [r["level"] for r in rows] == ["ERROR", "WARN", "INFO"]
    assert {r["service"] for r in rows} == {"checkout"}
    assert "service from the file name (3 lines)" in read.notes
    assert "checkout.jsonl: 1 line skipped (not JSON; first at line 3)" in read.limitations
    error = rows[0]
    assert error["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert error["message"] == "payment failed: ValueError: card declined"
    assert error["attrs"]["span_id"] == "00f067aa0ba902b7"
    assert error["attrs"]["exception.type"] == "ValueError"
    # the line's own attributes object is kept as an object, its fields beside the others
    assert error["attrs"]["ab"] == 503 and error["attrs"]["http.status_code"] == 503
    assert rows[1]["attrs"] == {"duration_ms": 812.5, "user_id": "u-1"}


def test_nested_fields_configured_service_and_numeric_levels(tmp_path: Path) -> None:
    lines = [
        {"@timestamp": "2024-05-27T15:21:30Z", "log": {"level": "warning"}, "message": "m1", "svc": "cart",
         "service": {"name": "ignored"}},
        {"time": 1716823291000, "level": 50, "msg": "m2", "svc": "cart", "err": {"type": "IOError", "message": "eof"}},
    ]  # fmt: skip
    path = write_lines(tmp_path / "app.jsonl", lines)
    read = recognise(path).read(path, ReadOptions(service_label="svc"))  # type: ignore[union-attr]
    rows = _rows(read)
    assert [(r["service"], r["level"]) for r in rows] == [("cart", "WARN"), ("cart", "ERROR")]
    assert rows[1]["message"] == "m2: IOError: eof"
    assert "the configured field 'svc'" in read.notes[1]


def test_logfmt_and_plain_text() -> None:
    rows = _rows(_read(FIXTURES / "payments.logfmt"))
    assert rows[0]["message"] == 'payment "failed"' and rows[0]["attrs"]["http.status_code"] == 503
    assert rows[1]["service"] == "cart"
    plain = _rows(_read(FIXTURES / "checkout.log"))
    assert [r["level"] for r in plain] == ["ERROR", "INFO", "WARN"]
    assert plain[0]["message"].endswith("ValueError: x")  # the traceback continues the line


def test_plain_text_with_a_generic_name_says_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    shutil.copy(FIXTURES / "checkout.log", path)
    with pytest.raises(BundleError, match=r"app.log:1: no service \(field or file name\)"):
        _read(path)


def test_otlp_logs_from_the_sdk(tmp_path: Path) -> None:
    def body(logger: logging.Logger) -> None:
        logger.warning("pool nearly full", extra={"db.pool.usage": 0.97})
        try:
            raise RuntimeError("acquire timed out")
        except RuntimeError:
            logger.exception("checkout failed")

    request = otlp_logs_request(record_logs("checkout", body))
    path = write_lines(tmp_path / "logs-20240527T150000Z.jsonl", [request])
    assert recognise(path).name.startswith("OTLP/JSON logs")  # type: ignore[union-attr]
    rows = _rows(_read(path))
    assert [(r["service"], r["level"]) for r in rows] == [("checkout", "WARN"), ("checkout", "ERROR")]
    assert rows[0]["attrs"]["db.pool.usage"] == 0.97
    assert rows[1]["attrs"]["exception.type"] == "RuntimeError"


def test_otlp_log_fields_in_a_map_attribute_are_the_records_own(tmp_path: Path) -> None:
    # A logger that groups its extra fields (`extra={"fields": {...}}`) sends them as one map
    # attribute; the failed-login evidence needs the client address inside it.
    def body(logger: logging.Logger) -> None:
        fields = {"event": "login.failed", "client.address": "198.18.0.7", "level": "nested"}
        logger.warning("login failed", extra={"fields": fields, "level": "top"})

    path = write_lines(tmp_path / "otlp-logs.jsonl", [otlp_logs_request(record_logs("auth", body))])
    attrs = _rows(_read(path))[0]["attrs"]
    assert attrs["client.ip"] == "198.18.0.7" and attrs["event"] == "login.failed"
    assert attrs["level"] == "top" and "fields" not in attrs  # the record's own name wins


@pytest.mark.parametrize("name", ["postgresql.log", "postgresql.csv", "postgresql.json"])
def test_postgresql_logs_are_the_database_evidence(name: str) -> None:
    read = _read(FIXTURES / name)
    assert recognise(FIXTURES / name).name.startswith("PostgreSQL")  # type: ignore[union-attr]
    rows = _rows(read)
    assert {r["service"] for r in rows} == {"postgresql"}
    slow = rows[0]
    assert slow["attrs"]["db.event"] == "slow_statement" and slow["attrs"]["duration_ms"] == 5021.123
    assert slow["attrs"]["db.statement"].startswith("SELECT *")
    assert slow["message"].startswith("duration: 5021.123 ms")
    if name != "postgresql.json":
        deadlock = next(r for r in rows if r["attrs"].get("db.event") == "deadlock")
        assert deadlock["level"] == "ERROR" and deadlock["attrs"]["db.statement"].startswith("UPDATE inventory")
    if name == "postgresql.log":
        wait = rows[1]["attrs"]
        assert (wait["db.event"], wait["duration_ms"], wait["db.name"]) == ("lock_wait", 1000.072, "shop")


def test_mysql_slow_query_and_error_logs() -> None:
    slow = _rows(_read(FIXTURES / "mysql-slow.log"))
    assert len(slow) == 1 and slow[0]["service"] == "mysql"
    assert slow[0]["attrs"]["duration_ms"] == pytest.approx(5021.0) and slow[0]["attrs"]["db.rows_examined"] == 1000000
    assert slow[0]["message"].startswith("duration: 5021.000 ms  statement: SELECT * FROM orders")
    errors = _rows(_read(FIXTURES / "mysql-error.log"))
    assert [r["level"] for r in errors] == ["WARN", "ERROR"] and errors[1]["attrs"]["db.event"] == "deadlock"


def test_v1_logs_file_stays_with_the_v1_reader_unless_attributes_are_objects(tmp_path: Path) -> None:
    v1 = {"timestamp": "2024-05-27T15:00:00Z", "service": "a", "level": "INFO", "message": "m", "attributes": "{}"}
    path = write_lines(tmp_path / "logs.jsonl", [v1])
    assert recognise(path).name == "canonical table (format v1)"  # type: ignore[union-attr]
    write_lines(path, [{**v1, "attributes": {"ab": 503}}])
    assert recognise(path).name == "JSON log lines"  # type: ignore[union-attr]
    assert json.loads(_read(path).tables[0].frame["attributes"][0]) == {"ab": 503}


def test_database_service_names_the_database_server_logs() -> None:
    path = FIXTURES / "postgresql.log"
    read = recognise(path).read(path, ReadOptions(database_service="database"))  # type: ignore[union-attr]
    assert {r["service"] for r in _rows(read)} == {"database"}
