"""Traffic and noise: the daily load curve, slow random drift, and the time grid of a period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np


@dataclass(frozen=True)
class Period:
    """A stretch of simulated time on a regular grid (seconds since the Unix epoch)."""

    start: datetime
    end: datetime
    step_s: float

    @property
    def times(self) -> np.ndarray:
        first = self.start.timestamp()
        count = int((self.end - self.start).total_seconds() // self.step_s)
        return first + self.step_s * np.arange(count, dtype=np.float64)

    def shifted(self, delta: timedelta) -> Period:
        return Period(self.start + delta, self.end + delta, self.step_s)


def daily_curve(times: np.ndarray) -> np.ndarray:
    """Relative load in 0.25..1: low at 04:00 UTC, a midday plateau and an evening peak at 20:00."""
    hours = (times % 86_400.0) / 3600.0
    night = 0.25
    day = 0.55 + 0.2 * np.exp(-(((hours - 13.0) / 3.0) ** 2))
    evening = 0.45 * np.exp(-(((hours - 20.0) / 2.2) ** 2))
    rise = 1.0 / (1.0 + np.exp(-(hours - 7.5) * 1.3))
    fall = 1.0 / (1.0 + np.exp((hours - 23.5) * 1.5))
    return np.clip(night + (day + evening - night) * rise * fall, 0.25, 1.0)


def drift(rng: np.random.Generator, n: int, scale: float = 0.04, keep: float = 0.97) -> np.ndarray:
    """Multiplicative AR(1) noise around 1: load never follows a curve exactly."""
    shocks = rng.normal(0.0, scale * np.sqrt(1 - keep**2), n)
    values = np.empty(n)
    level = 0.0
    for index in range(n):  # n is the number of grid steps (≤ a few thousand)
        level = keep * level + shocks[index]
        values[index] = level
    return np.exp(values)


def front_door_rps(rng: np.random.Generator, times: np.ndarray, peak_rps: float) -> np.ndarray:
    """Requests per second at the entry service for each grid step."""
    return peak_rps * daily_curve(times) * drift(rng, times.size)
