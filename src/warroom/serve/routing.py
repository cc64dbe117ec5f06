"""Routing: which route an alert takes (label matchers, first match wins), how alerts group, and
whether its severity clears the route's floor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from warroom.application import load_spec
from warroom.errors import InputError
from warroom.incident import Incident, Severity
from warroom.serve.config import SEVERITIES, RouteConfig, ServeConfig
from warroom.serve.matchers import Matcher, parse_matcher
from warroom.sources.bundle import BundleSource
from warroom.sources.contract import BundleSpec
from warroom.sources.incident_telemetry import read_incident
from warroom.workflow.engine import draft_incident
from warroom.workflow.spec import WorkflowSpec

# Severity label values alerting rules commonly use, on warroom's P0–P3 scale. Anything else
# (info, none, a missing label) ranks below P3, under every floor: such alerts are stored and
# listed, never escalated into an incident.
ALIASES = {
    "critical": "P1",
    "page": "P1",
    "high": "P2",
    "error": "P2",
    "major": "P2",
    "warning": "P3",
    "minor": "P3",
    "low": "P3",
}
BELOW_FLOOR = len(SEVERITIES)


def severity_of(labels: dict[str, str]) -> Severity | None:
    raw = labels.get("severity", "").strip()
    value = raw.upper() if raw.upper() in SEVERITIES else ALIASES.get(raw.lower())
    return Severity(value) if value else None


def severity_rank(severity: Severity | None) -> int:
    return SEVERITIES.index(severity.value) if severity is not None else BELOW_FLOOR


@dataclass(frozen=True)
class Source:
    """A route's telemetry: a bundle replayed as if live (its alert time anchors incident time)."""

    bundle: Path
    draft: Incident
    alert_time: datetime


@dataclass(frozen=True)
class Route:
    config: RouteConfig
    matchers: tuple[Matcher, ...]
    spec: WorkflowSpec
    source: Source | None

    @property
    def name(self) -> str:
        return self.config.name

    def matches(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def group_key(self, labels: dict[str, str]) -> str:
        """The group of an alert that came without Alertmanager's groupKey."""
        parts = ",".join(f"{name}={labels.get(name, '')}" for name in self.config.group_by)
        return f"route:{self.name}:{{{parts}}}"

    def clears_floor(self, severity: Severity | None) -> bool:
        return severity_rank(severity) <= SEVERITIES.index(self.config.min_severity)


def _source(path: str) -> Source:
    source = BundleSource(path)
    telemetry = read_incident(source)  # validated once, at start: a bad bundle stops the server with one line
    return Source(source.root.resolve(), draft_incident(telemetry), telemetry.manifest.alert.fired_at)


class Router:
    def __init__(self, config: ServeConfig) -> None:
        replay = _source(config.replay) if config.replay else None
        routes = []
        for index, rc in enumerate(config.routes):
            try:
                spec = load_spec(rc.workflow)
            except InputError as exc:
                raise InputError(exc.message, file=exc.file, field=f"serve.routes.{index}.workflow") from None
            source = _source(rc.bundle) if rc.bundle else replay
            routes.append(Route(rc, tuple(parse_matcher(m) for m in rc.matchers), spec, source))
        self.routes = routes

    def route(self, labels: dict[str, str]) -> Route | None:
        return next((r for r in self.routes if r.matches(labels)), None)

    def bundles(self) -> list[BundleSpec]:
        """The bundles the routes replay (the worker pool warms on them)."""
        paths = sorted({r.source.bundle for r in self.routes if r.source is not None})
        return [BundleSpec(path=str(p)) for p in paths]
