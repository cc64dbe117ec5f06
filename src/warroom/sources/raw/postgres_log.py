"""PostgreSQL's own server log, read as the database's evidence (service `postgresql`).

Three destinations PostgreSQL writes (`log_destination`):

- **stderr** with any `log_line_prefix` that starts with the time (`%m`/`%t`, the default
  `'%m [%p] '` included), e.g. `2024-05-27 15:21:30.123 UTC [4242] LOG:  duration: 5021.3 ms
  statement: SELECT …`; `user=… db=… app=… client=…` pairs in the prefix are read; the lines that
  follow a message (`DETAIL:`, `HINT:`, `STATEMENT:`, `CONTEXT:`, tab-indented statement text)
  belong to it;
- **csvlog** (the documented column order, PostgreSQL 13–17);
- **jsonlog** (PostgreSQL 15+: `error_severity`, `message`, `statement`, …).

Each message becomes one log line with the canonical level of its severity (LOG/NOTICE → INFO,
WARNING → WARN, ERROR/FATAL/PANIC → ERROR) and attributes `db.system=postgresql`, `db.name`,
`db.user`, `process.pid`, `db.sql_state` where known, and, by what the message says:
- `duration: N ms  statement: …` (`log_min_duration_statement`; also `execute`/`bind`/`parse`):
  `db.event=slow_statement`, `duration_ms`, `db.statement`;
- `process P still waiting for L on … after N ms` (`log_lock_waits`): `db.event=lock_wait`,
  `duration_ms`, `db.lock_mode`;
- `deadlock detected`: `db.event=deadlock` (the DETAIL says who waited for whom);
- `canceling statement due to statement timeout` / `lock timeout`: `db.event=statement_timeout` /
  `lock_timeout`;
- any other ERROR/FATAL/PANIC: `db.event=error`, and `db.statement` from its `STATEMENT:` line.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from warroom.sources.raw.logs import LogLine, log_read
from warroom.sources.raw.reader import RawRead, ReadOptions
from warroom.sources.raw.semconv import level_of
from warroom.sources.raw.text import Skipped, first_head_line, first_record, json_lines, lines, read_text
from warroom.sources.raw.times import leading_time

SERVICE = "postgresql"
SEVERITIES = ("LOG", "NOTICE", "INFO", "WARNING", "ERROR", "FATAL", "PANIC", "DEBUG1", "DEBUG2", "DEBUG3", "DEBUG4")
CONTINUATIONS = ("DETAIL", "HINT", "STATEMENT", "CONTEXT", "LOCATION", "QUERY")
_SEVERITY = re.compile(r"\b(" + "|".join(SEVERITIES + CONTINUATIONS) + r"):  ")
_PREFIX_PAIRS = re.compile(r"\b(user|db|app|client|host)=([^\s,\]]*)")
_PID = re.compile(r"\[(\d+)\]")
_DURATION = re.compile(r"duration: ([0-9.]+) ms(?:\s+(?:statement|execute [^:]*|bind [^:]*|parse [^:]*): (.*))?", re.S)
_LOCK_WAIT = re.compile(r"process \d+ (?:still waiting|acquired) for (\w+) on .*? after ([0-9.]+) ms", re.S)
_CANCEL = re.compile(r"canceling statement due to (statement|lock) timeout")
CSV_COLUMNS = (
    "log_time",
    "user_name",
    "database_name",
    "process_id",
    "connection_from",
    "session_id",
    "session_line_num",
    "command_tag",
    "session_start_time",
    "virtual_transaction_id",
    "transaction_id",
    "error_severity",
    "sql_state_code",
    "message",
    "detail",
    "hint",
    "internal_query",
    "internal_query_pos",
    "context",
    "query",
    "query_pos",
    "location",
    "application_name",
    "backend_type",
    "leader_pid",
    "query_id",
)


def classify(severity: str, message: str, statement: str | None) -> dict[str, Any]:
    """The attributes a PostgreSQL message carries by what it says (module docstring)."""
    attributes: dict[str, Any] = {"db.system": SERVICE}
    if match := _DURATION.match(message):
        attributes["duration_ms"] = float(match.group(1))
        if match.group(2):
            attributes.update({"db.event": "slow_statement", "db.statement": match.group(2).strip()})
    elif match := _LOCK_WAIT.search(message):
        attributes.update(
            {"db.event": "lock_wait", "db.lock_mode": match.group(1), "duration_ms": float(match.group(2))}
        )
    elif "deadlock detected" in message:
        attributes["db.event"] = "deadlock"
    elif match := _CANCEL.search(message):
        attributes["db.event"] = f"{match.group(1)}_timeout"
    elif severity in ("ERROR", "FATAL", "PANIC"):
        attributes["db.event"] = "error"
    if statement and "db.statement" not in attributes:
        attributes["db.statement"] = statement.strip()
    return attributes


# ----------------------------------------------------------------------------------------------
# stderr


def _stderr_messages(text: str, skipped: Skipped) -> Iterator[LogLine]:
    current: LogLine | None = None
    statement: list[str] = []
    for number, line in lines(text):
        opened = leading_time(line)
        found = _SEVERITY.search(line) if opened else None
        if opened is None or found is None:
            if current is not None:
                current.message += "\n" + line.strip() if line.startswith(("\t", " ")) else "\n" + line
            else:
                skipped.add("no time stamp and severity before the first message", number)
            continue
        severity, body = found.group(1), line[found.end() :]
        if severity in CONTINUATIONS and current is not None:
            if severity == "STATEMENT":
                statement.append(body)
            current.attributes.setdefault(f"db.{severity.lower()}", body)
            continue
        if current is not None:
            yield _finish(current, statement)
        prefix = line[opened[1] : found.start()]
        pairs = dict(_PREFIX_PAIRS.findall(prefix))
        pid = _PID.search(prefix)
        attributes = {
            "db.severity": severity,
            **({"db.user": pairs["user"]} if pairs.get("user") else {}),
            **({"db.name": pairs["db"]} if pairs.get("db") else {}),
            **({"db.application": pairs["app"]} if pairs.get("app") else {}),
            **(
                {"client.ip": pairs.get("client") or pairs.get("host")}
                if pairs.get("client") or pairs.get("host")
                else {}
            ),
            **({"process.pid": int(pid.group(1))} if pid else {}),
        }
        current = LogLine(number, opened[0], SERVICE, level_of(severity), body, attributes=attributes)
        statement = []
    if current is not None:
        yield _finish(current, statement)


def _finish(line: LogLine, statement: list[str]) -> LogLine:
    severity = str(line.attributes.pop("db.severity"))
    line.attributes = {**classify(severity, line.message, statement[0] if statement else None), **line.attributes}
    return line


# ----------------------------------------------------------------------------------------------
# csvlog and jsonlog


def _record_line(record: dict[str, Any], number: int) -> LogLine:
    severity = str(record.get("error_severity") or "LOG")
    message = str(record.get("message") or "")
    statement = record.get("statement") or record.get("query") or None
    attributes = classify(severity, message, str(statement) if statement else None)
    for source, target in (
        ("database_name", "db.name"),
        ("dbname", "db.name"),
        ("user_name", "db.user"),
        ("user", "db.user"),
        ("application_name", "db.application"),
        ("sql_state_code", "db.sql_state"),
        ("state_code", "db.sql_state"),
        ("detail", "db.detail"),
        ("hint", "db.hint"),
        ("context", "db.context"),
        ("backend_type", "db.backend_type"),
    ):
        if record.get(source) not in (None, ""):
            attributes.setdefault(target, record[source])
    pid = record.get("process_id") or record.get("pid")
    if pid not in (None, ""):
        attributes["process.pid"] = int(pid)
    time = record.get("log_time") or record.get("timestamp")
    return LogLine(number, time, SERVICE, level_of(severity), message or "(empty)", attributes=attributes)


def _csv_lines(text: str, skipped: Skipped) -> list[LogLine]:
    found: list[LogLine] = []
    reader = csv.reader(io.StringIO(text))
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:
            skipped.add("not a csvlog row", start)
            continue
        if len(row) < 23:
            skipped.add(f"{len(row)} columns where csvlog has 23 or more", start)
            continue
        found.append(_record_line(dict(zip(CSV_COLUMNS, row, strict=False)), start))
    return found


def _is_csvlog(first: str) -> bool:
    opened = leading_time(first)
    return (
        opened is not None
        and bool(re.match(r'[^,]*,("[^"]*")?,("[^"]*")?,\d+,', first))
        and any(f",{severity}," in first for severity in SEVERITIES)
    )


def _is_jsonlog(record: dict[str, Any] | None) -> bool:
    return record is not None and "error_severity" in record and "message" in record


def _is_stderr(first: str) -> bool:
    opened = leading_time(first)
    if opened is None:
        return False
    found = _SEVERITY.search(first)
    return found is not None and found.group(1) in SEVERITIES and found.start() - opened[1] < 200


class PostgresLog:
    name = "PostgreSQL server log (stderr, csvlog or jsonlog)"

    def sniff(self, path: Path, head: bytes) -> bool:
        first = first_head_line(head)
        if first is None:
            return False
        return _is_jsonlog(first_record(head)) or _is_csvlog(first[1]) or _is_stderr(first[1])

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        text = read_text(path)
        first = next(lines(text), (0, ""))[1]
        skipped = Skipped()
        if first.lstrip().startswith("{"):
            records = json_lines(text, path, "PostgreSQL jsonlog lines")
            found = [_record_line(r, n) for r, n in zip(records.records, records.line_numbers, strict=True)]
            skipped = records.skipped
            shape = "jsonlog"
        elif _is_csvlog(first):
            found, shape = _csv_lines(text, skipped), "csvlog"
        else:
            found, shape = list(_stderr_messages(text, skipped)), "stderr"
        for line in found:
            line.service = options.database_service or line.service
        read = log_read(found, path, skipped, f"PostgreSQL {shape} messages")
        events: dict[str, int] = {}
        for line in found:
            event = line.attributes.get("db.event")
            if event:
                events[str(event)] = events.get(str(event), 0) + 1
        if events:
            read.notes.append(
                "database evidence: " + ", ".join(f"{n} {e.replace('_', ' ')}" for e, n in events.items())
            )
        return read
