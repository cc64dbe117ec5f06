"""The incident's facts: one typed record of every figure, time and outcome the reports quote.

Nothing here measures telemetry. Each figure was computed once, by the step that measured it, over
a stated window and method, and persisted as that step's output: impact (customer-impact analyst),
severity (the assessment), action outcomes (the change executor), recovery (recovery validation),
onsets and changes (documentation). `collect_facts` gathers them from the context into one
`IncidentFacts`, and classifies what each action's recorded outcome says really happened. Reports,
messages and the API quote from there, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from warroom.analysis.impact import ImpactFacts
from warroom.figures import Figure, Window
from warroom.incident import Incident, RootCauseCandidate, TimelineEvent, TimelineKind
from warroom.values import as_dict, parse_time


class ActionMode(StrEnum):
    """What an action's recorded outcome says happened."""

    EXECUTED = "executed"  # a real change ran
    DRY_RUN = "dry_run"  # previewed only: nothing changed
    REPLAYED = "replayed"  # read from recorded after/<kind>/ data: nothing changed
    SKIPPED = "skipped"  # a manual step or one awaiting approval: not run
    FAILED = "failed"  # it ran and failed, timed out, or was interrupted
    UNDONE = "undone"  # it ran, did not help, and was taken back
    PROPOSED = "proposed"  # never taken up

    @property
    def changed_the_system(self) -> bool:
        return self in (ActionMode.EXECUTED, ActionMode.UNDONE)


def classify_outcome(outcome: Mapping[str, Any]) -> ActionMode:
    """The mode of one recorded outcome ({status, data, …} as the change executor records it)."""
    status = str(outcome.get("status") or "")
    if as_dict(outcome.get("data")).get("simulated"):
        return ActionMode.REPLAYED
    return {
        "dry_run": ActionMode.DRY_RUN,
        "executed": ActionMode.EXECUTED,
        "verified": ActionMode.EXECUTED,
        "undone": ActionMode.UNDONE,
        "failed": ActionMode.FAILED,
        "timed_out": ActionMode.FAILED,
        "skipped": ActionMode.SKIPPED,
    }.get(status, ActionMode.PROPOSED)


def executed_outcomes(outcomes: Iterable[Any]) -> list[dict[str, Any]]:
    """The outcomes of actions that really ran and were not taken back."""
    return _outcomes_in(outcomes, ActionMode.EXECUTED)


def undone_outcomes(outcomes: Iterable[Any]) -> list[dict[str, Any]]:
    """The outcomes of actions that really ran and were taken back (they did not bring recovery)."""
    return _outcomes_in(outcomes, ActionMode.UNDONE)


def _outcomes_in(outcomes: Iterable[Any], mode: ActionMode) -> list[dict[str, Any]]:
    return [o for o in outcomes if isinstance(o, dict) and classify_outcome(o) is mode]


class ActionFact(BaseModel):
    """One action and what became of it, in the words its recorded outcome supports."""

    id: str
    kind: str
    title: str
    target: str | None = None
    risk: str = "medium"
    mode: ActionMode = ActionMode.PROPOSED
    verified: bool | None = None  # the recovery check of this action, where one ran
    detail: str = ""
    at: datetime | None = None  # incident time of the outcome
    approved_by: str | None = None

    def words(self) -> str:
        """What happened, saying whether anything changed."""
        if self.mode is ActionMode.EXECUTED:
            check = {True: "recovery verified", False: "recovery not seen", None: "recovery not checked"}
            return f"executed; {check[self.verified]}"
        if self.mode is ActionMode.REPLAYED:
            seen = {True: "returns to baseline", False: "does not return to baseline", None: "cannot tell"}
            return f"replayed, nothing changed: the recorded data after {self.kind} {seen[self.verified]}"
        if self.mode is ActionMode.DRY_RUN:
            return "dry run only, nothing changed"
        if self.mode is ActionMode.SKIPPED:
            return "not executed: " + (self.detail.split(":")[0] if self.detail else "skipped")
        if self.mode is ActionMode.UNDONE:
            return "executed, did not recover the service, undone"
        if self.mode is ActionMode.FAILED:
            return "failed" + (f": {self.detail[:120]}" if self.detail else "")
        return "proposed, not taken"


class RecoveryFacts(BaseModel):
    """Whether the service is back, and on what evidence."""

    verdict: str = "not_checked"  # recovered | not_recovered | insufficient_data | not_checked
    action: str | None = None  # the action kind whose after-data was tested
    basis: str = "none"  # observed (after an executed action) | replayed (recorded data only) | none
    verified: bool = False  # recovered on an executed action: the only recovery a report may claim
    at: datetime | None = None  # when the signals were back, in the tested data
    reason: str = ""
    signals: list[str] = Field(default_factory=list)


class ChangeFacts(BaseModel):
    """What the change history holds and what the correlation concluded."""

    history: bool | None = None  # the bundle has a change history at all (None: not looked at)
    checked: bool = False  # change correlation ran over it
    ids: list[str] = Field(default_factory=list)  # every change in the looked-at period
    commits: list[str] = Field(default_factory=list)
    preceding: list[str] = Field(default_factory=list)  # changes before the onset (within the look-back)
    suspect: dict[str, Any] | None = None


def candidates_of(context: Mapping[str, Any]) -> list[RootCauseCandidate]:
    """The ranked root-cause candidates, best first. The one reader of the diagnosis' shape: when
    the diagnosis changes shape, this is the place that changes."""
    out: list[RootCauseCandidate] = []
    for raw in context.get("diagnosis") or []:
        if isinstance(raw, RootCauseCandidate):
            out.append(raw)
            continue
        if not isinstance(raw, dict):
            continue
        try:
            out.append(
                RootCauseCandidate.model_validate(
                    {k: v for k, v in raw.items() if k in RootCauseCandidate.model_fields}
                )
            )
        except ValidationError:
            continue
    return sorted(out, key=lambda c: (c.rank, -c.confidence))


class CauseFacts(BaseModel):
    """The leading root-cause candidate as the diagnosis ranked it."""

    service: str
    fault_type: str
    indicator: str
    change_id: str | None = None
    confidence: Figure
    evidence_ids: list[str] = Field(default_factory=list)


def _cause(context: Mapping[str, Any]) -> CauseFacts | None:
    ranked = candidates_of(context)
    if not ranked:
        return None
    best = ranked[0]
    return CauseFacts(
        service=best.service,
        fault_type=best.fault_type,
        indicator=best.indicator,
        change_id=best.change_id,
        confidence=Figure(value=best.confidence, unit="ratio", method="the diagnosis' calibrated confidence"),
        evidence_ids=list(best.evidence_ids),
    )


class SeverityFacts(BaseModel):
    level: str
    label: str
    rule: str
    figures: dict[str, Figure] = Field(default_factory=dict)  # error_rate, latency_p99_ms, the SLOs

    @property
    def error_rate(self) -> Figure | None:
        return self.figures.get("error_rate")


class OnsetFact(BaseModel):
    service: str
    signal: str
    at: datetime
    method: str = ""


class Interruption(BaseModel):
    """A run that stopped (crash or approval wait) and was resumed: engine time not spent."""

    at: datetime  # engine clock when the run continued
    previous_status: str
    wall_resumed_at: datetime | None = None


class EngineFacts(BaseModel):
    """How long warroom itself took: engine time, never mixed with incident time."""

    busy_seconds: Figure
    interruptions: list[Interruption] = Field(default_factory=list)


class IncidentFacts(BaseModel):
    incident_id: str
    title: str = ""
    severity: SeverityFacts | None = None
    alert_at: datetime | None = None
    onset_at: datetime | None = None  # the first signal of any followed service to leave its baseline
    onsets: list[OnsetFact] = Field(default_factory=list)
    impact: ImpactFacts | None = None
    cause: CauseFacts | None = None
    actions: list[ActionFact] = Field(default_factory=list)
    recovery: RecoveryFacts = Field(default_factory=RecoveryFacts)
    changes: ChangeFacts = Field(default_factory=ChangeFacts)
    mitigated_at: datetime | None = None  # first executed action
    resolved_at: datetime | None = None  # verified recovery
    detection: Figure | None = None  # onset → alert
    trigger_lead: Figure | None = None  # suspect change → first onset
    time_to_mitigate: Figure | None = None  # alert → first executed action
    time_to_resolve: Figure | None = None  # alert → verified recovery
    engine: EngineFacts | None = None

    @property
    def executed(self) -> list[ActionFact]:
        return [a for a in self.actions if a.mode is ActionMode.EXECUTED]

    @property
    def mitigated(self) -> bool:
        return bool(self.executed)

    def figures(self) -> dict[str, Figure]:
        """Every figure under a dotted name (impact.failure_rate, severity.error_rate, …)."""
        out: dict[str, Figure] = {}
        if self.impact is not None:
            for name in type(self.impact).model_fields:
                value = getattr(self.impact, name)
                if isinstance(value, Figure):
                    out[f"impact.{name}"] = value
        if self.severity is not None:
            out.update({f"severity.{name}": figure for name, figure in self.severity.figures.items()})
        if self.cause is not None:
            out["cause.confidence"] = self.cause.confidence
        for name in ("detection", "trigger_lead", "time_to_mitigate", "time_to_resolve"):
            figure = getattr(self, name)
            if figure is not None:
                out[name] = figure
        if self.engine is not None:
            out["engine.busy_seconds"] = self.engine.busy_seconds
        return out

    def times(self) -> dict[str, datetime]:
        """Every incident-time stamp under a name (alert_at, onset_at, onsets.<signal>.<service> …)."""
        out = {
            name: at
            for name, at in (
                ("alert_at", self.alert_at),
                ("onset_at", self.onset_at),
                ("mitigated_at", self.mitigated_at),
                ("resolved_at", self.resolved_at),
                ("recovery.at", self.recovery.at),
            )
            if at is not None
        }
        if self.impact is not None:
            out["impact.start"] = self.impact.window.start
            out["impact.end"] = self.impact.window.end
        for onset in self.onsets:
            out.setdefault(f"onsets.{onset.signal}.{onset.service}", onset.at)
        suspect_at = parse_time((self.changes.suspect or {}).get("time"))
        if suspect_at is not None:
            out["changes.suspect.time"] = suspect_at
        for action in self.actions:
            if action.at is not None:
                out[f"actions.{action.id}"] = action.at
        return out


def _impact(context: Mapping[str, Any]) -> ImpactFacts | None:
    raw = context.get("impact")
    if not isinstance(raw, dict):
        return None
    try:
        return ImpactFacts.model_validate({k: v for k, v in raw.items() if k in ImpactFacts.model_fields})
    except ValidationError:
        return None  # an impact output of another shape (a site's own agent) is not quoted


def _severity(incident: Incident, context: Mapping[str, Any]) -> SeverityFacts:
    measured = as_dict(as_dict(context.get("incident")).get("severity_figures"))
    figures: dict[str, Figure] = {}
    for name, raw in measured.items():
        try:
            figures[str(name)] = Figure.model_validate(raw)
        except ValidationError:
            continue
    return SeverityFacts(
        level=incident.severity.value, label=incident.severity.label, rule=incident.severity_rule, figures=figures
    )


def _outcome_times(timeline: list[TimelineEvent]) -> dict[str, datetime]:
    """When each action changed the system, in incident time: its `executed` audit step, else its
    earliest outcome record. By time, not by the order of writing: a step's result is written when
    the step ends (after a live recovery check of minutes), before the audit steps its executor
    journalled on the way are copied into the timeline."""
    executed: dict[str, datetime] = {}
    earliest: dict[str, datetime] = {}
    for event in timeline:
        action_id = event.data.get("action_id")
        if event.kind not in (TimelineKind.ACTION_EXECUTED, TimelineKind.ACTION_VERIFIED) or not isinstance(
            action_id, str
        ):
            continue
        earliest[action_id] = min(earliest.get(action_id, event.at), event.at)
        if event.data.get("step") == "executed":
            executed[action_id] = min(executed.get(action_id, event.at), event.at)
    return {**earliest, **executed}


# The audit steps that say where an action stands before its outcome is recorded: the outcome's
# status and its recovery check (None: not checked yet)
_STANDING: dict[str, tuple[str, bool | None]] = {
    "executed": ("executed", None),
    "verified": ("executed", True),
    "not_recovered": ("executed", False),
    "undone": ("undone", None),
    "failed": ("failed", None),
    "timed_out": ("timed_out", None),
    "dry_run": ("dry_run", None),
}


def _standing(timeline: list[TimelineEvent]) -> dict[str, dict[str, Any]]:
    """Each action's latest audit step as an outcome: what the timeline already says happened while
    the executor's step is still under way (a live recovery check waits minutes for the system, and
    its outcome reaches the run's context only when the step ends)."""
    out: dict[str, dict[str, Any]] = {}
    for event in timeline:
        action_id, standing = event.data.get("action_id"), _STANDING.get(str(event.data.get("step")))
        if isinstance(action_id, str) and action_id and standing is not None:
            status, verified = standing
            data = {k: event.data[k] for k in ("kind", "simulated") if k in event.data}
            out[action_id] = {"action_id": action_id, "status": status, "verified": verified, "data": data}
    return out


def _actions(context: Mapping[str, Any], timeline: list[TimelineEvent], approvals: dict[str, str]) -> list[ActionFact]:
    plan = [a for a in context.get("resolution_plan") or [] if isinstance(a, dict) and a.get("id")]
    proposed = [a for a in context.get("proposed_actions") or [] if isinstance(a, dict) and a.get("id")]
    recorded = {
        str(o.get("action_id")): o
        for o in as_dict(context.get("mitigation")).get("outcomes") or []
        if isinstance(o, dict) and o.get("action_id")
    }
    outcomes = {**_standing(timeline), **recorded}  # a recorded outcome is the last word
    at = _outcome_times(timeline)
    facts: dict[str, ActionFact] = {}
    # an outcome of an action no plan lists (a site's own executor) is still what happened
    unlisted = [{"id": i} for i in outcomes if i not in {str(a["id"]) for a in [*plan, *proposed]}]
    for action in [*plan, *proposed, *unlisted]:
        action_id = str(action["id"])
        if action_id in facts:
            continue
        outcome = outcomes.get(action_id, {})
        facts[action_id] = ActionFact(
            id=action_id,
            kind=str(action.get("kind") or as_dict(outcome.get("data")).get("kind") or "unknown"),
            title=str(action.get("title") or action_id),
            target=action.get("target"),
            risk=str(action.get("risk") or "medium"),
            mode=classify_outcome(outcome) if outcome else ActionMode.PROPOSED,
            verified=outcome.get("verified") if isinstance(outcome.get("verified"), bool) else None,
            detail=str(outcome.get("detail") or ""),
            at=at.get(action_id),
            approved_by=approvals.get(action_id),
        )
    return list(facts.values())


def _recovery(context: Mapping[str, Any], actions: list[ActionFact]) -> RecoveryFacts:
    raw = as_dict(context.get("recovery"))
    live = next((a for a in actions if a.mode is ActionMode.EXECUTED and a.verified is True), None)
    if not raw:
        if live is not None:
            return RecoveryFacts(
                verdict="recovered", action=live.kind, basis="observed", verified=True, at=live.at, reason=live.detail
            )
        return RecoveryFacts()
    checks = [c for c in raw.get("checks") or [] if isinstance(c, dict)]
    verified = bool(raw.get("verified")) or live is not None
    return RecoveryFacts(
        verdict=str(raw.get("verdict") or ("recovered" if raw.get("recovered") else "not_recovered")),
        action=raw.get("action"),
        basis=str(raw.get("basis") or "none"),
        verified=verified,
        at=parse_time(raw.get("recovered_at")) if raw.get("recovered") else None,
        reason=str(raw.get("reason") or ""),
        signals=[str(c.get("signal")) for c in checks if not c.get("advisory")],
    )


def _changes(context: Mapping[str, Any]) -> ChangeFacts:
    documented = as_dict(as_dict(context.get("documentation")).get("changes"))
    suspect = as_dict(context.get("suspect_change")) or None
    return ChangeFacts(
        history=bool(documented["history"]) if "history" in documented else None,
        checked="suspect_change" in context or bool(documented.get("checked")),
        ids=[str(i) for i in documented.get("ids") or []],
        commits=[str(c) for c in documented.get("commits") or []],
        preceding=[str(i) for i in documented.get("preceding") or []],
        suspect=suspect,
    )


def _onsets(context: Mapping[str, Any]) -> list[OnsetFact]:
    out: list[OnsetFact] = []
    for event in as_dict(context.get("documentation")).get("timeline") or []:
        if not isinstance(event, dict) or event.get("kind") != "onset":
            continue
        at = parse_time(event.get("at"))
        values = as_dict(event.get("values"))
        if at is not None and event.get("service") and values.get("signal"):
            out.append(
                OnsetFact(
                    service=str(event["service"]),
                    signal=str(values["signal"]),
                    at=at,
                    method=str(values.get("method") or ""),
                )
            )
    return out


def _minutes(start: datetime | None, end: datetime | None, method: str) -> Figure | None:
    if start is None or end is None or end < start:
        return None
    return Figure(
        value=round((end - start).total_seconds() / 60.0, 2),
        unit="min",
        method=method,
        window=Window(start=start, end=end, basis=method),
    )


def busy_seconds(intervals: Iterable[tuple[datetime, datetime]]) -> float:
    """Seconds covered by the union of the intervals: the time steps were running, so an
    interruption or an approval wait between them does not count."""
    merged: list[list[datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return sum((end - start).total_seconds() for start, end in merged)


def interruptions(timeline: list[TimelineEvent]) -> list[Interruption]:
    out: list[Interruption] = []
    for event in timeline:
        data = event.data.get("interruption")
        if event.kind == TimelineKind.NOTE and isinstance(data, dict):
            out.append(
                Interruption(
                    at=event.at,
                    previous_status=str(data.get("previous_status") or "unknown"),
                    wall_resumed_at=parse_time(data.get("wall_resumed_at")),
                )
            )
    return out


def collect_facts(
    context: Mapping[str, Any],
    incident: Incident,
    timeline: list[TimelineEvent] | None = None,
    busy: list[tuple[datetime, datetime]] | None = None,
    approvals: dict[str, str] | None = None,
) -> IncidentFacts:
    """Gather the recorded figures and outcomes into one IncidentFacts (no new measurement).

    `timeline` gives the incident-time stamps of action outcomes and the interruptions; `busy` the
    engine-clock intervals of the steps (engine time); both are absent while a run is under way."""
    events = list(timeline or [])
    actions = _actions(context, events, approvals or {})
    recovery = _recovery(context, actions)
    onsets = _onsets(context)
    documentation = as_dict(context.get("documentation"))
    onset_at = parse_time(documentation.get("first_onset")) or (min(o.at for o in onsets) if onsets else None)
    alert_at = incident.detected_at
    executed_at = [a.at for a in actions if a.mode is ActionMode.EXECUTED and a.at is not None]
    mitigated_at = min(executed_at) if executed_at else None
    resolved_at = recovery.at if recovery.verified else None
    engine = None
    if busy:
        engine = EngineFacts(
            busy_seconds=Figure(
                value=round(busy_seconds(busy), 3),
                unit="s",
                method="union of the steps' run intervals on the engine clock (waits and interruptions excluded)",
            ),
            interruptions=interruptions(events),
        )
    suspect_at = parse_time(as_dict(context.get("suspect_change")).get("time"))
    return IncidentFacts(
        incident_id=incident.id,
        title=incident.title,
        severity=_severity(incident, context),
        alert_at=alert_at,
        onset_at=onset_at,
        onsets=onsets,
        impact=_impact(context),
        cause=_cause(context),
        actions=actions,
        recovery=recovery,
        changes=_changes(context),
        mitigated_at=mitigated_at,
        resolved_at=resolved_at,
        detection=_minutes(onset_at, alert_at, "first onset → alert (incident time)"),
        trigger_lead=_minutes(suspect_at, onset_at, "suspect change → first onset (incident time)"),
        time_to_mitigate=_minutes(alert_at, mitigated_at, "alert → first executed action (incident time)"),
        time_to_resolve=_minutes(alert_at, resolved_at, "alert → verified recovery (incident time)"),
        engine=engine,
    )
