"""Findings and evidence of a run, gathered in order and given stable ids that reports can cite."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from warroom.incident import Evidence, Finding, RootCauseCandidate
from warroom.record import RunRecord

# Ids derived from content (not from position) stay the same when a run is resumed or re-rendered,
# and when an unrelated finding is added before this one.
_ID_DIGEST_CHARS = 10


def _digest(parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_ID_DIGEST_CHARS]


def evidence_key(ev: Evidence) -> str:
    """The content-derived id of a piece of evidence that came without one."""
    return "E-" + _digest(
        [ev.source, ev.query, ev.start, ev.end, ev.values, ev.samples],
    )


@dataclass(frozen=True)
class FindingEntry:
    """One finding as reported by one step, with its id and its evidence ids filled in."""

    id: str
    phase_id: str
    step_id: str
    agent: str
    finding: Finding

    @property
    def evidence_ids(self) -> list[str]:
        return [ev.id for ev in self.finding.evidence]


@dataclass
class EvidenceIndex:
    """Every finding of a run (phase and step order) and every piece of evidence by id."""

    findings: list[FindingEntry] = field(default_factory=list)
    evidence: dict[str, Evidence] = field(default_factory=dict)
    cited_by: dict[str, list[str]] = field(default_factory=dict)  # evidence id → finding ids
    context_evidence_ids: list[str] = field(default_factory=list)  # from context["evidence"]

    def finding(self, finding_id: str) -> FindingEntry | None:
        for entry in self.findings:
            if entry.id == finding_id:
                return entry
        return None


def as_evidence(obj: Any) -> Evidence | None:
    """An Evidence from a context dict; keys the model does not know are dropped, not fatal."""
    if isinstance(obj, Evidence):
        return obj
    if not isinstance(obj, dict):
        return None
    known = {k: v for k, v in obj.items() if k in Evidence.model_fields}
    try:
        return Evidence.model_validate(known)
    except ValidationError:
        return None


def _unique(candidate: str, taken: set[str]) -> str:
    if candidate not in taken:
        return candidate
    n = 2
    while f"{candidate}-{n}" in taken:
        n += 1
    return f"{candidate}-{n}"


def index_evidence(record: RunRecord) -> EvidenceIndex:
    """Collect findings and evidence; fill in missing ids; make duplicate finding ids unique."""
    index = EvidenceIndex()
    finding_ids: set[str] = set()

    def register(ev: Evidence) -> Evidence:
        ev_id = ev.id or evidence_key(ev)
        known = index.evidence.get(ev_id)
        if known is None:
            ev = ev.model_copy(update={"id": ev_id})
            index.evidence[ev_id] = ev
            return ev
        return known

    for phase in record.phases:
        for step in phase.steps:
            if step.report is None:
                continue
            for finding in step.report.findings:
                evidence = [register(ev) for ev in finding.evidence]
                base = finding.id or "F-" + _digest([step.agent, finding.kind, finding.service, finding.title])
                fid = _unique(base, finding_ids)
                finding_ids.add(fid)
                entry = FindingEntry(
                    id=fid,
                    phase_id=phase.id,
                    step_id=step.step_id,
                    agent=step.agent,
                    finding=finding.model_copy(update={"id": fid, "evidence": evidence}),
                )
                index.findings.append(entry)
                for ev in evidence:
                    index.cited_by.setdefault(ev.id, []).append(fid)

    raw = record.context.get("evidence")
    if isinstance(raw, list):
        for item in raw:
            parsed = as_evidence(item)
            if parsed is not None:
                ev_id = register(parsed).id
                if ev_id not in index.context_evidence_ids:
                    index.context_evidence_ids.append(ev_id)
    return index


def diagnosis_candidates(record: RunRecord) -> list[RootCauseCandidate]:
    """Ranked candidates: the record's own, else the `diagnosis` context key; best first."""
    candidates = list(record.diagnosis)
    if not candidates:
        raw = record.context.get("diagnosis")
        if isinstance(raw, list):
            for item in raw:
                if isinstance(item, dict):
                    try:
                        candidates.append(RootCauseCandidate.model_validate(item))
                    except ValidationError:
                        continue
    return sorted(candidates, key=lambda c: (c.rank, -c.confidence))
