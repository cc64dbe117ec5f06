"""Small helpers the database, code, impact and security specialists share: reading the incident's
window, onset and suspect service from the context or the bundle, and numbering evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from warroom.agents.base import AgentContext
from warroom.agents.outputs import DIAGNOSIS, INCIDENT, SUSPECT_SERVICE
from warroom.analysis.changes import detect_onset
from warroom.incident import Evidence
from warroom.values import parse_time


def window(ctx: AgentContext) -> tuple[datetime, datetime]:
    span = ctx.telemetry.manifest.effective_window()
    return span.start, span.end


def suspect_service(ctx: AgentContext) -> str | None:
    """The suspected service: named by an earlier phase, else the best diagnosis, else the alert's."""
    named = ctx.read(SUSPECT_SERVICE)
    if named:
        return named
    diagnosis = ctx.read_list(DIAGNOSIS)
    if diagnosis and diagnosis[0].service:
        return diagnosis[0].service
    return ctx.telemetry.manifest.alert.service


def onset(ctx: AgentContext, services: list[str] | None) -> datetime:
    """When the incident started: measured on the given services' signals (all when None), else the
    start the commander recorded, else the alert time."""
    start, _ = window(ctx)
    fired = ctx.telemetry.manifest.alert.fired_at
    incident = ctx.read(INCIDENT)
    recorded = parse_time(incident.started_at if incident else None)
    baseline = ctx.telemetry.baseline.metrics if ctx.telemetry.baseline is not None else None
    measured = detect_onset(ctx.telemetry.metrics, services, start, recorded or fired, baseline)
    return measured


class EvidenceIds:
    """Stable evidence ids per agent: prefix-1, prefix-2, … in the order they are cited."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.items: list[Evidence] = []

    def add(self, evidence: Evidence) -> Evidence:
        numbered = evidence.model_copy(update={"id": f"{self.prefix}-{len(self.items) + 1}"})
        self.items.append(numbered)
        return numbered

    def dumps(self) -> list[dict[str, Any]]:
        return [e.model_dump(mode="json") for e in self.items]
