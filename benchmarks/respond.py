"""Wall time and peak memory of `warroom respond` on one bundle, over the whole process tree.

Peak RSS is the largest sum, over samples every 0.3 s, of the resident memory of the CLI and all
its worker processes (ru_maxrss would only give the largest single process).

    .venv/bin/python benchmarks/respond.py BUNDLE [--workflow critical-incident]
    e.g. warroom scenario generate pool-exhaustion --seed 1 --scale large --out /tmp/large
         .venv/bin/python benchmarks/respond.py /tmp/large
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil


def measure(bundle: Path, workflow: str) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="warroom-respond-") as tmp:
        env = {**os.environ, "WARROOM_DB": f"sqlite:///{Path(tmp) / 'store.db'}"}
        command = [sys.executable, "-m", "warroom", "respond", str(bundle), "--workflow", workflow,
                   "--out", str(Path(tmp) / "out"), "--json"]  # fmt: skip
        started = time.perf_counter()
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        root = psutil.Process(child.pid)
        peak_total = peak_single = 0
        while child.poll() is None:
            try:
                sizes = [p.memory_info().rss for p in [root, *root.children(recursive=True)]]
            except psutil.Error:  # a worker ended between listing and reading
                sizes = []
            if sizes:
                peak_total, peak_single = max(peak_total, sum(sizes)), max(peak_single, max(sizes))
            time.sleep(0.3)
        return {
            "exit_code": child.returncode,
            "wall_s": round(time.perf_counter() - started, 2),
            "peak_rss_total_mb": round(peak_total / 2**20),
            "peak_rss_single_mb": round(peak_single / 2**20),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--workflow", default="critical-incident")
    args = parser.parse_args()
    print(json.dumps(measure(args.bundle, args.workflow), indent=2))


if __name__ == "__main__":
    main()
