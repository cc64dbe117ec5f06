"""Time and peak memory to read and derive a raw Prometheus export, against reading the same samples
as a v1 canonical metrics table.

For each size (5 MB and 300 MB by default) it writes a synthetic shop's export — per service and
instance, request counters by handler and status, a request-duration histogram (10 buckets), pool
gauges, a CPU counter, one scrape every 15 s, as `query_range` dumps write it (JSON Lines with a
`labels` object) — and the same samples as a v1 `metrics.jsonl` (one row per sample, the labels
folded into the metric name). Each folder is read in a fresh process (`read_period`, what `respond`
does first); the run reports the median wall time and peak RSS over the repeats.

    .venv/bin/python benchmarks/raw_metrics.py [--sizes 5,300] [--repeats 3] [--work DIR]

Target (issue 9): the raw read no slower than the v1 read, its peak memory within 1.5x of it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

BYTES_PER_SAMPLE = 190  # a JSON line with a labels object, as written below (measured)
STEP_S = 15
START = 1716800000
LE = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf")

READ = """
import json, resource, sys, time
from pathlib import Path
from warroom.sources.raw.folder import read_period
from warroom.sources.raw.reader import ReadOptions
started = time.perf_counter()  # the read alone: both pay the same imports
period = read_period(Path(sys.argv[1]), ReadOptions())
frame = period.read.telemetry.metrics
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mib": peak, "rows": frame.height if frame is not None else 0}))
"""


def series_of(services: int) -> list[dict[str, str]]:
    """Every series of the synthetic shop (the metric under `__name__`)."""
    out: list[dict[str, str]] = []
    for s in range(services):
        for i in range(2):
            base = {"service": f"svc-{s:03d}", "instance": f"10.0.{s}.{i}:8000", "job": f"svc-{s:03d}"}
            for handler in ("/api/a", "/api/b"):
                for status in ("200", "503"):
                    out.append({**base, "__name__": "http_requests_total", "handler": handler, "status": status})
                out.extend(
                    {**base, "__name__": "http_request_duration_seconds_bucket", "handler": handler, "le": le}
                    for le in LE
                )
            out.append({**base, "__name__": "db_client_connection_count", "db_client_connection_state": "used"})
            out.append({**base, "__name__": "db_client_connection_max"})
            out.append({**base, "__name__": "process_cpu_seconds_total"})
    return out


def values_of(labels: dict[str, str], points: int, rng: np.random.Generator) -> np.ndarray:
    name = labels["__name__"]
    if name == "db_client_connection_max":
        return np.full(points, 20.0)
    if name == "db_client_connection_count":
        return rng.integers(2, 12, points).astype(float)
    if name == "process_cpu_seconds_total":
        return np.cumsum(rng.uniform(0.5, 4.0, points))
    if name == "http_requests_total":
        per_step = 300.0 if labels["status"] == "200" else 3.0
        return np.cumsum(rng.poisson(per_step, points)).astype(float)
    share = {le: min(1.0, 0.1 * (k + 2)) for k, le in enumerate(LE)}[labels["le"]]
    return np.floor(np.cumsum(rng.poisson(300.0, points)) * share)


def write_exports(size_mb: float, folder: Path) -> tuple[Path, Path]:
    """The raw export and the v1 table of the same samples, each in its own folder."""
    samples = int(size_mb * 1e6 / BYTES_PER_SAMPLE)
    services = max(1, round((samples / 1440) / 54))  # 54 series per service, up to six hours of scrapes
    labels = series_of(services)
    points = max(8, samples // len(labels))
    rng = np.random.default_rng(7)
    raw_dir, v1_dir = folder / f"raw-{size_mb:g}mb", folder / f"v1-{size_mb:g}mb"
    raw_dir.mkdir(parents=True, exist_ok=True)
    v1_dir.mkdir(parents=True, exist_ok=True)
    times = START + STEP_S * np.arange(points) + 0.123
    with (raw_dir / "prometheus.jsonl").open("w") as raw, (v1_dir / "metrics.jsonl").open("w") as v1:
        for series in labels:
            name = series["__name__"]
            rest = {k: v for k, v in series.items() if k != "__name__"}
            shown = ",".join(f'{k}="{v}"' for k, v in sorted(rest.items()) if k not in ("service", "instance", "job"))
            v1_name = f"{name}{{{shown}}}" if shown else name
            text = json.dumps(rest)
            for t, v in zip(times, values_of(series, points, rng), strict=True):
                raw.write(f'{{"timestamp":{t:.3f},"metric":"{name}","labels":{text},"value":{v:g}}}\n')
                v1.write(
                    json.dumps(
                        {
                            "timestamp": round(float(t), 3),
                            "service": series["service"],
                            "metric": v1_name,
                            "value": float(v),
                            "instance": series["instance"],
                        }
                    )
                    + "\n"
                )
    return raw_dir, v1_dir


def measure(folder: Path, repeats: int) -> dict[str, float]:
    runs = []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-c", READ, str(folder)], capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "peak_mib": statistics.median(r["peak_mib"] for r in runs),
        "rows": runs[0]["rows"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5,300", help="export sizes in MB, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None, help="where to write the exports (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.work) as work:
        for size in (float(s) for s in args.sizes.split(",")):
            raw_dir, v1_dir = write_exports(size, Path(work))
            raw_mb = (raw_dir / "prometheus.jsonl").stat().st_size / 1e6
            v1_mb = (v1_dir / "metrics.jsonl").stat().st_size / 1e6
            raw, v1 = measure(raw_dir, args.repeats), measure(v1_dir, args.repeats)
            print(
                f"{size:g} MB export: raw {raw_mb:.1f} MB → {raw['rows']} canonical rows in {raw['seconds']:.2f} s, "
                f"peak {raw['peak_mib']:.0f} MiB | v1 {v1_mb:.1f} MB → {v1['rows']} rows in {v1['seconds']:.2f} s, "
                f"peak {v1['peak_mib']:.0f} MiB | time ×{raw['seconds'] / v1['seconds']:.2f}, "
                f"peak ×{raw['peak_mib'] / v1['peak_mib']:.2f} (medians of {args.repeats})"
            )


if __name__ == "__main__":
    main()
