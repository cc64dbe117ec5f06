"""The Nezha benchmark: every case imported as a bundle and run through `respond` — the workflow
the command line runs, on the thread runner — and its recorded diagnosis scored by rank.

`drop` removes modalities from every period of each imported bundle before the run (the ablations:
logs mostly missing, metric-only). The scoring reads only `ground_truth.json`; the run never sees it.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from warroom.agents.investigation import clear_cache
from warroom.analysis.faults import canonical_fault
from warroom.application import respond
from warroom.errors import InputError
from warroom.sources.contract import BundleSpec
from warroom.sources.nezha import import_nezha_detailed
from warroom.store.repository import Store

MODALITIES = ("logs", "traces", "metrics")
WORKFLOW = "critical-incident"


def drop_modalities(bundle: Path, drop: Sequence[str]) -> None:
    """Remove the `drop` modalities' files from every period of an imported bundle."""
    for name in drop:
        for path in bundle.rglob(f"{name}.*"):
            if path.is_file():
                path.unlink()


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


def run_nezha_bench(
    root: Path, dates: list[str] | None, workdir: Path, drop: Sequence[str] = (), workflow: str = WORKFLOW
) -> dict[str, Any]:
    """Import every case into `workdir`, run `respond` on each and score service rank and fault type."""
    per_case: list[dict[str, Any]] = []
    times: list[float] = []
    imported = import_nezha_detailed(Path(root), Path(workdir), dates, None)
    for case_id, reason in imported.failures:
        per_case.append({"case": case_id, "rank": None, "error": reason, "seconds": None})
    store = Store(f"sqlite:///{Path(workdir) / 'bench.db'}")
    try:
        for path in imported.bundles:
            per_case.append(_run_case(store, path, drop, workflow, times))
    finally:
        store.close()
    return _summary(per_case, times, drop)


def _run_case(store: Store, path: Path, drop: Sequence[str], workflow: str, times: list[float]) -> dict[str, Any]:
    truth = json.loads((path / "ground_truth.json").read_text(encoding="utf-8"))
    drop_modalities(path, drop)
    clear_cache()  # time every case cold, reading included
    started = time.perf_counter()
    try:
        response = respond(store, BundleSpec(path=str(path.resolve())), workflow, None)
    except (InputError, OSError, ValueError) as exc:
        return {"case": path.name, "truth": truth, "rank": None, "error": str(exc), "seconds": None}
    seconds = time.perf_counter() - started
    times.append(seconds)
    candidates = response.record.diagnosis
    services = [c.service for c in candidates]
    rank = services.index(truth["service"]) + 1 if truth["service"] in services else None
    top = candidates[0] if candidates else None
    return {
        "case": path.name,
        "truth_service": truth["service"],
        "truth_fault": truth["fault_type"],
        "rank": rank,
        "top_service": top.service if top else None,
        "top_fault": top.fault_type if top else None,
        "confidence": top.confidence if top else None,
        "inconclusive": bool(top is None or top.inconclusive),
        "fault_type_correct": bool(top and canonical_fault(top.fault_type) == canonical_fault(truth["fault_type"])),
        "failed_steps": response.record.failed_steps,
        "seconds": round(seconds, 3),
    }


def _summary(per_case: list[dict[str, Any]], times: list[float], drop: Sequence[str]) -> dict[str, Any]:
    n = len(per_case)

    def ac(k: int) -> float:
        return round(sum(1 for c in per_case if c["rank"] is not None and c["rank"] <= k) / n, 4) if n else 0.0

    per_case.sort(key=lambda c: c["case"])
    return {
        "cases": n,
        "dropped": list(drop),
        "ac1": ac(1),
        "ac3": ac(3),
        "ac5": ac(5),
        "fault_type_acc": round(sum(1 for c in per_case if c.get("fault_type_correct")) / n, 4) if n else 0.0,
        "inconclusive": sum(1 for c in per_case if c.get("inconclusive")),
        "with_failed_steps": sum(1 for c in per_case if c.get("failed_steps") or c.get("error")),
        "median_s": round(statistics.median(times), 3) if times else 0.0,
        "p95_s": round(_percentile(times, 0.95), 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "per_case": per_case,
    }
