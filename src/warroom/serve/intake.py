"""Alert intake: store each alert, attach it to its group's open incident or open one, queue the
run — all in one transaction, committed before the sender gets its 2xx.

Grouping, in order: the same occurrence (fingerprint + start) stays with its incident; the same
group (Alertmanager's groupKey, else the route's `group_by` labels) attaches to the group's open
incident, unless every alert of that incident resolved `regroup_after_s` ago or more (the group
firing again after a quiet spell is a new incident); a new group on a route that opened an incident
less than `storm_window_s` ago joins that incident (a storm becomes one incident, not thousands);
otherwise a new incident opens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from sqlalchemy.orm import Session

from warroom.incident import TimelineEvent, TimelineKind
from warroom.redact import redact_obj
from warroom.serve.payloads import ReceivedAlert
from warroom.serve.routing import Route, Router, severity_of
from warroom.store import alerts as alert_store
from warroom.store.alerts import Occurrence
from warroom.store.repository import Store
from warroom.workflow.engine import Engine, RunOptions
from warroom.workflow.spec import ApprovalPolicy


@dataclass(frozen=True)
class RunSettings:
    """How the service runs the workflows it starts."""

    reports_dir: Path
    execute: bool = False
    workers: int = 2


@dataclass
class AlertOutcome:
    fingerprint: str
    status: str
    outcome: str  # opened | attached | stored
    incident_id: str | None
    detail: str = ""


@dataclass
class IntakeResult:
    alerts: list[AlertOutcome] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)  # runs queued by this intake

    @property
    def incident_ids(self) -> list[str]:
        return list(dict.fromkeys(a.incident_id for a in self.alerts if a.incident_id))


def accept(
    session: Session, store: Store, router: Router, settings: RunSettings, received: list[ReceivedAlert]
) -> IntakeResult:
    """Store and route a batch of alerts in the caller's transaction; once it has committed, the
    caller submits `result.runs` (the service runs this in its group commit)."""
    intake = _Intake(store, router, settings, session, datetime.now(UTC))
    for alert in received:
        intake.take(alert)
    return intake.result


@lru_cache(maxsize=65_536)
def _redacted_item(key: str, value: str) -> tuple[str, str]:
    # Label sets repeat across a storm's alerts: redact each distinct (key, value) once.
    ((out_key, out_value),) = redact_obj({key: value}).items()
    return out_key, out_value


def _redacted(mapping: dict[str, str]) -> dict[str, str]:
    return dict(_redacted_item(k, v) for k, v in mapping.items())


@dataclass
class _Memo:
    """What one transaction has looked up or decided: a group's incident, an incident's first
    receipt, a route's storm incident, whether an incident had gone quiet. The group commit runs
    many requests in one transaction, and they share it; a new transaction (the next batch, or a
    job run again alone) starts empty, so it never holds what a rolled-back transaction saw."""

    groups: dict[str, str | None] = field(default_factory=dict)
    first: dict[str, datetime] = field(default_factory=dict)
    storms: dict[str, str | None] = field(default_factory=dict)
    quiet: dict[str, bool] = field(default_factory=dict)


class _Intake:
    def __init__(self, store: Store, router: Router, settings: RunSettings, session: Session, now: datetime) -> None:
        self.store = store
        self.router = router
        self.settings = settings
        self.session = session
        self.now = now
        self.result = IntakeResult()
        memo = session.info.setdefault("warroom.intake", _Memo())
        self._groups = memo.groups
        self._first = memo.first
        self._storms = memo.storms
        self._quiet_of = memo.quiet

    def take(self, alert: ReceivedAlert) -> None:
        # Secrets in alert text (a URL with a password in an annotation) never reach the store.
        labels = _redacted(alert.labels)
        annotations = _redacted(alert.annotations)
        route = self.router.route(labels)
        group_key = alert.group_key or (route.group_key(labels) if route else f"unrouted:{alert.fingerprint}")
        row = alert_store.receive_alert(
            self.session,
            fingerprint=alert.fingerprint,
            starts_at=alert.starts_at,
            ends_at=alert.ends_at,
            status=alert.status,
            source=alert.source,
            group_key=group_key,
            labels=labels,
            annotations=annotations,
            received_at=self.now,
        )
        if row.incident_id is not None:
            if row.status == "resolved" and row.previous_status != "resolved":
                self._timeline(row, route)
            self._outcome(row, "attached", "a re-send of an alert already on the incident")
            return
        if route is None:
            self._outcome(row, "stored", "no route matches the alert's labels")
            return
        incident_id = self._group_incident(group_key)
        if incident_id is not None and row.status == "firing" and self._quiet(incident_id, route):
            incident_id = None  # the group fires again after its incident went quiet: a new incident
        detail = "same alert group"
        if incident_id is None and route.config.storm_window_s > 0:
            since = self.now - timedelta(seconds=route.config.storm_window_s)
            if route.name not in self._storms:
                self._storms[route.name] = alert_store.storm_incident(self.session, route.name, since)
            incident_id = self._storms[route.name]
            if incident_id is not None:
                alert_store.link_group(self.session, group_key, route.name, incident_id, self.now)
                self._groups[group_key] = incident_id
                detail = f"storm: route {route.name} opened this incident under {route.config.storm_window_s:g} s ago"
        if incident_id is not None:
            row.incident_id = incident_id
            self._timeline(row, route)
            self._outcome(row, "attached", detail)
            return
        self._open(row, alert, route, group_key)

    def _quiet(self, incident_id: str, route: Route) -> bool:
        """Every alert of the incident resolved, the last of them `regroup_after_s` ago or more
        (looked up once per incident and transaction: a storm's alerts share their group's)."""
        if incident_id not in self._quiet_of:
            firing, changed = alert_store.alert_activity(self.session, incident_id)
            quiet_since = self.now - timedelta(seconds=route.config.regroup_after_s)
            self._quiet_of[incident_id] = firing == 0 and changed is not None and changed <= quiet_since
        return self._quiet_of[incident_id]

    def _group_incident(self, group_key: str) -> str | None:
        if group_key not in self._groups:
            self._groups[group_key] = alert_store.open_incident_of_group(self.session, group_key)
        return self._groups[group_key]

    def _open(self, row: Occurrence, alert: ReceivedAlert, route: Route, group_key: str) -> None:
        why_not = self._why_no_incident(row, route)
        if why_not:
            self._outcome(row, "stored", why_not)
            return
        assert route.source is not None
        source = route.source
        severity = severity_of(row.labels)
        summary = row.annotations.get("summary") or row.annotations.get("description") or ""
        service = row.labels.get("service")
        draft = source.draft(alert.model_copy(update={"labels": row.labels, "annotations": row.annotations}))
        draft = draft.model_copy(
            update={
                "title": summary or row.labels.get("alertname", draft.title),
                **({"severity": severity} if severity else {}),
                **({"affected_services": [service]} if service else {}),
            }
        )
        incident = self.store.add_incident(self.session, draft)
        options = RunOptions(
            source=source.spec(incident.id, alert, self.now),
            replay_clock=source.replay_clock,
            execute=self.settings.execute,
            grant=ApprovalPolicy.NONE,
            out_dir=str((self.settings.reports_dir / incident.id).resolve()),
            # worker processes, not threads: the analysis then never holds the server's GIL, and
            # a step past its timeout can be stopped (its process is killed)
            processes=True,
            workers=self.settings.workers,
            hold_for_approval=True,
        )
        row.incident_id = incident.id
        self._first[incident.id] = self.now
        engine = Engine(self.store)
        run_id = engine.open_run(self.session, incident.id, self._event(row, route), route.spec, options)
        alert_store.link_group(self.session, group_key, route.name, incident.id, self.now)
        self._groups[group_key] = incident.id
        self._storms[route.name] = incident.id
        self.result.runs.append(run_id)
        self._outcome(row, "opened", f"route {route.name}, workflow {route.spec.name}")

    def _why_no_incident(self, row: Occurrence, route: Route) -> str:
        if row.status == "resolved":
            return "resolved, and its group has no open incident"
        if not route.clears_floor(severity_of(row.labels)):
            return f"severity '{row.labels.get('severity', '')}' is below route {route.name}'s floor"
        if route.source is None:
            return f"route {route.name} has no telemetry source (give it a bundle, or serve --replay)"
        return ""

    def _event(self, row: Occurrence, route: Route | None) -> TimelineEvent:
        resolved = row.status == "resolved"
        name = row.labels.get("alertname", "alert")
        summary = row.annotations.get("summary", "")
        return TimelineEvent(
            at=self._incident_time(row, route, resolved),
            kind=TimelineKind.ALERT,
            source=row.source,
            summary=f"{'resolved' if resolved else 'firing'}: {name}" + (f": {summary}" if summary else ""),
            data={
                "fingerprint": row.fingerprint,
                "status": row.status,
                "received_at": self.now.isoformat(),
                **row.labels,
            },
        )

    def _incident_time(self, row: Occurrence, route: Route | None, resolved: bool) -> datetime:
        """Incident time of the alert: its own, or on the route source's clock (a replay's: the
        bundle's alert time plus the time since the incident's first alert arrived)."""
        own = (row.ends_at if resolved and row.ends_at else row.starts_at).astimezone(UTC)
        source = route.source if route else None
        if source is None:
            return own
        incident_id = row.incident_id

        def first_received() -> datetime:
            if incident_id is None:
                return self.now
            if incident_id not in self._first:
                self._first[incident_id] = alert_store.first_received(self.session, incident_id) or self.now
            return self._first[incident_id]

        return source.incident_time(own, first_received, self.now)

    def _timeline(self, row: Occurrence, route: Route | None) -> None:
        assert row.incident_id is not None
        kind = "resolved" if row.status == "resolved" else "alert"
        key = f"{kind}:{row.fingerprint}:{row.starts_at.isoformat()}"
        alert_store.add_alert_event(self.session, row.incident_id, self._event(row, route), key)

    def _outcome(self, row: Occurrence, outcome: str, detail: str) -> None:
        alert_store.settle_alert(self.session, row, outcome, detail)
        self.result.alerts.append(AlertOutcome(row.fingerprint, row.status, outcome, row.incident_id, detail))
