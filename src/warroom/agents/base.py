"""The contract every specialist agent fulfils: declared inputs and outputs, run(context) → AgentReport."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from warroom.incident import AgentReport
from warroom.sources.incident_telemetry import IncidentTelemetry


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


class Agent(Protocol):
    spec: ClassVar[AgentSpec]

    def run(self, ctx: AgentContext) -> AgentReport: ...
