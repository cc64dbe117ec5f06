"""The scenario catalogue: name → scenario."""

from __future__ import annotations

from dataclasses import dataclass

from warroom.errors import NotFoundError
from warroom.scenarios.base import Scenario
from warroom.scenarios.capacity import CpuSaturation, MemoryLeak
from warroom.scenarios.change_faults import BadConfig, BadMigration, CredentialStuffing
from warroom.scenarios.infrastructure import CertificateExpiry, NetworkDelay, SlowDependency
from warroom.scenarios.pool_leak import PoolLeak
from warroom.scenarios.query_scan import MissingIndex

# The order of issue 4: (a) … (j).
SCENARIOS: list[type[Scenario]] = [
    PoolLeak,
    MissingIndex,
    CpuSaturation,
    MemoryLeak,
    SlowDependency,
    BadConfig,
    NetworkDelay,
    CertificateExpiry,
    CredentialStuffing,
    BadMigration,
]


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
