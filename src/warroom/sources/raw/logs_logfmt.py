"""logfmt lines (`time=… level=error msg="payment failed" trace_id=…`), as Go's slog, logrus and
Heroku write them: each line's pairs are read like a JSON log line's fields (`logs_json.py`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from warroom.sources.raw.logs import LogReadStats, log_read
from warroom.sources.raw.logs_fields import service_from_file_name
from warroom.sources.raw.logs_json import is_log_record, structured_line
from warroom.sources.raw.reader import RawRead, ReadOptions
from warroom.sources.raw.text import Skipped, first_head_line, lines, read_text

# key=value, key="quoted \"value\"", or a bare key (a flag).
_PAIR = re.compile(r'([^\s=]+)(?:=("(?:[^"\\]|\\.)*"|[^\s]*))?')
_ESCAPES = re.compile(r"\\(.)")


def parse_logfmt(line: str) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for key, value in _PAIR.findall(line):
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = _ESCAPES.sub(lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), value[1:-1])
        record[key] = value
    return record


def _looks_logfmt(line: str) -> bool:
    pairs = [key for key, value in _PAIR.findall(line) if value]
    return len(pairs) >= 2 and line.lstrip()[:1] not in "{[" and " " in line.strip()


class LogfmtLogs:
    name = "logfmt log lines"

    def sniff(self, path: Path, head: bytes) -> bool:
        first = first_head_line(head)
        return first is not None and _looks_logfmt(first[1]) and is_log_record(parse_logfmt(first[1]))

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        skipped = Skipped()
        stats = LogReadStats()
        file_service = service_from_file_name(path)
        found = []
        for number, line in lines(read_text(path)):
            record = parse_logfmt(line)
            if not _looks_logfmt(line) or not is_log_record(record):
                skipped.add("not a logfmt line with a time and a message", number)
                continue
            found.append(structured_line(record, number, file_service, stats, options))
        return log_read(found, path, skipped, "logfmt log lines", stats)
