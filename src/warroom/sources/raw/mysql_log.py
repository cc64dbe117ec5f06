"""MySQL's own logs, read as the database's evidence (service `mysql`).

- **slow query log** (`slow_query_log`): blocks of `# Time:`, `# User@Host:`, `# Query_time: …
  Lock_time: … Rows_sent: … Rows_examined: …`, `SET timestamp=…;` and the statement. Each block is
  one line `duration: N ms  statement: …` (the wording PostgreSQL uses, which the analyses read)
  with `db.event=slow_statement`, `duration_ms`, `db.statement`, `db.lock_time_ms`,
  `db.rows_examined`, `db.rows_sent`, `db.user`; the server's start-up banner lines are skipped.
- **error log** (MySQL 5.7/8.x): `2024-05-27T15:21:30.123456Z 12 [ERROR] [MY-012574] [InnoDB] …`;
  `[System]`/`[Note]` → INFO, `[Warning]` → WARN, `[ERROR]` → ERROR; `db.error_code` and
  `db.subsystem`; a deadlock report (`deadlock`) gets `db.event=deadlock`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from warroom.sources.raw.logs import LogLine, log_read
from warroom.sources.raw.reader import RawRead, ReadOptions
from warroom.sources.raw.semconv import level_of
from warroom.sources.raw.text import Skipped, decoded_head, first_head_line, lines, read_text
from warroom.sources.raw.times import leading_time

SERVICE = "mysql"
_ERROR_LINE = re.compile(
    r"\s*(\d+)\s+\[(System|Note|Warning|ERROR|Error)\]\s*(?:\[(MY-\d+)\]\s*)?(?:\[(\w+)\]\s*)?(.*)"
)
_QUERY_TIME = re.compile(
    r"# Query_time:\s*([0-9.]+)\s+Lock_time:\s*([0-9.]+)\s+Rows_sent:\s*(\d+)\s+Rows_examined:\s*(\d+)"
)
_USER = re.compile(r"# User@Host:\s*(\S+?)\[")
_SET_TIMESTAMP = re.compile(r"SET timestamp=(\d+);")
_BANNER = re.compile(r"^(/\S+, Version: |Tcp port: |Time\s+Id Command)")


def _slow_blocks(text: str, skipped: Skipped) -> list[LogLine]:
    found: list[LogLine] = []
    block: dict[str, Any] = {}
    statement: list[str] = []

    def close() -> None:
        if "duration_ms" not in block:
            return
        text_of = "\n".join(statement).strip().rstrip(";")
        time = block.pop("time", None) or block.pop("set_timestamp", None)
        block.pop("set_timestamp", None)
        line = block.pop("line")
        attributes = {"db.system": SERVICE, "db.event": "slow_statement", **block, "db.statement": text_of}
        message = f"duration: {block['duration_ms']:.3f} ms  statement: {text_of}"
        found.append(LogLine(line, time, SERVICE, "INFO", message, attributes=attributes))

    for number, line in lines(text):
        if _BANNER.match(line):
            continue
        if line.startswith("# Time:"):
            close()
            block, statement = {"time": line.removeprefix("# Time:").strip(), "line": number}, []
        elif line.startswith("# User@Host:"):
            if "duration_ms" in block:  # a block without its own `# Time:` (same second as the last)
                close()
                block, statement = {"line": number}, []
            block.setdefault("line", number)
            user = _USER.match(line)
            if user:
                block["db.user"] = user.group(1)
        elif match := _QUERY_TIME.match(line):
            block.setdefault("line", number)
            block.update(
                {
                    "duration_ms": float(match.group(1)) * 1000,
                    "db.lock_time_ms": float(match.group(2)) * 1000,
                    "db.rows_sent": int(match.group(3)),
                    "db.rows_examined": int(match.group(4)),
                }
            )
        elif match := _SET_TIMESTAMP.match(line):
            block["set_timestamp"] = int(match.group(1))
        elif line.startswith("use ") and not statement:
            block["db.name"] = line[4:].strip().rstrip(";")
        elif line.startswith("#"):
            continue
        elif block:
            statement.append(line)
        else:
            skipped.add("statement text outside a slow query block", number)
    close()
    return found


def _error_lines(text: str, skipped: Skipped) -> list[LogLine]:
    found: list[LogLine] = []
    for number, line in lines(text):
        opened = leading_time(line)
        match = _ERROR_LINE.match(line, opened[1]) if opened else None
        if opened is None or match is None:
            if found:
                found[-1].message += "\n" + line
            else:
                skipped.add("not a MySQL error log line", number)
            continue
        _thread, severity, code, subsystem, message = match.groups()
        attributes: dict[str, Any] = {"db.system": SERVICE, "db.severity": severity}
        if code:
            attributes["db.error_code"] = code
        if subsystem:
            attributes["db.subsystem"] = subsystem
        if "deadlock" in message.lower():
            attributes["db.event"] = "deadlock"
        level = "INFO" if severity in ("System", "Note") else level_of(severity)
        found.append(LogLine(number, opened[0], SERVICE, level, message or "(empty)", attributes=attributes))
    return found


def _is_slow_log(text: str) -> bool:
    return "# Query_time:" in text or bool(re.match(r"/\S*mysqld\S*, Version: ", text)) or text.startswith("# Time:")


def _is_error_log(first: str) -> bool:
    opened = leading_time(first)
    return opened is not None and _ERROR_LINE.match(first, opened[1]) is not None


class MysqlLog:
    name = "MySQL server log (slow query log or error log)"

    def sniff(self, path: Path, head: bytes) -> bool:
        first = first_head_line(head)
        return first is not None and (_is_slow_log(decoded_head(head).lstrip()) or _is_error_log(first[1]))

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        text = read_text(path)
        skipped = Skipped()
        slow = _is_slow_log(text[:65536].lstrip())
        found = _slow_blocks(text, skipped) if slow else _error_lines(text, skipped)
        for line in found:
            line.service = options.database_service or line.service
        what = "MySQL slow query log entries" if slow else "MySQL error log lines"
        return log_read(found, path, skipped, what)
