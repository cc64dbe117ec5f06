"""Time to read raw event exports: JSON log lines and OTLP/JSON span lines of a given total size,
against format v1 reading the same rows as its canonical `logs.jsonl` / `traces.jsonl`.

    .venv/bin/python benchmarks/raw_events.py --mb 300 --runs 3
    .venv/bin/python benchmarks/raw_events.py --runs 5 --files DIR/traces/otlp-traces.jsonl DIR/logs/otlp-logs.jsonl

Writes the files once into a scratch folder (half the bytes logs, half spans: JSON lines of a
service with levels, trace ids, errors and request attributes; OTLP export requests of 50 spans
with old and new semantic conventions and database client spans), and the canonical v1 files of
what they read. Each file is then read `--runs` times, each time in a fresh process (so each
read has its own peak memory), and the median wall time and CPU time, rows per second and the
largest peak RSS are printed. `--files` measures the given files instead (a lab capture's OTLP
exports, say), without the v1 comparison.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
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


def read_once(path: Path) -> None:
    """Read one file with the reader that recognises it; print rows, wall and CPU seconds, peak RSS."""
    reader = recognise(path)
    assert reader is not None, path
    began, cpu = time.perf_counter(), time.process_time()
    read = reader.read(path, ReadOptions())
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = read.tables[0].frame.height
    print(json.dumps({"reader": reader.name, "rows": rows, "wall": wall, "cpu": cpu, "peak": peak}))


def measure(path: Path, runs: int) -> dict:
    results = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, __file__, "--read", str(path)], capture_output=True, text=True, check=True
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        "reader": results[0]["reader"],
        "rows": results[0]["rows"],
        "wall": statistics.median(r["wall"] for r in results),
        "cpu": statistics.median(r["cpu"] for r in results),
        "peak": max(r["peak"] for r in results),
    }


def canonical_copy(path: Path, folder: Path) -> Path:
    """The rows a raw file reads to, as format v1's canonical JSON lines file of its modality."""
    reader = recognise(path)
    assert reader is not None
    table = reader.read(path, ReadOptions()).tables[0]
    target = folder / f"{table.modality.value}.jsonl"
    table.frame.write_ndjson(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=300.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--files", type=Path, nargs="+", help="measure these files instead of generated ones")
    parser.add_argument("--read", type=Path, help=argparse.SUPPRESS)  # one measured read, in a child
    args = parser.parse_args()
    if args.read:
        read_once(args.read)
        return
    if args.files:
        for path in args.files:
            report("file", path, args.runs)
        return
    with tempfile.TemporaryDirectory(prefix="warroom-bench-") as scratch:
        folder = Path(scratch)
        (folder / "v1").mkdir()
        for path in write(folder, args.mb):
            for label, target in (("raw", path), ("v1", canonical_copy(path, folder / "v1"))):
                report(label, target, args.runs)


def report(label: str, path: Path, runs: int) -> None:
    m = measure(path, runs)
    size = path.stat().st_size / 1e6
    print(
        f"{label} {m['reader']}: {size:.0f} MB, {m['rows']} rows, median wall {m['wall']:.2f} s "
        f"({m['rows'] / m['wall']:,.0f} rows/s), median CPU {m['cpu']:.2f} s "
        f"({m['rows'] / m['cpu']:,.0f} rows/CPU-s), peak RSS {m['peak']:.0f} MiB",
        flush=True,
    )


if __name__ == "__main__":
    main()
