"""When the incident began, from the data alone (no baseline yet): the first sustained change before the alert.

For each golden-signal series (error rate, latency, saturation; instances averaged) up to just after
the alert, Pettitt's rank test finds the most likely single change in level and how unlikely it is
under no change; a change counts when it is significant, goes the bad way (up; success rate down)
and is large against the level before it (robust spread, a share of that level, a share of the
series' own scale). Its onset is the first point from which the series stays past the line between
the two levels (a ramp starts where it first leaves the old level for good, not half-way up). The
incident's onset is the earliest such onset of any series: a cause usually moves before the symptom
that alerted.

Ranks make the test indifferent to the values' distribution and to outliers (one spike is one rank),
so the same rule holds for a latency in ms and a utilisation fraction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl
from scipy.stats import rankdata

from warroom.analysis.frames import decoded
from warroom.sources import conventions as c

# Signals where higher is worse, and the one where lower is.
RISING = (
    c.ERROR_RATE,
    c.LATENCY_P99,
    c.LATENCY_P95,
    c.LATENCY_P50,
    c.DB_POOL_UTILIZATION,
    c.DB_POOL_WAIT_MS,
    c.DB_CPU_UTILIZATION,
    c.CPU_UTILIZATION,
    c.MEMORY_UTILIZATION,
    c.HOST_CPU_UTILIZATION,
)
FALLING = (c.SUCCESS_RATE,)
SIGNIFICANCE = 1e-3  # Pettitt's p-value below which a change is taken as real
MIN_POINTS = 12  # fewer points cannot tell a change from noise
MIN_SIDE = 3  # points on each side of a change
SUSTAINED = 0.8  # from the onset on, this share of points stays past the line
SPREAD = 4.0  # robust standard deviations of the earlier level a change must exceed …
RELATIVE = 0.2  # … and this share of the earlier level …
OF_SCALE = 0.05  # … and this share of the series' own largest value
MAX_POINTS = 2000  # longer series are thinned evenly (the test is O(n log n), the scan O(n))


@dataclass(frozen=True)
class Onset:
    """The first sustained change of the incident: where, when, and from what level to what."""

    at: datetime
    service: str
    metric: str
    before: float  # median level before the change
    after: float  # median level after it, up to the alert
    p_value: float


def pettitt(values: np.ndarray) -> tuple[int, float, float]:
    """Pettitt's test: the index of the last point before the change, the statistic U there
    (negative: the later values are larger), and the approximate two-sided p-value."""
    n = len(values)
    ranks = rankdata(values)
    u = 2.0 * np.cumsum(ranks)[:-1] - np.arange(1, n) * (n + 1)
    index = int(np.argmax(np.abs(u)))
    k = abs(float(u[index]))
    p = min(1.0, 2.0 * math.exp(-6.0 * k * k / (n**3 + n**2)))
    return index, float(u[index]), p


def _series_onset(values: np.ndarray, worse_up: bool) -> tuple[int, float, float, float] | None:
    """(index of the onset, level before, level after, p) of one series' change for the worse."""
    signed = values if worse_up else -values
    last, u, p = pettitt(signed)
    if p >= SIGNIFICANCE or u >= 0 or last + 1 < MIN_SIDE or len(values) - last - 1 < MIN_SIDE:
        return None
    before, after = signed[: last + 1], signed[last + 1 :]
    low, high = float(np.median(before)), float(np.median(after))
    spread = 1.4826 * float(np.median(np.abs(before - low)))
    floor = max(SPREAD * spread, RELATIVE * abs(low), OF_SCALE * float(np.max(np.abs(signed))))
    if high - low <= floor or floor <= 0:
        return None
    line = low + max(SPREAD * spread, 0.25 * (high - low))
    past = signed > line
    # share of points past the line from each index to the end
    remaining = np.cumsum(past[::-1])[::-1] / np.arange(len(past), 0, -1)
    candidates = np.flatnonzero(past & (remaining >= SUSTAINED))
    if candidates.size == 0:
        return None
    sign = 1.0 if worse_up else -1.0
    return int(candidates[0]), sign * low, sign * high, p


def detect_onset(metrics: pl.DataFrame, alert_at: datetime) -> Onset | None:
    """The incident's onset from its canonical metrics, or None when no golden signal changed for
    the worse (or there is too little data to tell)."""
    watched = decoded(
        metrics.lazy()
        .select("timestamp", "service", "metric", "value")
        .filter(pl.col("metric").cast(pl.String).is_in([*RISING, *FALLING]))
    )
    series = (
        watched.group_by("service", "metric", "timestamp")
        .agg(pl.col("value").mean())
        .sort("service", "metric", "timestamp")
        .collect()
    )
    found: list[Onset] = []
    for (service, metric), rows in series.group_by("service", "metric", maintain_order=True):
        times = rows.get_column("timestamp")
        step = times.diff().median()
        until = alert_at + 3 * (step if isinstance(step, timedelta) else timedelta(0))
        rows = rows.filter(pl.col("timestamp") <= until)
        if rows.height > MAX_POINTS:
            rows = rows.gather_every(math.ceil(rows.height / MAX_POINTS))
        if rows.height < MIN_POINTS:
            continue
        values = rows.get_column("value").to_numpy()
        if not np.isfinite(values).all():
            continue
        change = _series_onset(values, metric not in FALLING)
        if change is None:
            continue
        index, before, after, p = change
        at = rows.get_column("timestamp")[index]
        if at <= until:
            found.append(Onset(at, str(service), str(metric), before, after, p))
    return min(found, key=lambda o: (o.at, o.p_value)) if found else None
