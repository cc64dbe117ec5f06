"""workflow.md: the workflow as executed, per phase, in the shape of the seed's "Execution Results"."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from warroom.record import PhaseRecord, RunRecord, StepRecord, StepStatus
from warroom.report.evidence import EvidenceIndex, FindingEntry
from warroom.report.metrics import MetricsReport
from warroom.report.postmortem import PostmortemView
from warroom.report.render import template

# workflow.md shows the shape of each phase's context; context.json holds all of it.
MAX_ITEMS = 8
MAX_TEXT = 300
MAX_DEPTH = 6


def abbreviate(value: Any, depth: int = 0) -> Any:
    """A JSON value cut to a readable size: long lists and strings shortened, saying how much."""
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + f"… ({len(value)} chars)"
    if depth >= MAX_DEPTH and isinstance(value, dict | list) and not _flat_and_short(value):
        return f"… ({len(value)} {'keys' if isinstance(value, dict) else 'items'}, see context.json)"
    if isinstance(value, dict):
        return {k: abbreviate(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        head = [abbreviate(v, depth + 1) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            head.append(f"… {len(value) - MAX_ITEMS} more (see context.json)")
        return head
    return value


def _flat_and_short(value: dict[str, Any] | list[Any]) -> bool:
    items = value.values() if isinstance(value, dict) else value
    return len(value) <= MAX_ITEMS and not any(isinstance(v, dict | list) for v in items)


def max_concurrency(steps: list[StepRecord]) -> int:
    """The most steps that were running at one instant, from their recorded start and end times."""
    edges = sorted(
        [(s.started_at, 1) for s in steps] + [(s.finished_at, -1) for s in steps],
        key=lambda e: (e[0], e[1]),  # an end and a start at the same instant do not overlap
    )
    running = best = 0
    for _, delta in edges:
        running += delta
        best = max(best, running)
    return best


@dataclass
class StepView:
    letter: str
    step: StepRecord
    findings: list[FindingEntry] = field(default_factory=list)


@dataclass
class PhaseView:
    number: int
    phase: PhaseRecord
    steps: list[StepView]
    agents: list[str]
    concurrency: int
    work_s: float
    failed: int
    context: Any


def phase_views(record: RunRecord, index: EvidenceIndex) -> list[PhaseView]:
    by_step: dict[tuple[str, str], list[FindingEntry]] = {}
    for entry in index.findings:
        by_step.setdefault((entry.phase_id, entry.step_id), []).append(entry)
    views = []
    for number, phase in enumerate(record.phases, start=1):
        steps = [StepView(_letter(i), s, by_step.get((phase.id, s.step_id), [])) for i, s in enumerate(phase.steps)]
        views.append(
            PhaseView(
                number=number,
                phase=phase,
                steps=steps,
                agents=list(dict.fromkeys(s.agent for s in phase.steps)),
                concurrency=max_concurrency(phase.steps) if phase.steps else 0,
                work_s=sum(s.duration_s for s in phase.steps),
                failed=sum(1 for s in phase.steps if s.status != StepStatus.SUCCEEDED),
                context=abbreviate(phase.context_out),
            )
        )
    return views


def _letter(i: int) -> str:
    letters = ""
    i += 1
    while i:
        i, rem = divmod(i - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def render_workflow(record: RunRecord, index: EvidenceIndex, metrics: MetricsReport, view: PostmortemView) -> str:
    return template("workflow.md.j2").render(
        record=record,
        inc=record.incident,
        phases=phase_views(record, index),
        metrics=metrics,
        v=view,
    )
