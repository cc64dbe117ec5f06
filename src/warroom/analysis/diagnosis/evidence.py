"""Typed evidence: what a detector observed, how strong it is against the baseline, and against which
noise level it was tested.

Every observation has a strength on one scale: a z value (a robust z, a Poisson tail or a
Cochran-Mantel-Haenszel statistic, each standard normal when nothing changed) measured against the
reference period, and the noise level of its test family: the |z| that one of the family's
comparisons exceeds by chance (Bonferroni at `ALPHA`). For the continuous measurements (metric
series, span times) the noise level widens with the spread of the family's own z values when the
reference is systematically off (another time of day, another load): an "empirical null". Count
tests (Poisson tails, CMH, proportions) are exact under their null and keep Bonferroni's level.
What an observation is worth for a hypothesis is decided by the hypotheses, from these two numbers
and the registry's weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from warroom.incident import Evidence

Modality = Literal["metrics", "logs", "traces", "changes", "code"]
ALPHA = 0.01  # family-wise false-alarm rate of a detector's test family
MAX_SPREAD = 3.0  # an empirical null wider than this is a broken reference, not noise; cap it


def critical_z(tests: int, alpha: float = ALPHA) -> float:
    """Bonferroni: the |z| one of `tests` independent comparisons exceeds by chance with probability alpha."""
    return float(NormalDist().inv_cdf(1.0 - alpha / (2.0 * max(tests, 1))))


def empirical_spread(z: Iterable[float]) -> float:
    """The robust spread (1.4826·MAD) of a family's z values, at least 1. Most comparisons of an
    incident are of things the fault does not touch; when their z values spread wider than a
    standard normal, the reference differs systematically (another time of day, another load) and
    the noise level widens with them."""
    values = np.asarray([abs(v) for v in z if math.isfinite(v)], dtype=np.float64)
    if values.size < 20:  # too few comparisons to estimate a null from
        return 1.0
    spread = 1.4826 * float(np.median(values))  # the MAD of a symmetric null is the median |z|
    return float(min(max(spread, 1.0), MAX_SPREAD))


def noise_level(z: Iterable[float], tests: int | None = None) -> float:
    """The noise level of a test family: Bonferroni's critical z (for `tests` comparisons, default one
    per value) times the family's empirical spread."""
    values = list(z)
    return critical_z(tests if tests is not None else len(values)) * empirical_spread(values)


class Observation(BaseModel):
    """One thing a detector saw, with what a person needs to check it."""

    id: str = ""
    detector: str  # e.g. "metrics.robust_z", "logs.templates", "traces.call_gap"
    modality: Modality
    signal: str  # the registry's signal vocabulary, e.g. "cpu_utilization.up"
    service: str  # where it was measured
    peer: str | None = None  # the other end of an edge (the caller of a call, the logger of a line)
    # The services this observation speaks about, per signal name: an edge's delay is "call_gap.in"
    # for the callee and "call_gap.out" for the caller. Default: {signal: service}.
    roles: dict[str, str] = Field(default_factory=dict)
    strength: float  # z against the reference, >= 0 (direction is in the signal name)
    noise: float  # the family's noise level (critical z)
    effect: float = 1.0  # how large the change is on its own scale, 0..1 (a 1 % CPU move is not saturation)
    onset: datetime | None = None
    baseline: float | None = None
    value: float | None = None  # typical value in the window
    peak: float | None = None
    unit: str | None = None
    query: str  # the selector or filter that produced it, for a person to re-run
    start: datetime | None = None
    end: datetime | None = None
    samples: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)

    def model_post_init(self, __context: Any) -> None:
        if not self.roles:
            self.roles = {self.signal: self.service}

    @property
    def excess(self) -> float:
        """Strength above the noise level (negative below it)."""
        return self.strength - self.noise

    @property
    def above_noise(self) -> bool:
        return self.strength > self.noise

    def speaks_about(self, service: str) -> list[str]:
        """The signal names under which this observation is evidence about `service`."""
        return [signal for signal, who in self.roles.items() if who == service]

    def evidence(self) -> Evidence:
        """The observation as the incident model's evidence (what reports cite)."""
        values: dict[str, Any] = {
            "signal": self.signal,
            "strength_z": round(self.strength, 2),
            "noise_z": round(self.noise, 2),
            "baseline": _round(self.baseline),
            "value": _round(self.value),
            "peak": _round(self.peak),
            "unit": self.unit,
            "onset": self.onset.isoformat() if self.onset else None,
            **{k: v for k, v in self.data.items() if isinstance(v, str | int | float | bool) or v is None},
        }
        if self.peer:
            values["peer"] = self.peer
        return Evidence(
            id=self.id,
            source=self.modality,
            query=self.query,
            start=self.start,
            end=self.end,
            values=values,
            samples=self.samples[:5],
        )

    def headline(self) -> str:
        """One line a person reads: what moved, by how much, against what noise."""
        moved = ""
        if self.baseline is not None and self.peak is not None:
            unit = f" {self.unit}" if self.unit else ""
            moved = f" {_fmt(self.baseline)} → {_fmt(self.peak)}{unit}"
        peer = f" ({self.peer})" if self.peer else ""
        return f"{self.service}{peer}: {self.signal}{moved} (z {_fmt_z(self.strength)}, noise {_fmt_z(self.noise)})"


def _round(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 4)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _fmt_z(value: float) -> str:
    # a tenth matters near the noise level; far above it (a capped z of 1000) it is noise itself
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}"
