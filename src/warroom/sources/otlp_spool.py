"""The OTLP spool as a live source: the export requests warroom's receiver appended
(`sources/otlp_receiver.py`: `SPOOL/traces/traces-YYYYmmddTHHMMSSZ.jsonl`, one OTLP/JSON request
per line, files rotated by time) for a period, within a span and a log-record budget.

A spool file is read when its rotation period can overlap the asked period (its name says when
it starts; the next file's start is its end); a request line is kept when one of its items falls
in the period. The kept lines are the snapshot, as the receiver wrote them, and are read back
by the OTLP readers. Lines are taken oldest first until the budget is reached; the requests
left out and the time from which nothing more was read are named in a limitation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import orjson

from warroom.sources.captured import RawResponse
from warroom.sources.config import OtlpSpoolConfig
from warroom.sources.contract import Modality, SourceQuery
from warroom.sources.raw.otlp_messages import LogsRequest, TracesRequest, resource_of

_STAMP = re.compile(r"-(\d{8}T\d{6}Z)\.jsonl$")
SIGNALS: dict[str, tuple[type[TracesRequest | LogsRequest], Modality]] = {
    "traces": (TracesRequest, Modality.TRACES),
    "logs": (LogsRequest, Modality.LOGS),
}


def _file_start(path: Path) -> datetime | None:
    match = _STAMP.search(path.name)
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if match else None


def spool_files(folder: Path, start: datetime, end: datetime) -> list[Path]:
    """The rotation files of one signal that can hold items of [start, end]."""
    dated = sorted((begins, p) for p in folder.glob("*.jsonl") if (begins := _file_start(p)) is not None)
    chosen = []
    for index, (begins, path) in enumerate(dated):
        ends = dated[index + 1][0] if index + 1 < len(dated) else None
        if begins <= end and (ends is None or ends >= start):
            chosen.append(path)
    return chosen


def _times(request: TracesRequest | LogsRequest, services: set[str]) -> list[int]:
    """The items' times of one export request; the services that sent them are added to `services`."""
    found = []
    for batch in request.batches():
        service = resource_of(batch.resource).service
        if service:
            services.add(service)
        for item in batch.items():
            value = item.stamp()
            if value not in (None, "", "0"):
                try:
                    found.append(int(value))
                except (TypeError, ValueError):
                    continue
    return found


@dataclass
class SpoolExport:
    """The spool's export requests of a period as they will be saved, not yet parsed into tables:
    a live read saves them and the snapshot's readers parse them (parsing them here too cost as much
    as the read itself, for the services' names alone)."""

    responses: list[RawResponse] = field(default_factory=list)
    queries: list[SourceQuery] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)
    services: set[str] = field(default_factory=set)  # service.name of the batches kept


class OtlpSpoolSource:
    def __init__(self, config: OtlpSpoolConfig) -> None:
        self.config = config
        self.root = Path(config.spool)

    def export(self, start: datetime, end: datetime) -> SpoolExport:
        found = SpoolExport()
        responses, queries, limitations = found.responses, found.queries, found.limitations
        low, high = int(start.timestamp() * 1e9), int(end.timestamp() * 1e9)
        for signal, budget in (("traces", self.config.max_spans), ("logs", self.config.max_log_records)):
            kept, left_out, count, left, cut_at = [], [], 0, 0, None
            decode = msgspec.json.Decoder(SIGNALS[signal][0]).decode
            for path in spool_files(self.root / signal, start, end):
                for line in path.read_bytes().splitlines():
                    if not line.strip():
                        continue
                    try:
                        request = decode(line)
                    except msgspec.ValidationError:
                        continue  # JSON, but not an export request: nothing of the period
                    except msgspec.DecodeError:
                        left_out.append(f"otlp spool: a line of {path.name} is not JSON (a write cut short)")
                        continue
                    senders: set[str] = set()
                    times = [t for t in _times(request, senders) if low <= t <= high]
                    if not times:
                        continue
                    if count + len(times) > budget:
                        left += 1
                        cut_at = cut_at or min(times)
                        continue
                    kept.append(line)
                    found.services |= senders
                    count += len(times)
            if left:
                since = datetime.fromtimestamp((cut_at or low) / 1e9, UTC).isoformat()
                left_out.append(
                    f"otlp spool: {signal} budget of {budget} reached; {left} export request(s) from {since} on "
                    "were not read"
                )
            limitations.extend(left_out)
            if not kept:
                continue  # nothing saved to carry them: said by the live read only
            # What was left out travels with what was read (otlp_messages.Requests.left_out reads it back), so the
            # snapshot's replay names the same limitations as the live read (each once).
            body = b"\n".join([*kept, *(orjson.dumps({"left_out": note}) for note in left_out)]) + b"\n"
            responses.append(RawResponse(f"otlp/{signal}.jsonl", body))
            queries.append(
                SourceQuery(
                    source="otlp",
                    modality=SIGNALS[signal][1],
                    text=f"{signal} export requests with items in the period",
                    location=str(self.root / signal),
                    start=start,
                    end=end,
                )
            )
        return found
