"""`lab capture`: one incident window as a folder of the system's own raw exports.

Layout (nothing converted into warroom's own names):
  metrics/prometheus.jsonl   every raw sample Prometheus stored in the window, one JSON object a
                             row: {"timestamp": unix s, "metric": name, "labels": {...}, "value": v}
                             (read as range vectors, so counters stay counters, histograms stay
                             _bucket/_sum/_count, and the timestamps are the real scrape times)
  traces/otlp-traces.jsonl   the OTLP receiver's OTLP/JSON lines with a span in the window
  logs/<service>.log         the services' JSON log lines in the window
  logs/otlp-logs.jsonl       the OTLP receiver's OTLP/JSON log lines in the window (PostgreSQL's
                             own log among them: the lab's shipper sends it there)
  logs/supervisor.log        the platform's events (starts, exits, OOM kills, deploys)
  deploys.jsonl              the deploy log
  repo.bundle                git bundle of the services' repository
  alerts/<ms>-<n>.json       each Alertmanager webhook notification in the window, as received
  prometheus/                the Prometheus configuration and alert rules in force
The truth (if a fault's onset is in the window) goes to NAME.truth.json beside the folder.
With `gzip`, every JSONL/log file is written gzip-compressed with a .gz suffix.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import shutil
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx
from pydantic import BaseModel

from warroom.lab import alerts, deploy
from warroom.lab import repo as shop_repo
from warroom.lab import truth as lab_truth
from warroom.lab.client import LabClient
from warroom.lab.topology import LabError, LabPaths, read_state

OTLP_LATE_SECONDS = 60.0


class CaptureResult(BaseModel):
    folder: Path
    truth: Path | None
    start: datetime
    end: datetime
    # Why the window begins later than asked (after the previous fault ended, or the lab started).
    began_after: str | None = None
    files: dict[str, int]
    series: int
    samples: int


class _Writer:
    def __init__(self, root: Path, compress: bool) -> None:
        self.root = root
        self.compress = compress

    def open(self, relative: str) -> IO[str]:
        path = self.root / (relative + ".gz" if self.compress else relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.compress:
            return gzip.open(path, "wt", encoding="utf-8")
        return path.open("w", encoding="utf-8")


def _sample_value(text: str) -> str:
    """The sample's value as a JSON token: a number, or Prometheus' own spelling of NaN and the
    infinities as a string (JSON has no such numbers)."""
    value = float(text)
    return repr(value) if math.isfinite(value) else json.dumps(text)


def _write_series(name: str, labels: dict[str, str], values: list[list[Any]], out: IO[str]) -> int:
    """One JSON line a sample. The series' part of the line is encoded once (a capture of an hour
    holds hundreds of thousands of rows; json.dumps of each would dominate its time)."""
    head = '{"timestamp":'
    tail = f',"metric":{json.dumps(name)},"labels":{json.dumps(labels, separators=(",", ":"))},"value":'
    out.writelines(f"{head}{float(stamp)!r}{tail}{_sample_value(value)}}}\n" for stamp, value in values)
    return len(values)


# One query answers at most this much of the window: a range vector of every series of a job
# over ten minutes stays a few MB of JSON even at the compressed timeline's 1 s scrapes.
CHUNK_SECONDS = 600.0


def _selectors(client: httpx.Client, start: float, end: float) -> list[str]:
    """Series selectors that together cover every series of the window, one per scrape job (and one
    for series without a job, such as rule results), so the export takes a handful of queries."""
    answer = client.get("/api/v1/label/job/values", params={"start": start, "end": end})
    jobs = _data(answer, "the job names")
    return [f"{{job={json.dumps(job)}}}" for job in sorted(jobs)] + ['{__name__=~".+",job=""}']


def _data(answer: httpx.Response, what: str) -> Any:
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if body.get("status") != "success":
        raise LabError(f"Prometheus refused {what} (HTTP {answer.status_code}): {body.get('error', answer.text[:200])}")
    return body["data"]


def export_metrics(prometheus: str, start: float, end: float, out: IO[str]) -> tuple[int, int]:
    """Every raw sample of every series in (start, end]; returns (series, samples).

    Range vectors (`{job="x"}[600s]` at the chunk's end) return the stored samples with their real
    scrape times, unlike query_range, which resamples at a step. Chunks are left-open intervals,
    so consecutive chunks never repeat a sample."""
    seen: set[tuple[str, ...]] = set()
    samples = 0
    with httpx.Client(base_url=prometheus, timeout=120) as client:
        for selector in _selectors(client, start, end):
            chunk_start = start
            while chunk_start < end:
                chunk_end = min(chunk_start + CHUNK_SECONDS, end)
                width_ms = max(round((chunk_end - chunk_start) * 1000), 1)
                answer = client.get("/api/v1/query", params={"query": f"{selector}[{width_ms}ms]", "time": chunk_end})
                for result in _data(answer, f"the export of {selector}")["result"]:
                    labels = dict(result["metric"])
                    name = labels.pop("__name__")
                    seen.add((name, *sorted(f"{k}={v}" for k, v in labels.items())))
                    samples += _write_series(name, labels, result.get("values", []), out)
                chunk_start = chunk_end
    return len(seen), samples


def _nanos(item: dict[str, Any], *keys: str) -> float | None:
    for key in keys:
        if item.get(key) not in (None, "", "0", 0):
            return int(item[key]) / 1e9
    return None


def _otlp_times(document: dict[str, Any]) -> Iterator[float]:
    for resource in document.get("resourceSpans", []):
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                stamp = _nanos(span, "startTimeUnixNano")
                if stamp is not None:
                    yield stamp
    for resource in document.get("resourceLogs", []):
        for scope in resource.get("scopeLogs", []):
            for record in scope.get("logRecords", []):
                stamp = _nanos(record, "timeUnixNano", "observedTimeUnixNano")
                if stamp is not None:
                    yield stamp


def _copy_otlp(files: Iterable[Path], start: float, end: float, out: IO[str]) -> int:
    kept = 0
    for path in files:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip() and any(start <= t <= end for t in _otlp_times(json.loads(line))):
                    out.write(line)
                    kept += 1
    return kept


def _json_time(value: str) -> float | None:
    text = value.strip()
    if text.endswith(" UTC"):  # PostgreSQL's jsonlog: "2026-12-01 09:00:00.123 UTC"
        text = text[:-4] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


# The lab's writers (the services, the supervisor, PostgreSQL's jsonlog) put the time first; a
# line where it is not found there is parsed whole.
_LEADING_TIME = re.compile(r'^\{"timestamp":\s*"([^"]+)"')


def _line_time(line: str) -> float | None:
    found = _LEADING_TIME.match(line)
    if found:
        return _json_time(found.group(1))
    try:
        return _json_time(str(json.loads(line).get("timestamp", "")))
    except (ValueError, AttributeError):
        return None


def _copy_json_lines(files: Iterable[Path], start: float, end: float, out: IO[str]) -> int:
    kept = 0
    for path in sorted(files):
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                stamp = _line_time(line)
                if stamp is not None and start <= stamp <= end:
                    out.write(line)
                    kept += 1
    return kept


def window_start(paths: LabPaths, start: datetime, end: datetime) -> tuple[datetime, str | None]:
    """Where a capture asked for [start, end] begins, and why when later: one incident a capture.
    The window shows the latest fault whose onset is in it (or none); whatever the lab showed
    before it healed from the fault before that, or before its processes last started (`up`), is
    another incident's alerts and data (or another run of the system), and the capture begins
    after it. Its reference period is then the healthy run between the two."""
    shown = lab_truth.active_in(paths, start, end)
    moment = shown.onset if shown is not None else end
    reasons: list[tuple[datetime, str]] = []
    healed = lab_truth.healed_before(paths, moment)
    if healed is not None and healed.ended is not None:
        reasons.append((healed.ended, f"{healed.fault} ended ({healed.ended_by or 'lab end'})"))
    state = read_state(paths)
    if state is not None and state.started_at <= moment:
        reasons.append((state.started_at, "the lab started"))
    later = [(at, why) for at, why in reasons if at > start]
    if not later:
        return start, None
    at, why = max(later)
    return at, f"{why} at {at.isoformat(timespec='seconds')}"


def capture(paths: LabPaths, out: Path, since_seconds: float, compress: bool = False) -> CaptureResult:
    client = LabClient(paths)
    if out.exists() and any(out.iterdir()):
        raise LabError("capture folder exists and is not empty", file=out)
    end_time = datetime.now(UTC)
    end = end_time.timestamp()
    start_time, began_after = window_start(paths, datetime.fromtimestamp(end - since_seconds, UTC), end_time)
    start = start_time.timestamp()
    out.mkdir(parents=True, exist_ok=True)
    writer = _Writer(out, compress)
    counts: dict[str, int] = {}

    with writer.open("metrics/prometheus.jsonl") as handle:
        series, samples = export_metrics(client.url("prometheus"), start, end, handle)
    counts["metrics/prometheus.jsonl"] = samples
    # A span of the window reaches the receiver after it starts and within the exporters' batch
    # delay (plus the longest request) after the window ends.
    # the receiver's module brings FastAPI and the OTLP protobufs: loaded by a capture, not by
    # every warroom command that registers the lab's
    from warroom.sources.otlp_receiver import Spool

    spool = Spool(paths.otlp)
    late = OTLP_LATE_SECONDS
    with writer.open("traces/otlp-traces.jsonl") as handle:
        files = spool.received_between("traces", start, end + late)
        counts["traces/otlp-traces.jsonl"] = _copy_otlp(files, start, end, handle)
    with writer.open("logs/otlp-logs.jsonl") as handle:
        files = spool.received_between("logs", start, end + late)
        counts["logs/otlp-logs.jsonl"] = _copy_otlp(files, start, end, handle)
    # The services' own JSON log files are not copied: they hold the records the OTLP spool holds
    # (each line is also exported), which a replay read twice, doubling every count the live read,
    # which reads the spool only, saw once.
    with writer.open("logs/supervisor.log") as handle:
        counts["logs/supervisor.log"] = _copy_json_lines([paths.logs / "supervisor.log"], start, end, handle)

    shutil.copyfile(paths.deploy_log, out / "deploys.jsonl")
    counts["deploys.jsonl"] = len(deploy.read_log(paths))
    shop_repo.bundle(paths.repo, out / "repo.bundle")
    (out / "alerts").mkdir(exist_ok=True)
    notifications = alerts.received(paths.alerts_received, start, end)
    for notification in notifications:
        shutil.copyfile(notification.path, out / "alerts" / notification.path.name)
    counts["alerts"] = len(notifications)
    (out / "prometheus").mkdir(exist_ok=True)
    for name in ("prometheus.yml", "rules.yml"):
        shutil.copyfile(paths.monitoring / name, out / "prometheus" / name)

    truth = lab_truth.active_in(paths, start_time, end_time)
    truth_path = None
    if truth is not None:
        truth_path = out.parent / f"{out.name}.truth.json"
        truth_path.write_text(truth.model_dump_json(indent=2) + "\n")
    return CaptureResult(
        folder=out,
        truth=truth_path,
        start=start_time,
        end=end_time,
        began_after=began_after,
        files=counts,
        series=series,
        samples=samples,
    )
