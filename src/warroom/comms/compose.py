"""Stakeholder updates from the incident context, one per audience, through Jinja2 templates.

The templates live in `comms/templates/<audience>.md.j2`; their first line is the subject, then a
line `---`, then the body. Everything shown comes from the context (incident, diagnosis, impact,
mitigation, recovery); every message is redacted before it is returned.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from warroom.comms.cadence import Cadence
from warroom.comms.message import Audience, Message
from warroom.values import as_dict as _as_dict

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


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")


def _impact_lines(impact: Mapping[str, Any]) -> tuple[list[str], str | None]:
    """Readable impact lines, and a one-line headline for executives (revenue first)."""
    lines: list[str] = []
    summary = impact.get("summary")
    if isinstance(summary, str) and summary:
        lines.append(summary)
    currency = impact.get("currency") or ""
    headline_parts: list[str] = []
    for key, value in impact.items():
        if key in ("summary", "currency", "evidence_ids") or isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            label = key.replace("_", " ")
            shown = _number(float(value))
            if "revenue" in key:
                shown = f"{shown} {currency}".strip()
                headline_parts.insert(0, f"{label}: {shown}")
            elif any(word in key for word in ("users", "transactions", "orders", "sessions")):
                headline_parts.append(f"{label}: {shown}")
            if not summary:
                lines.append(f"{label}: {shown}")
    headline = "; ".join(headline_parts[:3]) or (summary if isinstance(summary, str) and summary else None)
    return lines, headline


def _status(mitigation: Mapping[str, Any], recovery: Mapping[str, Any]) -> tuple[str, bool, bool]:
    """(status label, recovered, mitigating) from what has happened so far."""
    recovered = recovery.get("recovered") is True or (
        not recovery and mitigation.get("recovered") is True and not mitigation.get("dry_run")
    )
    outcomes = [o for o in mitigation.get("outcomes") or [] if isinstance(o, dict)]
    # A dry run changed nothing: its actions are proposals, whatever the post-action data predicts.
    acted = any(o.get("status") in ("executed", "verified", "undone") for o in outcomes)
    if recovered:
        return "mitigated, monitoring", True, True
    if acted:
        return "mitigating", False, True
    if mitigation.get("dry_run") and outcomes:
        return "mitigation proposed (dry run)", False, False
    if outcomes:
        return "mitigation proposed", False, False
    return "investigating", False, False


def _recovery_line(recovery: Mapping[str, Any]) -> str | None:
    if not recovery:
        return None
    text = recovery.get("summary") or recovery.get("reason")
    verdict = "recovered" if recovery.get("recovered") else "not yet recovered"
    return f"{verdict}" + (f" — {text}" if isinstance(text, str) and text else "")


def template_context(
    context: Mapping[str, Any], *, sequence: int, cadence: Cadence, incident_id: str
) -> dict[str, Any]:
    """The values every template sees, from the run's context."""
    incident = _as_dict(context.get("incident"))
    diagnosis = [d for d in context.get("diagnosis") or [] if isinstance(d, dict)]
    impact = _as_dict(context.get("impact"))
    mitigation = _as_dict(context.get("mitigation"))
    recovery = _as_dict(context.get("recovery"))
    severity = str(incident.get("severity") or "P2")
    services = [str(s) for s in incident.get("affected_services") or []]
    status_label, recovered, mitigating = _status(mitigation, recovery)
    lines, headline = _impact_lines(impact)
    outcomes = [o for o in mitigation.get("outcomes") or [] if isinstance(o, dict)]
    pending = [str(o.get("action_id")) for o in outcomes if _as_dict(o.get("data")).get("blocked")]

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
            "id": incident.get("id") or incident_id,
            "title": incident.get("title") or "Service degradation",
            "severity": severity,
            "severity_label": SEVERITY_LABELS.get(severity, severity),
            "started_at": _fmt_time(incident.get("started_at") or incident.get("detected_at")),
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
            {
                "action_id": o.get("action_id"),
                "status": o.get("status"),
                "verified": o.get("verified"),
                "detail": str(o.get("detail") or ""),
            }
            for o in outcomes
        ],
        "mitigation_summary": mitigation.get("summary"),
        "pending_approvals": pending,
        "recovery_line": _recovery_line(recovery),
        "customer_title": f"degraded service: {', '.join(services)}" if services else "degraded service",
        "customer_scope": ", ".join(services) if services else "some of our services",
        "next_update": cadence.next_update_at.strftime("%H:%M UTC on %Y-%m-%d")
        + f" (every {cadence.interval_minutes:g} min)",
        "next_update_time": cadence.next_update_at.strftime("%H:%M UTC on %Y-%m-%d"),
        "sequence": sequence,
    }


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
) -> list[Message]:
    """One redacted message per audience."""
    values = template_context(context, sequence=sequence, cadence=cadence, incident_id=incident_id)
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
