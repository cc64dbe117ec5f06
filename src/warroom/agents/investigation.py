"""The one investigation entry point: every agent that needs the diagnosis (the commander's path
decision, the path specialists, monitoring, logs, the code explorer) and every benchmark reads it
from here, computed once per read of an incident's telemetry in a process.

It hands the engine (`warroom.analysis.diagnosis`) the incident's telemetry, the measured onset and
a reader of the changes' diffs (`warroom.analysis.code`), and turns the engine's typed diagnosis into
the context values the workflow passes on. It holds no diagnostic policy of its own.
"""

from __future__ import annotations

import math
import threading
import weakref
from typing import Any

from warroom.analysis.changes import ChangeRecord, detect_onset, previous_change
from warroom.analysis.code import GitError, analyse_change, of_another_service, system_services
from warroom.analysis.diagnosis import Diagnosis, diagnose
from warroom.analysis.diagnosis.attribution import CodeEvidence, CodeLookup
from warroom.analysis.faults import path_of, registry
from warroom.incident import Evidence, Finding, RootCauseCandidate
from warroom.sources.incident_telemetry import IncidentTelemetry

# key → (the telemetry it was computed from, held weakly, and the diagnosis)
_CACHE: dict[tuple[str, int], tuple[weakref.ref[object], Diagnosis]] = {}
_LOCK = threading.Lock()
CONFIDENCE_FLOOR = 1e-3  # a finding's confidence of 0 or 1 would be an infinite log-likelihood ratio


def _key(telemetry: IncidentTelemetry) -> tuple[str, int]:
    # The source names the evidence; the object id separates two reads of a changed source.
    return (telemetry.origin(), id(telemetry.current))


def investigate(telemetry: IncidentTelemetry) -> Diagnosis:
    """Diagnose an incident's telemetry (memoised per read within the process: several agents share it)."""
    key = _key(telemetry)
    with _LOCK:
        entry = _CACHE.get(key)
    # An id is reused once its object is freed: a hit counts only if it is the same telemetry.
    if entry is not None and entry[0]() is telemetry.current:
        return entry[1]
    manifest = telemetry.manifest
    window = manifest.effective_window()
    baseline = telemetry.baseline
    onset = detect_onset(
        telemetry.metrics, None, window.start, manifest.alert.fired_at, baseline.metrics if baseline else None
    )
    # The alert time is the detector's answer when the data cannot say: no onset was measured, and
    # the diagnosis compares the whole window (a late alert is not where the fault began).
    result = diagnose(
        telemetry.current,
        baseline,
        alert_time=manifest.alert.fired_at,
        window_start=window.start,
        window_end=window.end,
        onset=None if onset == manifest.alert.fired_at else onset,
        topology=telemetry.topology or None,
        code=code_lookup(telemetry),
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


def code_lookup(telemetry: IncidentTelemetry) -> CodeLookup | None:
    """Reads a change's diff in the incident's repository (against the last change of the same service
    and kind): the code findings in it, each with its log-likelihood ratio. None without a repository."""
    repo = telemetry.repo
    if repo is None:
        return None
    services = system_services(telemetry.changes, telemetry.topology)

    def read(change: ChangeRecord) -> list[CodeEvidence]:
        if not change.commit:
            return []
        prior = previous_change(telemetry.changes, change)
        good = str(prior["commit"]) if prior and prior.get("commit") else None
        try:
            analysis = analyse_change(repo, change.commit, good, focus=change.service, search_elsewhere=False)
        except (GitError, OSError):
            return []
        return [
            CodeEvidence(
                kind=f.kind,
                file=f.file,
                line=f.line,
                commit=f.commit,
                commit_subject=f.commit_subject,
                author=f.author,
                detail=f.detail,
                llr=_logit(f.strength),
            )
            for f in analysis.findings
            if f.in_diff and not (change.service and of_another_service(f.file, change.service, services))
        ]

    return read


def _logit(p: float) -> float:
    p = min(max(p, CONFIDENCE_FLOOR), 1.0 - CONFIDENCE_FLOOR)
    return math.log(p / (1.0 - p))


def candidate_dicts(diagnosis: Diagnosis) -> list[dict[str, Any]]:
    """The `diagnosis` context value: ranked candidates (best hypothesis per service), best first."""
    return [c.model_dump(mode="json") for c in diagnosis.candidates]


def evidence_dicts(diagnosis: Diagnosis) -> list[dict[str, Any]]:
    """The `evidence` context value: every observation the diagnosis cites."""
    return [e.model_dump(mode="json") for e in diagnosis.evidence()]


def suspect_change(diagnosis: Diagnosis) -> dict[str, Any] | None:
    """The change attributed to the top hypothesis, with the commit, file and line its diff points
    at; None when no change is (a fault no change brings in, or none fits)."""
    top = diagnosis.top()
    if top is None or top.change is None:
        return None
    change = top.change.as_ranked_change().as_context()
    code = top.change.code
    if code is not None:
        change.update(code_commit=code.commit, code_file=code.file, code_line=code.line, code_pattern=code.kind)
    return change


def summary_dict(diagnosis: Diagnosis) -> dict[str, Any]:
    """The `diagnosis_summary` context value: whether the answer is conclusive, the investigation path
    of the top hypothesis, what would decide, which symptoms stay unexplained, the limitations."""
    top = diagnosis.top()
    fault = registry().fault_types.get(top.fault_type) if top else None
    path = path_of(top.fault_type, top.mechanism) if top else None
    return {
        "inconclusive": diagnosis.inconclusive,
        "threshold": diagnosis.threshold,
        "service": top.service if top else None,
        "fault_type": top.fault_type if top else None,
        "mechanism": top.mechanism if top else None,
        "confidence": top.confidence if top else None,
        "path": path,
        "runbook": fault.runbook if fault else None,
        "onset": diagnosis.onset.isoformat(),
        "decide": diagnosis.decide,
        "unexplained": [o.headline() for o in diagnosis.observations if o.id in set(diagnosis.unexplained)][:10],
        "limitations": diagnosis.limitations,
        "hypotheses": [
            {
                "service": h.service,
                "fault_type": h.fault_type,
                "confidence": h.confidence,
                "log_odds": round(h.log_odds, 3),
                "change_id": h.change.change.id if h.change else None,
            }
            for h in diagnosis.hypotheses[:5]
        ],
    }


def outputs(diagnosis: Diagnosis) -> dict[str, Any]:
    """The context values every path specialist writes (the same ones, whichever path was chosen)."""
    top = diagnosis.top()
    change = suspect_change(diagnosis)
    ranking = [a.as_ranked_change().as_context() for a in (top.change,) if a is not None] if top else []
    return {
        "diagnosis": candidate_dicts(diagnosis),
        "diagnosis_summary": summary_dict(diagnosis),
        "evidence": evidence_dicts(diagnosis),
        "suspect_service": top.service if top else None,
        "suspect_change": change,
        "change_ranking": ranking,
    }


def root_cause_finding(diagnosis: Diagnosis) -> Finding | None:
    """The headline finding: the top hypothesis with the evidence behind it (or, when inconclusive,
    the leading hypotheses and what would decide between them)."""
    top = diagnosis.top()
    candidate: RootCauseCandidate | None = diagnosis.candidates[0] if diagnosis.candidates else None
    if top is None or candidate is None:
        return None
    ids = set(candidate.evidence_ids)
    evidence: list[Evidence] = [o.evidence() for o in diagnosis.observations if o.id in ids]
    if diagnosis.inconclusive:
        leading = ", ".join(f"{h.fault_type} on {h.service} ({h.confidence:.0%})" for h in diagnosis.hypotheses[:3])
        return Finding(
            id="finding-root-cause",
            title=f"Inconclusive: leading hypotheses {leading}",
            detail="; ".join(diagnosis.decide) or candidate.reason,
            confidence=candidate.confidence,
            service=top.service,
            kind="root_cause",
            evidence=evidence,
        )
    detail = candidate.reason
    if top.change is not None:
        c = top.change
        detail += (
            f"; trigger: {c.change.kind} {c.change.id} of {c.change.service} "
            f"{c.minutes_before_onset:.0f} min before onset"
        )
    return Finding(
        id="finding-root-cause",
        title=f"Most likely root cause: {top.fault_type} in {top.service}",
        detail=detail,
        confidence=candidate.confidence,
        service=top.service,
        kind="root_cause",
        evidence=evidence,
    )
