"""Stakeholder updates from the incident context, one per audience, through Jinja2 templates.

The templates live in `comms/templates/<audience>.md.j2`; their first line is the subject, then a
line `---`, then the body. Every figure and outcome shown is quoted from the incident's facts
(`analysis.facts.collect_facts` over the context), so a message says what the reports say; every
message is redacted before it is returned.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from warroom.analysis.facts import ActionMode, IncidentFacts, collect_facts
from warroom.analysis.impact import ImpactFacts
from warroom.comms.cadence import Cadence
from warroom.comms.message import Audience, Message
from warroom.incident import Incident, Severity, TimelineEvent
from warroom.values import as_dict as _as_dict
from warroom.values import parse_time

SEVERITY_LABELS = {"P0": "Emergency", "P1": "Critical", "P2": "Major", "P3": "Minor"}


@cache
def _env() -> Environment:
    # Plain text and Markdown, not HTML: no autoescaping (HTML channels are not offered).
    return Environment(
        loader=PackageLoader("warroom.comms", "templates"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )


def _fmt_time(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M UTC")
        except ValueError:
            return value
    return None


def _impact_lines(impact: ImpactFacts | None) -> tuple[list[str], str | None]:
    """The impact figures as quoted lines, and a one-line headline for executives."""
    if impact is None or not impact.failure_rate.known:
        return [], None
    since = _fmt_time(impact.window.start)
    lines = [
        f"{impact.failure_rate.text()} of requests at {impact.service} failed since {since} "
        f"(baseline {impact.baseline_failure_rate.text()})"
    ]
    headline = [f"{impact.failure_rate.text()} of requests failing"]
    if impact.requests.known:
        lines.append(f"{impact.failed_requests.value:,.0f} of {impact.requests.text()} failed")
    if impact.users_affected.known:
        lines.append(impact.scope)
        headline.append(f"{impact.users_affected.text()} affected")
    if impact.failed_transactions.known:
        lines.append(f"{impact.failed_transactions.text()} failed")
    if impact.revenue.known:
        lines.append(f"revenue impact {impact.revenue.text()} ({impact.revenue.basis.value}: {impact.revenue.method})")
        headline.insert(0, f"revenue impact {impact.revenue.text()} ({impact.revenue.basis.value})")
    return lines, "; ".join(headline)


def _status(facts: IncidentFacts) -> tuple[str, bool, bool]:
    """(status label, recovered, mitigating) from what the recorded outcomes say happened."""
    if facts.recovery.verified:
        return "mitigated, recovery verified, monitoring", True, True
    if facts.mitigated:
        return "mitigating: an action was executed, recovery not yet verified", False, True
    modes = {a.mode for a in facts.actions}
    if modes & {ActionMode.DRY_RUN, ActionMode.REPLAYED}:
        return "mitigation proposed (dry run: nothing changed)", False, False
    if ActionMode.SKIPPED in modes:
        return "mitigation proposed: the actions are manual or await approval", False, False
    if facts.actions:
        return "mitigation proposed", False, False
    return "investigating", False, False


def _recovery_line(facts: IncidentFacts) -> str | None:
    recovery = facts.recovery
    if recovery.verdict == "not_checked":
        return None
    if recovery.verified:
        return f"recovered — verified after the executed {recovery.action}"
    if recovery.basis == "replayed":
        return (
            f"not verified — nothing was changed; the recorded data after {recovery.action} "
            f"({recovery.verdict.replace('_', ' ')}) only predicts the effect"
        )
    return f"not yet recovered — {recovery.reason}" if recovery.reason else "not yet recovered"


def incident_of(context: Mapping[str, Any], incident_id: str) -> Incident:
    """The incident as the context knows it (the assessment's output) while a run is under way."""
    raw = _as_dict(context.get("incident"))
    severity = str(raw.get("severity") or "P2")
    return Incident(
        id=str(raw.get("id") or incident_id),
        title=str(raw.get("title") or "Service degradation"),
        severity=Severity(severity) if severity in Severity.__members__ else Severity.P2,
        severity_rule=str(raw.get("severity_rule") or ""),
        detected_at=parse_time(raw.get("detected_at")),
    )


def template_context(
    context: Mapping[str, Any],
    *,
    sequence: int,
    cadence: Cadence,
    incident_id: str,
    actions: Sequence[TimelineEvent] = (),
) -> dict[str, Any]:
    """The values every template sees: the incident's facts as recorded so far. `actions`: the
    timeline's action events, which say what was executed before the executor's step has ended."""
    incident = _as_dict(context.get("incident"))
    diagnosis = [d for d in context.get("diagnosis") or [] if isinstance(d, dict)]
    facts = collect_facts(context, incident_of(context, incident_id), list(actions))
    severity = facts.severity.level if facts.severity else "P2"
    services = [str(s) for s in incident.get("affected_services") or []]
    status_label, recovered, mitigating = _status(facts)
    lines, headline = _impact_lines(facts.impact)
    pending = [a.id for a in facts.actions if a.mode is ActionMode.SKIPPED and "approval" in a.detail]

    def candidate(raw: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "service": raw.get("service", "?"),
            "fault_type": str(raw.get("fault_type", "unknown")),
            "indicator": raw.get("indicator", "?"),
            "confidence": float(raw.get("confidence") or 0.0),
            "change_id": raw.get("change_id"),
            "reason": raw.get("reason") or "",
        }

    return {
        "incident": {
            "id": facts.incident_id,
            "title": facts.title,
            "severity": severity,
            "severity_label": SEVERITY_LABELS.get(severity, severity),
            "severity_rule": facts.severity.rule if facts.severity else "",
            "started_at": _fmt_time(facts.impact.window.start if facts.impact else incident.get("started_at")),
            "affected_services": services,
            "symptoms": [str(s) for s in incident.get("symptoms") or []][:5],
        },
        "status_label": status_label,
        "recovered": recovered,
        "mitigating": mitigating,
        "cause": candidate(diagnosis[0]) if diagnosis else None,
        "alternatives": [candidate(d) for d in diagnosis[1:3]],
        "impact_lines": lines,
        "impact_headline": headline,
        "actions": [
            {"action_id": a.id, "words": a.words()} for a in facts.actions if a.mode is not ActionMode.PROPOSED
        ],
        "mitigation_summary": _mitigation_summary(facts),
        "pending_approvals": pending,
        "recovery_line": _recovery_line(facts),
        "customer_title": f"degraded service: {', '.join(services)}" if services else "degraded service",
        "customer_scope": ", ".join(services) if services else "some of our services",
        "next_update": cadence.next_update_at.strftime("%H:%M UTC on %Y-%m-%d")
        + f" (every {cadence.interval_minutes:g} min)",
        "next_update_time": cadence.next_update_at.strftime("%H:%M UTC on %Y-%m-%d"),
        "sequence": sequence,
    }


def _mitigation_summary(facts: IncidentFacts) -> str | None:
    if not facts.actions:
        return None
    executed = facts.executed
    if executed:
        return "executed " + ", ".join(f"{a.id} ({a.words()})" for a in executed)
    taken = [a for a in facts.actions if a.mode is not ActionMode.PROPOSED]
    if taken:
        return "nothing has been changed yet: " + "; ".join(f"{a.id} {a.words()}" for a in taken)
    return f"{len(facts.actions)} action(s) proposed, none taken yet"


def render(audience: Audience, values: Mapping[str, Any]) -> tuple[str, str]:
    """(subject, body) of one audience's template."""
    text = _env().get_template(f"{audience}.md.j2").render(**values)
    subject, _, body = text.partition("\n---\n")
    # Collapse the blank-line runs that conditional blocks leave behind.
    lines: list[str] = []
    for line in body.strip().splitlines():
        if line.strip() == "" and lines and lines[-1].strip() == "":
            continue
        lines.append(line.rstrip())
    return subject.strip(), "\n".join(lines)


def build_updates(
    context: Mapping[str, Any],
    *,
    incident_id: str,
    audiences: Sequence[Audience],
    cadence: Cadence,
    now: datetime,
    sequence: int = 1,
    actions: Sequence[TimelineEvent] = (),
) -> list[Message]:
    """One redacted message per audience."""
    values = template_context(context, sequence=sequence, cadence=cadence, incident_id=incident_id, actions=actions)
    messages: list[Message] = []
    for audience in audiences:
        subject, body = render(audience, values)
        digest = hashlib.sha1(f"{incident_id}|{sequence}|{audience}".encode()).hexdigest()[:8]
        facts = {"Severity": values["incident"]["severity"], "Status": values["status_label"]}
        if values["incident"]["affected_services"] and audience != "customer":
            facts["Services"] = ", ".join(values["incident"]["affected_services"])
        messages.append(
            Message(
                id=f"{incident_id}-u{sequence}-{audience}-{digest}",
                incident_id=incident_id,
                audience=audience,
                severity=values["incident"]["severity"],
                subject=subject,
                body=body,
                created_at=now,
                next_update_at=cadence.next_update_at,
                facts=facts,
            ).redacted()
        )
    return messages
