"""The one investigation entry point shared by `respond`'s agents and the benchmark."""

from __future__ import annotations

import threading
from pathlib import Path

from warroom.analysis.rca import Diagnosis, diagnose
from warroom.sources.bundle import Bundle

_CACHE: dict[tuple[str, int], Diagnosis] = {}
_LOCK = threading.Lock()


def _key(bundle: Bundle) -> tuple[str, int]:
    # The bundle path names the evidence; the object id separates two loads of a changed bundle.
    return (str(Path(bundle.path).resolve()), id(bundle.telemetry))


def investigate(bundle: Bundle) -> Diagnosis:
    """Diagnose a loaded bundle (memoised per bundle within the process: several agents share it)."""
    key = _key(bundle)
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    manifest = bundle.manifest
    window = manifest.effective_window()
    result = diagnose(
        bundle.telemetry,
        bundle.baseline,
        alert_time=manifest.alert.fired_at,
        window_start=window.start,
        window_end=window.end,
        topology=bundle.topology or None,
    )
    missing = bundle.missing_modalities()
    if missing:
        result.limitations.append(f"bundle has no {', '.join(missing)}")
    # rows dropped or repaired at the source boundary: the diagnosis stands on what is left
    result.limitations.extend(problem.limitation() for problem in bundle.problems)
    with _LOCK:
        _CACHE[key] = result
    return result


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


def candidate_dicts(diagnosis: Diagnosis) -> list[dict[str, object]]:
    """The `diagnosis` context value: ranked candidates as JSON-able dicts, best first."""
    return [c.model_dump(mode="json") for c in diagnosis.candidates]


def evidence_dicts(diagnosis: Diagnosis, ids: set[str] | None = None) -> list[dict[str, object]]:
    """The `evidence` context value (optionally only the given evidence ids)."""
    return [e.model_dump(mode="json") for e in diagnosis.evidence if ids is None or e.id in ids]
