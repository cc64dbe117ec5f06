"""recovery-validation-specialist: is the system back to baseline after the mitigation?

Tests latency, error rate and success rate observed after the applied action (the bundle's
`after/<action-kind>/` telemetry) against the baseline with `analysis.recovery`; if the action did
not recover the system, recommends escalating to the next action of the resolution plan.

`recovery.basis` says what the tested data is: `observed` when the action was really executed in
this run (the after-data follows a real change), `replayed` when it was only dry-run or replayed
(the after-data is a recording: it predicts, it proves nothing). `recovery.verified` — the only
recovery a report or a status change may rest on — is a recovery observed after an executed action,
or an executed action whose live recovery probe passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from warroom.agents.base import AgentContext, AgentSpec, Specialist
from warroom.agents.outputs import DIAGNOSIS, SUSPECT_SERVICE
from warroom.analysis.facts import executed_outcomes, undone_outcomes
from warroom.analysis.recovery import RecoveryResult, SignalCheck, Verdict, default_scope, verify_after
from warroom.incident import AgentReport, Evidence, Finding, RecommendedAction
from warroom.values import as_dict

APPLIED = ("executed", "verified", "dry_run", "failed", "undone", "timed_out")


def plan_of(context: Mapping[str, Any]) -> list[RecommendedAction]:
    """The resolution plan from the context, in order (malformed entries are skipped)."""
    plan: list[RecommendedAction] = []
    for raw in context.get("resolution_plan") or []:
        try:
            plan.append(RecommendedAction.model_validate(raw))
        except ValueError:
            continue
    return plan


def applied_actions(context: Mapping[str, Any], plan: list[RecommendedAction]) -> tuple[list[str], str | None]:
    """Action kinds the mitigation took, in order, and the one it says recovered (if any)."""
    mitigation = as_dict(context.get("mitigation"))
    kinds = {a.id: a.kind for a in plan}
    taken: list[str] = []
    for outcome in mitigation.get("outcomes") or []:
        if not isinstance(outcome, dict) or outcome.get("status") not in APPLIED:
            continue
        data = as_dict(outcome.get("data"))
        action_id = str(outcome.get("action_id", ""))
        kind = data.get("kind") or kinds.get(action_id) or action_id.partition("-")[2] or None
        if kind and kind not in taken:
            taken.append(str(kind))
    recovered_by = mitigation.get("recovered_by")
    return taken, str(recovered_by) if recovered_by else None


def check_evidence(check: SignalCheck, action: str) -> Evidence:
    return Evidence(
        source=check.source,
        query=check.query,
        start=check.baseline_start,
        end=check.current_end,
        values={
            "action": action,
            "baseline_median": check.baseline_value,
            "after_median": check.current_value,
            "limit": check.limit,
            "margin": check.margin,
            "slo": check.slo,
            "mann_whitney_u": check.statistic,
            "p_value": check.p_value,
            "hodges_lehmann_shift": check.effect,
            "baseline_samples": check.baseline_samples,
            "after_samples": check.current_samples,
            "after_window": [
                check.current_start.isoformat() if check.current_start else None,
                check.current_end.isoformat() if check.current_end else None,
            ],
            "recovered_at": check.recovered_at.isoformat() if check.recovered_at else None,
        },
    )


def _kinds(outcomes: list[dict[str, Any]], plan: list[RecommendedAction]) -> set[str]:
    kinds = {a.id: a.kind for a in plan}
    return {str(as_dict(o.get("data")).get("kind") or kinds.get(str(o.get("action_id")))) for o in outcomes}


def _basis(action: str | None, executed: set[str], undone: set[str]) -> str:
    """What the data after `action` is: after a real change (kept or taken back), or a replay."""
    if action is None:
        return "none"
    return "observed" if action in executed else "undone" if action in undone else "replayed"


def _confidence(check: SignalCheck) -> float:
    if check.p_value is None or check.verdict == Verdict.INSUFFICIENT_DATA:
        return 0.3
    return round(max(0.5, min(0.99, 1.0 - check.p_value)), 3)


def _metric_names(ctx: AgentContext) -> set[str]:
    metrics = ctx.telemetry.metrics
    return set(metrics.get_column("metric").unique().to_list()) if metrics is not None else set()


class RecoveryValidationSpecialist(Specialist):
    spec: ClassVar[AgentSpec] = AgentSpec(
        name="recovery-validation-specialist",
        purpose="Test whether latency, error rate and success rate are back to baseline after the "
        "mitigation; escalate to the next action when they are not.",
        inputs=("mitigation", "resolution_plan", "diagnosis", "suspect_service", "incident"),
        outputs=("recovery",),
    )

    def run(self, ctx: AgentContext) -> AgentReport:
        telemetry, context = ctx.telemetry, ctx.context
        plan = plan_of(context)
        taken, recovered_by = applied_actions(context, plan)
        limitations: list[str] = []
        if "mitigation" not in context:
            limitations.append("no 'mitigation' in the context: validating the plan's first action")
        action = recovered_by or (taken[-1] if taken else None)
        recorded = telemetry.recorded_actions()  # None: a live source observes any action
        if action is None:
            candidates = [a.kind for a in plan if recorded is None or a.kind in recorded] or sorted(recorded or [])
            action = candidates[0] if candidates else None
        if recorded == []:
            limitations.append("no telemetry was recorded after any action: recovery cannot be observed")
        diagnosis = ctx.read_list(DIAGNOSIS)
        indicator = diagnosis[0].indicator if diagnosis else None
        advisory = [indicator] if indicator and indicator in _metric_names(ctx) else []
        suspect = ctx.read(SUSPECT_SERVICE)
        scope = list(dict.fromkeys([*default_scope(telemetry), *([suspect] if suspect is not None else [])]))
        history: list[dict[str, Any]] = []
        for kind in taken:
            if kind != action:
                earlier = verify_after(telemetry, kind, services=scope)
                history.append({"action": kind, "verdict": earlier.verdict.value, "reason": earlier.reason})
        if action is None:
            result = RecoveryResult(verdict=Verdict.INSUFFICIENT_DATA, reason="no action was applied or planned")
        else:
            result = verify_after(telemetry, action, services=scope, advisory_metrics=advisory)
        next_action = self._next(plan, action, taken) if not result.recovered else None
        outcomes = as_dict(context.get("mitigation")).get("outcomes") or []
        executed = executed_outcomes(outcomes)
        basis = _basis(action, _kinds(executed, plan), _kinds(undone_outcomes(outcomes), plan))
        probe_verified = any(o.get("verified") is True for o in executed)
        verified = (result.recovered and basis == "observed") or probe_verified
        what = {
            "observed": "after the executed",
            # it ran and was taken back because it did not bring recovery: the data follows a real change
            "undone": "after the executed (then undone)",
            "replayed": "in the recorded data after (replay, nothing changed)",
            "none": "after",
        }[basis]
        fired = telemetry.manifest.alert.fired_at
        minutes = (result.recovered_at - fired).total_seconds() / 60 if result.recovered_at else None
        recovery = {
            "recovered": result.recovered,
            "verdict": result.verdict.value,
            "action": action,
            "basis": basis,
            "verified": verified,
            "reason": result.reason,
            "scope": scope,
            "checks": [c.model_dump(mode="json") for c in result.checks],
            "unavailable": result.unavailable,
            "recovered_at": result.recovered_at.isoformat() if result.recovered_at else None,
            "alert_to_recovery_min": round(minutes, 2) if minutes is not None else None,
            "earlier_actions": history,
            "next_action": next_action.model_dump(mode="json") if next_action else None,
            "baseline": "baseline/" if telemetry.baseline is not None else "telemetry before the window start",
        }
        findings = [
            Finding(
                title=f"{c.signal} {c.verdict.value.replace('_', ' ')} {what} {action}"
                + (" (advisory)" if c.advisory else ""),
                detail=c.reason,
                confidence=_confidence(c),
                service=",".join(c.services) or None,
                # only a kept, executed action's check is a recovery finding: replayed data predicts,
                # and an undone action's data shows what did not bring recovery
                kind={"observed": "recovery", "undone": "recovery_undone"}.get(basis, "recovery_replay"),
                evidence=[check_evidence(c, action or "")],
            )
            for c in result.checks
        ]
        summary = f"{what} {action}: {result.verdict.value.replace('_', ' ')} ({result.reason})"
        if not verified:
            summary += "; recovery not verified in this run"
        if next_action is not None:
            summary += f"; escalate to {next_action.id} ({next_action.title})"
        elif not result.recovered and plan:
            summary += "; no further action in the plan: escalate to the incident commander"
        return AgentReport(
            agent=self.spec.name,
            summary=summary,
            findings=findings,
            outputs={"recovery": recovery},
            actions=[next_action] if next_action else [],
            # rows of the post-action (and baseline) telemetry dropped or repaired at the source boundary
            limitations=limitations + [f"no data for {s}" for s in result.unavailable] + telemetry.limitations,
        )

    @staticmethod
    def _next(plan: list[RecommendedAction], action: str | None, taken: list[str]) -> RecommendedAction | None:
        """The first plan action after the one validated that has not been tried yet."""
        kinds = [a.kind for a in plan]
        start = kinds.index(action) + 1 if action in kinds else 0
        return next((a for a in plan[start:] if a.kind not in taken and a.kind != action), None)
