"""The blameless postmortem (Markdown and HTML): one view built from the record, two templates.

Structure of the published industry postmortems (Google SRE, PagerDuty, Atlassian): a summary a
person reads in a minute, then impact, detection, response, root cause (trigger and contributing
factors), propagation path, resolution, timeline, lessons (what went well, what went badly),
action items with owners and due dates; the evidence in an appendix and in findings.json.

Every figure is quoted from the incident's facts (`analysis.facts`), with the window and method
it was computed over; every statement about an action or a recovery is worded from its recorded
outcome; every other statement carries the evidence ids it rests on or names the record it restates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from warroom.analysis.facts import ActionFact, ActionMode, IncidentFacts
from warroom.figures import Figure, format_clock, format_number, format_time, unit_of
from warroom.incident import Role, RootCauseCandidate, TimelineEvent, TimelineKind
from warroom.record import RunRecord
from warroom.report.charts import Band, Line, Marker, time_series_svg
from warroom.report.evidence import EvidenceIndex, diagnosis_candidates
from warroom.report.metrics import MetricsReport
from warroom.report.render import fmt_minutes, fmt_seconds, fmt_value, humanize, template
from warroom.values import as_dict as _dict
from warroom.values import parse_time


@dataclass(frozen=True)
class ReportPolicy:
    """Defaults the postmortem applies where the run gave no value; each use is labelled as policy."""

    due_days: tuple[tuple[str, int], ...] = (("immediate", 7), ("short_term", 14), ("follow_up", 30))
    default_due_days: int = 30
    review_after_days: int = 7
    timeline_limit: int = 60
    chart_limit: int = 6
    summary_lines: int = 15  # a summary a person reads in one minute
    close_confidence: float = 0.1  # top candidates closer than this make the diagnosis ambiguous

    def due_after(self, priority: str) -> int:
        return dict(self.due_days).get(priority, self.default_due_days)


# Personal attribution stays out of a blameless document; commits and files identify the change.
BLAMELESS_DROP = frozenset({"author", "authors", "committer", "email", "author_email"})
TEXT_KEYS = ("text", "summary", "title", "description", "cause", "message", "detail", "name")
ANALYST = "post-incident analysis"


@dataclass
class Claim:
    """One statement and what it rests on: evidence ids, facts (dotted names), or a record."""

    text: str
    evidence_ids: list[str] = field(default_factory=list)
    source: str = ""
    facts: list[str] = field(default_factory=list)


@dataclass
class SummaryLine:
    label: str
    claim: Claim


@dataclass
class Section:
    """Rows of a section, or the reason it could not be established."""

    items: list[Any] = field(default_factory=list)
    absent: str = ""


@dataclass
class FigureRow:
    label: str
    value: str
    basis: str  # measured | estimated
    window: str
    method: str
    fact: str


@dataclass
class TimelineRow:
    at: datetime
    clock: str  # incident (telemetry, alert, changes) | response (what warroom did, on the run's clock)
    kind: str
    text: str
    evidence_ids: list[str] = field(default_factory=list)


@dataclass
class ActionItem:
    title: str
    owner: str
    owner_basis: str
    due: str
    due_basis: str
    priority: str
    evidence_ids: list[str]


@dataclass
class Chart:
    title: str
    svg: str  # built from numbers and escaped labels only
    caption: str
    evidence_ids: list[str]


@dataclass
class PostmortemView:
    record: RunRecord
    facts: IncidentFacts
    index: EvidenceIndex
    metrics: MetricsReport
    summary: list[SummaryLine]
    impact: list[FigureRow]
    impact_absent: str
    detection: Section
    response: Section
    trigger: Section
    root_cause: Section
    contributing: Section
    propagation: Section
    actions: list[ActionFact]
    recovery: Claim
    timeline: list[TimelineRow]
    timeline_omitted: int
    went_well: Section
    went_badly: Section
    action_items: Section
    review: Claim
    charts: list[Chart]
    candidates: Section
    unknown_evidence_ids: list[str]
    metric_rows: list[tuple[str, str, str]]
    engine: Section
    limitations: Section
    evidence: Section
    generated_from: str

    def words_of(self, action_id: str) -> str:
        """What became of an action, in the words its recorded outcome supports."""
        return next((a.words() for a in self.actions if a.id == action_id), "no recorded outcome")


def _text_of(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        for key in TEXT_KEYS:
            value = item.get(key)
            if isinstance(value, str) and value:
                return value
        return fmt_value({k: v for k, v in item.items() if k not in BLAMELESS_DROP})
    return fmt_value(item)


def _ids_of(item: Any) -> list[str]:
    if isinstance(item, dict):
        for key in ("evidence_ids", "evidence"):
            value = item.get(key)
            if isinstance(value, list):
                ids = [v if isinstance(v, str) else v.get("id", "") for v in value if isinstance(v, str | dict)]
                return [i for i in ids if i]
    return []


def _claims(items: Any, source: str = "") -> list[Claim]:
    """Claims from a context list; `source` names where uncited ones came from, and says so."""
    if not isinstance(items, list):
        items = [items] if items else []
    out = []
    for item in items:
        ids = _ids_of(item)
        out.append(Claim(_text_of(item), ids, "" if ids or not source else source))
    return out


def _pm(record: RunRecord) -> dict[str, Any]:
    return _dict(record.context.get("postmortem"))


def _pm_absent(record: RunRecord, key: str) -> str:
    if "postmortem" not in record.context:
        return "no post-incident analysis ran ('postmortem' absent from the context)"
    return f"the post-incident analysis produced no '{key}'"


def _window_text(figure: Figure) -> str:
    if figure.window is None:
        return "—"
    return f"{format_time(figure.window.start)} → {format_clock(figure.window.end)}"


# -- summary ------------------------------------------------------------------------------------


def _impact_line(facts: IncidentFacts, evidence_ids: list[str]) -> Claim | None:
    impact = facts.impact
    if impact is None or not impact.failure_rate.known:
        return None
    keys = ["impact.failure_rate", "impact.start", "impact.end", "impact.baseline_failure_rate"]
    text = (
        f"{impact.failure_rate.text()} of requests at {impact.service} failed from {format_clock(impact.window.start)} "
        f"to {format_clock(impact.window.end)} (baseline {impact.baseline_failure_rate.text()})"
    )
    if impact.requests.known:
        text += f": {impact.failed_requests.value:,.0f} of {impact.requests.text()}"
        keys += ["impact.failed_requests", "impact.requests"]
    if impact.users_affected.known and impact.users_active.known:
        text += f"; {impact.users_affected.value:,.0f} of {impact.users_active.text()} active saw a failure"
        keys += ["impact.users_affected", "impact.users_active"]
    if impact.revenue.known:
        text += f"; revenue impact {impact.revenue.text()} ({impact.revenue.basis.value})"
        keys.append("impact.revenue")
    return Claim(text, evidence_ids, "customer impact analysis", keys)


def _trigger_text(facts: IncidentFacts) -> Claim | None:
    change = facts.changes.suspect
    if not change:
        return None
    what = " ".join(str(change[k]) for k in ("kind", "version") if change.get(k))
    at = parse_time(change.get("time"))
    text = f"change {change.get('id')} ({what}) of {change.get('service')}"
    keys: list[str] = []
    if at is not None:
        text += f" at {format_clock(at)}"
        keys.append("changes.suspect.time")
    if facts.trigger_lead is not None:
        text += f", {facts.trigger_lead.text()} before the first onset"
        keys.append("trigger_lead")
    return Claim(text, _ids_of(change), "context.suspect_change", keys)


def _actions_words(facts: IncidentFacts) -> Claim:
    taken = [a for a in facts.actions if a.mode is not ActionMode.PROPOSED]
    if not facts.actions:
        return Claim("no action was proposed", source="run record")
    if not taken:
        return Claim("none of the proposed actions was taken by warroom", source="action records")
    changed = [a for a in taken if a.mode.changed_the_system]
    lead = "the system was changed" if changed else "nothing was changed by warroom"
    keys = [f"actions.{a.id}" for a in taken if a.at is not None]
    parts = "; ".join(f"{a.id} {a.words()}" for a in taken)
    return Claim(f"{lead}: {parts}", source="recorded action outcomes", facts=keys)


def recovery_claim(facts: IncidentFacts) -> Claim:
    """Recovery, only as the evidence supports it."""
    recovery = facts.recovery
    if recovery.verified:
        when = f" at {format_clock(recovery.at)}" if recovery.at else ""
        text = f"recovered: signals back to baseline{when} after the executed {recovery.action} (verified)"
        keys = ["recovery.at"] if recovery.at else []
        if facts.time_to_resolve is not None:
            text += f", {facts.time_to_resolve.text()} after the alert"
            keys.append("time_to_resolve")
        return Claim(text, source="recovery validation", facts=keys)
    if recovery.basis == "replayed":
        seen = recovery.verdict.replace("_", " ")
        return Claim(
            f"not verified: nothing was changed in this run; the recorded data after {recovery.action} "
            f"(a replay) reads '{seen}', which predicts the effect of that action and proves nothing",
            source="recovery validation",
        )
    if recovery.verdict == "not_checked":
        return Claim("not checked: no recovery validation ran", source="run record")
    return Claim(
        f"not verified: {recovery.verdict.replace('_', ' ')} ({recovery.reason})", source="recovery validation"
    )


def _summary(record: RunRecord, facts: IncidentFacts, view_cause: Claim | None) -> list[SummaryLine]:
    inc = record.incident
    lines: list[SummaryLine] = []
    severity = facts.severity
    if severity is not None:
        keys = [f"severity.{name}" for name in severity.figures]
        lines.append(
            SummaryLine(
                "Severity", Claim(f"{severity.level} ({severity.label}): {severity.rule}", [], "assessment", keys)
            )
        )
    if view_cause is not None:
        lines.append(SummaryLine("What happened", view_cause))
    impact = _impact_line(facts, _ids_of(_dict(record.context.get("impact"))))
    lines.append(
        SummaryLine("Impact", impact or Claim("not measured (no request outcomes at the entry)", [], "impact"))
    )
    trigger = _trigger_text(facts)
    if trigger is not None:
        lines.append(SummaryLine("Trigger", trigger))
    if facts.onset_at is not None and facts.alert_at is not None and facts.detection is not None:
        lines.append(
            SummaryLine(
                "Detection",
                Claim(
                    f"first signal left its baseline at {format_clock(facts.onset_at)}; the alert fired at "
                    f"{format_clock(facts.alert_at)}, {facts.detection.text()} later",
                    source="documentation timeline",
                    facts=["onset_at", "alert_at", "detection"],
                ),
            )
        )
    lines.append(SummaryLine("Mitigation", _actions_words(facts)))
    lines.append(SummaryLine("Recovery", recovery_claim(facts)))
    status = f"{inc.status.value}; workflow {record.workflow} run {record.run_status.replace('_', ' ')}"
    lines.append(SummaryLine("Status", Claim(status, source="incident record")))
    if facts.engine is not None:
        interrupted = len(facts.engine.interruptions)
        text = f"{facts.engine.busy_seconds.text()} of engine time" + (
            f" (after {interrupted} interruption(s), not counted)" if interrupted else ""
        )
        lines.append(SummaryLine("warroom", Claim(text, source="step records", facts=["engine.busy_seconds"])))
    return lines


# -- sections -----------------------------------------------------------------------------------

IMPACT_ROWS = (
    ("failure_rate", "Failed requests (share)"),
    ("baseline_failure_rate", "Failed requests at baseline (share)"),
    ("requests", "Requests"),
    ("failed_requests", "Failed requests"),
    ("users_affected", "Users who saw a failure"),
    ("users_active", "Active users"),
    ("sessions_affected", "Sessions with a failure"),
    ("transactions", "Transactions"),
    ("failed_transactions", "Failed transactions"),
    ("abandoned_carts", "Abandoned carts"),
    ("revenue", "Revenue impact"),
)


def _impact_rows(facts: IncidentFacts) -> tuple[list[FigureRow], str]:
    impact = facts.impact
    if impact is None:
        return [], "no impact analysis ran ('impact' absent from the context, or of another shape)"
    rows = []
    for name, label in IMPACT_ROWS:
        figure: Figure = getattr(impact, name)
        # a figure not measured has no basis to state (its method says why it is missing)
        basis = figure.basis.value if figure.known else "—"
        rows.append(FigureRow(label, figure.text(), basis, _window_text(figure), figure.method, f"impact.{name}"))
    return rows, ""


def _detection(record: RunRecord, facts: IncidentFacts) -> Section:
    rows: list[Claim] = []
    alert = next((e for e in record.timeline if e.kind == TimelineKind.ALERT), None)
    if alert is not None:
        rows.append(Claim(f"Alert at {format_time(alert.at)}: {alert.summary}", source="alert"))
    first = sorted(facts.onsets, key=lambda o: o.at)[:1]
    for onset in first:
        rows.append(
            Claim(
                f"First signal to leave its baseline: {onset.signal} of {onset.service} at {format_time(onset.at)} "
                f"({onset.method or 'first sustained breach'})",
                source="documentation timeline",
                facts=[f"onsets.{onset.signal}.{onset.service}"],
            )
        )
    if facts.detection is not None:
        rows.append(
            Claim(
                f"Time to detect: {facts.detection.text()} ({facts.detection.method})",
                source="incident facts",
                facts=["detection"],
            )
        )
    for factor in _pm(record).get("contributing_factors") or []:
        if isinstance(factor, dict) and factor.get("kind") in ("detection_gap", "slow_detection"):
            rows.append(Claim(str(factor.get("text")), source=ANALYST))
    if rows:
        return Section(rows)
    return Section(absent="the record holds no alert and no onset")


def _response(record: RunRecord, facts: IncidentFacts) -> Section:
    rows: list[Claim] = []
    for role, who in record.incident.roles.items():
        rows.append(Claim(f"{humanize(role.value)}: {who.name} ({who.kind})", source="incident record"))
    for phase in record.phases:
        if phase.decision is not None:
            d = phase.decision
            why = f"condition `{d.condition}`" if d.condition else "the default path (no condition held)"
            values = ", ".join(f"{k.split('.')[-1]} {fmt_value(v)}" for k, v in d.values.items() if v is not None)
            rows.append(
                Claim(
                    f"Investigation path '{d.path}' ({d.agent}) chosen by {why}" + (f" on {values}" if values else ""),
                    source=f"decision in phase {phase.id}",
                )
            )
    proposed = len(facts.actions)
    if proposed:
        rows.append(Claim(f"{proposed} action(s) proposed; see Resolution", source="action records"))
    sent = [e for e in record.timeline if e.kind == TimelineKind.COMMUNICATION_SENT]
    if sent:
        audiences = sorted({str(e.data["audience"]) for e in sent if e.data.get("audience")})
        to = f" to {', '.join(audiences)}" if audiences else ""
        rows.append(Claim(f"{len(sent)} stakeholder update deliveries{to}", source="communication events"))
    if facts.engine is not None:
        rows.append(
            Claim(
                f"warroom's own run: {facts.engine.busy_seconds.text()} of engine time "
                f"({facts.engine.busy_seconds.method})",
                source="step records",
                facts=["engine.busy_seconds"],
            )
        )
    return Section(rows) if rows else Section(absent="the run recorded no decision, action or message")


def _trigger(record: RunRecord, facts: IncidentFacts) -> Section:
    claim = _trigger_text(facts)
    if claim is not None:
        return Section([claim])
    changes = facts.changes
    if changes.history is None:
        return Section(absent="the change history was not looked at in this run (no documentation step ran)")
    if not changes.history:
        return Section(absent="the bundle has no change history: whether a change triggered this is unknown")
    if not changes.checked:
        return Section(absent="change correlation did not run")
    if changes.preceding:
        return Section(
            [
                Claim(
                    f"{len(changes.preceding)} change(s) precede the onset ({', '.join(changes.preceding[:5])}); "
                    "correlation named none of them as the trigger",
                    source="documentation changes",
                )
            ]
        )
    return Section([Claim("no change in the looked-at history precedes the onset", source="documentation changes")])


def _root_cause(record: RunRecord, candidates: list[RootCauseCandidate]) -> Section:
    stated = _pm(record).get("primary_cause")
    if stated:
        return Section(_claims(stated, ANALYST)[:1])
    if candidates:
        return Section([_candidate_claim(candidates[0])])
    return Section(absent="no root-cause candidate was produced and no post-incident analysis stated one")


def _candidate_claim(c: RootCauseCandidate) -> Claim:
    change = f", change {c.change_id}" if c.change_id else ""
    return Claim(
        f"{c.service}: {c.fault_type} ({c.indicator}{change}), confidence {format_number(c.confidence, 'ratio')}",
        c.evidence_ids,
        facts=["cause.confidence"] if c.rank == 1 else [],
    )


def _contributing(record: RunRecord, index: EvidenceIndex) -> Section:
    factors = [
        f
        for f in _pm(record).get("contributing_factors") or []
        if not (isinstance(f, dict) and f.get("kind") == "propagation")
    ]
    claims = _claims(factors, ANALYST)
    stated = [e for e in index.findings if e.finding.kind == "contributing_factor"]
    for claim in claims:
        for entry in stated:
            if claim.text and claim.text in entry.finding.title:
                claim.evidence_ids, claim.source = list(entry.evidence_ids), ""
                break
    return Section(claims, absent=_pm_absent(record, "contributing_factors"))


def _propagation(record: RunRecord, facts: IncidentFacts) -> Section:
    """The order in which services left their baseline, and the analyst's propagation factor."""
    first: dict[str, tuple[datetime, str]] = {}
    for onset in sorted(facts.onsets, key=lambda o: o.at):
        first.setdefault(onset.service, (onset.at, onset.signal))
    rows: list[Claim] = []
    if first:
        path = " → ".join(f"{service} ({signal}, {format_clock(at)})" for service, (at, signal) in first.items())
        rows.append(
            Claim(
                f"Order of first onsets: {path}",
                source="documentation timeline",
                facts=[f"onsets.{signal}.{service}" for service, (_, signal) in first.items()],
            )
        )
    for factor in _pm(record).get("contributing_factors") or []:
        if isinstance(factor, dict) and factor.get("kind") == "propagation":
            rows.append(Claim(str(factor.get("text")), source=ANALYST))
    return Section(rows, absent="no service left its baseline in the followed signals")


# -- timeline -----------------------------------------------------------------------------------

RESPONSE_KINDS = {
    TimelineKind.DECISION: "decision",
    TimelineKind.STATUS_CHANGED: "status",
    TimelineKind.STEP_FAILED: "step failed",
    TimelineKind.ACTION_APPROVED: "approval",
}


def _timeline(record: RunRecord, facts: IncidentFacts, limit: int) -> tuple[list[TimelineRow], int]:
    """Incident events (telemetry, alert, changes, recovery) and the response (decisions, status,
    actions as their outcomes say, messages), merged and sorted by time."""
    rows: list[TimelineRow] = []
    documented = _dict(record.context.get("documentation")).get("timeline") or []
    for event in documented:
        at = parse_time(event.get("at")) if isinstance(event, dict) else None
        if at is None or event.get("kind") == "mitigation":
            continue  # actions are shown once, as warroom took them
        rows.append(TimelineRow(at, "incident", str(event.get("kind")).replace("_", " "), str(event.get("summary"))))
    if not documented:
        rows += [
            TimelineRow(e.at, "incident", "alert", e.summary) for e in record.timeline if e.kind == TimelineKind.ALERT
        ]
    for event in record.timeline:
        kind = RESPONSE_KINDS.get(event.kind)
        if kind is not None:
            rows.append(TimelineRow(event.at, "response", kind, event.summary, event_evidence_ids(event)))
        elif event.kind == TimelineKind.NOTE and isinstance(event.data.get("interruption"), dict):
            rows.append(TimelineRow(event.at, "response", "interruption", event.summary))
    for action in facts.actions:
        if action.at is not None and action.mode is not ActionMode.PROPOSED:
            rows.append(TimelineRow(action.at, "response", "action", f"{action.id} ({action.title}): {action.words()}"))
    rounds: dict[str, TimelineEvent] = {}
    for event in record.timeline:
        if event.kind == TimelineKind.COMMUNICATION_SENT:
            rounds.setdefault(str(event.data.get("audience") or event.summary), event)
    for event in rounds.values():
        audience = event.data.get("audience") or "stakeholder"
        status = f" ({event.data['status']})" if event.data.get("status") else ""
        rows.append(TimelineRow(event.at, "response", "message", f"{audience} update: {event.summary}{status}"))
    rows.sort(key=lambda r: r.at)
    return rows[:limit], max(0, len(rows) - limit)


def event_evidence_ids(event: TimelineEvent) -> list[str]:
    """Evidence ids a timeline event carries in its data, under any of the usual keys."""
    ids = _ids_of(event.data)
    finding = event.data.get("finding_id")
    if isinstance(finding, str) and finding:
        ids.append(finding)
    return ids


# -- lessons and action items ----------------------------------------------------------------------


def _analyst_lessons(record: RunRecord, key: str) -> list[Any]:
    value = _dict(_pm(record).get("lessons_learned")).get(key)
    return value if isinstance(value, list) else ([value] if value else [])


def _went_well(record: RunRecord) -> Section:
    rows = _claims(_analyst_lessons(record, "went_well"), ANALYST)
    for phase in record.phases:
        if phase.kind == "parallel" and len(phase.steps) > 1 and phase.duration_s is not None:
            work = sum(s.duration_s for s in phase.steps)
            if phase.duration_s < work and all(s.report is not None for s in phase.steps):
                rows.append(
                    Claim(
                        f"{len(phase.steps)} branches of phase {phase.id} ran at once: {fmt_seconds(phase.duration_s)} "
                        f"for {fmt_seconds(work)} of work (engine time)",
                        source=f"step records of phase {phase.id}",
                    )
                )
    return Section(rows, absent=_pm_absent(record, "lessons_learned.went_well"))


def _went_badly(record: RunRecord, candidates: list[RootCauseCandidate], policy: ReportPolicy) -> Section:
    rows = _claims(_analyst_lessons(record, "challenges"), ANALYST)
    for phase in record.phases:
        for step in phase.steps:
            if step.report is None:
                rows.append(
                    Claim(
                        f"{step.agent} {step.status.value.replace('_', ' ')} after {step.attempts} attempt(s)"
                        + (f": {step.error}" if step.error else ""),
                        source=f"step {step.step_id}",
                    )
                )
    if len(candidates) > 1 and candidates[0].confidence - candidates[1].confidence < policy.close_confidence:
        a, b = candidates[0], candidates[1]
        rows.append(
            Claim(
                f"The diagnosis was close between {a.service} ({format_number(a.confidence, 'ratio')}) and "
                f"{b.service} ({format_number(b.confidence, 'ratio')})",
                sorted({*a.evidence_ids, *b.evidence_ids}),
            )
        )
    return Section(rows, absent="no step failed and the post-incident analysis named no challenge")


def _base_date(facts: IncidentFacts, record: RunRecord) -> tuple[datetime | None, str]:
    for at, name in ((facts.resolved_at, "the verified recovery"), (facts.alert_at, "the alert")):
        if at is not None:
            return at, name
    if record.timeline:
        return record.timeline[-1].at, "the last timeline event"
    return None, "no timestamp in the record"


def _owner(record: RunRecord) -> tuple[str, str]:
    for role in (Role.TECHNICAL_LEAD, Role.INCIDENT_COMMANDER):
        assignee = record.incident.roles.get(role)
        if assignee is not None:
            return assignee.name, f"policy: the incident's {role.value.replace('_', ' ')}"
    return "unassigned", "no owner given and no technical lead or commander on the incident"


def _action_items(record: RunRecord, facts: IncidentFacts, policy: ReportPolicy) -> Section:
    raw = _pm(record).get("action_items")
    if not isinstance(raw, list) or not raw:
        return Section(absent=_pm_absent(record, "action_items"))
    base, base_basis = _base_date(facts, record)
    default_owner, default_owner_basis = _owner(record)
    items: list[ActionItem] = []
    for entry in raw:
        item = entry if isinstance(entry, dict) else {"title": _text_of(entry)}
        priority = str(item.get("priority") or "follow_up")
        owner = item.get("owner")
        due = item.get("due") or item.get("due_date")
        if due:
            due_text, due_basis = str(due), ANALYST
        elif base is not None:
            days = policy.due_after(priority)
            due_text = (base + timedelta(days=days)).strftime("%Y-%m-%d")
            due_basis = f"policy: {days} days after {base_basis} for {priority}"
        else:
            due_text, due_basis = "not set", base_basis
        items.append(
            ActionItem(
                title=_text_of(item),
                owner=str(owner) if owner else default_owner,
                owner_basis=ANALYST if owner else default_owner_basis,
                due=due_text,
                due_basis=due_basis,
                priority=priority.replace("_", " "),
                evidence_ids=_ids_of(item),
            )
        )
    return Section(items)


def _review(record: RunRecord, facts: IncidentFacts, policy: ReportPolicy) -> Claim:
    stated = _pm(record).get("follow_up_review") or _pm(record).get("review_date")
    if stated:
        return Claim(f"Follow-up review: {_text_of(stated)}", source=ANALYST)
    base, basis = _base_date(facts, record)
    if base is None:
        return Claim("Follow-up review: not scheduled (no timestamp to schedule from)")
    day = (base + timedelta(days=policy.review_after_days)).strftime("%Y-%m-%d")
    return Claim(f"Follow-up review: {day}", source=f"policy: {policy.review_after_days} days after {basis}")


# -- charts -------------------------------------------------------------------------------------


def _markers(facts: IncidentFacts, onset: datetime | None) -> list[Marker]:
    markers: list[Marker] = []
    change = facts.changes.suspect or {}
    changed_at = parse_time(change.get("time"))
    if changed_at is not None:
        markers.append(Marker(changed_at, f"{change.get('kind') or 'change'} {change.get('id')}", "deploy"))
    if onset is not None:
        markers.append(Marker(onset, "onset", "onset"))
    if facts.alert_at is not None:
        markers.append(Marker(facts.alert_at, "alert", "alert"))
    for action in facts.actions:
        if action.at is not None and action.mode is not ActionMode.PROPOSED:
            kind = "action" if action.mode.changed_the_system else "replay"
            markers.append(Marker(action.at, f"{action.kind} ({action.mode.value.replace('_', ' ')})", kind))
    if facts.recovery.at is not None:
        verified = facts.recovery.verified
        label = "recovered (verified)" if verified else "baseline in replayed data"
        markers.append(Marker(facts.recovery.at, label, "recovery" if verified else "replay"))
    return markers


def _points(raw: Any) -> list[tuple[datetime, float]]:
    out: list[tuple[datetime, float]] = []
    for item in raw or []:
        if isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[1], int | float):
            at = parse_time(item[0])
            if at is not None:
                out.append((at, float(item[1])))
    return out


def _chart_evidence(index: EvidenceIndex, query: str, onset: datetime | None) -> list[str]:
    return [ev.id for ev in index.evidence.values() if ev.query == query and (onset is None or ev.start == onset)]


def _charts(record: RunRecord, facts: IncidentFacts, index: EvidenceIndex, limit: int) -> list[Chart]:
    """One time-series chart per key series the documentation kept: baseline band, onset, deploy,
    alert, each action and the recovery marked; the data recorded after an action drawn dashed
    when it is a replay."""
    charts: list[Chart] = []
    # the documentation's series (with the data after the action) once it ran; before that, the
    # key series the monitoring specialist recorded during the investigation
    series = _dict(record.context.get("documentation")).get("series") or record.context.get("key_series") or []
    for item in series[:limit]:
        if not isinstance(item, dict):
            continue
        signal, service = str(item.get("signal")), str(item.get("service"))
        unit = unit_of(signal)
        lines = [Line(f"{signal} of {service}", _points(item.get("points")))]
        after = _dict(item.get("after"))
        replayed = after.get("basis") != "observed"
        if after:
            label = f"recorded after {after.get('action')}" + (" (replay)" if replayed else "")
            lines.append(Line(label, _points(after.get("points")), dashed=replayed))
        baseline, limit_value = item.get("baseline"), item.get("limit")
        band = None
        if isinstance(baseline, int | float) and isinstance(limit_value, int | float):
            low, high = sorted((float(baseline), float(limit_value)))
            band = Band(min(low, 0.0) if item.get("higher_is_worse", True) else low, high, "baseline band")
        onset = parse_time(item.get("onset"))
        title = f"{signal} of {service}"
        svg = time_series_svg(lines, unit=unit, markers=_markers(facts, onset), band=band, title=title)
        if not svg:
            continue
        values = [v for _, v in lines[0].points]
        peak = max(values) if item.get("higher_is_worse", True) else min(values)
        caption = (
            f"onset {format_clock(onset)}; baseline {format_number(float(baseline or 0), unit)}, "
            f"band up to {format_number(float(limit_value or 0), unit)}, peak {format_number(peak, unit)}"
        )
        charts.append(Chart(title, svg, caption, _chart_evidence(index, str(item.get("query")), onset)))
    return charts


# -- appendix -----------------------------------------------------------------------------------


def _metric_rows(metrics: MetricsReport) -> list[tuple[str, str, str]]:
    m = metrics.metrics
    b = metrics.basis
    rto = "not established" if m.rto_met is None else ("yes" if m.rto_met else "no")
    return [
        (
            "Detection to assessment (engine clock)",
            fmt_minutes(m.detection_to_assessment_min),
            b["detection_to_assessment_min"],
        ),
        (
            "Assessment to investigation (engine clock)",
            fmt_minutes(m.assessment_to_investigation_min),
            b["assessment_to_investigation_min"],
        ),
        ("Detection to mitigation", fmt_minutes(metrics.detection_to_mitigation_min), b["detection_to_mitigation_min"]),
        ("Detection to resolution", fmt_minutes(m.total_resolution_min), b["total_resolution_min"]),
        ("RTO", "—" if m.rto_minutes is None else f"{m.rto_minutes:g} min", "incident record"),
        ("RTO met", rto, b["rto_met"]),
        ("Communication interval", fmt_minutes(m.communication_interval_min), b["communication_interval_min"]),
        ("warroom run time (engine)", fmt_seconds(m.run_seconds), b["run_seconds"]),
    ]


def _engine(facts: IncidentFacts) -> Section:
    if facts.engine is None:
        return Section(absent="no step has a recorded start and end")
    rows = [Claim(f"Engine time: {facts.engine.busy_seconds.text()} ({facts.engine.busy_seconds.method})")]
    for gap in facts.engine.interruptions:
        wall = f", resumed at {format_time(gap.wall_resumed_at)} wall clock" if gap.wall_resumed_at else ""
        rows.append(
            Claim(f"Interrupted ({gap.previous_status.replace('_', ' ')}) and resumed at {format_time(gap.at)}{wall}")
        )
    return Section(rows)


def _limitations(record: RunRecord) -> Section:
    rows: list[Claim] = []
    for phase in record.phases:
        for step in phase.steps:
            if step.report is not None:
                rows.extend(Claim(text, source=step.agent) for text in step.report.limitations)
    return Section(rows, absent="no agent reported data it could not look at")


def _cause_line(record: RunRecord, facts: IncidentFacts, root: Section) -> Claim | None:
    if facts.cause is None:
        return root.items[0] if root.items else None
    c = facts.cause
    text = (
        f"{c.fault_type.replace('_', ' ')} in {c.service} (indicator {c.indicator}), confidence {c.confidence.text()}"
    )
    return Claim(text, c.evidence_ids, "diagnosis", ["cause.confidence"])


def build_view(
    record: RunRecord,
    index: EvidenceIndex,
    metrics: MetricsReport,
    facts: IncidentFacts,
    policy: ReportPolicy | None = None,
) -> PostmortemView:
    """Everything the postmortem templates show, computed once for both formats."""
    policy = policy or ReportPolicy()
    candidates = diagnosis_candidates(record)
    root = _root_cause(record, candidates)
    impact, impact_absent = _impact_rows(facts)
    timeline, omitted = _timeline(record, facts, policy.timeline_limit)
    cited = {i for c in candidates for i in c.evidence_ids}
    summary = _summary(record, facts, _cause_line(record, facts, root))[: policy.summary_lines]
    return PostmortemView(
        record=record,
        facts=facts,
        index=index,
        metrics=metrics,
        summary=summary,
        impact=impact,
        impact_absent=impact_absent,
        detection=_detection(record, facts),
        response=_response(record, facts),
        trigger=_trigger(record, facts),
        root_cause=root,
        contributing=_contributing(record, index),
        propagation=_propagation(record, facts),
        actions=facts.actions,
        recovery=recovery_claim(facts),
        timeline=timeline,
        timeline_omitted=omitted,
        went_well=_went_well(record),
        went_badly=_went_badly(record, candidates, policy),
        action_items=_action_items(record, facts, policy),
        review=_review(record, facts, policy),
        charts=_charts(record, facts, index, policy.chart_limit),
        candidates=Section(candidates, absent="the investigation produced no ranked root-cause candidates"),
        unknown_evidence_ids=sorted(i for i in cited if i not in index.evidence),
        metric_rows=_metric_rows(metrics),
        engine=_engine(facts),
        limitations=_limitations(record),
        evidence=Section(list(index.evidence.values()), absent="no finding in this run carried evidence"),
        generated_from=f"{record.workflow} run of {record.incident.id}",
    )


def render_markdown(view: PostmortemView) -> str:
    return template("postmortem.md.j2").render(v=view)


def render_html(view: PostmortemView) -> str:
    return template("postmortem.html.j2").render(v=view)
