"""The columnar JSON log reader reads every line as the per-line reader does: the same rows,
attributes, notes and limitations on files that mix one service's usual shape with every oddity
the per-line reader handles (other spellings, empty fields, numbers in text fields, bad times
and ids, errors, nested attributes, garbage lines)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from warroom.sources.raw import logs_json
from warroom.sources.raw.formats import recognise
from warroom.sources.raw.reader import RawRead, ReadOptions

ODD_VALUES = {
    "timestamp": ["2024-05-27 15:21:30", "2024-05-27T15:00:00+02:00", "1716823290", "", None, "garbage",
                  "2024-05-27 15:21:31,250", 1716823290.25, 1716823290123],
    "level": ["Fatal", 30, 50, "weird", "", None, "E", "notice"],
    "msg": ["é unicode", 'quote " and \\ back', "", None, 5, "ValueError: card declined"],
    "service": ["", None, 7],
    "trace_id": ["0x4BF92F3577B34DA6A3CE929D0E0E4736", "0" * 32, "abc", "", 12345, "S/mP4S/mP4S/mP4S/mP4abcd"],
    "spanId": ["0" * 16, "xyz", None, "00F067AA0BA902B7"],
    "error": ["boom", 'Traceback (most recent call last):\n  File "x.py"\nKeyError: \'k\'', "none", None, ""],
    "http.response.status_code": ["503", "ok", None, 2.5, True],
    "user_id": [17, None, True],
    "duration_ms": [1, None, 1e-7, 1e20],
    "attributes": [{"ab": 503, "c": None}, {"x": "y", "status": "500"}, None],
}  # fmt: skip


def _usual(rng: random.Random, i: int) -> dict:
    """One service's usual line: same fields in the same order, values that vary."""
    record = {
        "timestamp": f"2024-05-27T15:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
        "level": rng.choice(["info", "warning", "error", "DEBUG"]),
        "msg": rng.choice(["order placed", "payment failed", "acquire conn"]),
        "service": rng.choice(["checkout", "payment"]),
        "trace_id": f"{rng.getrandbits(128):032x}",
        "spanId": f"{rng.getrandbits(64):016x}",
        "error": rng.choice([None, None, "pool exhausted", "Traceback (most recent call last):\nTimeoutError: pool"]),
        "http.response.status_code": rng.choice([200, 503]),
        "user_id": f"u-{rng.randrange(100)}",
        "duration_ms": rng.choice([12.5, 300.0, 0.1]),
        "attributes": rng.choice([{"ab": 503, "url.path": "/cart"}, {"x": "y"}, None]),
    }
    if rng.random() < 0.1:
        record["host"] = f"pod-{rng.randrange(3)}"
    return record


def _line(rng: random.Random, i: int) -> str:
    record = _usual(rng, i)
    if rng.random() < 0.15:  # an odd line: one or two fields changed, renamed, dropped or added
        for field in rng.sample(list(ODD_VALUES), 2):
            record[field] = rng.choice(ODD_VALUES[field])
        change = rng.random()
        if change < 0.2:
            record["message"] = record.pop("msg")
        elif change < 0.3:
            record["exc_info"] = "java.lang.IllegalStateException: bad\n\tat a.b(C.java:1)"
        elif change < 0.4:
            record["log"] = {"level": "debug"}
        elif change < 0.5:
            record = dict(reversed(record.items()))
    text = json.dumps(record, ensure_ascii=rng.random() < 0.5, separators=rng.choice([(",", ":"), (", ", ": ")]))
    roll = rng.random()
    return text[:-3] if roll < 0.005 else "[1, 2]" if roll < 0.01 else "not json" if roll < 0.015 else text


def _read(path: Path, monkeypatch: pytest.MonkeyPatch, *, columns: bool) -> RawRead:
    with monkeypatch.context() as patch:
        if not columns:
            patch.setattr(logs_json, "read_columns", lambda *args: None)
        reader = recognise(path)
        assert reader is not None
        return reader.read(path, ReadOptions())


def _rows(read: RawRead) -> list[dict]:
    return [{**row, "attributes": json.loads(row["attributes"] or "null")} for row in read.tables[0].frame.to_dicts()]


@pytest.mark.parametrize("seed", [1, 2])
def test_columns_and_lines_read_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / "checkout.jsonl"
    path.write_text("\n".join(_line(rng, i) for i in range(3000)) + "\n", encoding="utf-8")
    by_columns, by_lines = _read(path, monkeypatch, columns=True), _read(path, monkeypatch, columns=False)
    counted = next(note for note in by_columns.notes if "read as columns" in note)
    read_as_columns = int(counted.split()[0])
    assert read_as_columns > 2000, counted  # the usual lines
    assert _rows(by_columns) == _rows(by_lines)
    assert by_columns.limitations == by_lines.limitations
    assert [n for n in by_columns.notes if n != counted] == by_lines.notes


def test_lines_whose_field_has_another_json_type_are_read_line_by_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [{"ts": f"2024-05-27T15:00:{i:02d}Z", "msg": "m", "service": "a", "ctx": {"k": i} if i % 2 else "x"}
             for i in range(40)]  # fmt: skip
    path = tmp_path / "app.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    read = _read(path, monkeypatch, columns=True)
    assert "20 lines read as columns, 20 line by line" in read.notes  # the objects in a text column
    assert _rows(read) == _rows(_read(path, monkeypatch, columns=False))
