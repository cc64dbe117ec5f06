"""What one detector hands to the engine: its observations, how many comparisons it made, and what it
could not look at."""

from __future__ import annotations

from dataclasses import dataclass, field

from warroom.analysis.diagnosis.evidence import Observation


@dataclass
class DetectorResult:
    detector: str
    observations: list[Observation] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)
    tests: int = 0

    def add(self, observation: Observation) -> None:
        self.observations.append(observation)

    def extend(self, other: DetectorResult) -> None:
        self.observations.extend(other.observations)
        self.limitations.extend(other.limitations)
        self.tests += other.tests
