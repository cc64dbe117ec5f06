"""write_reports: render a RunRecord into the output directory, every string redacted first."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from warroom.analysis.facts import IncidentFacts
from warroom.record import RunRecord
from warroom.redact import redact, redact_tree
from warroom.report.evidence import EvidenceIndex, diagnosis_candidates, index_evidence
from warroom.report.execution import render_workflow
from warroom.report.metrics import derive_metrics
from warroom.report.postmortem import ReportPolicy, build_view, render_html, render_markdown
from warroom.report.timeline import render_timeline
from warroom.store.records import facts_of

REPORT_FILES = (
    "facts.json",
    "postmortem.md",
    "postmortem.html",
    "timeline.md",
    "workflow.md",
    "context.json",
    "findings.json",
    "diagnosis.json",
    "metrics.json",
)


def redacted_record(record: RunRecord) -> RunRecord:
    """The record with every string in it redacted (times and numbers are left as they are)."""
    # Python mode keeps datetimes as objects: they are not text a secret can hide in.
    return RunRecord.model_validate(redact_tree(record.model_dump(mode="python")))


def findings_payload(record: RunRecord, index: EvidenceIndex) -> dict[str, Any]:
    return {
        "incident_id": record.incident.id,
        "findings": [
            {
                "id": e.id,
                "phase": e.phase_id,
                "step": e.step_id,
                "agent": e.agent,
                **e.finding.model_dump(mode="json", exclude={"id"}),
            }
            for e in index.findings
        ],
        "context_evidence": [index.evidence[i].model_dump(mode="json") for i in index.context_evidence_ids],
    }


def diagnosis_payload(record: RunRecord) -> dict[str, Any]:
    """Ranked root-cause candidates, best first (also what `respond --json` prints)."""
    candidates = diagnosis_candidates(record)
    return {
        "incident_id": record.incident.id,
        "established": bool(candidates),
        "reason": "" if candidates else "the investigation produced no ranked root-cause candidates",
        "candidates": [
            {
                "rank": c.rank,
                "service": c.service,
                "fault_type": c.fault_type,
                "indicator": c.indicator,
                "change_id": c.change_id,
                "confidence": c.confidence,
                "evidence_ids": list(c.evidence_ids),
                "reason": c.reason,
            }
            for c in candidates
        ],
    }


def facts_payload(facts: IncidentFacts) -> dict[str, Any]:
    """facts.json: the facts, plus every figure and time under its dotted name (what a summary
    line cites and what the report linter checks its numbers against)."""
    return {
        **facts.model_dump(mode="json"),
        "figures": {name: f.model_dump(mode="json") for name, f in facts.figures().items()},
        "times": {name: at.isoformat() for name, at in facts.times().items()},
    }


def metrics_payload(record: RunRecord) -> dict[str, Any]:
    """metrics.json content: the metrics, their milestones, and how each was derived or why not."""
    return {"incident_id": record.incident.id, **derive_metrics(record).payload()}


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n"


def _write(path: Path, text: str) -> None:
    # Write beside and rename, so a reader never sees half a report.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# Documents whose text is assembled from fragments (labels joined to values, claims built from
# several fields) get a second pass over the rendered text. timeline.md and the JSON files hold the
# record's already-redacted strings verbatim, and are the large ones, so a second pass would only
# cost time.
SECOND_PASS = frozenset({"postmortem.md", "postmortem.html", "workflow.md"})


def write_reports(record: RunRecord, out_dir: Path, policy: ReportPolicy | None = None) -> dict[str, Path]:
    """Write every report of a run into out_dir; returns file name → path."""
    record = redacted_record(record)
    index = index_evidence(record)
    facts = facts_of(record)
    metrics = derive_metrics(record, facts)
    view = build_view(record, index, metrics, facts, policy)

    texts: dict[str, str] = {
        "facts.json": _dump(facts_payload(facts)),
        "postmortem.md": render_markdown(view),
        "postmortem.html": render_html(view),
        "timeline.md": render_timeline(record, metrics),
        "workflow.md": render_workflow(record, index, metrics, view),
        "context.json": _dump(record.context),
        "findings.json": _dump(findings_payload(record, index)),
        "diagnosis.json": _dump(diagnosis_payload(record)),
        "metrics.json": _dump({"incident_id": record.incident.id, **metrics.payload()}),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name in REPORT_FILES:
        path = out_dir / name
        text = texts[name]
        _write(path, redact(text) if name in SECOND_PASS else text)
        written[name] = path
    return written
