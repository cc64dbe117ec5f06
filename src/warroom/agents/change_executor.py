"""change-executor: runs the resolution plan through the mitigation loop under the approval policy.

Inputs: `resolution_plan` (or, when there is none, a plan from the runbooks for `diagnosis`).
Parameters (ctx.params):
  execute            bool, default False — dry run unless set
  approved_actions   approvals decided by the engine's gate (ids, or {action_id, approved_by, approved_at})
  approval_policy    none | risky | all (default risky); `approve` is accepted as a synonym
  target             "bundle" (replay: after/<kind>/ telemetry) or "live"; default: live when
                     executing, bundle otherwise
  recovery_probe     live recovery check: {"http": {url, expect_status, …}} and/or {"argv": [...]}
  kubectl_dry_run    none | client | server — what a kubectl preview passes as --dry-run
  runbooks           extra runbook files or folders; action_vars: values for runbook placeholders
  journal_path       JSON-Lines audit journal (default: <out_dir>/actions-audit.jsonl when out_dir is set;
                     for live changes without out_dir: $XDG_STATE_HOME/warroom/actions-audit.jsonl)
  config             path of warroom.toml; its [actions] table gives the defaults of the above
Output: `mitigation` {outcomes (each with its `mode`: executed, dry_run, replayed, skipped, failed,
undone), executed (ids of actions that really ran), mitigated (one of them ran and was not taken
back), recovered_by, recovered_by_action, recovered, exhausted, dry_run, target, summary, runbook,
audit}. `recovered_by` is the mitigation loop's reading of its checks, replayed data included;
`summary` says in words which outcomes changed the system. `audit` is every journal event.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from warroom.actions.config import ActionsConfig
from warroom.actions.contract import Check
from warroom.actions.journal import (
    ActionJournal,
    AuditEvent,
    AuditStep,
    InMemoryJournal,
    JsonlJournal,
    timeline_events,
)
from warroom.actions.loop import Verifier, run_mitigation, summarize
from warroom.actions.policy import Mode, Target, parse_approvals, parse_policy
from warroom.actions.runbook import load_runbooks, plan_from_diagnosis
from warroom.actions.verify import (
    all_of,
    probe_from_config,
    statistical_recovery,
    telemetry_verifier,
    waiting_verifier,
)
from warroom.agents.base import AgentContext, AgentSpec, Specialist
from warroom.analysis.facts import ActionMode, classify_outcome
from warroom.config import load_config
from warroom.errors import InputError
from warroom.incident import (
    ActionOutcome,
    AgentReport,
    Evidence,
    Finding,
    RecommendedAction,
    TimelineEvent,
    TimelineKind,
)
from warroom.redact import redact_obj
from warroom.values import parse_time as _parse_time


def _plan(ctx: AgentContext, settings: ActionsConfig) -> tuple[list[RecommendedAction], str, list[str]]:
    """The plan, where it came from, and limitations met while reading it."""
    limitations: list[str] = []
    plan: list[RecommendedAction] = []
    for raw in ctx.context.get("resolution_plan") or []:
        try:
            plan.append(RecommendedAction.model_validate(raw))
        except ValueError as exc:
            limitations.append(f"resolution_plan entry skipped: {str(exc).splitlines()[0]}")
    if plan:
        return plan, "resolution_plan", limitations
    diagnosis = ctx.context.get("diagnosis") or []
    if not diagnosis:
        limitations.append("no resolution_plan and no diagnosis: nothing to mitigate")
        return [], "none", limitations
    books = load_runbooks([str(p) for p in [*(ctx.params.get("runbooks") or []), *settings.runbooks]])
    variables = {**settings.vars, **(ctx.params.get("action_vars") or {})}
    runbook, plan = plan_from_diagnosis(diagnosis, books, variables)
    if runbook is None:
        limitations.append("no runbook fits the diagnosis")
        return [], "none", limitations
    return plan, f"runbook {runbook.name}", limitations


def _journal(ctx: AgentContext, live_changes: bool) -> ActionJournal:
    path = ctx.params.get("journal_path")
    if path:
        return JsonlJournal(Path(path), ctx.incident_id)
    out_dir = ctx.params.get("out_dir")
    if out_dir:
        return JsonlJournal(Path(out_dir) / "actions-audit.jsonl", ctx.incident_id)
    if live_changes:
        # Real changes always get a durable journal, so a step re-run after a crash never repeats one.
        state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
        return JsonlJournal(state / "warroom" / "actions-audit.jsonl", ctx.incident_id)
    return InMemoryJournal()


def _target(ctx: AgentContext, execute: bool) -> Target:
    raw = ctx.params.get("target")
    if raw is None:
        return Target.LIVE if execute else Target.BUNDLE
    try:
        return Target(str(raw))
    except ValueError:
        raise InputError(f"change-executor: unknown target '{raw}' (expected bundle or live)") from None


def _verifier(ctx: AgentContext, target: Target, settings: ActionsConfig, journal: ActionJournal) -> Verifier | None:
    """The telemetry read after each action, when it shows that action's effect (replayed actions on
    a recorded incident, real ones on a live source), plus any configured probe for real actions.
    On a live system the check waits for the change to take effect ([actions] settle,
    verify_timeout, verify_every, watch), each re-query a journal step with its real time."""
    checks: list[Verifier] = []
    live_source = ctx.telemetry.recorded_actions() is None
    if live_source == (target is Target.LIVE):
        checks.append(telemetry_verifier(ctx.telemetry, statistical_recovery))
    probe = ctx.params.get("recovery_probe") or settings.recovery_probe
    if target is Target.LIVE and isinstance(probe, dict):
        checks.append(probe_from_config(probe))
    if not checks:
        return None
    verifier = checks[0] if len(checks) == 1 else all_of(*checks)
    if target is not Target.LIVE or not live_source:
        return verifier  # a recorded incident's after/ is read at once, and so is a probe beside one

    def rechecked(action: RecommendedAction, at: datetime, check: Check) -> None:
        journal.record(
            AuditEvent(
                at=at,
                action_id=action.id,
                kind=action.kind,
                step=AuditStep.RECHECKED,
                actor="change-executor",
                detail=f"re-query: {check.detail}",
                data={"ok": check.ok},
            )
        )

    return waiting_verifier(verifier, settings.patience(), ctx.telemetry.forget_after, rechecked)


def outcome_words(mode: ActionMode, outcome: ActionOutcome, kind: str) -> str:
    """What one outcome says happened, in words that say whether anything changed."""
    seen = {True: "recovery seen", False: "no recovery seen", None: "recovery not checked"}[outcome.verified]
    if mode is ActionMode.EXECUTED:
        return f"executed; {seen}"
    if mode is ActionMode.REPLAYED:
        return f"replayed from the recorded after/{kind}/ data, nothing changed; in that recording: {seen}"
    if mode is ActionMode.DRY_RUN:
        return "dry run, nothing changed"
    if mode is ActionMode.SKIPPED:
        return "not executed (" + (outcome.detail.split(";")[0] or "skipped") + ")"
    if mode is ActionMode.UNDONE:
        return "executed, no recovery seen, undone"
    return f"{mode.value}: {outcome.detail[:160]}"


def _finding(action: RecommendedAction | None, outcome: ActionOutcome) -> Finding:
    check = outcome.data.get("recovery_check") or {}
    mode = classify_outcome(outcome.model_dump(mode="json"))
    title = f"{outcome.action_id}: {outcome_words(mode, outcome, action.kind if action else 'action')}"
    values: dict[str, Any] = {"status": outcome.status, "mode": mode.value, "verified": outcome.verified}
    if isinstance(check, dict):
        values.update({k: v for k, v in check.items() if k in ("ok", "verdict", "detail")})
    return Finding(
        title=title,
        detail=outcome.detail,
        confidence=0.9 if outcome.verified is not None else 0.5,
        service=action.target if action else None,
        # Only a change that really ran can be a recovery; a replay or a dry run is a mitigation note.
        kind="recovery" if outcome.verified and mode is ActionMode.EXECUTED else "mitigation",
        evidence=[
            Evidence(
                source="actions",
                query=f"{action.kind if action else 'action'} {outcome.data.get('command', '')}".strip(),
                values=redact_obj(values),
                samples=[outcome.detail[:300]],
            )
        ],
    )


def _on_incident_clock(ctx: AgentContext, target: Target, events: list[TimelineEvent]) -> list[TimelineEvent]:
    """Timeline events in incident time. The audit journal keeps wall-clock times; the timeline of a
    replayed incident needs the incident's clock: `ctx.params["now"]` when the engine gives it, else
    (bundle replay) the start of the post-action data of the first action replayed."""
    if not events or ctx.telemetry.recorded_actions() is None:
        return events  # a live system's journal times are incident time: the real ones
    anchor = _parse_time(ctx.params.get("now"))
    if anchor is None and target is Target.BUNDLE:
        kinds = [str(e.data.get("kind")) for e in events if e.data.get("kind")]
        after = ctx.telemetry.after(kinds[0]) if kinds else None
        frame = after.metrics if after is not None else None
        if frame is not None and frame.height:
            anchor = frame.get_column("timestamp").min()  # type: ignore[assignment]
        else:
            anchor = ctx.telemetry.manifest.effective_window().end
    if anchor is None:
        return events
    shift = anchor - events[0].at
    return [e.model_copy(update={"at": e.at + shift}) for e in events]


def _summary(plan: list[RecommendedAction], outcomes: list[ActionOutcome], execute: bool, target: Target) -> str:
    """The mitigation in words: per action what happened, and whether the system was changed."""
    kinds = {a.id: a.kind for a in plan}
    if not plan:
        return "no action planned"
    modes = [classify_outcome(o.model_dump(mode="json")) for o in outcomes]
    parts = [
        f"{o.action_id} {outcome_words(m, o, kinds.get(o.action_id, 'action'))}"
        for o, m in zip(outcomes, modes, strict=True)
    ]
    changed = any(m.changed_the_system for m in modes)
    how = "live" if target is Target.LIVE else "against the recorded bundle"
    lead = f"{'execute' if execute else 'dry run'} ({how}): " + (
        "the system was changed" if changed else "nothing was changed"
    )
    if not execute and target is Target.LIVE:
        parts = [f"would run {', '.join(o.action_id for o in outcomes) or 'nothing'}"]
    blocked = [o.action_id for o in outcomes if o.status == "skipped" and o.data.get("blocked")]
    untaken = len(plan) - len(outcomes)
    tail = (f"; awaiting approval: {', '.join(blocked)}" if blocked else "") + (
        f"; {untaken} planned action(s) not taken" if untaken > 0 else ""
    )
    return lead + ("; " + "; ".join(parts) if parts else "") + tail


REPLAY_WORDS = {
    "verified": "the replayed recording returns to baseline (nothing was changed)",
    "not_recovered": "the replayed recording does not return to baseline (nothing was changed)",
    "executed": "replayed from the bundle's recorded after-data (nothing was changed)",
    "dry_run": "dry run (nothing was changed)",
}


def _worded(events: list[TimelineEvent], recorded: list[dict[str, Any]], summary: str) -> list[TimelineEvent]:
    """The audit trail's timeline events in the words of what happened: a replay's 'verified' is
    what the recording shows, not a verification, and the loop's conclusion is this run's summary."""
    modes = {str(o["action_id"]): ActionMode(o["mode"]) for o in recorded}
    out: list[TimelineEvent] = []
    for event in events:
        step = str(event.data.get("step") or "")
        action_id = str(event.data.get("action_id") or "")
        if step == "finished":
            executed = [a for a, m in modes.items() if m is ActionMode.EXECUTED]
            kept = {k: v for k, v in event.data.items() if k not in ("recovered_by", "recovered_by_action")}
            data = {**kept, "mitigated": bool(executed), "executed": executed}
            event = event.model_copy(update={"summary": f"mitigation finished — {summary}", "data": data})
        elif modes.get(action_id) in (ActionMode.REPLAYED, ActionMode.DRY_RUN) and step in REPLAY_WORDS:
            kind = TimelineKind.NOTE if step in ("verified", "not_recovered") else event.kind
            data = {k: v for k, v in event.data.items() if k not in ("recovered_by", "recovered_by_action")}
            data["mode"] = modes[action_id].value
            event = event.model_copy(
                update={"summary": f"{action_id}: {REPLAY_WORDS[step]}", "kind": kind, "data": data}
            )
        out.append(event)
    return out


class ChangeExecutor(Specialist):
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="change-executor",
        purpose="Apply the resolution plan safely: dry run by default, approvals by risk, audit of every "
        "step, recovery re-checked after each action, undo and escalate when it did not help.",
        inputs=("resolution_plan", "diagnosis", "incident"),
        outputs=("mitigation",),
        aliases=("incident-change-executor",),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        # warroom.toml's [actions] gives the defaults; step parameters win.
        settings = load_config(ctx.params.get("config")).actions
        execute = bool(ctx.params.get("execute", False))
        policy = parse_policy(ctx.params.get("approval_policy") or ctx.params.get("approve") or settings.policy)
        target = _target(ctx, execute)
        plan, source, limitations = _plan(ctx, settings)
        mode = Mode(
            execute=execute,
            policy=policy,
            target=target,
            kubectl_dry_run=ctx.params.get("kubectl_dry_run") or settings.kubectl_dry_run,
            actor=self.spec.name,
        )
        journal = _journal(ctx, execute and target is Target.LIVE)
        already = len(journal.events())  # a resumed run's journal holds earlier events
        verifier = _verifier(ctx, target, settings, journal)
        if verifier is None and plan:
            limitations.append("no recovery probe configured: recovery after each action cannot be told")
        outcomes = run_mitigation(plan, parse_approvals(ctx.params.get("approved_actions")), journal, verifier, mode)
        conclusion = summarize(plan, outcomes, mode)
        by_id = {a.id: a for a in plan}
        recorded = [
            {**o.model_dump(mode="json"), "mode": classify_outcome(o.model_dump(mode="json")).value} for o in outcomes
        ]
        executed = [o["action_id"] for o in recorded if o["mode"] == ActionMode.EXECUTED.value]
        summary = _summary(plan, outcomes, execute, target)
        mitigation = {
            "outcomes": recorded,
            "executed": executed,
            "mitigated": bool(executed),
            "recovered_by": conclusion.recovered_by,
            "recovered_by_action": conclusion.recovered_by_action,
            "recovered": conclusion.recovered,
            "exhausted": conclusion.exhausted,
            "dry_run": conclusion.dry_run,
            "target": target.value,
            "policy": policy.value,
            "plan_source": source,
            "summary": summary,
            "audit": [e.model_dump(mode="json") for e in journal.events()],
        }
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=[_finding(by_id.get(o.action_id), o) for o in outcomes],
            outputs={"mitigation": redact_obj(mitigation)},
            actions=plan,
            outcomes=outcomes,
            timeline=_on_incident_clock(
                ctx, target, _worded(timeline_events(journal.events()[already:]), recorded, summary)
            ),
            limitations=limitations,
        )
