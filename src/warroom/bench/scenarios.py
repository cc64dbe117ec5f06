"""Scenario benchmark: generate each scenario per seed, run `respond`'s workflow, score it.

Per run: the path the workflow chose, root-cause service and fault type, the offending change,
the code location (file, line within ±3), whether the first action applied recovers, the time
from alert to validated recovery (incident time), and the run time. The scoring reads only
`ground_truth.json`; the analysis never sees it.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from warroom.application import respond
from warroom.record import RunRecord
from warroom.scenarios import generate, list_scenarios
from warroom.sources.contract import BundleSpec
from warroom.store.repository import Store

LINE_TOLERANCE = 3


def parse_seeds(text: str) -> list[int]:
    """'1-20' or '1,3,5' or '4' → seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            low, high = (int(x) for x in part.split("-", 1))
            seeds.extend(range(low, high + 1))
        elif part:
            seeds.append(int(part))
    if not seeds:
        raise ValueError("no seeds")
    return seeds


def _decision_path(record: RunRecord) -> str | None:
    return next((phase.decision.path for phase in record.phases if phase.decision is not None), None)


def _first_applied(record: RunRecord) -> dict[str, Any] | None:
    """The first mitigation the executor took up (in dry-run: checked against after/ data)."""
    mitigation = record.context.get("mitigation") or {}
    outcomes = mitigation.get("outcomes") or []
    plan = {a.get("id"): a for a in record.context.get("resolution_plan") or [] if isinstance(a, dict)}
    for outcome in outcomes:
        if outcome.get("status") in ("skipped", "blocked"):
            continue
        kind = (outcome.get("data") or {}).get("kind") or (plan.get(outcome.get("action_id")) or {}).get("kind")
        return {"action_id": outcome.get("action_id"), "kind": kind, "verified": outcome.get("verified")}
    return None


def score(record: RunRecord, truth: dict[str, Any]) -> dict[str, Any]:
    top = record.diagnosis[0] if record.diagnosis else None
    suspect = record.context.get("suspect_change") or {}
    location = truth.get("code_location") or None
    first = _first_applied(record)
    recovery = record.context.get("recovery") or {}
    result: dict[str, Any] = {
        "path": _decision_path(record),
        "service": top.service if top else None,
        "fault_type": top.fault_type if top else None,
        "confidence": top.confidence if top else None,
        "inconclusive": bool(top is None or top.inconclusive),
        "change": suspect.get("id"),
        "code_location": {"file": suspect.get("code_file"), "line": suspect.get("code_line")},
        "first_action": first["kind"] if first else None,
        "alert_to_recovery_min": recovery.get("alert_to_recovery_min"),
    }
    correct = {
        "path": result["path"] == truth.get("path"),
        "service": result["service"] == truth.get("service"),
        "fault_type": result["fault_type"] == truth.get("fault_type"),
        "change": None if truth.get("change_id") is None else result["change"] == truth["change_id"],
        "code_location": None
        if not location
        else (
            result["code_location"]["file"] == location.get("file")
            and isinstance(result["code_location"]["line"], int)
            and abs(result["code_location"]["line"] - int(location.get("line", -99))) <= LINE_TOLERANCE
        ),
        "recovers": first is not None and first["kind"] in (truth.get("recovering_actions") or []),
    }
    return {**result, "correct": correct}


def run_scenario_bench(
    seeds: Iterable[int],
    workdir: Path,
    scenarios: list[str] | None = None,
    scale: str = "default",
    workflow: str = "critical-incident",
    keep: bool = False,
) -> dict[str, Any]:
    names = scenarios or [info.name for info in list_scenarios()]
    workdir.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite:///{workdir / 'bench.db'}")
    per_run: list[dict[str, Any]] = []
    try:
        for name in names:
            for seed in seeds:
                bundle = workdir / f"{name}-{seed}"
                shutil.rmtree(bundle, ignore_errors=True)
                entry: dict[str, Any] = {"scenario": name, "seed": seed}
                try:
                    generate(name, seed, bundle, scale=scale)
                    truth = json.loads((bundle / "ground_truth.json").read_text())
                    started = time.perf_counter()
                    response = respond(store, BundleSpec(path=str(bundle.resolve())), workflow, None)
                    entry["run_s"] = round(time.perf_counter() - started, 3)
                    entry.update(score(response.record, truth))
                    entry["failed_steps"] = response.record.failed_steps
                    entry["expected"] = {k: truth.get(k) for k in ("path", "service", "fault_type", "change_id")}
                except Exception as exc:  # a run that breaks is a miss with its reason, not a crash
                    entry["error"] = f"{exc.__class__.__name__}: {exc}"[:300]
                    entry["correct"] = dict.fromkeys(
                        ("path", "service", "fault_type", "change", "code_location", "recovers"), False
                    )
                per_run.append(entry)
                if not keep:
                    shutil.rmtree(bundle, ignore_errors=True)
    finally:
        store.close()
    accuracy: dict[str, float | None] = {}
    for key in ("service", "fault_type", "path", "change", "code_location", "recovers"):
        judged = [r["correct"][key] for r in per_run if r["correct"].get(key) is not None]
        accuracy[key] = round(sum(judged) / len(judged), 3) if judged else None
    times = [r["run_s"] for r in per_run if "run_s" in r]
    return {
        "runs": len(per_run),
        "accuracy": accuracy,
        "with_failed_steps": sum(1 for r in per_run if r.get("failed_steps") or r.get("error")),
        "median_s": round(statistics.median(times), 3) if times else None,
        "per_run": per_run,
    }
