"""The contract every action adapter fulfils: name, parameter schema, risk, preview, execute, verify, undo."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from warroom.errors import InputError
from warroom.incident import RiskLevel
from warroom.redact import redact, redact_obj

KubectlDryRun = Literal["none", "client", "server"]


class StepResult(BaseModel):
    """What one execute, preview or undo call did. Always redacted before it leaves the adapter."""

    ok: bool
    detail: str = ""
    timed_out: bool = False
    changed: bool = False  # False for previews and read-only work
    data: dict[str, Any] = {}

    def redacted(self) -> StepResult:
        return self.model_copy(update={"detail": redact(self.detail), "data": redact_obj(self.data)})


class Check(BaseModel):
    """The answer of a verification: True / False, or None when it cannot be told."""

    ok: bool | None
    detail: str = ""
    data: dict[str, Any] = {}


@dataclass(frozen=True)
class RunOptions:
    """How an adapter call runs: the process environment it may pass on and a kubectl dry-run mode."""

    env: dict[str, str] = field(default_factory=dict)  # the environment allow-listed variables come from
    kubectl_dry_run: KubectlDryRun = "none"  # used by kubectl previews when the run is a dry run


class Params(BaseModel):
    """Base of every adapter's parameter schema: unknown keys are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


P = TypeVar("P", bound=Params)


class ActionAdapter(ABC, Generic[P]):
    """One kind of change. Subclasses declare their name, schema and risk, and implement the calls."""

    name: ClassVar[str]
    params_model: ClassVar[type[Params]]
    risk: ClassVar[RiskLevel]
    undoable: ClassVar[bool] = False
    summary: ClassVar[str] = ""

    def parse(self, raw: dict[str, Any]) -> P:
        """Validate raw parameters against the adapter's schema; one-line error when they do not fit."""
        try:
            return self.params_model.model_validate(raw)  # type: ignore[return-value]
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InputError(f"{self.name}: {first['msg']}", field=where or None) from None

    @abstractmethod
    def describe(self, params: P) -> str:
        """What would run, in one line (an argv, a URL, a SQL statement)."""

    def preview(self, params: P, options: RunOptions) -> StepResult:
        """Dry run: read-only work that shows what would change. Default: describe only."""
        return StepResult(ok=True, detail=f"would run: {self.describe(params)}")

    @abstractmethod
    def execute(self, params: P, options: RunOptions) -> StepResult:
        """Make the change."""

    def verify(self, params: P, result: StepResult, options: RunOptions) -> Check:
        """Did the change take effect? Default: the execute call said so."""
        return Check(ok=result.ok, detail="execution succeeded" if result.ok else "execution failed")

    def undo(self, params: P, result: StepResult, options: RunOptions) -> StepResult | None:
        """Reverse the change, or None when it cannot be undone."""
        return None


@dataclass
class AdapterRegistry:
    """Adapters by name."""

    adapters: dict[str, ActionAdapter[Any]] = field(default_factory=dict)

    def add(self, adapter: ActionAdapter[Any]) -> None:
        self.adapters[adapter.name] = adapter

    def get(self, name: str) -> ActionAdapter[Any]:
        if name not in self.adapters:
            known = ", ".join(sorted(self.adapters))
            raise InputError(f"unknown action adapter '{name}' (known: {known})")
        return self.adapters[name]

    def names(self) -> list[str]:
        return sorted(self.adapters)


def default_registry() -> AdapterRegistry:
    """Every built-in adapter."""
    from warroom.actions.git import GitRevert, GitRollbackToRef
    from warroom.actions.http import HttpRequest
    from warroom.actions.kubectl import KubectlRolloutRestart, KubectlRolloutUndo, KubectlScale, KubectlSetEnv
    from warroom.actions.shell import ShellCommand
    from warroom.actions.sql import ListLongQueries, TerminateLongQueries

    registry = AdapterRegistry()
    for adapter in (
        ShellCommand(),
        HttpRequest(),
        KubectlScale(),
        KubectlRolloutRestart(),
        KubectlRolloutUndo(),
        KubectlSetEnv(),
        ListLongQueries(),
        TerminateLongQueries(),
        GitRevert(),
        GitRollbackToRef(),
    ):
        registry.add(adapter)
    return registry
