"""Routing: which route an alert takes (label matchers, first match wins), how alerts group, and
whether its severity clears the route's floor."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from warroom.application import load_spec
from warroom.errors import InputError
from warroom.incident import Incident, Severity
from warroom.redact import redact_obj
from warroom.serve.config import SEVERITIES, RouteConfig, ServeConfig
from warroom.serve.matchers import Matcher, parse_matcher
from warroom.serve.payloads import ReceivedAlert, notification_of
from warroom.sources.bundle import BundleSource
from warroom.sources.config import SourcesConfig, parse_duration
from warroom.sources.contract import BundleSpec, LiveSpec, ReplaySpec, SourceSpec
from warroom.sources.incident_telemetry import read_incident
from warroom.sources.live import LiveReader
from warroom.workflow.engine import draft_incident
from warroom.workflow.spec import WorkflowSpec

log = logging.getLogger("warroom.serve")

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


class Source(Protocol):
    """A route's telemetry: the one place a route's source is chosen and described. The intake
    asks it for the draft of a new incident, the spec its run reads, and incident time."""

    @property
    def replay_clock(self) -> bool:
        """Incident time runs on the source's own clock (a replay), not the wall clock."""
        ...

    def describe(self) -> str: ...

    def draft(self, alert: ReceivedAlert) -> Incident:
        """The incident an alert opens, before any agent has assessed it."""
        ...

    def spec(self, incident_id: str, alert: ReceivedAlert, now: datetime) -> SourceSpec:
        """What the run of incident `incident_id`, opened by `alert` at `now` (engine time), reads."""
        ...

    def incident_time(self, own: datetime, first_received: Callable[[], datetime], now: datetime) -> datetime:
        """Incident time of an alert event: `own` is the alert's own time, `first_received` when
        the incident's first alert arrived (engine time)."""
        ...

    def warm_spec(self) -> BundleSpec | None:
        """What the worker pool may read ahead of the first alert, if anything."""
        ...


@dataclass(frozen=True)
class ReplayedBundle:
    """A bundle replayed as if live: its alert time anchors incident time."""

    bundle: Path
    recorded: Incident
    alert_time: datetime
    replay_clock: bool = True

    def describe(self) -> str:
        return f"replay of bundle {self.bundle}"

    def draft(self, alert: ReceivedAlert) -> Incident:
        return self.recorded.model_copy(update={"detected_at": self.alert_time, "telemetry_source": self.describe()})

    def spec(self, incident_id: str, alert: ReceivedAlert, now: datetime) -> SourceSpec:
        return ReplaySpec(path=str(self.bundle), started_at=now)  # the replay runs from the first alert on

    def incident_time(self, own: datetime, first_received: Callable[[], datetime], now: datetime) -> datetime:
        return self.alert_time + (now - first_received())

    def warm_spec(self) -> BundleSpec | None:
        return BundleSpec(path=str(self.bundle))


@dataclass(frozen=True)
class LiveSystem:
    """The live sources of warroom.toml's [sources], read for each incident into a snapshot folder
    of its own (`snapshots/<incident>/`, the alert as received beside it): the period from the
    alert's time minus the lookback to the intake's now. The run reads it when it starts; its
    workers and a resumed run reopen the snapshot (sources/live.py)."""

    sources: SourcesConfig
    config_path: str | None
    snapshots: Path
    names: str  # the configured sources, as people read them
    replay_clock: bool = False

    def describe(self) -> str:
        return f"live ({self.names})"

    def draft(self, alert: ReceivedAlert) -> Incident:
        severity = severity_of(alert.labels)
        labelled = alert.labels.get("severity", "")
        service = alert.labels.get("service")
        rule = f"provisional: alert label severity={labelled}" if labelled else "provisional: not yet assessed"
        return Incident(
            id="",
            title=alert.labels.get("alertname", "alert"),
            severity=severity or Severity.P2,
            severity_rule=rule,
            affected_services=[service] if service else [],
            detected_at=alert.starts_at,
            started_at=alert.starts_at,
            telemetry_source=self.describe(),
        )

    def spec(self, incident_id: str, alert: ReceivedAlert, now: datetime) -> SourceSpec:
        self.snapshots.mkdir(parents=True, exist_ok=True)
        # beside the snapshot folder, which the live read must find empty
        alert_file = self.snapshots / f"{incident_id}.alert.json"
        # as received, but with secrets redacted, like everything else the service keeps of an alert
        body = json.loads(alert.notification) if alert.notification else json.loads(notification_of(alert))
        alert_file.write_text(json.dumps(redact_obj(body), indent=2), encoding="utf-8")
        lookback = parse_duration(self.sources.lookback)
        return LiveSpec(
            path=str((self.snapshots / incident_id).resolve()),
            config=self.config_path,
            alert=str(alert_file.resolve()),
            start=min(alert.starts_at, now) - lookback,
            end=now,
        )

    def incident_time(self, own: datetime, first_received: Callable[[], datetime], now: datetime) -> datetime:
        return own  # a live incident lives on the wall clock: the alert's own time

    def warm_spec(self) -> BundleSpec | None:
        return None


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


def _replayed(path: str) -> ReplayedBundle:
    source = BundleSource(path)
    telemetry = read_incident(source)  # validated once, at start: a bad bundle stops the server with one line
    return ReplayedBundle(source.root.resolve(), draft_incident(telemetry), telemetry.manifest.alert.fired_at)


@dataclass(frozen=True)
class LiveSettings:
    """What live routes read: the [sources] of the configuration file, and where snapshots go."""

    sources: SourcesConfig
    config_path: str | None
    snapshots: Path


def _live(settings: LiveSettings | None) -> LiveSystem:
    """The live sources, checked once at start: none configured (or a header's variable unset)
    stops the server with one line; a prerequisite not met now (Prometheus down) is logged."""
    if settings is None:
        raise InputError("a live route needs the configuration file's [sources]", field="serve.routes")
    reader = LiveReader(settings.sources)
    checks = reader.prometheus.prerequisites() if reader.prometheus else []
    for check in checks:
        if not check.ok:
            log.warning("live source prerequisite not met now: %s (%s)", check.name, check.detail)
    names = ", ".join(f"{kind} {where}" for kind, where in reader.names())
    return LiveSystem(settings.sources, settings.config_path, settings.snapshots, names)


class Router:
    def __init__(self, config: ServeConfig, live: LiveSettings | None = None) -> None:
        replay = _replayed(config.replay) if config.replay else None
        system = _live(live) if any(rc.source == "live" for rc in config.routes) else None
        routes = []
        for index, rc in enumerate(config.routes):
            try:
                spec = load_spec(rc.workflow)
            except InputError as exc:
                raise InputError(exc.message, file=exc.file, field=f"serve.routes.{index}.workflow") from None
            source: Source | None = system if rc.source == "live" else (_replayed(rc.bundle) if rc.bundle else replay)
            routes.append(Route(rc, tuple(parse_matcher(m) for m in rc.matchers), spec, source))
        self.routes = routes

    def route(self, labels: dict[str, str]) -> Route | None:
        return next((r for r in self.routes if r.matches(labels)), None)

    def bundles(self) -> list[BundleSpec]:
        """The bundles the routes replay (the worker pool warms on them)."""
        specs = {spec.path: spec for r in self.routes if r.source is not None if (spec := r.source.warm_spec())}
        return [specs[path] for path in sorted(specs)]
