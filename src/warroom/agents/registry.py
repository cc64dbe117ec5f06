"""Agent registry: name (or alias) → agent class.

Built-in specialists are listed here by import path and imported on first use. A workflow may
also name its own agent as `package.module:ClassName` (an importable class with the Agent
contract), which is how a team adds a specialist without changing warroom.
"""

from __future__ import annotations

import importlib
from functools import cache

from warroom.agents.base import Agent, AgentSpec

BUILTIN_AGENTS: tuple[str, ...] = (
    "warroom.agents.commander:IncidentCommander",
    "warroom.agents.monitoring:MonitoringSpecialist",
    "warroom.agents.log_analysis:LogAnalysisSpecialist",
    "warroom.agents.application:ApplicationIncidentSpecialist",
    "warroom.agents.infrastructure:InfrastructureIncidentSpecialist",
    "warroom.agents.database:DatabaseIncidentSpecialist",
    "warroom.agents.code_explorer:CodeExplorer",
    "warroom.agents.customer_impact:CustomerImpactAnalyst",
    "warroom.agents.security:SecurityIncidentAnalyst",
    "warroom.agents.resolution:IncidentResolutionCoordinator",
    "warroom.agents.change_executor:ChangeExecutor",
    "warroom.agents.recovery:RecoveryValidationSpecialist",
    "warroom.agents.communications:IncidentCommunicationsSpecialist",
    "warroom.agents.documentation:IncidentDocumentationSpecialist",
    "warroom.agents.post_incident:PostIncidentAnalyst",
)


class UnknownAgent(KeyError):
    pass


def _load(reference: str) -> type[Agent]:
    module_name, _, class_name = reference.partition(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name)
    if not isinstance(getattr(cls, "spec", None), AgentSpec) or not callable(getattr(cls, "run", None)):
        raise TypeError(f"{reference} does not follow the agent contract (spec: AgentSpec, run(ctx))")
    return cls


@cache
def builtin() -> dict[str, type[Agent]]:
    """Every built-in agent under its name and its aliases."""
    table: dict[str, type[Agent]] = {}
    for reference in BUILTIN_AGENTS:
        cls = _load(reference)
        for name in (cls.spec.name, *cls.spec.aliases):
            table[name] = cls
    return table


def resolve(name: str) -> type[Agent]:
    if ":" in name:
        try:
            return _load(name)
        except (ImportError, AttributeError, TypeError) as exc:
            raise UnknownAgent(name) from exc
    try:
        return builtin()[name]
    except KeyError:
        raise UnknownAgent(name) from None


def is_known(name: str) -> bool:
    try:
        resolve(name)
    except UnknownAgent:
        return False
    return True


def specs() -> list[AgentSpec]:
    seen: dict[str, AgentSpec] = {}
    for cls in builtin().values():
        seen.setdefault(cls.spec.name, cls.spec)
    return sorted(seen.values(), key=lambda s: s.name)
