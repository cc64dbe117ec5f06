"""The one investigation entry point shared by `respond`'s agents and the benchmark."""

from __future__ import annotations

import threading
import weakref

from warroom.analysis.rca import Diagnosis, diagnose
from warroom.sources.incident_telemetry import IncidentTelemetry

# key → (the telemetry it was computed from, held weakly, and the diagnosis)
_CACHE: dict[tuple[str, int], tuple[weakref.ref[object], Diagnosis]] = {}
_LOCK = threading.Lock()


def _key(telemetry: IncidentTelemetry) -> tuple[str, int]:
    # The source names the evidence; the object id separates two reads of a changed source.
    return (telemetry.origin(), id(telemetry.current))


def investigate(telemetry: IncidentTelemetry) -> Diagnosis:
    """Diagnose a loaded bundle (memoised per bundle within the process: several agents share it)."""
    key = _key(telemetry)
    with _LOCK:
        entry = _CACHE.get(key)
    # An id is reused once its object is freed: a hit counts only if it is the same telemetry.
    if entry is not None and entry[0]() is telemetry.current:
        return entry[1]
    manifest = telemetry.manifest
    window = manifest.effective_window()
    result = diagnose(
        telemetry.current,
        telemetry.baseline,
        alert_time=manifest.alert.fired_at,
        window_start=window.start,
        window_end=window.end,
        topology=telemetry.topology or None,
    )
    missing = telemetry.missing_modalities()
    if missing:
        result.limitations.append(f"no {', '.join(missing)}")
    # rows dropped or repaired at the source boundary: the diagnosis stands on what is left
    result.limitations.extend(telemetry.limitations)
    with _LOCK:
        for stale in [k for k, (ref, _) in _CACHE.items() if ref() is None]:
            del _CACHE[stale]
        _CACHE[key] = (weakref.ref(telemetry.current), result)
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
