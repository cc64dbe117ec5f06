"""The scenario catalogue: name → scenario."""

from __future__ import annotations

from dataclasses import dataclass

from warroom.errors import NotFoundError
from warroom.scenarios.base import Scenario
from warroom.scenarios.pool_leak import PoolLeak

SCENARIOS: list[type[Scenario]] = [PoolLeak]


@dataclass(frozen=True)
class ScenarioInfo:
    name: str
    title: str
    fault_type: str
    path: str
    security: bool
    data_loss: bool
    summary: str


def get(name: str) -> Scenario:
    for cls in SCENARIOS:
        if cls.name == name:
            return cls()
    known = ", ".join(cls.name for cls in SCENARIOS)
    raise NotFoundError(f"unknown scenario {name!r} (known: {known})")


def infos() -> list[ScenarioInfo]:
    return [
        ScenarioInfo(cls.name, cls.title, cls.fault_type, cls.path, cls.security, cls.data_loss, cls.summary)
        for cls in SCENARIOS
    ]
