"""`warroom bench captures DIR`: real incidents replayed. Every lab capture in DIR (a folder of the
system's own raw exports, with the lab's truth beside it as `<name>.truth.json`) goes through
`respond` — the same path as `bench nezha`, `bench scenarios` and the live loop — and is scored as
the lab bench scores a live fault (`warroom.bench.lab.score`): service, fault type, change,
file:line (±3) and the resolution plan's first action.

The output's `per_case` carries the keys `bench calibrate` reads (rank, fault_type_correct,
confidence), so the real incidents are a corpus of the confidence map like the others.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from warroom.application import respond
from warroom.bench.lab import score
from warroom.errors import InputError
from warroom.lab.truth import Truth
from warroom.record import RunRecord
from warroom.sources.contract import BundleSpec
from warroom.store.repository import Store

WORKFLOW = "critical-incident"
FIELDS = ("service", "fault_type", "change", "location", "first_action")


def find_captures(root: Path) -> list[tuple[Path, Truth]]:
    """Each capture folder of `root` that has its truth beside it, by name."""
    if not root.is_dir():
        raise InputError("not a directory (expected a folder of lab captures)", file=root)
    found = []
    for truth_file in sorted(root.glob("*.truth.json")):
        folder = root / truth_file.name.removesuffix(".truth.json")
        if not folder.is_dir():
            continue
        try:
            found.append((folder, Truth.model_validate_json(truth_file.read_text(encoding="utf-8"))))
        except (ValidationError, ValueError) as exc:
            first = str(exc).splitlines()[:3]
            raise InputError(f"not a lab truth file: {' '.join(first)}", file=truth_file) from None
    if not found:
        raise InputError("no capture with its truth beside it (expected NAME/ and NAME.truth.json)", file=root)
    return found


def first_planned_kind(record: RunRecord) -> str | None:
    """The kind of the resolution plan's first action (the runbook's first step)."""
    plan = [a for a in record.context.get("resolution_plan") or [] if isinstance(a, dict)]
    return str(plan[0].get("kind")) if plan and plan[0].get("kind") else None


def _run_case(store: Store, folder: Path, truth: Truth, workflow: str) -> dict[str, Any]:
    started = time.perf_counter()
    entry: dict[str, Any] = {"case": folder.name, "truth_service": truth.service, "truth_fault": truth.fault_type}
    try:
        record = respond(store, BundleSpec(path=str(folder.resolve())), workflow, None).record
    except (InputError, OSError, ValueError) as exc:
        return {**entry, "rank": None, "error": str(exc)[:300], "seconds": None}
    seconds = time.perf_counter() - started
    candidates = record.diagnosis
    top = candidates[0] if candidates else None
    services = [c.service for c in candidates]
    suspect = dict(record.context.get("suspect_change") or {})
    first = first_planned_kind(record)
    judged = score(truth, top.model_dump() if top else None, suspect, first)
    return {
        **entry,
        "rank": services.index(truth.service) + 1 if truth.service in services else None,
        "top_service": top.service if top else None,
        "top_fault": top.fault_type if top else None,
        "confidence": top.confidence if top else None,
        "inconclusive": bool(top is None or top.inconclusive),
        "fault_type_correct": judged.fault_type,
        "change": suspect.get("id") or (top.change_id if top else None),
        "location": f"{suspect['code_file']}:{suspect.get('code_line')}" if suspect.get("code_file") else None,
        "first_action": first,
        "correct": judged.model_dump(),
        "failed_steps": record.failed_steps,
        "seconds": round(seconds, 3),
    }


def run_capture_bench(root: Path, workdir: Path, workflow: str = WORKFLOW) -> dict[str, Any]:
    """Every capture of `root` through respond, scored against its truth; per-field accuracy over the
    cases where the truth has the field (a traffic fault has no commit)."""
    captures = find_captures(root)
    workdir.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite:///{workdir / 'bench.db'}")
    try:
        per_case = [_run_case(store, folder, truth, workflow) for folder, truth in captures]
    finally:
        store.close()
    accuracy: dict[str, float | None] = {}
    for key in FIELDS:
        judged = [c["correct"][key] for c in per_case if "correct" in c and c["correct"][key] is not None]
        accuracy[key] = round(sum(judged) / len(judged), 3) if judged else None
    times = [c["seconds"] for c in per_case if c.get("seconds") is not None]
    return {
        "cases": len(per_case),
        "dropped": [],
        "accuracy": accuracy,
        "all_right": sum(1 for c in per_case if "correct" in c and all(v is not False for v in c["correct"].values())),
        "inconclusive": sum(1 for c in per_case if c.get("inconclusive", True)),
        "with_failed_steps": sum(1 for c in per_case if c.get("failed_steps") or c.get("error")),
        "median_s": round(statistics.median(times), 3) if times else None,
        "per_case": per_case,
    }
