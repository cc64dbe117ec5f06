"""The lab's log shipper: PostgreSQL's own jsonlog, tailed and sent to the OTLP receiver as log
records with the OpenTelemetry SDK, as a Collector's filelog receiver would ship it to a log store.

Without it the database's lock waits, slow statements and errors are only in a file on the lab's
disk, which no live read reaches. Each jsonlog line becomes one record: its message the body, its
`error_severity` the severity, its time the record's time, and `db.system=postgresql`,
`db.statement`, `db.application`, `db.name`, `db.user`, `process.pid`, `db.sql_state` and the
detail, hint and context the attributes (the names `postgres_log.py` gives a jsonlog file's); the
resource is `service.name=postgresql`. Lines written before the shipper started are not sent (a
restarted lab would send them twice); a line is sent once it is complete.

Run as a lab unit: `python -m warroom.lab.pglog_shipper LOG_DIR` with the OTLP exporter's
environment (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`); stops on SIGTERM.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

SERVICE = "postgresql"
POLL_S = 0.5
# PostgreSQL's severities as OpenTelemetry severity numbers (the first of each range)
SEVERITY_NUMBERS = {
    "DEBUG5": 1,
    "DEBUG4": 1,
    "DEBUG3": 1,
    "DEBUG2": 1,
    "DEBUG1": 5,
    "LOG": 9,
    "INFO": 9,
    "NOTICE": 10,
    "WARNING": 13,
    "ERROR": 17,
    "FATAL": 21,
    "PANIC": 24,
}
ATTRIBUTES = {
    "statement": "db.statement",
    "application_name": "db.application",
    "dbname": "db.name",
    "user": "db.user",
    "pid": "process.pid",
    "state_code": "db.sql_state",
    "detail": "db.detail",
    "hint": "db.hint",
    "context": "db.context",
    "backend_type": "db.backend_type",
}


def record_of(line: str) -> dict[str, Any] | None:
    """The log record's fields for one jsonlog line (None for a line that is not one)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict) or "message" not in entry:
        return None
    try:
        stamp = datetime.strptime(str(entry.get("timestamp")).replace(" UTC", " +0000"), "%Y-%m-%d %H:%M:%S.%f %z")
    except ValueError:
        return None
    severity = str(entry.get("error_severity") or "LOG")
    attributes: dict[str, Any] = {"db.system": SERVICE}
    attributes.update({name: entry[key] for key, name in ATTRIBUTES.items() if entry.get(key) not in (None, "")})
    return {
        "timestamp": int(stamp.timestamp() * 1e9),
        "severity_text": severity,
        "severity_number": SEVERITY_NUMBERS.get(severity, 9),
        "body": str(entry["message"]),
        "attributes": attributes,
    }


class Tail:
    """The complete lines appended to a folder's `*.json` files since the tail began."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.offsets = {path: path.stat().st_size for path in folder.glob("*.json")}

    def lines(self) -> list[str]:
        found: list[str] = []
        for path in sorted(self.folder.glob("*.json")):
            offset = self.offsets.get(path, 0)
            with path.open("rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self.offsets[path] = offset + len(complete)
            found.extend(complete.decode("utf-8", "replace").splitlines())
        return found


def ship(tail: Tail, stop: threading.Event) -> None:
    """Send what `tail` finds, every POLL_S, until `stop` is set; then flush."""
    # The SDK is the lab's dependency ([lab] extra), not warroom's: imported where it is used.
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    provider = LoggerProvider(resource=Resource.create({"service.name": SERVICE, "db.system": SERVICE}))
    provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
    logger = provider.get_logger("warroom.lab.pglog_shipper")
    while not stop.wait(POLL_S):
        for line in tail.lines():
            record = record_of(line)
            if record is not None:
                record["severity_number"] = SeverityNumber(record["severity_number"])
                logger.emit(**record)
    provider.shutdown()


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python -m warroom.lab.pglog_shipper LOG_DIR (an existing folder)", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    ship(Tail(Path(argv[0])), stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
