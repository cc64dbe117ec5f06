"""Execution policy: dry run by default, `execute` to change things, approvals by risk (none|risky|all)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from warroom.actions.contract import KubectlDryRun
from warroom.errors import InputError
from warroom.incident import ApprovalPolicy, RiskLevel


class Target(StrEnum):
    LIVE = "live"  # adapters act on real systems
    BUNDLE = "bundle"  # a recorded incident: "executing" kind K reads the bundle's after/K/ telemetry


class Approval(BaseModel):
    """One action approved by someone at some time (decided by the engine's gate, handed in as data)."""

    action_id: str
    approved_by: str = "unknown"
    approved_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class Mode:
    """How a mitigation runs."""

    execute: bool = False  # dry run unless set
    policy: ApprovalPolicy = ApprovalPolicy.RISKY
    target: Target = Target.LIVE
    kubectl_dry_run: KubectlDryRun = "none"  # what a kubectl preview passes as --dry-run
    env: dict[str, str] = field(default_factory=dict)  # environment for adapters; empty = os.environ
    actor: str = "change-executor"


def parse_policy(value: str | ApprovalPolicy | None) -> ApprovalPolicy:
    if value is None:
        return ApprovalPolicy.RISKY
    try:
        return ApprovalPolicy(str(value).lower())
    except ValueError:
        raise InputError(f"unknown approval policy '{value}' (expected none, risky or all)") from None


def parse_approvals(raw: Any) -> dict[str, Approval]:
    """Approvals as the engine hands them over: a list of ids, a list of {action_id, approved_by,
    approved_at} records, or a mapping id → record (or id → approver name)."""
    if raw is None:
        return {}
    items: Iterable[Any]
    if isinstance(raw, Mapping):
        items = [
            {"action_id": key, **value}
            if isinstance(value, Mapping)
            else {"action_id": key, "approved_by": str(value) if isinstance(value, str) else "unknown"}
            for key, value in raw.items()
        ]
    elif isinstance(raw, list | tuple | set):
        items = raw
    else:
        raise InputError(f"approved_actions: expected a list or mapping, got {type(raw).__name__}")
    approvals: dict[str, Approval] = {}
    for item in items:
        if isinstance(item, Approval):
            approval = item
        elif isinstance(item, str):
            # A bare id: the engine's approval gate decided it (who approved is in the engine's record).
            approval = Approval(action_id=item, approved_by="approval gate")
        elif isinstance(item, Mapping) and "action_id" in item:
            approval = Approval.model_validate(dict(item))
        else:
            raise InputError(f"approved_actions: cannot read {item!r} as an approval")
        approvals[approval.action_id] = approval
    return approvals


class Gate(StrEnum):
    DRY_RUN = "dry_run"
    RUN = "run"
    BLOCKED = "blocked"


def gate(
    action_id: str, risk: RiskLevel, mode: Mode, approvals: Mapping[str, Approval]
) -> tuple[Gate, Approval | None]:
    """What may happen to one action: dry run, run (with the approval that allowed it), or blocked."""
    if not mode.execute:
        return Gate.DRY_RUN, approvals.get(action_id)
    if not mode.policy.covers(risk):
        return Gate.RUN, None
    approval = approvals.get(action_id) or approvals.get("*")
    if approval is None:
        return Gate.BLOCKED, None
    return Gate.RUN, approval
