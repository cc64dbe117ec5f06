"""Compressed exports (rotated logs, gzip'd span files) are read by what they hold, and a bad
record in one is named by the compressed file's own name and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from warroom.errors import BundleError
from warroom.sources.raw.folder import read_period
from warroom.sources.raw.reader import ReadOptions


def _log_line(second: int, message: str) -> str:
    return json.dumps(
        {"timestamp": f"2024-05-12T18:40:{second:02d}Z", "level": "error", "service": "checkout", "message": message}
    )


def test_a_gzip_json_log_is_read_and_cited_by_its_own_name(tmp_path: Path) -> None:
    lines = [_log_line(s, f"pool timeout after {s} ms") for s in range(5)]
    (tmp_path / "checkout.log.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
    period = read_period(tmp_path, ReadOptions())
    [report] = period.files
    assert report.reader.endswith("gzip") and report.path.name == "checkout.log.gz"
    [table] = period.tables
    assert table.frame.height == 5
    assert "checkout.log.gz" in table.query.text or "checkout.log.gz" in table.query.location
    said = table.query.text + table.query.location + " ".join(report.notes)
    assert "warroom-gz-" not in said and ".gz.gz" not in said


def test_a_truncated_gzip_file_is_one_line_naming_it(tmp_path: Path) -> None:
    data = gzip.compress("\n".join(_log_line(s, "x") for s in range(50)).encode())
    (tmp_path / "checkout.log.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError) as caught:
        read_period(tmp_path, ReadOptions())
    assert caught.value.one_line().startswith(str(tmp_path / "checkout.log.gz"))
