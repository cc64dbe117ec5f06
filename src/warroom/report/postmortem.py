"""The blameless postmortem (Markdown and HTML): one view built from the record, two templates.

Every statement carries the evidence ids it rests on, or the run-record fact it restates, or is
visibly marked as uncited. A section whose data the run did not produce says "not established" and
why, instead of disappearing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from warroom.incident import Role, RootCauseCandidate, TimelineEvent, TimelineKind
from warroom.record import ActionStatus, RunRecord, StepStatus
from warroom.report.charts import Comparison, Series, bars_svg, comparison_in, series_in, sparkline_svg
from warroom.report.evidence import EvidenceIndex, FindingEntry, diagnosis_candidates
from warroom.report.metrics import MetricsReport
from warroom.report.render import fmt_minutes, fmt_seconds, fmt_value, humanize, template
from warroom.values import as_dict as _dict


@dataclass(frozen=True)
class ReportPolicy:
    """Defaults the postmortem applies where the run gave no value; each use is labelled as policy."""

    due_days: tuple[tuple[str, int], ...] = (("immediate", 7), ("short_term", 14), ("follow_up", 30))
    default_due_days: int = 30
    review_after_days: int = 7
    timeline_limit: int = 60
    chart_limit: int = 6
    close_confidence: float = 0.1  # top candidates closer than this make the diagnosis ambiguous

    def due_after(self, priority: str) -> int:
        return dict(self.due_days).get(priority, self.default_due_days)


# Event kinds a reader of the postmortem needs; findings and phase boundaries live in timeline.md.
KEY_EVENT_KINDS = frozenset(
    {
        TimelineKind.ALERT,
        TimelineKind.STATUS_CHANGED,
        TimelineKind.DECISION,
        TimelineKind.STEP_FAILED,
        TimelineKind.ACTION_PROPOSED,
        TimelineKind.ACTION_APPROVED,
        TimelineKind.ACTION_EXECUTED,
        TimelineKind.ACTION_VERIFIED,
        TimelineKind.COMMUNICATION_SENT,
    }
)

# Personal attribution stays out of a blameless document; commits and files identify the change.
BLAMELESS_DROP = frozenset({"author", "authors", "committer", "email", "author_email"})
TEXT_KEYS = ("text", "summary", "title", "description", "cause", "message", "detail", "name")


@dataclass
class Claim:
    """One statement and what it rests on: evidence ids, or a fact of the run record."""

    text: str
    evidence_ids: list[str] = field(default_factory=list)
    source: str = ""


@dataclass
class Section:
    """Rows of a section, or the reason it could not be established."""

    items: list[Any] = field(default_factory=list)
    absent: str = ""


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
    evidence_id: str
    query: str
    label: str
    svg: str  # built from numbers only
    caption: str


@dataclass
class PostmortemView:
    record: RunRecord
    index: EvidenceIndex
    metrics: MetricsReport
    summary: list[Claim]
    impact: ImpactView
    timeline: Section
    timeline_omitted: int
    primary_cause: Section
    candidates: Section
    suspect_change: Section
    code_findings: Section
    root_cause_findings: Section
    contributing: Section
    actions_taken: Section
    recovery: Section
    went_well: Section
    challenges: Section
    lessons: Section
    preventive: Section
    action_items: Section
    review: Claim
    metric_rows: list[tuple[str, str, str]]
    limitations: Section
    evidence: Section
    charts: list[Chart]
    unknown_evidence_ids: list[str]
    generated_from: str


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
        out.append(Claim(_text_of(item), ids, "" if ids or not source else f"{source}, no evidence ids"))
    return out


ANALYST = "post-incident analysis"


IMPACT_SKIP = frozenset({"evidence_ids", "evidence", "limitations", "summary"})


@dataclass
class ImpactView:
    """Statements about impact, and the measured figures as one table citing its evidence once."""

    claims: list[Claim]
    figures: list[tuple[str, str]]
    figures_cite: Claim
    absent: str = ""

    @property
    def items(self) -> list[Any]:
        return [*self.claims, *self.figures]


def _impact(record: RunRecord, index: EvidenceIndex, metrics: MetricsReport) -> ImpactView:
    impact = _dict(record.context.get("impact"))
    shared_ids = _ids_of(impact)
    shared_source = "" if shared_ids else "context.impact"
    claims: list[Claim] = []
    if isinstance(impact.get("summary"), str) and impact["summary"]:
        claims.append(Claim(impact["summary"], shared_ids, shared_source))
    figures: list[tuple[str, str]] = []
    for key, value in impact.items():
        if key in IMPACT_SKIP or value in (None, "", [], {}) or isinstance(value, list):
            continue
        if isinstance(value, dict):
            parts = [f"{k} {fmt_value(v)}" for k, v in value.items() if k not in IMPACT_SKIP]
            figures.append((humanize(key), ", ".join(parts)))
        else:
            figures.append((humanize(key), fmt_value(value)))
    for entry in index.findings:
        if entry.finding.kind == "impact":
            claims.append(Claim(entry.finding.title, entry.evidence_ids))
    business = record.incident.business_impact
    for key, value in business.items():
        claims.append(Claim(f"Business context › {humanize(key)}: {fmt_value(value)}", source="incident record"))
    rate_key = next((k for k in business if "revenue" in k.lower() and "min" in k.lower()), None)
    total = metrics.metrics.total_resolution_min
    rate = business.get(rate_key) if rate_key else None
    already = any("revenue" in k.lower() for k in impact)
    if rate_key and isinstance(rate, int | float) and total is not None and not already:
        claims.append(
            Claim(
                f"Revenue at risk (derived, upper bound): {fmt_value(float(rate))} per minute × "
                f"{total:g} min detection-to-resolution = {fmt_value(float(rate) * total)}",
                source=f"incident.business_impact.{rate_key} × metrics.total_resolution_min",
            )
        )
    absent = "" if claims or figures else "no 'impact' in the run's context and no business context on the incident"
    return ImpactView(claims, figures, Claim("", shared_ids, shared_source), absent)


def _key_events(record: RunRecord, limit: int) -> tuple[Section, int]:
    events = [ev for ev in record.timeline if ev.kind in KEY_EVENT_KINDS]
    if not events:
        return Section(absent="the timeline holds no alert, decision, action or communication events"), 0
    return Section(events[:limit]), max(0, len(events) - limit)


def _candidate_claim(c: RootCauseCandidate) -> Claim:
    change = f", change {c.change_id}" if c.change_id else ""
    return Claim(f"{c.service}: {c.fault_type} ({c.indicator}{change}), confidence {c.confidence:.0%}", c.evidence_ids)


def _primary_cause(record: RunRecord, candidates: list[RootCauseCandidate]) -> Section:
    pm = _dict(record.context.get("postmortem"))
    stated = pm.get("primary_cause")
    if stated:
        return Section(_claims(stated, ANALYST)[:1])
    if candidates:
        return Section([_candidate_claim(candidates[0])])
    return Section(absent="no root-cause candidate was produced and no post-incident analysis stated one")


def _suspect_change(record: RunRecord) -> Section:
    if "suspect_change" not in record.context:
        return Section(absent="change correlation did not run ('suspect_change' absent from the context)")
    change = record.context.get("suspect_change")
    if not isinstance(change, dict) or not change:
        return Section(absent="change correlation found no change that precedes the onset")
    fields = [
        f"{humanize(k)}: {fmt_value(v)}"
        for k, v in change.items()
        if k not in BLAMELESS_DROP and k not in ("evidence_ids", "evidence") and v not in (None, "")
    ]
    return Section([Claim(" · ".join(fields), _ids_of(change), source="context.suspect_change")])


def _code_findings(record: RunRecord, index: EvidenceIndex) -> Section:
    if "code_findings" not in record.context:
        return Section(absent="no code analysis ran ('code_findings' absent from the context)")
    items = record.context.get("code_findings")
    if not isinstance(items, list) or not items:
        return Section(absent="code analysis found nothing in the changed code")
    rows = []
    for item in items:
        if not isinstance(item, dict):
            rows.append(Claim(_text_of(item)))
            continue
        where = item.get("file") or item.get("path") or ""
        if where and item.get("line") is not None:
            where = f"{where}:{item['line']}"
        commit = item.get("commit")
        extra = ", ".join(x for x in (where, f"commit {commit}" if commit else "") if x)
        text = _text_of({k: v for k, v in item.items() if k not in BLAMELESS_DROP})
        ids = _ids_of(item) or (_ids_at(index, where) if where else [])
        rows.append(Claim(f"{text} ({extra})" if extra else text, ids))
    return Section(rows)


def _ids_at(index: EvidenceIndex, location: str) -> list[str]:
    """Evidence of the findings that name this code location (file:line) in their title or detail."""
    ids: dict[str, None] = {}
    for entry in index.findings:
        if location in entry.finding.title or location in entry.finding.detail:
            ids.update(dict.fromkeys(entry.evidence_ids))
    return list(ids)


def _recovery(record: RunRecord, index: EvidenceIndex) -> Section:
    rows: list[Claim] = []
    checks = [e for e in index.findings if e.finding.kind == "recovery"]
    check_ids = sorted({i for e in checks for i in e.evidence_ids})
    mitigation = _dict(record.context.get("mitigation"))
    if "recovered_by" in mitigation:
        by = mitigation.get("recovered_by")
        ids = _ids_of(mitigation) or check_ids
        rows.append(
            Claim(
                f"Recovered by action kind '{by}'" if by else "No applied action recovered the service",
                ids,
                source="" if ids else "context.mitigation",
            )
        )
    recovery = _dict(record.context.get("recovery"))
    if "recovered" in recovery:
        verdict = "validated" if recovery.get("recovered") else "NOT validated"
        after = f" after {recovery['action']}" if recovery.get("action") else ""
        reason = f": {recovery['reason']}" if recovery.get("reason") else ""
        ids = _ids_of(recovery) or check_ids
        rows.append(Claim(f"Recovery {verdict}{after}{reason}", ids, source="" if ids else "context.recovery"))
    if checks:
        for e in checks:
            detail = f": {e.finding.detail}" if e.finding.detail else ""
            rows.append(Claim(f"{e.finding.title}{detail}", e.evidence_ids))
    else:
        for c in recovery.get("checks") or []:
            rows.append(Claim(_text_of(c), _ids_of(c), source="context.recovery"))
    if rows:
        return Section(rows)
    return Section(absent="no recovery validation ran ('recovery' and 'mitigation' absent from the context)")


def _analyst_lessons(record: RunRecord, *keys: str) -> list[Any]:
    lessons = _dict(_dict(record.context.get("postmortem")).get("lessons_learned"))
    for key in keys:
        value = lessons.get(key)
        if value:
            return value if isinstance(value, list) else [value]
    return []


def _went_well(record: RunRecord, metrics: MetricsReport) -> Section:
    """Facts of the run record, then the analyst's; targets and security the analyst already judges."""
    rows: list[Claim] = []
    m = metrics.metrics
    analyst = _analyst_lessons(record, "went_well", "what_went_well")
    if not analyst and m.rto_met and m.total_resolution_min is not None and m.rto_minutes is not None:
        rows.append(
            Claim(
                f"Resolved in {fmt_minutes(m.total_resolution_min)}, within the {m.rto_minutes:g} min RTO",
                source="metrics: " + metrics.basis["total_resolution_min"],
            )
        )
    for phase in record.phases:
        if phase.decision is not None:
            d = phase.decision
            why = f"condition '{d.condition}'" if d.condition else "default path (no condition matched)"
            rows.append(
                Claim(
                    f"Investigation path '{d.path}' ({d.agent}) chosen by {why} on measured values "
                    f"{fmt_value(d.values)}",
                    source=f"decision in phase {phase.id}",
                )
            )
        if phase.kind == "parallel" and len(phase.steps) > 1:
            ok = all(s.status == StepStatus.SUCCEEDED for s in phase.steps)
            work = sum(s.duration_s for s in phase.steps)
            wall = phase.duration_s
            if ok and wall is not None and wall < work:
                rows.append(
                    Claim(
                        f"{len(phase.steps)} branches of phase {phase.id} ran concurrently and all "
                        f"succeeded: {fmt_seconds(wall)} wall time for {fmt_seconds(work)} of work",
                        source=f"step records of phase {phase.id}",
                    )
                )
    for action in record.actions:
        if action.status == ActionStatus.VERIFIED:
            rows.append(
                Claim(
                    f"Action {action.action.id} ({action.action.kind}) was applied and verified",
                    source=f"action record {action.action.id}",
                )
            )
    security = _dict(record.context.get("security"))
    if not analyst and security.get("verdict") == "cleared":
        rows.append(Claim("Security and data integrity checks cleared the incident", _ids_of(security)))
    if metrics.communications.get("cadence_met"):
        c = metrics.communications
        rows.append(
            Claim(
                f"Stakeholder updates kept the {c['cadence_minutes']:g} min cadence "
                f"(longest gap {c['longest_gap_min']:g} min over {c['count']} updates)",
                source=str(c.get("source", "")),
            )
        )
    rows.extend(_claims(analyst, ANALYST))
    if rows:
        return Section(rows)
    return Section(absent="the run record shows no met target, verified action or completed decision")


def _challenges(
    record: RunRecord, metrics: MetricsReport, candidates: list[RootCauseCandidate], policy: ReportPolicy
) -> Section:
    rows: list[Claim] = []
    analyst = _analyst_lessons(record, "challenges", "challenges_encountered")
    for phase in record.phases:
        for step in phase.steps:
            if step.status != StepStatus.SUCCEEDED:
                rows.append(
                    Claim(
                        f"{step.agent} in phase {phase.id} {step.status.value.replace('_', ' ')} after "
                        f"{fmt_seconds(step.duration_s)}: {step.error or 'no error recorded'}",
                        source=f"step {step.step_id}",
                    )
                )
            elif step.attempts > 1:
                rows.append(
                    Claim(
                        f"{step.agent} in phase {phase.id} needed {step.attempts} attempts",
                        source=f"step {step.step_id}",
                    )
                )
    for action in record.actions:
        if action.status in (ActionStatus.FAILED, ActionStatus.UNDONE):
            rows.append(
                Claim(
                    f"Action {action.action.id} ({action.action.kind}) {action.status.value}",
                    source=f"action record {action.action.id}",
                )
            )
    m = metrics.metrics
    if not analyst and m.rto_met is False and m.total_resolution_min is not None and m.rto_minutes is not None:
        rows.append(
            Claim(
                f"Resolution took {fmt_minutes(m.total_resolution_min)}, beyond the {m.rto_minutes:g} min RTO",
                source="metrics: " + metrics.basis["total_resolution_min"],
            )
        )
    c = metrics.communications
    if c.get("cadence_met") is False:
        rows.append(
            Claim(
                f"Stakeholder updates missed the {c['cadence_minutes']:g} min cadence "
                f"(longest gap {c['longest_gap_min']:g} min)",
                source=str(c.get("source", "")),
            )
        )
    recovery = _dict(record.context.get("recovery"))
    if recovery.get("recovered") is False:
        rows.append(Claim("Recovery was not validated", _ids_of(recovery), source="context.recovery"))
    security = _dict(record.context.get("security"))
    if not analyst and security.get("verdict") == "escalate":
        rows.append(Claim("Security analysis escalated the incident", _ids_of(security)))
    if len(candidates) > 1 and candidates[0].confidence - candidates[1].confidence < policy.close_confidence:
        a, b = candidates[0], candidates[1]
        rows.append(
            Claim(
                f"The diagnosis was close between {a.service} ({a.confidence:.0%}) and "
                f"{b.service} ({b.confidence:.0%})",
                sorted({*a.evidence_ids, *b.evidence_ids}),
            )
        )
    rows.extend(_claims(analyst, ANALYST))
    if rows:
        return Section(rows)
    return Section(absent="no step failed, no action failed and no target was missed in the run record")


def _lessons(record: RunRecord) -> Section:
    pm = _dict(record.context.get("postmortem"))
    lessons = pm.get("lessons_learned")
    if isinstance(lessons, dict):
        skip = {"went_well", "what_went_well", "challenges", "challenges_encountered"}
        items: list[Any] = []
        for key, value in lessons.items():
            if key not in skip:
                items.extend(value if isinstance(value, list) else [value])
        lessons = items
    claims = _claims(lessons, ANALYST)
    if claims:
        return Section(claims)
    return Section(absent=_pm_absent(record, "lessons_learned"))


def _pm_absent(record: RunRecord, key: str) -> str:
    if "postmortem" not in record.context:
        return "no post-incident analysis ran ('postmortem' absent from the context)"
    return f"the post-incident analysis produced no '{key}'"


def _base_date(metrics: MetricsReport, record: RunRecord) -> tuple[datetime | None, str]:
    for name in ("resolved", "mitigated", "detected"):
        milestone = metrics.milestones[name]
        if milestone.at is not None:
            return milestone.at, f"{name} ({milestone.source})"
    if record.timeline:
        return record.timeline[-1].at, "last timeline event"
    return None, "no timestamp in the record"


def _owner(record: RunRecord) -> tuple[str, str]:
    for role in (Role.TECHNICAL_LEAD, Role.INCIDENT_COMMANDER):
        assignee = record.incident.roles.get(role)
        if assignee is not None:
            return assignee.name, f"policy: the incident's {role.value.replace('_', ' ')}"
    return "unassigned", "no owner given and no technical lead or commander on the incident"


def _action_items(record: RunRecord, metrics: MetricsReport, policy: ReportPolicy) -> Section:
    pm = _dict(record.context.get("postmortem"))
    raw = pm.get("action_items")
    if not isinstance(raw, list) or not raw:
        return Section(absent=_pm_absent(record, "action_items"))
    base, base_basis = _base_date(metrics, record)
    default_owner, default_owner_basis = _owner(record)
    items: list[ActionItem] = []
    for entry in raw:
        item = entry if isinstance(entry, dict) else {"title": _text_of(entry)}
        priority = str(item.get("priority") or "follow_up")
        owner = item.get("owner")
        due = item.get("due") or item.get("due_date")
        if due:
            due_text, due_basis = str(due), "post-incident analysis"
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
                owner_basis="post-incident analysis" if owner else default_owner_basis,
                due=due_text,
                due_basis=due_basis,
                priority=priority,
                evidence_ids=_ids_of(item),
            )
        )
    return Section(items)


def _review(record: RunRecord, metrics: MetricsReport, policy: ReportPolicy) -> Claim:
    pm = _dict(record.context.get("postmortem"))
    stated = pm.get("follow_up_review") or pm.get("review_date")
    if stated:
        return Claim(f"Follow-up review: {_text_of(stated)}", source="post-incident analysis")
    base, basis = _base_date(metrics, record)
    if base is None:
        return Claim("Follow-up review: not established (no timestamp to schedule from)")
    day = (base + timedelta(days=policy.review_after_days)).strftime("%Y-%m-%d")
    return Claim(f"Follow-up review: {day}", source=f"policy: {policy.review_after_days} days after {basis}")


def _metric_rows(metrics: MetricsReport) -> list[tuple[str, str, str]]:
    m = metrics.metrics
    b = metrics.basis

    def rto() -> str:
        if m.rto_met is None:
            return "not established"
        return "yes" if m.rto_met else "no"

    return [
        ("Detection to assessment", fmt_minutes(m.detection_to_assessment_min), b["detection_to_assessment_min"]),
        (
            "Assessment to investigation",
            fmt_minutes(m.assessment_to_investigation_min),
            b["assessment_to_investigation_min"],
        ),
        (
            "Investigation to resolution",
            fmt_minutes(m.investigation_to_resolution_min),
            b["investigation_to_resolution_min"],
        ),
        ("Detection to mitigation", fmt_minutes(metrics.detection_to_mitigation_min), b["detection_to_mitigation_min"]),
        ("Total resolution time", fmt_minutes(m.total_resolution_min), b["total_resolution_min"]),
        ("RTO", "—" if m.rto_minutes is None else f"{m.rto_minutes:g} min", "incident record"),
        ("RTO met", rto(), b["rto_met"]),
        ("Communication interval", fmt_minutes(m.communication_interval_min), b["communication_interval_min"]),
        ("Workflow run time", fmt_seconds(m.run_seconds), b["run_seconds"]),
    ]


def _limitations(record: RunRecord) -> Section:
    rows: list[Claim] = []
    for phase in record.phases:
        for step in phase.steps:
            if step.report is not None:
                rows.extend(Claim(text, source=step.agent) for text in step.report.limitations)
    if rows:
        return Section(rows)
    return Section(absent="no agent reported data it could not look at")


def _series_chart(ev_query: str, series: Series) -> Chart:
    refs = "".join(f" · {name} {fmt_value(v)} (dashed)" for name, v in series.references.items())
    caption = f"min {fmt_value(series.low)}, max {fmt_value(series.high)}, last {fmt_value(series.last)}{refs}"
    return Chart(series.evidence_id, ev_query, series.label, sparkline_svg(series), caption)


def _comparison_chart(ev_query: str, comparison: Comparison) -> Chart:
    bars = " → ".join(f"{name} {fmt_value(v)}" for name, v in comparison.bars)
    refs = "".join(f" · {name} {fmt_value(v)} (dashed)" for name, v in comparison.references.items())
    return Chart(comparison.evidence_id, ev_query, "baseline vs incident", bars_svg(comparison), bars + refs)


def _charts(index: EvidenceIndex, candidates: list[RootCauseCandidate], limit: int) -> list[Chart]:
    """Evidence behind the leading candidates first, then the most confident findings': its series
    as sparklines, or, where an agent reported aggregates only, baseline against incident bars."""
    order: list[str] = []
    for c in candidates:
        order.extend(c.evidence_ids)
    for entry in sorted(index.findings, key=lambda e: -e.finding.confidence):
        order.extend(entry.evidence_ids)
    charts: list[Chart] = []
    seen: set[str] = set()
    for ev_id in order:
        if ev_id in seen or ev_id not in index.evidence:
            continue
        seen.add(ev_id)
        ev = index.evidence[ev_id]
        found = [_series_chart(ev.query, s) for s in series_in(ev)]
        if not found:
            comparison = comparison_in(ev)
            found = [_comparison_chart(ev.query, comparison)] if comparison else []
        for chart in found:
            charts.append(chart)
            if len(charts) >= limit:
                return charts
    return charts


def _ids_mentioning(entries: list[FindingEntry], words: list[str]) -> list[str]:
    """Evidence of the findings whose title names one of the words (a severity, a service)."""
    ids: dict[str, None] = {}
    for entry in entries:
        if any(word and word in entry.finding.title for word in words):
            ids.update(dict.fromkeys(entry.evidence_ids))
    return list(ids)


def _link_factors(claims: list[Claim], index: EvidenceIndex) -> list[Claim]:
    """Give an uncited factor the evidence of the analyst's finding that states the same factor."""
    stated = [e for e in index.findings if e.finding.kind == "contributing_factor"]
    for claim in claims:
        if claim.evidence_ids:
            continue
        for entry in stated:
            if claim.text and claim.text in f"{entry.finding.title} {entry.finding.detail}":
                claim.evidence_ids = list(entry.evidence_ids)
                claim.source = ""
                break
    return claims


def build_view(
    record: RunRecord, index: EvidenceIndex, metrics: MetricsReport, policy: ReportPolicy | None = None
) -> PostmortemView:
    """Everything the postmortem templates show, computed once for both formats."""
    policy = policy or ReportPolicy()
    inc = record.incident
    candidates = diagnosis_candidates(record)
    first_phase = [e for e in index.findings if record.phases and e.phase_id == record.phases[0].id]
    severity_ids = _ids_mentioning(first_phase, [inc.severity.value])
    summary = [
        Claim(
            f"{inc.severity.value} ({inc.severity.label}) incident {inc.id}: {inc.title}"
            + (f"; severity rule: {inc.severity_rule}" if inc.severity_rule else ""),
            severity_ids,
            source="" if severity_ids else "incident record",
        ),
    ]
    if inc.affected_services:
        service_ids = _ids_mentioning(first_phase, inc.affected_services)
        summary.append(Claim("Affected services: " + ", ".join(inc.affected_services), service_ids, "incident record"))
    primary = _primary_cause(record, candidates)
    if primary.items:
        claim = primary.items[0]
        summary.append(Claim("Primary cause: " + claim.text, claim.evidence_ids, claim.source))
    recovery = _recovery(record, index)
    summary.extend(recovery.items[:2])
    if metrics.metrics.total_resolution_min is not None:
        summary.append(
            Claim(
                f"Resolved {fmt_minutes(metrics.metrics.total_resolution_min)} after detection",
                source="metrics: " + metrics.basis["total_resolution_min"],
            )
        )
    summary.append(Claim(f"Workflow '{record.workflow}' finished with status {record.run_status}", source="run record"))

    timeline, omitted = _key_events(record, policy.timeline_limit)
    cited = {i for c in candidates for i in c.evidence_ids}
    unknown = sorted(i for i in cited if i not in index.evidence)
    evidence = Section(list(index.evidence.values()), absent="no finding in this run carried evidence")
    root_findings = [
        Claim(f"{e.finding.title} ({e.agent}, confidence {e.finding.confidence:.0%})", e.evidence_ids)
        for e in index.findings
        if e.finding.kind in ("root_cause", "bottleneck")
    ]
    return PostmortemView(
        record=record,
        index=index,
        metrics=metrics,
        summary=summary,
        impact=_impact(record, index, metrics),
        timeline=timeline,
        timeline_omitted=omitted,
        primary_cause=primary,
        candidates=Section(candidates, absent="the investigation produced no ranked root-cause candidates"),
        suspect_change=_suspect_change(record),
        code_findings=_code_findings(record, index),
        root_cause_findings=Section(root_findings, absent="no finding was classed as bottleneck or root cause"),
        contributing=Section(
            _link_factors(_claims(_dict(record.context.get("postmortem")).get("contributing_factors"), ANALYST), index),
            absent=_pm_absent(record, "contributing_factors"),
        ),
        actions_taken=Section(record.actions, absent="no action was proposed or taken in this run"),
        recovery=recovery,
        went_well=_went_well(record, metrics),
        challenges=_challenges(record, metrics, candidates, policy),
        lessons=_lessons(record),
        preventive=Section(
            _claims(_dict(record.context.get("postmortem")).get("preventive_measures"), ANALYST),
            absent=_pm_absent(record, "preventive_measures"),
        ),
        action_items=_action_items(record, metrics, policy),
        review=_review(record, metrics, policy),
        metric_rows=_metric_rows(metrics),
        limitations=_limitations(record),
        evidence=evidence,
        charts=_charts(index, candidates, policy.chart_limit),
        unknown_evidence_ids=unknown,
        generated_from=f"{record.workflow} run of {inc.id}",
    )


def event_evidence_ids(event: TimelineEvent) -> list[str]:
    """Evidence ids a timeline event carries in its data, under any of the usual keys."""
    ids = _ids_of(event.data)
    finding = event.data.get("finding_id")
    if isinstance(finding, str) and finding:
        ids.append(finding)
    return ids


def render_markdown(view: PostmortemView) -> str:
    return template("postmortem.md.j2").render(v=view, event_ids=event_evidence_ids)


def render_html(view: PostmortemView) -> str:
    return template("postmortem.html.j2").render(v=view, event_ids=event_evidence_ids)
