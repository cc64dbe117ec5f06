"""incident-resolution-coordinator: diagnosis → prioritised mitigations with risk, order, rollback.

The mapping from a diagnosis to action kinds lives in runbooks (warroom.actions.runbook, when that
module provides one for the diagnosis) or in the playbooks of `data/resolution.yaml`; this module
measures the facts the actions need (pool size, replicas, long-running queries, the version to roll
back to, the code location to fix) and fills each action's parameters and texts from them.
"""

from __future__ import annotations

import importlib
import math
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from types import SimpleNamespace
from typing import Any, ClassVar

import polars as pl
import yaml
from simpleeval import SimpleEval

from warroom.agents.base import AgentContext, AgentSpec, Specialist
from warroom.agents.outputs import (
    DATABASE,
    DIAGNOSIS,
    INCIDENT,
    SECURITY,
    SUSPECT_CHANGE,
    SUSPECT_SERVICE,
    IncidentSummary,
)
from warroom.analysis.networks import listed
from warroom.incident import AgentReport, Evidence, Finding, RecommendedAction, RiskLevel
from warroom.sources import conventions as cv
from warroom.sources.incident_telemetry import IncidentTelemetry
from warroom.values import as_dict

PRIORITIES = ("immediate", "short_term", "follow_up")
UNFILLED = re.compile(r"\{(\w+)\}")  # a runbook placeholder the diagnosis and the variables left empty
# Queries running longer than this are "long-running" (the bundle convention's definition).
LONG_QUERY_S = 30.0
DATABASE_METRICS = (cv.DB_CPU_UTILIZATION, cv.DB_LONG_RUNNING_QUERIES, cv.DB_LOCK_WAITS)


@cache
def playbook_data() -> dict[str, Any]:
    """The playbooks and action templates shipped in `data/resolution.yaml`."""
    text = resources.files("warroom.agents").joinpath("data/resolution.yaml").read_text(encoding="utf-8")
    data = yaml.load(text, Loader=yaml.CSafeLoader)
    if not isinstance(data, dict) or "playbooks" not in data or "actions" not in data:
        raise ValueError("warroom/agents/data/resolution.yaml: expected 'playbooks' and 'actions'")
    return data


def _norm(text: str | None) -> str:
    return (text or "").lower().replace("-", "_").replace(" ", "_")


def select_playbook(fault_type: str | None, indicator: str | None) -> dict[str, Any]:
    """The first playbook whose keywords hit the fault type; else the indicator; else the default."""
    playbooks: list[dict[str, Any]] = playbook_data()["playbooks"]
    for text in (_norm(fault_type), _norm(indicator)):
        if not text:
            continue
        for book in playbooks:
            if any(_norm(word) in text for word in book.get("match") or []):
                return book
    return next(book for book in playbooks if not book.get("match"))


# --------------------------------------------------------------------------------------------
# Facts measured from the bundle and the context


@dataclass
class Facts:
    values: dict[str, Any] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)

    def get(self, key: str) -> Any:
        return self.values.get(key)


def _metric(telemetry: IncidentTelemetry, name: str, services: list[str] | None) -> pl.DataFrame | None:
    metrics = telemetry.metrics
    if metrics is None:
        return None
    rows = metrics.filter(pl.col("metric") == name)
    if services:
        rows = rows.filter(pl.col("service").is_in(services))
    window = telemetry.manifest.effective_window()
    inside = rows.filter((pl.col("timestamp") >= window.start) & (pl.col("timestamp") <= window.end))
    rows = inside if inside.height else rows
    return rows if rows.height else None


def _peak(facts: Facts, telemetry: IncidentTelemetry, key: str, name: str, services: list[str] | None) -> None:
    rows = _metric(telemetry, name, services)
    if rows is None:
        facts.values[key] = None
        return
    top = rows.sort("value", descending=True).row(0, named=True)
    facts.values[key] = float(top["value"])
    facts.evidence.append(
        Evidence(
            source="metrics",
            query=f"max {name}{{service={top['service']}}}",
            start=rows.get_column("timestamp").min(),
            end=rows.get_column("timestamp").max(),
            values={"max": float(top["value"]), "at": top["timestamp"].isoformat(), "service": top["service"]},
        )
    )


def _replicas(telemetry: IncidentTelemetry, service: str) -> list[str]:
    for frame in (telemetry.metrics, telemetry.traces, telemetry.logs):
        if frame is not None and "instance" in frame.columns:
            names = frame.filter(pl.col("service") == service).get_column("instance").drop_nulls().unique().sort()
            if names.len():
                return [str(n) for n in names.to_list()]
    return []


def _database_service(telemetry: IncidentTelemetry, service: str | None) -> str | None:
    """The service that reports database metrics (prefer a dependency of the suspect)."""
    if telemetry.metrics is None:
        return None
    reporting = (
        telemetry.metrics.filter(pl.col("metric").is_in(DATABASE_METRICS)).get_column("service").unique().to_list()
    )
    deps = telemetry.topology.get(service or "", [])
    for name in [*deps, *sorted(reporting)]:
        if name in reporting:
            return str(name)
    return None


def _previous_version(telemetry: IncidentTelemetry, change: Mapping[str, Any]) -> str | None:
    """The version the service ran before the suspect change (the rollback target)."""
    changes = telemetry.changes
    if changes is None or "version" not in changes.columns:
        return None
    when = change.get("time")
    if isinstance(when, str):
        when = datetime.fromisoformat(when.replace("Z", "+00:00"))
    if not isinstance(when, datetime):
        return None
    earlier = (
        changes.filter(
            (pl.col("service") == change.get("service"))
            & (pl.col("time") < when)
            & pl.col("version").is_not_null()
            & (pl.col("id") != change.get("id"))
        )
        .sort("time")
        .tail(1)
    )
    return str(earlier.get_column("version")[0]) if earlier.height else None


def _code_location(finding: Mapping[str, Any]) -> tuple[str | None, int | None]:
    file = finding.get("file") or finding.get("path")
    line = finding.get("line")
    return (str(file) if file else None, int(line) if isinstance(line, int | float) else None)


def primary_code_finding(findings: list[Any]) -> dict[str, Any] | None:
    """The offending code location: the first finding marked as such, else the first with a file."""
    usable = [f for f in findings if isinstance(f, dict) and _code_location(f)[0] and f.get("in_diff") is not False]
    for finding in usable:
        role = _norm(str(finding.get("role") or finding.get("relation") or ""))
        if finding.get("in_diff") is True or finding.get("offending") or role in ("offending", "primary", "cause"):
            return finding
    return usable[0] if usable else None


def _change_facts(facts: Facts, telemetry: IncidentTelemetry, change: dict[str, Any] | None) -> None:
    v = facts.values
    if not change:
        v.update(change_id=None, change_kind=None)
        facts.limitations.append("no 'suspect_change' in the context: no rollback target")
        return
    v["suspect_change"] = change
    v.update(
        change_id=change.get("id"),
        change_kind=change.get("kind"),
        from_version=change.get("version") or change.get("commit"),
        commit=change.get("commit"),
        description=change.get("description"),
        minutes_before_onset=change.get("minutes_before_onset"),
        restore_before=change.get("time"),
        change_commit=change.get("commit"),
    )
    v["to_version"] = _previous_version(telemetry, change) or f"the version before {change.get('id')}"


def _code_facts(facts: Facts, findings: list[Any]) -> None:
    code = primary_code_finding(findings)
    if code is None:
        facts.values["code_file"] = None
        return
    file, line = _code_location(code)
    facts.values.update(
        code_file=file,
        code_line=line,
        code_location=f"{file}:{line}" if line else file,
        code_commit=code.get("commit"),
        code_pattern=code.get("kind") or code.get("pattern") or code.get("title"),
    )


def measure_facts(ctx: AgentContext) -> Facts:
    """Everything the actions need, measured from the bundle and the context."""
    telemetry, context = ctx.telemetry, ctx.context
    facts = Facts()
    diagnosis = ctx.read_list(DIAGNOSIS)
    best = diagnosis[0] if diagnosis else None
    suspect = ctx.read(SUSPECT_CHANGE)
    change = suspect.model_dump(mode="json", exclude_unset=True) if suspect else None
    service = (
        ctx.read(SUSPECT_SERVICE)
        or (best.service if best else None)
        or (suspect.service if suspect else None)
        or telemetry.manifest.alert.service
    )
    v = facts.values
    v.update(
        service=service,
        fault_type=best.fault_type if best else None,
        indicator=best.indicator if best else None,
        confidence=best.confidence if best else None,
    )
    if not diagnosis:
        facts.limitations.append("no 'diagnosis' in the context: actions chosen from measured signals only")
    if telemetry.metrics is None:
        facts.limitations.append("no metrics in the bundle: pool size, replicas and saturation not measured")
    scope = [service] if service else None
    _peak(facts, telemetry, "pool_utilization", cv.DB_POOL_UTILIZATION, scope)
    _peak(facts, telemetry, "pool_size", cv.DB_POOL_SIZE, scope)
    _peak(facts, telemetry, "cpu_max", cv.CPU_UTILIZATION, scope)
    _peak(facts, telemetry, "memory_max", cv.MEMORY_UTILIZATION, scope)
    database = _database_service(telemetry, service)
    v["database"] = database or "the database"
    _peak(facts, telemetry, "db_cpu", cv.DB_CPU_UTILIZATION, None)
    _peak(facts, telemetry, "long_running_queries", cv.DB_LONG_RUNNING_QUERIES, None)
    measured = ctx.read(DATABASE)
    for key in ("pool_size", "long_running_queries", "pool_utilization", "db_cpu"):
        value = getattr(measured, key) if measured else None
        if v.get(key) is None and value is not None:
            v[key] = float(value)
    replicas = _replicas(telemetry, service) if service else []
    v["replicas"] = len(replicas) or None
    v["replica_names"] = replicas
    v["replicas_text"] = f"{len(replicas)} replicas" if replicas else "replicas"
    v["min_duration_s"] = LONG_QUERY_S
    _change_facts(facts, telemetry, change)
    _code_facts(facts, list(context.get("code_findings") or []))
    security = ctx.read(SECURITY)
    v["sources"] = list(security.top_sources) if security else []
    v["attack_networks"] = list(security.attack_networks) if security else []
    if v.get("fault_type") is None and security and security.verdict == "escalate" and security.categories:
        # the security path names its finding in the security context, not as a diagnosis
        v["fault_type"] = security.categories[0]
    # every failing address, not the block list's head (the loudest fifty)
    distinct = security.sources.get("distinct_ips") if security else None
    v["sources_count"] = (float(distinct) if isinstance(distinct, int | float) else len(v["sources"])) or None
    v["attack_networks_count"] = len(v["attack_networks"]) or None
    v["attack_networks_text"] = listed(v["attack_networks"])
    deps = telemetry.topology.get(service or "", [])
    dependency = context.get("dependency") or ((best.model_extra or {}).get("dependency") if best else None)
    v["dependency"] = dependency or (deps[0] if len(deps) == 1 else None)
    v["rpo_minutes"] = telemetry.manifest.objectives.rpo_minutes
    return facts


# --------------------------------------------------------------------------------------------
# Parameters per action kind (generic: computed from the facts, never per scenario)


Parameters = Callable[[dict[str, Any], Mapping[str, Any]], dict[str, Any] | None]


def _pool_raise(v: dict[str, Any], template: Mapping[str, Any]) -> dict[str, Any] | None:
    size = v.get("pool_size")
    if size is None:
        return None
    factor = float(template.get("factor", 1.5))
    return {"service": v.get("service"), "from_size": size, "to_size": float(math.ceil(size * factor))}


def _scale_out(v: dict[str, Any], template: Mapping[str, Any]) -> dict[str, Any] | None:
    replicas = v.get("replicas")
    if replicas is None:
        return None
    target = float(template.get("target_utilization", 0.6))
    cpu = v.get("cpu_max")
    # Enough replicas to bring the measured peak down to the target utilisation.
    needed = math.ceil(replicas * cpu / target) if cpu else replicas + 1
    return {"service": v.get("service"), "from_replicas": replicas, "to_replicas": max(replicas + 1, needed)}


def _restart(v: dict[str, Any], template: Mapping[str, Any]) -> dict[str, Any] | None:
    return {"service": v.get("service"), "instances": v.get("replica_names") or []}


def _rollback(v: dict[str, Any], template: Mapping[str, Any]) -> dict[str, Any] | None:
    if v.get("change_id") is None:
        return None
    keys = ("service", "change_id", "from_version", "to_version", "commit")
    return {key: v.get(key) for key in keys}


def _revert_config(v: dict[str, Any], template: Mapping[str, Any]) -> dict[str, Any] | None:
    if v.get("change_id") is None:
        return None
    return {"service": v.get("service"), "change_id": v["change_id"], "description": v.get("description")}


def _fix_forward(v: dict[str, Any], template: Mapping[str, Any]) -> dict[str, Any] | None:
    if v.get("code_file") is None:
        return None
    return {
        "file": v["code_file"],
        "line": v.get("code_line"),
        "commit": v.get("code_commit"),
        "pattern": v.get("code_pattern"),
    }


def _needs(key: str, *keys: str, renamed: Mapping[str, str] | None = None) -> Parameters:
    """Parameters that are the facts `keys` (renamed where the action calls them otherwise), or
    None when the fact `key` (if any) is unknown."""
    names = renamed or {}

    def parameters(v: dict[str, Any], template: Mapping[str, Any]) -> dict[str, Any] | None:
        if key and not v.get(key):
            return None
        return {names.get(k, k): v.get(k) for k in keys}

    return parameters


PARAMETERS: dict[str, Parameters] = {
    "kill_long_queries": _needs("", "database", "min_duration_s"),
    "recycle_pool": _needs("", "service", "pool_size"),
    "raise_pool_size": _pool_raise,
    "restart": _restart,
    "scale_out": _scale_out,
    "rollback": _rollback,
    "revert_config": _revert_config,
    "fix_forward": _fix_forward,
    "failover_dependency": _needs("dependency", "service", "dependency"),
    "renew_certificate": _needs("", "service"),
    "block_sources": _needs("sources", "service", "sources", "attack_networks"),
    "restore_backup": _needs("", "database", "restore_before", "rpo_minutes", renamed={"restore_before": "before"}),
}


def parameters_for(kind: str, facts: Facts, template: Mapping[str, Any]) -> dict[str, Any] | None:
    """The parameters of one action; None when a parameter it cannot do without is unknown."""
    build = PARAMETERS.get(kind, _needs("", "service"))
    return build(facts.values, template)


class _Fields(string.Formatter):
    """str.format that reports whether every field it needed was known."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__()
        self.values = values

    def render(self, template: str) -> str | None:
        try:
            for _, name, _, _ in self.parse(template):
                if name and self.values.get(name) is None:
                    return None
            return self.vformat(template, (), dict(self.values))
        except (ValueError, TypeError, KeyError, IndexError):
            return None


def _first(fields: _Fields, templates: list[str] | str | None) -> str:
    options = [templates] if isinstance(templates, str) else list(templates or [])
    for option in options:
        text = fields.render(option)
        if text is not None:
            return text
    return ""


def _entries(book: Mapping[str, Any], priority: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for entry in book.get(priority) or []:
        if isinstance(entry, str):
            out.append((entry, None))
        elif isinstance(entry, dict) and "kind" in entry:
            out.append((str(entry["kind"]), entry.get("only_if")))
    return out


def _allowed(condition: str | None, facts: Facts) -> bool:
    if not condition:
        return True
    evaluator = SimpleEval(names={"facts": SimpleNamespace(**facts.values)})
    try:
        return bool(evaluator.eval(condition))
    except Exception:  # an unmeasured fact (None) makes the condition unanswerable: leave the action out
        return False


# Runbook variables the measured facts size: variable → (action kind, its measured parameter).
MEASURED_VARIABLES = {
    "raised_pool_size": ("raise_pool_size", "to_size"),
    "scale_replicas": ("scale_out", "to_replicas"),
}


def _fills_placeholder(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(isinstance(item, str | int | float) for item in value)
    return isinstance(value, str | int | float)


def _runbook_plan(
    diagnosis: list[dict[str, Any]], facts: Facts, variables: Mapping[str, Any]
) -> tuple[str, list[RecommendedAction]] | None:
    """The plan of the runbook (warroom.actions.runbook) that fits the diagnosis, if any."""
    try:  # the actions team's runbooks win over the playbooks here when one fits
        runbook = importlib.import_module("warroom.actions.runbook")
    except ImportError:
        return None
    if not diagnosis:
        return None
    # Scalars, and lists of them (a block rule's networks), fill a runbook step's placeholders.
    scalars = {k: v for k, v in facts.values.items() if _fills_placeholder(v)}
    for variable, (kind, parameter) in MEASURED_VARIABLES.items():
        measured = parameters_for(kind, facts, playbook_data()["actions"].get(kind, {}))
        if measured:
            scalars[variable] = int(measured[parameter])
    change = correlated_change(facts)
    undo_kind = UNDO_OF_CHANGE.get(str(change.get("kind"))) if change else None
    try:
        book, actions = runbook.plan_from_diagnosis(diagnosis, variables={**scalars, **variables}, undo_kind=undo_kind)
    except Exception:  # a runbook that cannot answer leaves the playbooks in charge
        return None
    if book is None or not actions:
        return None
    return ("runbook" if book.builtin else "site runbook") + f" {book.name}", list(actions)


def _precondition_fails(kind: str, facts: Facts) -> str | None:
    """Why an action is pointless by measurement (None when it is not, or when unmeasured)."""
    condition = playbook_data().get("preconditions", {}).get(kind)
    if condition and not _allowed(condition, facts):
        return f"{kind}: left out, the measured facts contradict it ({_reason(kind)})"
    return None


PRECONDITION_WORDS = {
    "kill_long_queries": "no long-running queries were measured",
    "recycle_pool": "the connection pool was not saturated",
    "raise_pool_size": "the connection pool was not saturated",
    "scale_out": "CPU was not saturated",
    "rollback": "the data holds no change to roll back",
    "revert_config": "the data holds no change to revert",
    "fix_forward": "no code location was found to fix",
}


def _reason(kind: str) -> str:
    return PRECONDITION_WORDS.get(kind, "its precondition does not hold")


def _fill(kind: str, facts: Facts, params: Mapping[str, Any]) -> tuple[str, str, str]:
    """Title, rationale and rollback of an action kind, from the templates and the facts."""
    template = playbook_data()["actions"].get(kind, {})
    fields = _Fields({**facts.values, **{k: p for k, p in params.items() if p is not None}})
    return (
        _first(fields, template.get("title")),
        _first(fields, template.get("rationale")),
        _first(fields, template.get("rollback")),
    )


REMOVE_CAUSE = ("rollback", "revert_config")
# Actions that undo the damage itself: rolling back the change that destroyed data does not bring the
# data back, so these keep their place ahead of the rollback.
REPAIR_DAMAGE = ("restore_backup",)
CAUSE_CONFIDENCE = 0.6  # change correlation's own score: time to onset × relation to the suspect
# A measured onset is only as sharp as the metric step (15-60 s): a change stamped within a minute
# after it may still be its cause.
ONSET_TOLERANCE_MIN = 1.0


def correlated_change(facts: Facts) -> dict[str, Any] | None:
    """The suspect change when it is to the suspected service and lines up with the onset (its
    correlation score high enough, not after the onset beyond the tolerance), else None."""
    change = facts.values.get("suspect_change") or {}
    score, minutes = change.get("score"), change.get("minutes_before_onset")
    if (
        not isinstance(score, int | float)
        or score < CAUSE_CONFIDENCE
        or not isinstance(minutes, int | float)
        or minutes < -ONSET_TOLERANCE_MIN
        or change.get("service") != facts.values.get("service")
    ):
        return None
    return dict(change)


# The step that removes a change of each kind; other kinds (a scale, a restart, a migration, a
# firewall rule) have no one undo a runbook can be assumed to hold, and borrow none.
UNDO_OF_CHANGE = {
    "config": "revert_config",
    "feature_flag": "revert_config",
    "deploy": "rollback",
    "release": "rollback",
    "merge": "rollback",
    "code": "rollback",
}


def cause_first(actions: list[RecommendedAction], facts: Facts) -> list[RecommendedAction]:
    """Put the step that removes the cause first when a change to the suspected service lines up
    with the onset: rolling back removes the cause, while restarts and bigger pools only treat a
    symptom that the same change brings back (a leak refills the pool)."""
    change = correlated_change(facts)
    undo = next((a for a in actions if a.kind in REMOVE_CAUSE), None)
    if change is None or undo is None or actions[0] is undo or actions[0].kind in REPAIR_DAMAGE:
        return actions
    why = (
        f"moved first: {change.get('id')} changed {change.get('service')} {change['minutes_before_onset']:.0f} "
        f"min before the onset (correlation {change['score']:.2f}); removing the cause beats treating the symptom"
    )
    moved = undo.model_copy(
        update={"priority": "immediate", "rationale": "; ".join(t for t in (why, undo.rationale) if t)}
    )
    ordered = [moved, *(a for a in actions if a is not undo)]
    return [a.model_copy(update={"parameters": {**a.parameters, "order": i}}) for i, a in enumerate(ordered, 1)]


def adopt_proposals(plan: list[RecommendedAction], proposed: list[Any]) -> list[RecommendedAction]:
    """Give a planned action the id of an earlier specialist's proposal of the same kind on the same
    target, so the plan revises that proposal instead of standing beside it as a twin; carry an
    earlier proposal of a kind the plan does not hold to the end of the plan, so no specialist's
    proposal is dropped on the way to the executor."""
    earlier: dict[tuple[str, str | None], str] = {}
    for item in proposed:
        if isinstance(item, dict) and "id" in item and "kind" in item:
            earlier.setdefault((str(item["kind"]), item.get("target")), str(item["id"]))
    taken: set[str] = set()
    adopted = []
    for action in plan:
        known = earlier.get((action.kind, action.target))
        if known is not None and known not in taken:
            taken.add(known)
            action = action.model_copy(update={"id": known})
        adopted.append(action)
    planned = {action.kind for action in plan}
    for item in proposed:
        if not isinstance(item, dict) or item.get("kind") in planned or item.get("id") in taken:
            continue
        try:
            carried = RecommendedAction.model_validate(item)
        except ValueError:
            continue
        planned.add(carried.kind)
        order = len(adopted) + 1
        adopted.append(carried.model_copy(update={"parameters": {**carried.parameters, "order": order}}))
    return adopted


def build_plan(
    facts: Facts,
    diagnosis: list[dict[str, Any]] | None = None,
    variables: Mapping[str, Any] | None = None,
    proposed: list[Any] | None = None,
) -> tuple[list[RecommendedAction], str, list[str]]:
    """The ordered actions, where they came from (runbook or playbook), and the actions left out."""
    actions, source, skipped = _plan(facts, diagnosis, variables)
    if source.startswith("site runbook"):
        # the site's own runbook orders and names its steps for its systems (approvals use those names)
        return actions, source, skipped
    return adopt_proposals(cause_first(actions, facts), proposed or []), source, skipped


def _plan(
    facts: Facts, diagnosis: list[dict[str, Any]] | None, variables: Mapping[str, Any] | None
) -> tuple[list[RecommendedAction], str, list[str]]:
    data = playbook_data()
    v = facts.values
    skipped: list[str] = []
    actions: list[RecommendedAction] = []
    from_runbook = _runbook_plan(diagnosis or [], facts, variables or {})
    if from_runbook is not None:
        source, steps = from_runbook
        for step in steps:
            reason = _precondition_fails(step.kind, facts)
            measured = parameters_for(step.kind, facts, data["actions"].get(step.kind, {})) or {}
            measured_title, rationale, rollback = _fill(step.kind, facts, measured)
            title = step.title
            unfilled = sorted(set(UNFILLED.findall(title)))
            if unfilled:
                # The runbook's wording needs a value nobody gave (a replica count, a certificate's
                # name): the action stays, in the words the measured facts can fill.
                title = measured_title
            if unfilled and (not title or UNFILLED.search(title)):
                reason = f"{step.kind}: its title needs {', '.join(unfilled)}, which the data does not give"
            if reason:
                skipped.append(reason)
                continue
            order = len(actions) + 1
            actions.append(
                step.model_copy(
                    update={
                        "title": title,
                        "target": step.target or v.get("service"),
                        "rationale": "; ".join(
                            t for t in (step.rationale, f"measured: {rationale}" if rationale else "") if t
                        ),
                        "rollback": step.rollback or rollback,
                        "parameters": {**measured, **step.parameters, "order": order},
                    }
                )
            )
        return actions, source, skipped
    book = select_playbook(v.get("fault_type"), v.get("indicator"))
    source = f"playbook {book['name']}"
    planned = [(kind, p, cond) for p in PRIORITIES for kind, cond in _entries(book, p)]
    seen: set[str] = set()
    for kind, priority, condition in planned:
        if kind in seen:
            continue
        if not _allowed(condition, facts):
            skipped.append(f"{kind}: its condition does not hold for the measured facts")
            continue
        reason = _precondition_fails(kind, facts)
        if reason:
            skipped.append(reason)
            continue
        template = data["actions"].get(kind, {})
        params = parameters_for(kind, facts, template)
        if params is None:
            skipped.append(f"{kind}: a required parameter could not be measured")
            continue
        seen.add(kind)
        title, rationale, rollback = _fill(kind, facts, params)
        order = len(actions) + 1
        actions.append(
            RecommendedAction(
                id=f"A{order}-{kind}",
                title=title or f"{kind} on {v.get('service')}",
                kind=kind,
                target=str(params.get("service") or params.get("database") or params.get("file") or "") or None,
                risk=RiskLevel(template.get("risk", "medium")),
                priority=priority,
                rationale=rationale,
                parameters={**params, "order": order},
                rollback=rollback,
            )
        )
    return actions, source, skipped


class IncidentResolutionCoordinator(Specialist):
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="incident-resolution-coordinator",
        purpose="Turn the diagnosis into prioritised mitigations (immediate, short term, fix forward), "
        "each with risk, order, parameters and a rollback procedure.",
        inputs=("diagnosis", "suspect_service", "suspect_change", "code_findings", "incident", "security"),
        outputs=("resolution_plan", "resolution_source", "resolution_deadline"),
        aliases=("planning",),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        facts = measure_facts(ctx)
        diagnosis = [d.model_dump(mode="json") for d in ctx.read_list(DIAGNOSIS)]
        variables = as_dict(ctx.params.get("variables"))
        actions, source, skipped = build_plan(facts, diagnosis, variables, ctx.context.get("proposed_actions"))
        v = facts.values
        deadline = _rto_deadline(ctx, ctx.read(INCIDENT))
        evidence = facts.evidence
        findings = [
            Finding(
                title=f"Resolution plan: {len(actions)} actions from {source}",
                detail="; ".join(f"{a.parameters['order']}. [{a.priority}, {a.risk.value}] {a.title}" for a in actions),
                confidence=float(v.get("confidence") or 0.5),
                service=v.get("service"),
                kind="resolution",
                evidence=evidence,
            )
        ]
        what = f"{v.get('fault_type')} on {v.get('service')}" if v.get("fault_type") else str(v.get("service"))
        first = actions[0].title if actions else "no action could be planned"
        summary = f"{what}: {len(actions)} actions planned ({source}); first: {first}"
        if deadline:
            summary += f"; recovery due by {deadline} (RTO)"
        limitations = list(facts.limitations) + [f"left out {s}" for s in skipped]
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=findings,
            outputs={
                "resolution_plan": [a.model_dump(mode="json") for a in actions],
                "resolution_source": source,
                "resolution_deadline": deadline,
            },
            actions=actions,
            limitations=limitations,
        )


def _rto_deadline(ctx: AgentContext, incident: IncidentSummary | None) -> str | None:
    """When recovery is due: detection (the alert) plus the RTO."""
    rto = (incident.rto_minutes if incident else None) or ctx.telemetry.manifest.objectives.rto_minutes
    if rto is None:
        return None
    fired = ctx.telemetry.manifest.alert.fired_at
    return (fired + timedelta(minutes=float(rto))).isoformat()
