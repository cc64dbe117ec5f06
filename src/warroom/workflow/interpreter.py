"""The workflow interpreter: from a spec and the recorded step results, what happens next.

It is pure: no clock, no I/O, no store. Every decision it takes is a function of results already
recorded, so a run killed at any point resumes exactly where it stopped, and the same interpreter
could drive a durable distributed workflow engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from simpleeval import EvalWithCompoundTypes

from warroom.incident import RiskLevel
from warroom.record import Decision
from warroom.workflow.spec import (
    ApprovalPolicy,
    PhaseKind,
    PhaseSpec,
    StepSpec,
    WorkflowSpec,
    condition_paths,
)

SUCCEEDED = "succeeded"


@dataclass(frozen=True)
class Recorded:
    """One persisted step result, as the interpreter sees it."""

    key: str
    kind: str  # agent | decision | gate
    status: str
    result: dict[str, Any]


def step_key(phase: PhaseSpec, step: StepSpec) -> str:
    return f"{phase.id}/{step.id}"


def decision_key(phase: PhaseSpec) -> str:
    return f"{phase.id}/decide"


def gate_key(phase: PhaseSpec, step: StepSpec) -> str:
    return f"{phase.id}/{step.id}/gate"


@dataclass(frozen=True)
class RunSteps:
    """Run these steps now (more than one: concurrently)."""

    phase: PhaseSpec
    steps: list[StepSpec]


@dataclass(frozen=True)
class RecordDecision:
    phase: PhaseSpec
    decision: Decision


@dataclass(frozen=True)
class OpenGate:
    """Before `step` runs, the actions proposed so far must pass its approval policy."""

    phase: PhaseSpec
    step: StepSpec
    policy: ApprovalPolicy
    actions: list[dict[str, Any]]


@dataclass(frozen=True)
class Done:
    pass


Move = RunSteps | RecordDecision | OpenGate | Done


@dataclass
class RunContext:
    """The context handed from phase to phase, folded from recorded results in spec order."""

    values: dict[str, Any] = field(default_factory=dict)
    proposed_actions: list[dict[str, Any]] = field(default_factory=list)
    approvals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # gate key → who approved what

    def for_agents(self) -> dict[str, Any]:
        return {**self.values, "proposed_actions": self.proposed_actions}


def _propose(proposed: list[dict[str, Any]], action: dict[str, Any]) -> None:
    """A later proposal with an earlier one's id revises it in place; a new id is appended."""
    for index, known in enumerate(proposed):
        if known["id"] == action["id"]:
            proposed[index] = action
            return
    proposed.append(action)


def chosen_path(phase: PhaseSpec, recorded: Mapping[str, Recorded]) -> StepSpec | None:
    decision = recorded.get(decision_key(phase))
    if decision is None or phase.decide is None:
        return None
    path = decision.result.get("path")
    return next((p for p in phase.decide if p.path == path), None)


def active_steps(phase: PhaseSpec, recorded: Mapping[str, Recorded]) -> list[StepSpec]:
    """The steps this phase runs (for decide: only the chosen path, once decided)."""
    if phase.kind == PhaseKind.DECIDE:
        chosen = chosen_path(phase, recorded)
        return [chosen] if chosen else []
    return phase.steps


def phase_done(phase: PhaseSpec, recorded: Mapping[str, Recorded]) -> bool:
    if phase.kind == PhaseKind.DECIDE and decision_key(phase) not in recorded:
        return False
    return all(step_key(phase, step) in recorded for step in active_steps(phase, recorded))


def fold_context(spec: WorkflowSpec, recorded: Mapping[str, Recorded]) -> RunContext:
    ctx = RunContext()
    for phase in spec.phases:
        for step in active_steps(phase, recorded):
            gate = recorded.get(gate_key(phase, step))
            if gate is not None:
                ctx.approvals[gate.key] = list(gate.result.get("approvals", []))
            result = recorded.get(step_key(phase, step))
            if result is None or result.status != SUCCEEDED:
                continue
            ctx.values.update(result.result.get("outputs", {}))
            for action in result.result.get("actions", []):
                _propose(ctx.proposed_actions, action)
    return ctx


def next_move(spec: WorkflowSpec, recorded: Mapping[str, Recorded]) -> Move:
    for phase in spec.phases:
        if phase_done(phase, recorded):
            continue
        if phase.kind == PhaseKind.DECIDE and decision_key(phase) not in recorded:
            return RecordDecision(phase, decide(phase, fold_context(spec, recorded).for_agents()))
        pending = [s for s in active_steps(phase, recorded) if step_key(phase, s) not in recorded]
        if phase.kind == PhaseKind.PARALLEL:
            ungated = [s for s in pending if s.approval is None or gate_key(phase, s) in recorded]
            gated = [s for s in pending if s not in ungated]
            if gated:
                step = gated[0]
                return OpenGate(phase, step, step.approval or ApprovalPolicy.NONE, _actions(spec, recorded))
            return RunSteps(phase, ungated)
        step = pending[0]  # agent, sequence and a decided path run one step at a time
        if step.approval is not None and gate_key(phase, step) not in recorded:
            return OpenGate(phase, step, step.approval, _actions(spec, recorded))
        return RunSteps(phase, [step])
    return Done()


def _actions(spec: WorkflowSpec, recorded: Mapping[str, Recorded]) -> list[dict[str, Any]]:
    return fold_context(spec, recorded).proposed_actions


def covers(policy: ApprovalPolicy, action: Mapping[str, Any]) -> bool:
    """Whether a proposed action (as recorded) falls in a policy's scope."""
    return policy.covers(RiskLevel(action.get("risk", "medium")))


def _lookup(values: Mapping[str, Any], path: str) -> Any:
    current: Any = values
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


class Unmeasured:
    """Stands in for a value nobody measured: every comparison with it is false."""

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return False

    __lt__ = __le__ = __gt__ = __ge__ = __eq__

    def __bool__(self) -> bool:
        return False

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "unmeasured"


def _names(context: Mapping[str, Any], paths: list[str]) -> dict[str, Any]:
    """The condition's names, with every unmeasured path filled by an Unmeasured value."""
    names: dict[str, Any] = {
        "signals": dict(context.get("signals") or {}),
        "incident": dict(context.get("incident") or {}),
        "context": dict(context),
    }
    for path in paths:
        if _lookup(names, path) is not None:
            continue
        parts = path.split(".")
        node = names
        for part in parts[:-1]:
            child = node.get(part)
            child = dict(child) if isinstance(child, Mapping) else {}
            node[part] = child
            node = child
        node[parts[-1]] = Unmeasured()
    return names


def evaluate(expression: str, context: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Evaluate a condition safely (no `eval`): the verdict and the values it read (None when
    unmeasured). A condition that cannot be evaluated on the data is false, not a crash."""
    paths = condition_paths(expression)
    names = _names(context, paths)
    values = {p: _lookup(names, p) for p in paths}
    values = {p: (None if isinstance(v, Unmeasured) else v) for p, v in values.items()}
    try:
        verdict = bool(EvalWithCompoundTypes(names=names).eval(expression))
    except Exception:
        verdict = False
    return verdict, values


def holds(expression: str, context: Mapping[str, Any]) -> bool:
    return evaluate(expression, context)[0]


def decide(phase: PhaseSpec, context: Mapping[str, Any]) -> Decision:
    """First path whose condition holds, else the default path; the values that decided it."""
    assert phase.decide is not None
    skipped: list[str] = []
    seen: dict[str, Any] = {}
    for path in phase.decide:
        if path.default:
            break
        assert path.when is not None
        verdict, values = evaluate(path.when, context)
        seen.update(values)
        if verdict:
            reason = path.rationale or f"{path.when} holds"
            return Decision(path=path.path, agent=path.agent, condition=path.when, values=values, rationale=reason)
        unmeasured = [p for p, v in values.items() if v is None]
        note = f" (not measured: {', '.join(unmeasured)})" if unmeasured else ""
        skipped.append(f"{path.path}: {path.when} does not hold{note}")
    default = next(p for p in phase.decide if p.default)
    rationale = "; ".join(skipped)
    rationale = f"no condition held ({rationale}); default path" if skipped else "default path"
    if default.rationale:
        rationale = f"{default.rationale} — {rationale}"
    return Decision(path=default.path, agent=default.agent, condition=None, values=seen, rationale=rationale)
