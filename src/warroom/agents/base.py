"""The contract every specialist agent fulfils: declared inputs and outputs, run(context) → AgentReport."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

from warroom.agents import outputs
from warroom.incident import AgentReport
from warroom.sources.incident_telemetry import IncidentTelemetry

T = TypeVar("T")


@dataclass(frozen=True)
class AgentSpec:
    name: str
    purpose: str
    inputs: tuple[str, ...] = ()  # context keys it reads (produced by earlier phases)
    outputs: tuple[str, ...] = ()  # context keys it writes into AgentReport.outputs
    aliases: tuple[str, ...] = ()  # other names the seed documents use for the same specialist


@dataclass
class AgentContext:
    """Everything an agent may look at. Agents never read files or query systems: the incident's
    telemetry was read from its source before the step started."""

    telemetry: IncidentTelemetry
    incident_id: str
    context: dict[str, Any] = field(default_factory=dict)  # merged outputs of earlier phases
    params: dict[str, Any] = field(default_factory=dict)  # per-step parameters from the workflow

    def need(self, key: str) -> Any:
        """A context value an earlier phase must have produced."""
        if key not in self.context:
            raise KeyError(f"context key '{key}' was not produced by an earlier phase")
        return self.context[key]

    def read(self, key: outputs.Key[T]) -> T | None:
        """An earlier phase's output as its model (warroom.agents.outputs); None when absent."""
        return outputs.read(self.context, key)

    def read_list(self, key: outputs.ListKey[T]) -> list[T]:
        """The well-formed entries of an earlier phase's list output, as their model."""
        return outputs.read_list(self.context, key)


class Agent(Protocol):
    spec: ClassVar[AgentSpec]

    def run(self, ctx: AgentContext) -> AgentReport: ...


class Specialist:
    """Base of the built-in agents: whenever `run` returns (in a test, a worker or the service), the
    outputs it wrote are checked against their models, so a producer that writes a wrong shape fails
    itself rather than a later phase that reads it."""

    spec: ClassVar[AgentSpec]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        run: Callable[[Any, AgentContext], AgentReport] = cls.__dict__["run"]

        @functools.wraps(run)
        def checked(self: Any, ctx: AgentContext) -> AgentReport:
            report = run(self, ctx)
            outputs.check_outputs(cls.spec.name, cls.spec.outputs, report)
            return report

        setattr(cls, "run", checked)  # noqa: B010 (mypy rejects assigning to a method)
