"""The detectors: frames in, typed observations out (no scores, no fault types)."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from warroom.analysis.diagnosis.detectors import logs, metrics, security, traces
from warroom.analysis.diagnosis.detectors.result import DetectorResult
from warroom.analysis.diagnosis.periods import Periods

__all__ = ["DetectorResult", "detect_all"]


def detect_all(
    periods: Periods, known: Collection[str], patterns: Mapping[str, str]
) -> tuple[DetectorResult, dict[str, set[str]]]:
    """Every detector over the two periods: all observations (numbered), what could not be looked at,
    and the call graph."""
    combined = DetectorResult("all")
    found_metrics = metrics.detect(periods, known)
    # Lines naming a table that lost rows are about the lost data: integrity evidence, not a defect of
    # the code that logs them.
    lost = sorted({str(o.data["table"]) for o in found_metrics.observations if o.data.get("table") and o.above_noise})
    if lost and "integrity" in patterns:
        tables = "|".join(re.escape(t) for t in lost)
        patterns = {**patterns, "integrity": f"(?:{patterns['integrity']})|(?:\\b(?:{tables})\\b)"}
    # Logs before traces: the traces' deepest-error analysis counts the lines the logs found anomalous.
    found_logs, error_keys = logs.detect(periods, known, patterns)
    combined.extend(found_logs)
    found_traces, graph = traces.detect(periods, known, error_keys)
    combined.extend(found_traces)
    combined.extend(found_metrics)
    combined.extend(security.detect(periods))
    combined.observations = [o for o in combined.observations if set(o.roles) & set(known)]
    # Numbered in an order of what they are, not of how the detectors' group-bys happened to come
    # out: the same telemetry gets the same ids in every run (reports cite them).
    combined.observations.sort(key=lambda o: (o.detector, o.signal, o.service, o.peer or "", o.query))
    for number, observation in enumerate(combined.observations, start=1):
        observation.id = f"obs-{number}"
    return combined, graph
