"""Loki `query_range` responses as warroom's Loki source saves them (`sources/loki.py`).

One JSON object per line: `{"request": {...}, "response": <the body Loki answered>}` for every
page read, in the order read, and a last `{"left_out": "…"}` when a line budget cut the read
short. `request` holds the parameters sent (`query`, `start`, `end`, `limit`, `direction`) and
the stream label that names the service (`service_label`).

Every stream entry (`[ns, line]`, or `[ns, line, {"structuredMetadata": …, "parsed": …}]` with
Loki 3's categorised labels) is one log line, once: pages overlap at their boundary timestamps
and an entry seen twice (same stream, time and line) is kept once. The line is read as a JSON log
line or a logfmt line when it is one (`logs_json.py`), else as text; the service is the stream's
`service_label` label, else the first of the usual service labels, else the line's own field;
the level the line's, else the stream's `level` / `detected_level` label; the other stream labels
and structured metadata go into the attributes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from warroom.errors import BundleError
from warroom.sources.raw.labels import service_of
from warroom.sources.raw.logs import LogLine, LogReadStats, log_read
from warroom.sources.raw.logs_json import has_message, structured_line
from warroom.sources.raw.logs_logfmt import parse_logfmt
from warroom.sources.raw.logs_plain import text_level
from warroom.sources.raw.reader import RawRead, ReadOptions
from warroom.sources.raw.semconv import level_of
from warroom.sources.raw.text import first_record, json_lines, read_text
from warroom.sources.raw.times import leading_time

LEVEL_LABELS = ("level", "detected_level", "severity_text", "severity")


def _entry_line(
    labels: dict[str, str], value: list[Any], number: int, service_label: str, stats: LogReadStats
) -> LogLine:
    nanos, text = value[0], str(value[1])
    metadata: dict[str, Any] = {}
    if len(value) > 2 and isinstance(value[2], dict):
        for part in ("structuredMetadata", "parsed"):
            metadata.update(value[2].get(part) or {})
    service = labels.get(service_label) or service_of(labels)
    extra = {k: v for k, v in labels.items() if k != service_label and k not in LEVEL_LABELS}
    record = _structured(text)
    if record is not None:
        line = structured_line(record, number, service, stats, ReadOptions())
        if service:
            line.service = service
        line.timestamp = nanos
    else:
        # A plain line: its level word, if it writes one after its own time stamp.
        opened = leading_time(text)
        level, _ = text_level(text[opened[1] :] if opened else text)
        line = LogLine(number, nanos, service, level, text)
    line.level = line.level or next((level_of(labels[k]) for k in LEVEL_LABELS if k in labels), None)
    line.attributes = {**extra, **metadata, **line.attributes}
    trace = metadata.get("trace_id") or metadata.get("traceID")
    line.trace_id = line.trace_id or trace
    return line


def _structured(text: str) -> dict[str, Any] | None:
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            value = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None
    # Loki gives the time: a logfmt line needs only a message among its pairs.
    record = parse_logfmt(text)
    return record if len(record) >= 2 and has_message(record) and all(record.values()) else None


def loki_lines(records: list[dict[str, Any]], numbers: list[int], path: Path) -> tuple[list[LogLine], list[str]]:
    """The log lines of saved pages (deduplicated), and what the source said it left out."""
    seen: set[tuple[Any, ...]] = set()
    found: list[LogLine] = []
    left_out: list[str] = []
    stats = LogReadStats()
    for record, number in zip(records, numbers, strict=True):
        if "left_out" in record:
            left_out.append(str(record["left_out"]))
            continue
        response = record.get("response") or {}
        request = record.get("request") or {}
        if response.get("status") != "success":
            raise BundleError(f"Loki answered {response.get('status')!r}", file=path, line=number, field="response")
        data = response.get("data") or {}
        if data.get("resultType") != "streams":
            raise BundleError(
                f"resultType {data.get('resultType')!r}: expected 'streams' (a log query, not a metric query)",
                file=path,
                line=number,
                field="response.data.resultType",
            )
        service_label = str(request.get("service_label") or "service_name")
        for stream in data.get("result") or []:
            labels = {str(k): str(v) for k, v in (stream.get("stream") or {}).items()}
            key = tuple(sorted(labels.items()))
            for value in stream.get("values") or []:
                identity = (key, value[0], value[1])
                if identity in seen:
                    continue
                seen.add(identity)
                found.append(_entry_line(labels, value, number, service_label, stats))
    return found, left_out


class LokiResponses:
    name = "Loki query_range responses (as warroom's Loki source saves them)"

    def sniff(self, path: Path, head: bytes) -> bool:
        record = first_record(head)
        return record is not None and "request" in record and isinstance(record.get("response"), dict)

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        records = json_lines(read_text(path), path, "saved Loki responses")
        found, left_out = loki_lines(records.records, records.line_numbers, path)
        if not found:
            notes = [f"{len(records.records)} Loki page(s), no log lines"]
            return RawRead(notes=notes, limitations=left_out)
        read = log_read(found, path, records.skipped, "Loki log lines")
        read.limitations.extend(left_out)
        return read
