"""The Nezha benchmark: every case through import → load_bundle → investigate, scored by rank."""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from warroom.agents.investigation import clear_cache, investigate
from warroom.errors import InputError
from warroom.sources.bundle import load_bundle
from warroom.sources.nezha import import_nezha_detailed

# The dataset's own fault-type names → the names the analysis reports (the dataset's labels file,
# root_cause_ts.json, calls CPU consumption "cpu_consumed").
FAULT_ALIASES = {"cpu_consumed": "cpu_consumption"}


def canonical_fault(name: str | None) -> str | None:
    return FAULT_ALIASES.get(name, name) if name is not None else None


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kibibytes, macOS bytes.
    mb = peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
    return max(mb, psutil.Process().memory_info().rss / (1024 * 1024))


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def run_nezha_bench(root: Path, dates: list[str] | None, workdir: Path) -> dict[str, Any]:
    """Import every case into `workdir`, investigate each, and score service rank and fault type."""
    per_case: list[dict[str, Any]] = []
    times: list[float] = []
    imported = import_nezha_detailed(Path(root), Path(workdir), dates, None)
    for case_id, reason in imported.failures:
        per_case.append({"case": case_id, "rank": None, "error": reason, "seconds": None})
    for path in imported.bundles:
        truth = json.loads((path / "ground_truth.json").read_text(encoding="utf-8"))
        started = time.perf_counter()
        try:
            bundle = load_bundle(path)
            clear_cache()  # time every case cold, loading included
            diagnosis = investigate(bundle)
        except (InputError, OSError, ValueError) as exc:
            per_case.append({"case": path.name, "truth": truth, "rank": None, "error": str(exc), "seconds": None})
            continue
        seconds = time.perf_counter() - started
        times.append(seconds)
        services = [c.service for c in diagnosis.candidates]
        rank = services.index(truth["service"]) + 1 if truth["service"] in services else None
        top = diagnosis.candidates[0] if diagnosis.candidates else None
        per_case.append(
            {
                "case": path.name,
                "truth_service": truth["service"],
                "truth_fault": truth["fault_type"],
                "rank": rank,
                "top_service": top.service if top else None,
                "top_fault": top.fault_type if top else None,
                "fault_type_correct": bool(top and top.fault_type == canonical_fault(truth["fault_type"])),
                "seconds": round(seconds, 3),
            }
        )
    n = len(per_case)

    def ac(k: int) -> float:
        return round(sum(1 for c in per_case if c["rank"] is not None and c["rank"] <= k) / n, 4) if n else 0.0

    per_case.sort(key=lambda c: c["case"])
    return {
        "cases": n,
        "ac1": ac(1),
        "ac3": ac(3),
        "ac5": ac(5),
        "fault_type_acc": round(sum(1 for c in per_case if c.get("fault_type_correct")) / n, 4) if n else 0.0,
        "median_s": round(statistics.median(times), 3) if times else 0.0,
        "p95_s": round(_percentile(times, 0.95), 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "per_case": per_case,
    }
