"""The diagnosis every investigation path agrees on: the symptom-based fault classifier and the
database analysis first (they name a fault type an SRE acts on), then the generic root-cause
ranking (logs, traces, metrics) for whatever they leave unexplained; and the change that caused it,
for the faults a change can cause.

Shared by the database, application and infrastructure specialists so the decided path changes the
depth of each report, never the answer. Memoised per loaded bundle (several agents read it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from warroom.agents.base import AgentContext
from warroom.agents.investigation import investigate
from warroom.agents.specialist_common import onset as incident_onset
from warroom.agents.specialist_common import window
from warroom.analysis.changes import ChangeCorrelation, RankedChange, correlate_changes, service_graph
from warroom.analysis.database import DatabaseAnalysis, analyse_database
from warroom.analysis.fault_rules import FaultHypothesis, classify_faults, database_hypothesis
from warroom.analysis.rca import Diagnosis
from warroom.incident import Evidence, Finding, RootCauseCandidate

# Faults a change (deploy, config, migration) brings in: their diagnosis names the change to undo.
# The others (load, a third party, the network, an expired certificate, an attack) are not undone by
# a rollback, so no change is named as their cause.
NOT_CHANGE_CAUSED = (
    "cpu_saturation",
    "slow_dependency",
    "network_delay",
    "certificate_expiry",
    "credential_stuffing",
    "db_cpu_saturation",
)
# Generic candidates rank after every classified fault: they explain what the classifier did not.
GENERIC_WEIGHT = 0.5
SHARPER_CPU_LABELS = ("cpu_contention",)
LOAD_DRIVEN = 1.5  # request rate at least this multiple of the reference: the saturation is load-driven
DATABASE_SYMPTOMS = ("db_pool_exhaustion", "lock_contention", "db_cpu_saturation", "missing_index")
MIN_CHANGE_SCORE = 0.3


@dataclass
class Fused:
    candidates: list[RootCauseCandidate]
    evidence: list[Evidence]
    hypotheses: list[FaultHypothesis]
    database: DatabaseAnalysis
    rca: Diagnosis
    onset: datetime
    graph: dict[str, set[str]]
    limitations: list[str] = field(default_factory=list)

    def top(self) -> RootCauseCandidate | None:
        return self.candidates[0] if self.candidates else None


_CACHE: dict[tuple[str, int], Fused] = {}
_LOCK = threading.Lock()


def fuse(ctx: AgentContext) -> Fused:
    """The fused diagnosis of the bundle in `ctx` (computed once per loaded bundle)."""
    bundle = ctx.bundle
    key = (str(Path(bundle.path).resolve()), id(bundle.telemetry))
    with _LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    start, end = window(ctx)
    graph = service_graph(bundle.topology, bundle.traces)
    started = incident_onset(ctx, None)
    database = analyse_database(bundle.telemetry, bundle.baseline, start, end)
    faults = classify_faults(bundle.telemetry, bundle.baseline, start, end, started, graph)
    hypotheses = list(faults.hypotheses)
    db = database_hypothesis(database, bundle.telemetry, bundle.baseline, start, end)
    if db is not None:
        hypotheses.append(db)
    hypotheses.sort(key=lambda h: -h.score)
    hypotheses = _config_explains(_saturation_explained(hypotheses))
    rca = investigate(bundle)
    hypotheses = [_with_specific_label(h, rca) for h in hypotheses]
    evidence: list[Evidence] = []
    candidates: list[RootCauseCandidate] = []
    for hypothesis in hypotheses:
        if any(c.service == hypothesis.service and c.fault_type == hypothesis.fault_type for c in candidates):
            continue
        ids = []
        for item in hypothesis.evidence:
            numbered = item.model_copy(update={"id": f"ev-fault-{len(evidence) + 1}"})
            evidence.append(numbered)
            ids.append(numbered.id)
        candidates.append(
            RootCauseCandidate(
                rank=len(candidates) + 1,
                service=hypothesis.service,
                fault_type=hypothesis.fault_type,
                indicator=hypothesis.indicator,
                confidence=round(min(max(hypothesis.score, 0.0), 1.0), 3),
                change_id=hypothesis.change_id,
                reason=hypothesis.reason,
                evidence_ids=ids,
            )
        )
    weight = GENERIC_WEIGHT if candidates else 1.0
    known = {e.id for e in evidence}
    for generic in rca.candidates:
        if any(c.service == generic.service for c in candidates):
            continue
        candidates.append(
            generic.model_copy(
                update={"rank": len(candidates) + 1, "confidence": round(generic.confidence * weight, 3)}
            )
        )
        for item in rca.evidence:
            if item.id in generic.evidence_ids and item.id not in known:
                evidence.append(item)
                known.add(item.id)
    fused = Fused(
        candidates=candidates,
        evidence=evidence,
        hypotheses=hypotheses,
        database=database,
        rca=rca,
        onset=started,
        graph=graph,
        limitations=list(faults.limitations) + list(database.limitations) + list(rca.limitations),
    )
    with _LOCK:
        _CACHE[key] = fused
    return fused


def _saturation_explained(hypotheses: list[FaultHypothesis]) -> list[FaultHypothesis]:
    """A saturated CPU is a symptom when another finding on the same service explains its extra
    work: a credential-stuffing attack (the attack is the load), or, without a surge of requests, a
    database fault it waits on (retries and timeouts burn the CPU). It then ranks just below that
    finding, and says so."""
    ranked = list(hypotheses)
    for index, cpu in enumerate(ranked):
        if cpu.fault_type != "cpu_saturation":
            continue
        surge = cpu.facts.get("load_ratio", 1.0) >= LOAD_DRIVEN
        cause = next(
            (
                h
                for h in ranked
                if h.service == cpu.service
                and (h.fault_type == "credential_stuffing" or (not surge and h.fault_type in DATABASE_SYMPTOMS))
            ),
            None,
        )
        if cause is None or cause.score > cpu.score:
            continue
        ranked[index] = cpu.model_copy(
            update={
                "score": max(cause.score - 0.05, 0.0),
                "reason": f"{cpu.reason}; a symptom of the {cause.fault_type.replace('_', ' ')} on {cause.service}",
            }
        )
    return sorted(ranked, key=lambda h: -h.score)


def _config_explains(hypotheses: list[FaultHypothesis]) -> list[FaultHypothesis]:
    """A database symptom (pool exhausted, slow queries, locks) of the service whose configuration
    changed just before the onset is that configuration's doing (a pool size, a timeout): the
    config change leads, carrying the symptom's evidence."""
    if not hypotheses or hypotheses[0].fault_type not in DATABASE_SYMPTOMS:
        return hypotheses
    symptom = hypotheses[0]
    config = next((h for h in hypotheses if h.fault_type == "bad_config" and h.service == symptom.service), None)
    if config is None:
        return hypotheses
    merged = config.model_copy(
        update={
            "score": max(config.score, symptom.score),
            "reason": f"{config.reason}; {symptom.reason}",
            "evidence": [*config.evidence, *symptom.evidence],
        }
    )
    return [merged, *(h for h in hypotheses if h is not config)]


def _with_specific_label(hypothesis: FaultHypothesis, rca: Diagnosis) -> FaultHypothesis:
    """A saturated CPU without more traffic than usual that the generic analysis explains as
    contention keeps that sharper label: something other than the load eats the CPU, so moving or
    restarting the pod, not scaling it, is the remedy."""
    if hypothesis.fault_type != "cpu_saturation" or hypothesis.facts.get("load_ratio", 1.0) >= LOAD_DRIVEN:
        return hypothesis  # more requests than usual: the load saturates the CPU, whatever else shares it
    sharper = next(
        (c for c in rca.candidates if c.service == hypothesis.service and c.fault_type in SHARPER_CPU_LABELS), None
    )
    if sharper is None:
        return hypothesis
    return hypothesis.model_copy(
        update={"fault_type": sharper.fault_type, "reason": f"{hypothesis.reason}; {sharper.reason}"}
    )


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


def suspect_change(ctx: AgentContext, fused: Fused) -> tuple[RankedChange | None, ChangeCorrelation | None]:
    """The change that caused the top candidate's fault (None for faults no change causes), and the
    correlation of all changes with the onset and the suspected service."""
    top = fused.top()
    if top is None:
        return None, None
    correlation = correlate_changes(ctx.bundle.changes, fused.onset, top.service, fused.graph)
    if top.fault_type in NOT_CHANGE_CAUSED:
        return None, correlation
    if top.change_id:
        named = next((c for c in correlation.ranked if c.id == top.change_id), None)
        if named is not None:
            return named, correlation
    candidate = correlation.rollback_candidate
    if candidate is not None and candidate.score >= MIN_CHANGE_SCORE:
        return candidate, correlation
    return None, correlation


def candidate_dicts(fused: Fused) -> list[dict[str, Any]]:
    return [c.model_dump(mode="json") for c in fused.candidates]


def evidence_dicts(fused: Fused) -> list[dict[str, Any]]:
    return [e.model_dump(mode="json") for e in fused.evidence]


def root_cause_finding(fused: Fused, change: RankedChange | None) -> Finding | None:
    """The headline finding: the top candidate with the evidence behind it."""
    top = fused.top()
    if top is None:
        return None
    ids = set(top.evidence_ids)
    detail = top.reason
    if change is not None:
        minutes = change.minutes_before_onset
        detail += f"; trigger: {change.kind} {change.id} of {change.service} {minutes:.0f} min before onset"
    return Finding(
        id="finding-root-cause",
        title=f"Most likely root cause: {top.fault_type} in {top.service}",
        detail=detail,
        confidence=top.confidence,
        service=top.service,
        kind="root_cause",
        evidence=[e for e in fused.evidence if e.id in ids],
    )


def outputs(ctx: AgentContext, fused: Fused) -> tuple[dict[str, Any], RankedChange | None, ChangeCorrelation | None]:
    """The context values every path agent writes: diagnosis, evidence, suspect service and change."""
    change, correlation = suspect_change(ctx, fused)
    top = fused.top()
    diagnosis = candidate_dicts(fused)
    if change is not None and diagnosis:
        diagnosis[0]["change_id"] = change.id
    values: dict[str, Any] = {
        "diagnosis": diagnosis,
        "evidence": evidence_dicts(fused),
        "suspect_service": top.service if top else None,
        "suspect_change": change.as_context() if change is not None else None,
        "change_ranking": [c.as_context() for c in correlation.ranked[:5]] if correlation else [],
    }
    return values, change, correlation
