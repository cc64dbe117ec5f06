"""The mitigation loop: act, re-check recovery, undo what did not help, escalate; stop and say why.

For each action of the plan, in order:
  proposed → (blocked | approved) → started → executed → action check → recovery check
  → verified (stop) | not recovered → undone where possible → next action.
Every step goes to the journal before the loop moves on; an action whose outcome is already in the
journal is not taken again (resume after a crash), and one that was started but never finished is
reported as interrupted rather than repeated, because it may have changed the system already.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from warroom.actions.contract import ActionAdapter, AdapterRegistry, Check, RunOptions, StepResult, default_registry
from warroom.actions.journal import (
    ActionJournal,
    AuditEvent,
    AuditStep,
    executed_without_outcome,
    started_without_outcome,
)
from warroom.actions.policy import Approval, Gate, Mode, Target, gate
from warroom.errors import InputError
from warroom.incident import ActionOutcome, RecommendedAction
from warroom.redact import redact, redact_obj


def _now() -> datetime:
    return datetime.now(UTC)


# The recovery criterion: given the action just taken and the outcomes so far, has the system recovered?
Verifier = Callable[[RecommendedAction, Sequence[ActionOutcome]], Check]


class Binding(BaseModel):
    """How a plan step names its adapter, in RecommendedAction.parameters."""

    adapter: str | None = None
    params: dict[str, Any] = {}
    undo_if_not_recovered: bool = True


def binding_of(action: RecommendedAction) -> Binding:
    raw = action.parameters
    return Binding(
        adapter=raw.get("adapter"),
        params=dict(raw.get("params") or {}),
        undo_if_not_recovered=bool(raw.get("undo_if_not_recovered", True)),
    )


class MitigationSummary(BaseModel):
    recovered: bool
    recovered_by: str | None  # the action kind that brought recovery
    recovered_by_action: str | None
    exhausted: bool  # every action was tried without recovery
    dry_run: bool
    summary: str


def summarize(plan: Sequence[RecommendedAction], outcomes: Sequence[ActionOutcome], mode: Mode) -> MitigationSummary:
    """The loop's conclusion in words and fields, from its outcomes alone."""
    kinds = {action.id: action.kind for action in plan}
    winner = next((o for o in outcomes if o.verified is True and o.status in ("verified", "dry_run")), None)
    if winner is not None:
        kind = kinds.get(winner.action_id)
        simulated = " (in the bundle's post-action data)" if mode.target is Target.BUNDLE else ""
        return MitigationSummary(
            recovered=True,
            recovered_by=kind,
            recovered_by_action=winner.action_id,
            exhausted=False,
            dry_run=not mode.execute,
            summary=f"recovered after {winner.action_id} ({kind}){simulated}; "
            f"{len(outcomes)} of {len(plan)} action(s) taken",
        )
    if not mode.execute and mode.target is Target.LIVE:
        listed = ", ".join(o.action_id for o in outcomes) or "nothing"
        return MitigationSummary(
            recovered=False,
            recovered_by=None,
            recovered_by_action=None,
            exhausted=False,
            dry_run=True,
            summary=f"dry run: nothing changed; would run {listed}",
        )
    blocked = [o.action_id for o in outcomes if o.status == "skipped" and o.data.get("blocked")]
    tail = f"; awaiting approval: {', '.join(blocked)}" if blocked else ""
    return MitigationSummary(
        recovered=False,
        recovered_by=None,
        recovered_by_action=None,
        exhausted=len(outcomes) >= len(plan),
        dry_run=not mode.execute,
        summary=f"not recovered: runbook exhausted after {len(outcomes)} action(s){tail}",
    )


class _Loop:
    def __init__(
        self,
        approvals: Mapping[str, Approval],
        journal: ActionJournal,
        verifier: Verifier | None,
        mode: Mode,
        registry: AdapterRegistry,
    ) -> None:
        self.approvals = approvals
        self.journal = journal
        self.verifier = verifier
        self.mode = mode
        self.registry = registry
        self.options = RunOptions(env=dict(mode.env), kubectl_dry_run=mode.kubectl_dry_run)
        self.outcomes: list[ActionOutcome] = []

    def log(
        self, action: RecommendedAction, step: AuditStep, detail: str = "", actor: str | None = None, **data: Any
    ) -> None:
        self.journal.record(
            AuditEvent(
                action_id=action.id,
                kind=action.kind,
                step=step,
                actor=actor or self.mode.actor,
                detail=redact(detail),
                data=redact_obj(data),
            )
        )

    def finish(self, action: RecommendedAction, outcome: ActionOutcome) -> ActionOutcome:
        outcome = outcome.model_copy(
            update={"detail": redact(outcome.detail), "data": redact_obj({"kind": action.kind, **outcome.data})}
        )
        self.log(action, AuditStep.COMPLETED, outcome.detail, outcome=outcome.model_dump(mode="json"))
        self.outcomes.append(outcome)
        return outcome

    def recovery(self, action: RecommendedAction, executed_at: datetime | None = None) -> Check:
        if self.verifier is None:
            return Check(ok=None, detail="no recovery check configured")
        # a real change's own moment last: the verifier reads the system from when it took effect
        taking = (
            []
            if executed_at is None
            else [ActionOutcome(action_id=action.id, status="executed", data={"at": executed_at.isoformat()})]
        )
        try:
            return self.verifier(action, [*self.outcomes, *taking])
        except Exception as exc:  # a broken probe must not end the run: it is an unknown answer
            return Check(ok=None, detail=f"recovery check failed: {redact(str(exc))[:200]}")

    def take(self, action: RecommendedAction) -> ActionOutcome:
        already_proposed = any(e.action_id == action.id and e.step is AuditStep.PROPOSED for e in self.journal.events())
        if not already_proposed:
            self.log(action, AuditStep.PROPOSED, action.title, risk=action.risk.value, rationale=action.rationale)
        decision, approval = gate(action.id, action.risk, self.mode, self.approvals)
        if self.mode.target is Target.BUNDLE:
            return self.replay(action, decision, approval)
        binding = binding_of(action)
        if binding.adapter is None:
            self.log(action, AuditStep.SKIPPED, "no adapter bound: a manual step")
            return self.finish(
                action,
                ActionOutcome(
                    action_id=action.id,
                    status="skipped",
                    detail=f"manual step (no adapter): {action.title}"
                    + (f"; rollback: {action.rollback}" if action.rollback else ""),
                ),
            )
        try:
            adapter = self.registry.get(binding.adapter)
            params = adapter.parse(binding.params)
        except InputError as exc:
            self.log(action, AuditStep.FAILED, exc.one_line())
            return self.finish(action, ActionOutcome(action_id=action.id, status="failed", detail=exc.one_line()))
        if decision is Gate.DRY_RUN:
            return self.dry_run(action, adapter, params)
        if decision is Gate.BLOCKED:
            why = f"needs approval (policy {self.mode.policy.value}, risk {action.risk.value})"
            self.log(action, AuditStep.BLOCKED, why)
            return self.finish(
                action, ActionOutcome(action_id=action.id, status="skipped", detail=why, data={"blocked": True})
            )
        if approval is not None:
            self.log(
                action,
                AuditStep.APPROVED,
                f"approved by {approval.approved_by}",
                actor=approval.approved_by,
                approved_at=approval.approved_at.isoformat(),
            )
        return self.run(action, adapter, params, binding, approval)

    def dry_run(self, action: RecommendedAction, adapter: ActionAdapter[Any], params: Any) -> ActionOutcome:
        try:
            result = adapter.preview(params, self.options).redacted()
        except Exception as exc:
            result = StepResult(ok=False, detail=f"preview failed: {exc.__class__.__name__}: {exc}").redacted()
        self.log(action, AuditStep.DRY_RUN, result.detail, command=adapter.describe(params), **result.data)
        return self.finish(
            action,
            ActionOutcome(
                action_id=action.id,
                status="dry_run",
                detail=result.detail,
                data={"adapter": adapter.name, "command": adapter.describe(params), "preview": result.data},
            ),
        )

    def run(
        self,
        action: RecommendedAction,
        adapter: ActionAdapter[Any],
        params: Any,
        binding: Binding,
        approval: Approval | None,
    ) -> ActionOutcome:
        command = adapter.describe(params)
        base: dict[str, Any] = {"adapter": adapter.name, "command": command}
        if approval is not None:
            base.update(approved_by=approval.approved_by, approved_at=approval.approved_at.isoformat())
        self.log(action, AuditStep.STARTED, command)
        try:
            result = adapter.execute(params, self.options).redacted()
        except Exception as exc:  # an adapter bug is a failed action, not a crashed incident run
            result = StepResult(ok=False, detail=f"{exc.__class__.__name__}: {exc}").redacted()
        if result.timed_out:
            self.log(action, AuditStep.TIMED_OUT, result.detail, **result.data)
            return self.finish(
                action,
                ActionOutcome(
                    action_id=action.id, status="timed_out", detail=result.detail, data={**base, **result.data}
                ),
            )
        if not result.ok:
            self.log(action, AuditStep.FAILED, result.detail, **result.data)
            return self.finish(
                action,
                ActionOutcome(action_id=action.id, status="failed", detail=result.detail, data={**base, **result.data}),
            )
        self.log(action, AuditStep.EXECUTED, result.detail, **result.data)
        return self.verify(action, adapter, params, binding, result, {**base, "result": result.data}, _now())

    def verify(
        self,
        action: RecommendedAction,
        adapter: ActionAdapter[Any],
        params: Any,
        binding: Binding,
        result: StepResult,
        data: dict[str, Any],
        executed_at: datetime,
    ) -> ActionOutcome:
        """After a change was made: its own check, then the recovery check (undo when it did not help)."""
        try:
            check = adapter.verify(params, result, self.options)
        except Exception as exc:
            check = Check(ok=None, detail=f"verification failed to run: {exc.__class__.__name__}: {exc}")
        data["action_check"] = {"ok": check.ok, "detail": redact(check.detail)}
        if check.ok is False:
            # The change did not take effect as intended: take it back before trying anything else.
            self.log(action, AuditStep.NOT_RECOVERED, f"action check failed: {check.detail}", **check.data)
            return self.undo(action, adapter, params, result, data, f"action check failed: {check.detail}")
        recovered = self.recovery(action, executed_at)
        data["recovery_check"] = {"ok": recovered.ok, "detail": redact(recovered.detail), **recovered.data}
        if recovered.ok is True:
            self.log(action, AuditStep.VERIFIED, recovered.detail, **recovered.data)
            return self.finish(
                action,
                ActionOutcome(
                    action_id=action.id,
                    status="verified",
                    verified=True,
                    detail=f"{result.detail}; {recovered.detail}",
                    data=data,
                ),
            )
        self.log(action, AuditStep.NOT_RECOVERED, recovered.detail, **recovered.data)
        if binding.undo_if_not_recovered and recovered.ok is False:
            return self.undo(action, adapter, params, result, data, f"not recovered: {recovered.detail}")
        return self.finish(
            action,
            ActionOutcome(
                action_id=action.id,
                status="executed",
                verified=recovered.ok,
                detail=f"{result.detail}; {recovered.detail}",
                data=data,
            ),
        )

    def resume(self, action: RecommendedAction, executed: AuditEvent) -> ActionOutcome | None:
        """Go on with the checks of an action whose change was made before the run stopped (the
        journal holds its `executed` step); None when its adapter can no longer be read."""
        binding = binding_of(action)
        try:
            adapter = self.registry.get(binding.adapter or "")
            params = adapter.parse(binding.params)
        except InputError:
            return None
        result = StepResult(ok=True, detail=executed.detail, data=dict(executed.data))
        data = {"adapter": adapter.name, "command": adapter.describe(params), "result": result.data, "resumed": True}
        return self.verify(action, adapter, params, binding, result, data, executed.at)

    def undo(
        self,
        action: RecommendedAction,
        adapter: ActionAdapter[Any],
        params: Any,
        result: StepResult,
        data: dict[str, Any],
        why: str,
    ) -> ActionOutcome:
        try:
            undone = adapter.undo(params, result, self.options)
        except Exception as exc:
            undone = StepResult(ok=False, detail=f"{exc.__class__.__name__}: {exc}")
        if undone is None:
            return self.finish(
                action,
                ActionOutcome(
                    action_id=action.id, status="executed", verified=False, detail=f"{why}; cannot be undone", data=data
                ),
            )
        undone = undone.redacted()
        data["undo"] = {"ok": undone.ok, "detail": undone.detail, **undone.data}
        if not undone.ok:
            self.log(action, AuditStep.FAILED, f"undo failed: {undone.detail}", **undone.data)
            return self.finish(
                action,
                ActionOutcome(
                    action_id=action.id,
                    status="failed",
                    verified=False,
                    detail=f"{why}; undo failed: {undone.detail}",
                    data=data,
                ),
            )
        self.log(action, AuditStep.UNDONE, undone.detail, **undone.data)
        return self.finish(
            action,
            ActionOutcome(
                action_id=action.id,
                status="undone",
                verified=False,
                detail=f"{why}; undone: {undone.detail}",
                data=data,
            ),
        )

    def command_of(self, action: RecommendedAction) -> str:
        """What a live run would execute for this action, or why it is a manual step."""
        binding = binding_of(action)
        if binding.adapter is None:
            reason = action.parameters.get("manual_reason")
            return f"manual step ({reason})" if reason else "manual step"
        try:
            adapter = self.registry.get(binding.adapter)
            return adapter.describe(adapter.parse(binding.params))
        except InputError as exc:
            return f"invalid step: {exc.one_line()}"

    def replay(self, action: RecommendedAction, decision: Gate, approval: Approval | None) -> ActionOutcome:
        """Bundle target: the change is the one recorded in after/<kind>/; nothing real is touched."""
        if decision is Gate.BLOCKED:
            why = f"needs approval (policy {self.mode.policy.value}, risk {action.risk.value})"
            self.log(action, AuditStep.BLOCKED, why)
            return self.finish(
                action, ActionOutcome(action_id=action.id, status="skipped", detail=why, data={"blocked": True})
            )
        if approval is not None and decision is Gate.RUN:
            self.log(
                action,
                AuditStep.APPROVED,
                f"approved by {approval.approved_by}",
                actor=approval.approved_by,
                approved_at=approval.approved_at.isoformat(),
            )
        step = AuditStep.DRY_RUN if decision is Gate.DRY_RUN else AuditStep.EXECUTED
        command = self.command_of(action)
        self.log(action, step, f"replayed from the bundle's after/{action.kind}/ data", simulated=True, command=command)
        recovered = self.recovery(action)
        data = {
            "simulated": True,
            "command": command,
            "recovery_check": {"ok": recovered.ok, "detail": recovered.detail, **recovered.data},
        }
        if recovered.ok is True:
            self.log(action, AuditStep.VERIFIED, recovered.detail, **recovered.data)
        else:
            self.log(action, AuditStep.NOT_RECOVERED, recovered.detail, **recovered.data)
        status = "dry_run" if decision is Gate.DRY_RUN else ("verified" if recovered.ok else "executed")
        # A dry run says what a live run would have executed, then what the recording shows.
        detail = f"would run: {command}; {recovered.detail}" if decision is Gate.DRY_RUN else recovered.detail
        return self.finish(
            action,
            ActionOutcome(action_id=action.id, status=status, verified=recovered.ok, detail=detail, data=data),
        )


def run_mitigation(
    plan: Sequence[RecommendedAction],
    approvals: Mapping[str, Approval],
    journal: ActionJournal,
    verifier: Verifier | None,
    mode: Mode,
    registry: AdapterRegistry | None = None,
) -> list[ActionOutcome]:
    """Run the plan in order until the system recovers or the plan is exhausted; see the module doc."""
    loop = _Loop(approvals, journal, verifier, mode, registry or default_registry())
    seen: set[str] = set()
    for action in plan:
        if action.id in seen:
            raise InputError(f"action id '{action.id}' appears twice in the plan")
        seen.add(action.id)
        previous = journal.completed(action.id)
        if previous is not None:
            # Taken before a crash or in an earlier pass: reuse the recorded outcome, never repeat.
            loop.outcomes.append(previous)
            if previous.verified is True and (mode.execute or mode.target is Target.BUNDLE):
                break
            continue
        executed = executed_without_outcome(journal, action.id) if mode.target is Target.LIVE else None
        if executed is not None and (resumed := loop.resume(action, executed)) is not None:
            # the change was made before the run stopped (mid-verification): check it, never repeat it
            if resumed.verified is True:
                break
            continue
        if started_without_outcome(journal, action.id):
            loop.log(action, AuditStep.FAILED, "interrupted: started before a crash, outcome unknown; not repeated")
            loop.finish(
                action,
                ActionOutcome(
                    action_id=action.id,
                    status="failed",
                    detail="interrupted: the run stopped while this action ran; not repeated, check it by hand",
                    data={"interrupted": True},
                ),
            )
            continue
        outcome = loop.take(action)
        if outcome.verified is True and (mode.execute or mode.target is Target.BUNDLE):
            break
    conclusion = summarize(plan, loop.outcomes, mode)
    journal.record(
        AuditEvent(
            action_id="",
            step=AuditStep.FINISHED,
            actor=mode.actor,
            detail=conclusion.summary,
            data=conclusion.model_dump(mode="json"),
        )
    )
    return loop.outcomes
