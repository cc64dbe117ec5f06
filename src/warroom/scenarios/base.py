"""What every scenario provides: a plan (variant chosen by seed) and the effects of its fault, with
and without each mitigation. Also the scale presets."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from warroom.scenarios.code import AUTHORS, Tree
from warroom.scenarios.effects import Effects
from warroom.scenarios.load import daily_curve
from warroom.scenarios.system import System

# How each action changes a fault, as recorded in ground_truth.json:
RECOVERS = "recovers"  # back to baseline and stays there
TEMPORARY = "temporary"  # better for a while, then the fault returns
PARTIAL = "partial"  # better but not back to baseline
NO_EFFECT = "no_effect"

ACTION_KINDS = (
    "kill_long_queries", "recycle_pool", "raise_pool_size", "restart", "scale_out", "rollback", "revert_config",
    "fix_forward", "failover_dependency", "renew_certificate", "block_sources", "restore_backup",
)  # fmt: skip


@dataclass(frozen=True)
class Scale:
    name: str
    step_s: float
    pre_min: float  # telemetry before onset in the main period (at least)
    post_min: float  # telemetry after onset until the mitigation is applied
    after_min: float  # telemetry after each mitigation
    per_step: int  # simulated front-door requests per step
    trace_fraction: float  # share of healthy traces kept (failed and slow ones are always kept)
    info_fraction: float  # share of healthy spans that log a line
    history_commits: int  # ordinary commits in the repository
    users: int
    large: bool = False


SCALES: dict[str, Scale] = {
    "small": Scale("small", 30.0, 40.0, 25.0, 40.0, 36, 0.08, 0.04, 30, 5_000),
    "default": Scale("default", 15.0, 90.0, 30.0, 60.0, 90, 0.15, 0.15, 120, 50_000),
    "large": Scale("large", 15.0, 300.0, 60.0, 60.0, 520, 0.22, 0.5, 2_100, 2_000_000, large=True),
}


@dataclass
class Change:
    """A deploy or configuration change (a row of changes.*)."""

    time_s: float
    service: str
    kind: str  # "deploy" | "config" | "feature_flag" | "migration" | "rollback" | "restart" | "scale"
    description: str
    version: str | None = None
    commit_label: str | None = None  # resolved to a SHA once the repository is written
    author: str | None = None
    id: str = ""
    offending: bool = False


@dataclass
class CodeChange:
    """The commit that carries the fault, and where in it a reader should look."""

    message: str
    files: dict[str, str | None]
    file: str
    line: int
    author: tuple[str, str]


@dataclass
class Plan:
    """One variant of a scenario, chosen by seed."""

    service: str
    onset_s: float  # symptoms begin at the front door
    fault_start_s: float  # the change or event that starts the fault
    variant: str
    actions: dict[str, str]  # action kind → RECOVERS | TEMPORARY | PARTIAL | NO_EFFECT
    change: Change | None = None  # the offending change, if a change caused it
    code: CodeChange | None = None
    params: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    alert_name: str = "HighLatencyP99"
    symptoms: list[str] = field(default_factory=list)
    severity_hint: str = "P1"
    extra_changes: list[Change] = field(default_factory=list)


@dataclass
class PlanContext:
    rng: np.random.Generator
    system: System
    tree: Tree  # the repository at the time of the fault (to patch files)
    target_onset_s: float
    scale: Scale

    def expected_rps(self, service: str, at_s: float | np.ndarray) -> np.ndarray:
        """Healthy request rate of a service (all replicas) at a time, without noise."""
        share = self.system.calls_per_request()[service]
        return np.asarray(self.system.peak_rps * share * daily_curve(np.asarray(at_s, dtype=np.float64)))


@dataclass
class PeriodContext:
    """What a scenario needs to compute its effects over one period."""

    system: System
    times: np.ndarray  # epoch seconds per step
    step_s: float
    service_rps: dict[str, np.ndarray]  # healthy rate per service, all replicas, per step
    action: str | None  # the mitigation applied at `action_s` (after/ periods), else None
    action_s: float | None
    rng: np.random.Generator
    generation_base: dict[str, int]

    def step_of(self, at_s: float) -> int:
        return int(np.clip((at_s - self.times[0]) // self.step_s, 0, self.times.size))

    def new_effects(self) -> Effects:
        return Effects(generation_base=dict(self.generation_base))


class Scenario(ABC):
    name: ClassVar[str]
    title: ClassVar[str]
    fault_type: ClassVar[str]
    path: ClassVar[str]  # "database" | "application" | "infrastructure"
    security: ClassVar[bool] = False
    data_loss: ClassVar[bool] = False
    summary: ClassVar[str]

    @abstractmethod
    def plan(self, ctx: PlanContext) -> Plan:
        """Choose this seed's variant: which service, when, how the code looks."""

    @abstractmethod
    def effects(self, plan: Plan, ctx: PeriodContext) -> Effects:
        """The fault's effects over a period (with `ctx.action` applied at `ctx.action_s`)."""

    def system_for(self, plan: Plan, system: System, action: str | None) -> System:
        """The system after a mitigation (e.g. more replicas after scale_out)."""
        svc = system.services[plan.service]
        # Only our own stateless services scale out; a database or a provider does not.
        if action == "scale_out" and svc.kind in ("service", "gateway"):
            return system.with_replicas(plan.service, svc.replicas * 2)
        return system

    def mitigations(self, plan: Plan) -> list[str]:
        return list(plan.actions)

    def recovering(self, plan: Plan) -> list[str]:
        return [kind for kind, effect in plan.actions.items() if effect == RECOVERS]


def ramp(times: np.ndarray, start_s: float, seconds: float) -> np.ndarray:
    """0 before `start_s`, rising linearly to 1 over `seconds`."""
    return np.clip((times - start_s) / max(seconds, 1e-9), 0.0, 1.0)


def replica_jitter(rng: np.random.Generator, replicas: int, spread: float = 0.15) -> np.ndarray:
    return rng.uniform(1.0 - spread, 1.0 + spread, replicas)[:, None]


def go_add_method(handler: str, method: str, call: str, imports: tuple[str, ...] = ()) -> str:
    """Append a method to a Go handler file, call it at the top of ServeHTTP, add imports."""
    text = handler
    for name in imports:
        if f'\t"{name}"\n' not in text:
            text = text.replace("import (\n", f'import (\n\t"{name}"\n', 1)
    text = text.replace("\tctx := r.Context()\n", "\tctx := r.Context()\n" + call, 1)
    return text + method


def python_add_helper(handler: str, function: str, helper: str, call: str) -> str:
    """Append a helper to a Python handlers module and call it first thing in `function`."""
    text = handler.replace(f"def {function}(request):\n", f"def {function}(request):\n{call}", 1)
    return text.rstrip("\n") + "\n\n" + helper


def line_containing(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise ValueError(f"{needle!r} not in the generated file")


def snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def offending_deploy(
    ctx: PlanContext,
    service: str,
    at_s: float,
    summary: str,
    files: dict[str, str | None],
    file: str,
    line: int,
    body: str = "",
    kind: str = "deploy",
) -> tuple[Change, CodeChange]:
    """The change record and the commit of a deploy that carries the fault."""
    rng = ctx.rng
    author = AUTHORS[int(rng.integers(len(AUTHORS)))]
    version = f"v1.{int(rng.integers(10, 40))}.{int(rng.integers(0, 9))}" if kind == "deploy" else None
    description = f"{service} {version}: {summary}" if version else f"{service}: {summary}"
    change = Change(at_s, service, kind, description, version, "offending", author[0], offending=True)
    message = f"{service}: {summary}\n\n{body}\n" if body else f"{service}: {summary}\n"
    return change, CodeChange(message, files, file, line, author)
