"""post-incident-analyst / incidents-postmortems: cause, contributing factors, prevention, actions.

Every statement is built from the context the run produced (diagnosis, suspect change, code
findings, mitigation, recovery, documentation timeline) and from the bundle's telemetry; a factor
is only stated when the evidence for it is present. Owners are roles or teams, never people.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

import numpy as np
import polars as pl

from warroom.agents.base import AgentContext, AgentSpec, Specialist
from warroom.agents.documentation import reconstruct_timeline
from warroom.agents.outputs import DIAGNOSIS, INCIDENT, SECURITY, SUSPECT_CHANGE, SUSPECT_SERVICE, read, read_list
from warroom.agents.resolution import primary_code_finding
from warroom.analysis.facts import ActionMode, classify_outcome
from warroom.analysis.onset import ONSET_SIGNALS, USER_FACING
from warroom.analysis.recovery import first_sustained_breach, metric_series, per_time
from warroom.figures import format_minutes
from warroom.incident import AgentReport, Evidence, Finding
from warroom.sources import conventions as cv
from warroom.sources.incident_telemetry import IncidentTelemetry
from warroom.values import as_dict, parse_time

# The onsets worth an alert of their own: saturation, not the user-facing symptoms the alert watched.
SATURATION = tuple(s for s in ONSET_SIGNALS if s not in (*USER_FACING, cv.NETWORK_LATENCY_MS))
# Policy (stated in the output, not hidden): due dates by priority, review date, and what counts as
# a fast detection when the incident has no RTO.
DUE_DAYS = {"immediate": 7, "short_term": 14, "follow_up": 30}
REVIEW_AFTER_DAYS = 7
FAST_DETECTION_SHARE_OF_RTO = 0.2
FAST_DETECTION_MIN_WITHOUT_RTO = 5.0
# A deploy or restart of a service restarts its processes: restarts this soon after a change of the
# same service are the change's own doing, not a signal an alert missed.
RESTART_OF_CHANGE = timedelta(minutes=2)
SATURATED = 0.8  # a utilisation above this is worth an alert of its own
STAGING_WORDS = ("staging", "stage", "preprod", "pre-prod", "canary", "load test", "loadtest")


def _location(finding: Mapping[str, Any]) -> str:
    file = finding.get("file") or finding.get("path")
    line = finding.get("line")
    return f"{file}:{line}" if line else str(file)


def similar_places(code_findings: list[Any]) -> list[dict[str, Any]]:
    """Other places in the repository with the offending pattern (from the code-explorer)."""
    primary = primary_code_finding(code_findings)
    out: list[dict[str, Any]] = []
    pool: list[Any] = []
    for item in code_findings:
        if not isinstance(item, dict):
            continue
        pool.extend(item.get("same_pattern") or [])
        if item is not primary and (item.get("in_diff") is False or item.get("role") == "same_pattern"):
            pool.append(item)
    seen: set[str] = set()
    for item in pool:
        if not isinstance(item, dict) or not (item.get("file") or item.get("path")):
            continue
        where = _location(item)
        if where in seen or (primary is not None and where == _location(primary)):
            continue
        seen.add(where)
        out.append(
            {
                "location": where,
                "file": item.get("file") or item.get("path"),
                "line": item.get("line"),
                "function": item.get("function"),
                "kind": item.get("kind"),
                "detail": item.get("detail"),
            }
        )
    return out


def primary_cause(context: Mapping[str, Any]) -> dict[str, Any] | None:
    diagnosis = read_list(context, DIAGNOSIS)
    best = diagnosis[0] if diagnosis else None
    change = read(context, SUSPECT_CHANGE)
    code = primary_code_finding(list(context.get("code_findings") or []))
    if best is None and change is None and not code:
        return None
    service = (best.service if best else None) or (change.service if change else None) or read(context, SUSPECT_SERVICE)
    fault_type = best.fault_type if best else None
    indicator = best.indicator if best else None
    parts = [f"{fault_type or 'fault'} in {service}"]
    if indicator:
        parts[0] += f" (indicator: {indicator})"
    if change:
        what = " ".join(v for v in (change.kind, change.version) if v)
        commit = (change.commit or "")[:12]
        parts.append(f"introduced by change {change.id} ({what}" + (f", commit {commit})" if commit else ")"))
    if code:
        detail = code.get("detail") or code.get("kind")
        function = f" in {code['function']}" if code.get("function") else ""
        parts.append(f"at {_location(code)}{function}: {detail}")
    return {
        "text": ", ".join(parts),
        "service": service,
        "fault_type": fault_type,
        "indicator": indicator,
        "confidence": best.confidence if best else None,
        "change_id": (change.id if change else None) or (best.change_id if best else None),
        "commit": (code or {}).get("commit") or (change.commit if change else None),
        "file": (code or {}).get("file"),
        "line": (code or {}).get("line"),
        "function": (code or {}).get("function"),
        "evidence_ids": list(best.evidence_ids) if best else [],
    }


def _fmt_min(value: float) -> str:
    return format_minutes(value)


def threshold_crossed(telemetry: IncidentTelemetry, service: str, signal: str, threshold: float) -> datetime | None:
    """When a saturation metric of the service first stayed above a proposed alert threshold (three
    samples in a row): what an alert at that threshold would have fired on."""
    window = telemetry.manifest.effective_window()
    series = metric_series(telemetry.metrics, (signal,), [service])
    if series is None:
        return None
    times, values = per_time(series.times, series.array())
    inside = [(t, v) for t, v in zip(times, values, strict=True) if window.start <= t <= window.end]
    if not inside:
        return None
    return first_sustained_breach([t for t, _ in inside], np.asarray([v for _, v in inside]), threshold, True)


def detection_gap(timeline: list[dict[str, Any]], telemetry: IncidentTelemetry) -> list[dict[str, Any]]:
    """Saturation signals that crossed an alertable threshold before the (differently named) alert
    fired; the lead is measured from the crossing of that threshold, not from the first drift."""
    alert = telemetry.manifest.alert
    alerted_on = f"{alert.name} {alert.summary} {' '.join(alert.labels.values())}".lower()
    changed = [(e.get("service"), parse_time(e.get("at"))) for e in timeline if e.get("kind") == "change"]
    out: list[dict[str, Any]] = []
    for event in timeline:
        values = as_dict(event.get("values"))
        signal = values.get("signal")
        service = event.get("service")
        at = parse_time(event.get("at"))
        if event.get("kind") != "onset" or signal not in SATURATION or at is None or not isinstance(service, str):
            continue
        if signal == cv.RESTARTS and any(
            who == service and when is not None and timedelta(0) <= at - when <= RESTART_OF_CHANGE
            for who, when in changed
        ):
            continue
        words = signal.replace("db_", "").replace("_utilization", "").split("_")
        if all(w in alerted_on for w in words):
            continue
        threshold = values.get("limit")
        if signal.endswith("_utilization"):
            # A utilisation that merely drifted is not a missed alert; one that saturated is.
            if float(values.get("peak") or 0.0) < SATURATED:
                continue
            threshold = SATURATED
        if not isinstance(threshold, int | float):
            continue
        crossed = threshold_crossed(telemetry, service, signal, float(threshold)) or at
        lead = (alert.fired_at - crossed).total_seconds() / 60
        if lead <= 0:
            continue
        out.append(
            {
                "kind": "detection_gap",
                "text": f"{signal} of {service} crossed {threshold:.3g} at {crossed:%H:%M:%S} UTC, "
                f"{_fmt_min(lead)} before the first alert ({alert.name}) fired; no alert on {signal} preceded it",
                "service": service,
                "signal": signal,
                "limit": threshold,
                "baseline": values.get("baseline"),
                "peak": values.get("peak"),
                "crossed_at": crossed.isoformat(),
                "lead_min": round(lead, 2),
            }
        )
    return out


def staging_gap(telemetry: IncidentTelemetry, change: Mapping[str, Any]) -> dict[str, Any] | None:
    """The suspect change has no staging/canary record while other changes in the history do."""
    changes = telemetry.changes
    if changes is None or not change:
        return None
    text = pl.concat_str(
        [pl.col(c).fill_null("") for c in ("kind", "description", "service") if c in changes.columns], separator=" "
    ).str.to_lowercase()
    staged = changes.with_columns(text.alias("_text")).filter(
        pl.any_horizontal([pl.col("_text").str.contains(word, literal=True) for word in STAGING_WORDS])
    )
    if staged.height == 0:
        return None  # the history records no staging at all: nothing can be said either way
    keys = [str(change.get(k)) for k in ("commit", "version") if change.get(k)]
    mine = staged.filter(
        pl.any_horizontal([pl.col(c).cast(pl.String).is_in(keys) for c in ("commit", "version") if c in staged.columns])
    )
    if mine.height:
        return None
    return {
        "kind": "no_staging",
        "text": f"change {change.get('id')} reached production with no staging or load-test record in the change "
        f"history, while {staged.height} other change(s) have one",
        "change_id": change.get("id"),
        "staged_changes": staged.get_column("id").head(5).to_list(),
    }


def code_factors(code_findings: list[Any], similar: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    primary = primary_code_finding(code_findings)
    if primary is not None:
        kind = str(primary.get("kind") or "defect")
        data = as_dict(primary.get("data"))
        column = data.get("column") or data.get("columns")
        table = data.get("table")
        if kind == "unindexed_query" and table and column:
            detail = f"no index on {table}({column})"
        else:
            detail = str(primary.get("detail") or kind)
        out.append(
            {
                "kind": kind,
                "text": f"{detail} at {_location(primary)}"
                + (f" ({primary['function']})" if primary.get("function") else ""),
                "file": primary.get("file"),
                "line": primary.get("line"),
                "table": table,
                "column": column,
            }
        )
    if similar:
        kinds = sorted({str(s.get("kind")) for s in similar if s.get("kind")})
        out.append(
            {
                "kind": "same_pattern",
                "text": f"the same pattern ({', '.join(kinds) or 'as the cause'}) exists in {len(similar)} other "
                f"place(s): {', '.join(s['location'] for s in similar[:5])}" + (" …" if len(similar) > 5 else ""),
                "count": len(similar),
            }
        )
    return out


def spread_factor(
    timeline: list[dict[str, Any]], suspect: str | None, telemetry: IncidentTelemetry
) -> dict[str, Any] | None:
    """Services that call the suspect (topology) and whose signals left baseline too."""
    onsets: dict[str, datetime] = {}
    for event in timeline:
        at = parse_time(event.get("at"))
        if event.get("kind") == "onset" and event.get("service") and at is not None:
            onsets.setdefault(str(event["service"]), at)
    callers = {name for name, deps in telemetry.topology.items() if suspect in deps}
    others = sorted(s for s in onsets if s != suspect and (s in callers or not telemetry.topology))
    if not suspect or suspect not in onsets or not others:
        return None
    first, last = min(onsets[s] for s in others), max(onsets[s] for s in others)
    when = f"at {first:%H:%M:%S} UTC" if first == last else f"between {first:%H:%M:%S} and {last:%H:%M:%S} UTC"
    return {
        "kind": "propagation",
        "text": f"the failure of {suspect} propagated to {', '.join(others)} (their signals left baseline {when})",
        "services": others,
        "callers_known": bool(telemetry.topology),
    }


def measures_for(
    factors: list[dict[str, Any]], cause: Mapping[str, Any] | None, service: str | None
) -> list[dict[str, Any]]:
    """One preventive measure per factor, with the owner (a team or role) and a priority."""
    team = f"{service} service team" if service else "owning service team"
    out: list[dict[str, Any]] = []
    if cause and cause.get("file"):
        out.append(
            {
                "text": f"Fix {cause['file']}:{cause.get('line')} ({cause.get('fault_type')}) "
                "and add a regression test",
                "owner": team,
                "priority": "immediate",
                "factor": "primary_cause",
            }
        )
    for factor in factors:
        kind = factor["kind"]
        if kind == "detection_gap":
            limit = factor.get("limit")
            threshold = f" above {limit:.3g}" if isinstance(limit, int | float) else ""
            out.append(
                {
                    "text": f"Alert on {factor['signal']} of {factor['service']}{threshold} "
                    f"(it crossed that {_fmt_min(factor['lead_min'])} before the first alert)",
                    "owner": "SRE / observability",
                    "priority": "short_term",
                    "factor": kind,
                }
            )
        elif kind == "unindexed_query":
            table, column = factor.get("table"), factor.get("column")
            target = f"on {table}({column})" if table and column else f"for the query at {factor.get('file')}"
            out.append(
                {
                    "text": f"Add the missing index {target} through a migration, and check query plans of new "
                    "queries against the schema in CI",
                    "owner": f"{team} with the database team",
                    "priority": "immediate",
                    "factor": kind,
                }
            )
        elif kind == "resource_leak":
            out.append(
                {
                    "text": f"Add a static check that fails the build when a resource is acquired without release on "
                    f"every path (as at {factor.get('file')}:{factor.get('line')})",
                    "owner": "developer productivity / CI team",
                    "priority": "short_term",
                    "factor": kind,
                }
            )
        elif kind == "unbounded_retry":
            out.append(
                {
                    "text": f"Bound the retries at {factor.get('file')}:{factor.get('line')} (attempt limit, backoff)",
                    "owner": team,
                    "priority": "short_term",
                    "factor": kind,
                }
            )
        elif kind == "same_pattern":
            out.append(
                {
                    "text": f"Review the {factor['count']} other place(s) with the same pattern",
                    "owner": "owning teams of the listed files",
                    "priority": "short_term",
                    "factor": kind,
                }
            )
        elif kind == "no_staging":
            out.append(
                {
                    "text": "Require a staging deployment with a load test before production for "
                    f"{service or 'the service'}",
                    "owner": "release engineering",
                    "priority": "follow_up",
                    "factor": kind,
                }
            )
        elif kind == "propagation":
            out.append(
                {
                    "text": (
                        f"Set timeouts and circuit breakers on calls from {', '.join(factor['services'])} to {service}"
                        if factor.get("callers_known")
                        else f"Contain failures of {service}: timeouts and circuit breakers between it and "
                        f"{', '.join(factor['services'])}"
                    ),
                    "owner": "owning teams of the calling services",
                    "priority": "follow_up",
                    "factor": kind,
                }
            )
        elif kind == "slow_detection":
            out.append(
                {
                    "text": f"Shorten detection: the alert fired {_fmt_min(factor['minutes'])} after the first onset",
                    "owner": "SRE / observability",
                    "priority": "short_term",
                    "factor": kind,
                }
            )
    return out


def lessons(
    context: Mapping[str, Any], documentation: Mapping[str, Any], rto: float | None
) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
    """What went well and the challenges, from the run's own timeline; plus factors they imply."""
    went_well: list[str] = []
    challenges: list[str] = []
    factors: list[dict[str, Any]] = []
    durations = as_dict(documentation.get("durations"))
    detect = durations.get("onset_to_alert_min")
    if isinstance(detect, int | float):
        fast = rto * FAST_DETECTION_SHARE_OF_RTO if rto else FAST_DETECTION_MIN_WITHOUT_RTO
        text = f"time to detect: {_fmt_min(detect)} from the first signal onset to the alert"
        if detect <= fast:
            went_well.append(text)
        else:
            challenges.append(f"{text} (more than {_fmt_min(fast)})")
            factors.append({"kind": "slow_detection", "text": f"slow detection: {text}", "minutes": detect})
    went, hard = _response_lessons(context, durations, rto)
    went_well += went
    challenges += hard
    change = read(context, SUSPECT_CHANGE)
    code = primary_code_finding(list(context.get("code_findings") or []))
    if change and code:
        went_well.append(f"the change ({change.id}) and the code location ({_location(code)}) were found from the data")
    elif change:
        went_well.append(f"the suspect change ({change.id}) was found from the data")
    security = read(context, SECURITY)
    verdict = security.verdict if security else None
    if verdict == "cleared":
        went_well.append("security and data-integrity checks cleared the incident")
    elif verdict == "escalate":
        challenges.append("security analysis escalated the incident")
    for gap in documentation.get("gaps") or []:
        challenges.append(f"evidence gap: {gap}")
    return {"went_well": went_well, "challenges": challenges}, factors


def _response_lessons(
    context: Mapping[str, Any], durations: Mapping[str, Any], rto: float | None
) -> tuple[list[str], list[str]]:
    """What the response did, from the recorded outcomes only: a replay or a dry run says what the
    recording shows, never that the system recovered."""
    went_well: list[str] = []
    challenges: list[str] = []
    mitigation = as_dict(context.get("mitigation"))
    recovery = as_dict(context.get("recovery"))
    plan = {str(a.get("id")): a for a in context.get("resolution_plan") or [] if isinstance(a, dict)}
    outcomes = [o for o in mitigation.get("outcomes") or [] if isinstance(o, dict)]
    modes = [classify_outcome(o) for o in outcomes]
    kinds = [str(plan.get(str(o.get("action_id")), {}).get("kind") or o.get("action_id")) for o in outcomes]
    executed = [k for k, m in zip(kinds, modes, strict=True) if m is ActionMode.EXECUTED]
    if recovery.get("verified"):
        by = recovery.get("action")
        if executed and executed[0] == by:
            went_well.append(f"the first action ({by}) recovered the service: executed, and recovery verified")
        else:
            others = [k for k in executed if k != by]
            challenges.append(
                f"{len(others)} executed action(s) ({', '.join(others)}) did not recover the service before {by} did"
            )
        to_recover = durations.get("alert_to_recovery_min") or recovery.get("alert_to_recovery_min")
        if isinstance(to_recover, int | float):
            text = f"recovery verified {_fmt_min(to_recover)} after the alert"
            if rto:
                (went_well if to_recover <= rto else challenges).append(f"{text} (RTO {rto:g} min)")
            else:
                went_well.append(text)
    elif executed:
        challenges.append(f"{len(executed)} action(s) executed ({', '.join(executed)}); no recovery was verified")
    elif outcomes:
        how = sorted({m.value.replace("_", " ") for m in modes})
        challenges.append(
            f"no action changed the system ({', '.join(how)}): mitigation was left to people, and recovery "
            "was not verified in this run"
        )
    return went_well, challenges


class PostIncidentAnalyst(Specialist):
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="post-incident-analyst",
        purpose="Primary cause linked to change, commit, file and line; contributing factors from the "
        "evidence; preventive measures; action items with owners and due dates; lessons learned.",
        inputs=(
            "diagnosis",
            "suspect_change",
            "code_findings",
            "incident",
            "mitigation",
            "recovery",
            "documentation",
            "security",
            "resolution_plan",
        ),
        outputs=("postmortem",),
        aliases=("incidents-postmortems",),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        telemetry, context = ctx.telemetry, ctx.context
        limitations: list[str] = []
        documentation = as_dict(context.get("documentation"))
        if not documentation.get("timeline"):
            timeline, gaps, _ = reconstruct_timeline(telemetry, context)
            documentation = {"timeline": timeline, "gaps": gaps, "durations": _durations(timeline, telemetry)}
            limitations.append("no 'documentation' in the context: timeline reconstructed here")
        timeline = list(documentation.get("timeline") or [])
        for key in ("diagnosis", "suspect_change", "code_findings", "mitigation", "recovery"):
            if key not in context:
                limitations.append(f"no '{key}' in the context")
        cause = primary_cause(context)
        service = (cause or {}).get("service") or ctx.read(SUSPECT_SERVICE) or telemetry.manifest.alert.service
        code_findings = list(context.get("code_findings") or [])
        similar = similar_places(code_findings)
        factors = detection_gap(timeline, telemetry)
        factors += code_factors(code_findings, similar)
        staged = staging_gap(telemetry, as_dict(context.get("suspect_change")))
        if staged:
            factors.append(staged)
        spread = spread_factor(timeline, service, telemetry)
        if spread:
            factors.append(spread)
        incident = ctx.read(INCIDENT)
        rto = (incident.rto_minutes if incident else None) or telemetry.manifest.objectives.rto_minutes
        learned, more = lessons(context, documentation, rto)
        factors += more
        measures = measures_for(factors, cause, service)
        base = telemetry.manifest.alert.fired_at
        items = [
            {
                "title": m["text"],
                "owner": m["owner"],
                "priority": m["priority"],
                "due": (base + timedelta(days=DUE_DAYS[m["priority"]])).date().isoformat(),
                "factor": m["factor"],
                "evidence_ids": (cause or {}).get("evidence_ids", []) if m["factor"] == "primary_cause" else [],
            }
            for m in measures
        ]
        if "runbook" not in str(context.get("resolution_source") or "runbook") and cause:
            items.append(
                {
                    "title": f"Write a runbook for {cause.get('fault_type')} (the plan came from a generic playbook)",
                    "owner": "SRE / on-call",
                    "priority": "follow_up",
                    "due": (base + timedelta(days=DUE_DAYS["follow_up"])).date().isoformat(),
                    "factor": "runbook",
                    "evidence_ids": [],
                }
            )
        postmortem = {
            "incident_id": (incident.id if incident else None) or ctx.incident_id,
            "severity": incident.severity if incident else None,
            "primary_cause": cause,
            "contributing_factors": factors,
            "preventive_measures": [m["text"] for m in measures],
            "action_items": items,
            "similar_patterns": similar,
            "lessons_learned": learned,
            "follow_up_review": (base + timedelta(days=REVIEW_AFTER_DAYS)).date().isoformat(),
            "policy": {"due_days": DUE_DAYS, "review_after_days": REVIEW_AFTER_DAYS},
            "durations": documentation.get("durations") or {},
        }
        findings = []
        if cause:
            findings.append(
                Finding(
                    title=f"Primary cause: {cause['text']}",
                    confidence=float(cause.get("confidence") or 0.5),
                    service=service,
                    kind="root_cause",
                    evidence=[
                        Evidence(
                            source="context",
                            query="diagnosis[0], suspect_change, code_findings",
                            values={k: v for k, v in cause.items() if k not in ("text", "evidence_ids")},
                        )
                    ],
                )
            )
        for factor in factors:
            findings.append(
                Finding(
                    title=f"Contributing factor: {factor['text']}",
                    confidence=0.7,
                    service=service,
                    kind="contributing_factor",
                    evidence=[
                        Evidence(
                            source="timeline" if factor["kind"] in ("detection_gap", "propagation") else "context",
                            query=factor["kind"],
                            values={k: v for k, v in factor.items() if k != "text" and not isinstance(v, list | dict)},
                        )
                    ],
                )
            )
        summary = (
            f"primary cause: {cause['text']}"
            if cause
            else "primary cause not established (no diagnosis in the context)"
        ) + f"; {len(factors)} contributing factors, {len(items)} action items, {len(similar)} similar places"
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=findings,
            outputs={"postmortem": postmortem},
            limitations=limitations,
        )


def _durations(timeline: list[dict[str, Any]], telemetry: IncidentTelemetry) -> dict[str, float | None]:
    onsets = [parse_time(e["at"]) for e in timeline if e.get("kind") == "onset"]
    first = min((t for t in onsets if t is not None), default=None)
    recovered = next((parse_time(e["at"]) for e in timeline if e.get("kind") == "recovery"), None)
    fired = telemetry.manifest.alert.fired_at
    return {
        "onset_to_alert_min": round((fired - first).total_seconds() / 60, 2) if first else None,
        "alert_to_recovery_min": round((recovered - fired).total_seconds() / 60, 2) if recovered else None,
    }
