"""timeline.md: every event of the run sorted by time, with its time, source and evidence.

Events are sorted by their time stamp (the order they were recorded in breaks ties): an agent
records incident-time events (telemetry onsets, replayed action data) after the engine events of
the same run, and a reader follows time, not insertion order."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import NamedTuple

from warroom.incident import TimelineEvent
from warroom.record import RunRecord
from warroom.report.metrics import MetricsReport
from warroom.report.postmortem import event_evidence_ids
from warroom.report.render import fmt_offset, fmt_ts, fmt_value, md_cell, template

# Keys shown in their own column need not be repeated in the details.
_SHOWN = frozenset({"evidence_ids", "evidence", "finding_id"})
MAX_DETAILS = 300


class Row(NamedTuple):
    """One table row, every cell already Markdown-safe (cells are formatted here, not in the
    template, because a run can have tens of thousands of events)."""

    seq: str
    at: str
    offset: str
    kind: str
    source: str
    summary: str
    evidence: str
    details: str


def _details(data: dict[str, object]) -> str:
    rest = {k: v for k, v in data.items() if k not in _SHOWN and k != "run_id"}
    if not rest:
        return ""
    text = fmt_value(rest)
    if len(text) > MAX_DETAILS:
        text = text[: MAX_DETAILS - 1] + "…"
    return md_cell(text)


def rows(events: list[TimelineEvent], origin_at: datetime | None) -> list[Row]:
    out = []
    for i, ev in enumerate(events, start=1):
        out.append(
            Row(
                seq=str(ev.seq if ev.seq is not None else i),
                at=fmt_ts(ev.at),
                offset=fmt_offset(ev.at, origin_at),
                kind=ev.kind.value,
                source=md_cell(ev.source),
                summary=md_cell(ev.summary),
                evidence=md_cell(", ".join(event_evidence_ids(ev))),
                details=_details(ev.data),
            )
        )
    return out


def render_timeline(record: RunRecord, metrics: MetricsReport) -> str:
    origin = metrics.milestones["detected"]
    counts = Counter(ev.kind.value for ev in record.timeline)
    return template("timeline.md.j2").render(
        record=record,
        inc=record.incident,
        origin=origin,
        counts=sorted(counts.items()),
        rows=rows(sorted(record.timeline, key=lambda e: e.at), origin.at),
    )
