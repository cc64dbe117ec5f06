"""What one detector hands to the engine: its observations, how many comparisons it made, and what it
could not look at."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from warroom.analysis.diagnosis.evidence import Observation


@dataclass
class DetectorResult:
    detector: str
    observations: list[Observation] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)
    tests: int = 0
    # signal → services on which it was measured (compared with the reference), moved or not: what a
    # missing observation means (no change, or no data)
    measured: dict[str, set[str]] = field(default_factory=dict)

    def add(self, observation: Observation) -> None:
        self.observations.append(observation)

    def measure(self, signal: str, services: Iterable[str]) -> None:
        self.measured.setdefault(signal, set()).update(services)

    def extend(self, other: DetectorResult) -> None:
        self.observations.extend(other.observations)
        self.limitations.extend(other.limitations)
        self.tests += other.tests
        for signal, services in other.measured.items():
            self.measure(signal, services)
