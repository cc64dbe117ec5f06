"""Time to read raw event exports: JSON log lines and OTLP/JSON span lines of a given total size.

    .venv/bin/python benchmarks/raw_events.py --mb 300 --runs 3

Writes the files once into a scratch folder (half the bytes logs, half spans: JSON lines of a
service with levels, trace ids, errors and request attributes; OTLP export requests of 50 spans
with old and new semantic conventions and database client spans), then reads each with its
reader `--runs` times and prints the median wall time, rows per second and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

from warroom.sources.raw.formats import recognise
from warroom.sources.raw.reader import ReadOptions

BASE_NS = 1_716_823_200_000_000_000


def _log_line(rng: random.Random, i: int) -> str:
    record = {
        "timestamp": f"2024-05-27T15:{(i // 6000) % 60:02d}:{(i // 100) % 60:02d}.{i % 1000:03d}Z",
        "level": rng.choice(("info", "info", "info", "warning", "error")),
        "msg": rng.choice(("order placed", "payment failed", "cache miss", "acquire conn")),
        "service": rng.choice(("gateway", "checkout", "payment", "inventory")),
        "trace_id": f"{rng.getrandbits(128):032x}",
        "span_id": f"{rng.getrandbits(64):016x}",
        "http.response.status_code": rng.choice((200, 200, 200, 503)),
        "user_id": f"u-{rng.randrange(10_000)}",
        "duration_ms": round(rng.random() * 900, 1),
    }
    return json.dumps(record)


def _span(rng: random.Random, i: int, trace: str, parent: str | None) -> dict:
    start = BASE_NS + i * 1_000_000
    attrs = [{"key": "http.response.status_code", "value": {"intValue": "200"}}]
    if parent is not None:
        attrs = [
            {"key": "db.system", "value": {"stringValue": "postgresql"}},
            {"key": "db.query.text", "value": {"stringValue": "SELECT * FROM orders WHERE id = $1"}},
        ]
    return {
        "traceId": trace,
        "spanId": f"{rng.getrandbits(64):016x}",
        **({"parentSpanId": parent} if parent else {}),
        "name": "SELECT orders" if parent else "POST /checkout",
        "kind": 3 if parent else 2,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + rng.randrange(1_000_000, 90_000_000)),
        "attributes": attrs,
        "status": {"code": 2 if rng.random() < 0.05 else 0},
    }


def _request(rng: random.Random, first: int) -> str:
    spans = []
    for k in range(25):
        trace = f"{rng.getrandbits(128):032x}"
        root = _span(rng, first + 2 * k, trace, None)
        spans += [root, _span(rng, first + 2 * k + 1, trace, root["spanId"])]
    resource_attrs = [{"key": "service.name", "value": {"stringValue": rng.choice(("checkout", "payment"))}}]
    return json.dumps(
        {"resourceSpans": [{"resource": {"attributes": resource_attrs}, "scopeSpans": [{"spans": spans}]}]}
    )


def write(folder: Path, megabytes: float) -> tuple[Path, Path]:
    rng = random.Random(7)
    logs, spans = folder / "checkout.jsonl", folder / "traces-20240527T150000Z.jsonl"
    target = int(megabytes * 1e6 / 2)
    with logs.open("w") as handle:
        i = 0
        while handle.tell() < target:
            handle.write("\n".join(_log_line(rng, i + k) for k in range(1000)) + "\n")
            i += 1000
    with spans.open("w") as handle:
        i = 0
        while handle.tell() < target:
            handle.write(_request(rng, i) + "\n")
            i += 50
    return logs, spans


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=300.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="warroom-bench-") as scratch:
        for path in write(Path(scratch), args.mb):
            reader = recognise(path)
            assert reader is not None
            times, rows = [], 0
            for _ in range(args.runs):
                began = time.perf_counter()
                read = reader.read(path, ReadOptions())
                times.append(time.perf_counter() - began)
                rows = read.tables[0].frame.height
            median = statistics.median(times)
            size = path.stat().st_size / 1e6
            print(f"{reader.name}: {size:.0f} MB, {rows} rows, median {median:.2f} s ({rows / median:,.0f} rows/s)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
