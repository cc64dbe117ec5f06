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
Output: `mitigation` {outcomes, recovered_by, recovered_by_action, recovered, exhausted, dry_run,
target, summary, runbook, audit}. `audit` is every journal event, for the engine's timeline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from warroom.actions.config import ActionsConfig
from warroom.actions.journal import ActionJournal, InMemoryJournal, JsonlJournal, timeline_events
from warroom.actions.loop import Verifier, run_mitigation, summarize
from warroom.actions.policy import Mode, Target, parse_approvals, parse_policy
from warroom.actions.runbook import load_runbooks, plan_from_diagnosis
from warroom.actions.verify import all_of, probe_from_config, statistical_recovery, telemetry_verifier
from warroom.agents.base import AgentContext, AgentSpec
from warroom.config import load_config
from warroom.errors import InputError
from warroom.incident import ActionOutcome, AgentReport, Evidence, Finding, RecommendedAction, TimelineEvent
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


def _verifier(ctx: AgentContext, target: Target, settings: ActionsConfig) -> Verifier | None:
    """The telemetry read after each action, when it shows that action's effect (replayed actions on
    a recorded incident, real ones on a live source), plus any configured probe for real actions."""
    checks: list[Verifier] = []
    live_source = ctx.telemetry.recorded_actions() is None
    if live_source == (target is Target.LIVE):
        checks.append(telemetry_verifier(ctx.telemetry, statistical_recovery))
    probe = ctx.params.get("recovery_probe") or settings.recovery_probe
    if target is Target.LIVE and isinstance(probe, dict):
        checks.append(probe_from_config(probe))
    if not checks:
        return None
    return checks[0] if len(checks) == 1 else all_of(*checks)


def _finding(action: RecommendedAction | None, outcome: ActionOutcome) -> Finding:
    check = outcome.data.get("recovery_check") or {}
    if outcome.verified is True:
        title = f"{outcome.action_id}: recovered"
    elif outcome.verified is False:
        title = f"{outcome.action_id}: not recovered"
    else:
        title = f"{outcome.action_id}: {outcome.status}"
    values: dict[str, Any] = {"status": outcome.status, "verified": outcome.verified}
    if isinstance(check, dict):
        values.update({k: v for k, v in check.items() if k in ("ok", "verdict", "detail")})
    return Finding(
        title=title,
        detail=outcome.detail,
        confidence=0.9 if outcome.verified is not None else 0.5,
        service=action.target if action else None,
        kind="recovery" if outcome.verified else "mitigation",
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
    if not events:
        return events
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


class ChangeExecutor:
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
        verifier = _verifier(ctx, target, settings)
        if verifier is None and plan:
            limitations.append("no recovery probe configured: recovery after each action cannot be told")
        outcomes = run_mitigation(plan, parse_approvals(ctx.params.get("approved_actions")), journal, verifier, mode)
        conclusion = summarize(plan, outcomes, mode)
        by_id = {a.id: a for a in plan}
        mitigation = {
            "outcomes": [o.model_dump(mode="json") for o in outcomes],
            "recovered_by": conclusion.recovered_by,
            "recovered_by_action": conclusion.recovered_by_action,
            "recovered": conclusion.recovered,
            "exhausted": conclusion.exhausted,
            "dry_run": conclusion.dry_run,
            "target": target.value,
            "policy": policy.value,
            "plan_source": source,
            "summary": conclusion.summary,
            "audit": [e.model_dump(mode="json") for e in journal.events()],
        }
        return AgentReport(
            agent=self.spec.name,
            summary=f"{'executed' if execute else 'dry run'} ({target.value}, policy {policy.value}): "
            f"{conclusion.summary}",
            findings=[_finding(by_id.get(o.action_id), o) for o in outcomes],
            outputs={"mitigation": redact_obj(mitigation)},
            actions=plan,
            outcomes=outcomes,
            timeline=_on_incident_clock(ctx, target, timeline_events(journal.events()[already:])),
            limitations=limitations,
        )
