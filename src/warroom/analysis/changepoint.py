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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

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
SIGNIFICANCE = 1e-3  # Pettitt's p-value below which a change is taken as real, over all the series tested
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
    ranks = pl.Series(values).rank("average").to_numpy()
    u = 2.0 * np.cumsum(ranks)[:-1] - np.arange(1, n) * (n + 1)
    index = int(np.argmax(np.abs(u)))
    k = abs(float(u[index]))
    p = min(1.0, 2.0 * math.exp(-6.0 * k * k / (n**3 + n**2)))
    return index, float(u[index]), p


@dataclass(frozen=True)
class _Change:
    """One change for the worse in a (signed: higher is worse) series."""

    onset: int  # first point from which the series stays past the line between the levels
    split: int  # Pettitt's last point before the change
    low: float
    high: float
    p: float


def trend_p(values: np.ndarray) -> float:
    """Mann–Kendall's two-sided p-value of a monotonic trend (Kendall's tau against time, ties
    accounted for); 1.0 for fewer than three points or a constant segment."""
    if len(values) < 3 or float(np.ptp(values)) == 0.0:
        return 1.0
    # scipy.stats costs over a second to import, and only a folder without a manifest needs an onset
    # from here: paid on first use, not by every command that imports the bundle reader
    from scipy.stats import kendalltau

    p = float(kendalltau(np.arange(len(values)), values).pvalue)
    return p if math.isfinite(p) else 1.0


def _change(signed: np.ndarray, alpha: float, lo: int = 0, hi: int | None = None) -> _Change | None:
    """The earliest change for the worse inside signed[lo:hi]: Pettitt's most likely split when it is
    significant, goes up, is large against the level before it and holds to the end of the series;
    else, when the split is significant but no such change of its own (one level among several, or
    a change for the better), the earliest one found on either side of it (binary segmentation)."""
    hi = len(signed) if hi is None else hi
    part = signed[lo:hi]
    if len(part) < MIN_POINTS:
        return None
    last, u, p = pettitt(part)
    if p >= alpha or last + 1 < MIN_SIDE or len(part) - last - 1 < MIN_SIDE:
        return None
    found = _judged(signed, lo, hi, lo + last, p) if u < 0 else None
    return found or _change(signed, alpha, lo, lo + last + 1) or _change(signed, alpha, lo + last + 1, hi)


def _floor(low: float, spread: float, part: np.ndarray) -> float:
    """How far a new level must sit from the one before it (median `low`, robust `spread`) to be a
    change (infinite when the series is all zeros): past its spread, a share of it and a share of
    the part's scale."""
    floor = max(SPREAD * spread, RELATIVE * abs(low), OF_SCALE * float(np.max(np.abs(part))))
    return floor if floor > 0 else math.inf


def _judged(signed: np.ndarray, lo: int, hi: int, split: int, p: float) -> _Change | None:
    """The change at `split` (levels from signed[lo:hi]) when it is large and sustained."""
    before, after = signed[lo : split + 1], signed[split + 1 : hi]
    low, high = float(np.median(before)), float(np.median(after))
    spread = 1.4826 * float(np.median(np.abs(before - low)))
    if high - low <= _floor(low, spread, signed[lo:hi]):
        return None
    line = low + max(SPREAD * spread, 0.25 * (high - low))
    past = signed[lo:] > line
    # share of points past the line from each index to the end of the series
    remaining = np.cumsum(past[::-1])[::-1] / np.arange(len(past), 0, -1)
    candidates = np.flatnonzero(past & (remaining >= SUSTAINED))
    if candidates.size == 0:
        return None
    return _Change(int(candidates[0]) + lo, split, low, high, p)


def _held(segment: np.ndarray) -> bool:
    """A level the system held: long enough to judge, with neither a change (Pettitt) nor a
    monotonic trend (Mann–Kendall) inside it at the significance that finds a change."""
    return len(segment) >= MIN_POINTS and pettitt(segment)[2] >= SIGNIFICANCE and trend_p(segment) >= SIGNIFICANCE


def _series_onset(values: np.ndarray, worse_up: bool, alpha: float) -> tuple[int, float, float, float] | None:
    """(index of the onset, level before, level after, p) of one series' change for the worse.

    Binary segmentation forward: after a change, the rest of the series is searched again; when it
    changes for the worse once more and the part between the two changes is a level the system held,
    longer than the level before the first (a warm-up or a restart settling, a traffic ramp reaching
    its plateau, before the incident), the later change is the incident's. A ramp (a leak) is no held
    level, so it stays one onset at its start."""
    signed = values if worse_up else -values
    found = _change(signed, alpha)
    level_from = 0  # where the level before `found` began
    while found is not None:
        later = _change(signed, alpha, found.split + 1)
        if later is None:
            break
        between = signed[found.onset : later.split + 1]
        # The system's normal is the level it held longest: an incident that began mildly after a
        # long steady period and worsened later keeps its first change.
        if not _held(between) or len(between) <= found.onset - level_from:
            break
        level_from, found = found.onset, later
    if found is None:
        return None
    sign = 1.0 if worse_up else -1.0
    return found.onset, sign * found.low, sign * found.high, found.p


def _golden_series(
    metrics: pl.DataFrame, until: datetime, steps_after: int
) -> Iterator[tuple[str, str, pl.Series, np.ndarray]]:
    """(service, metric, times, values) of each golden-signal series (instances averaged) up to
    `until` plus `steps_after` of its own scrape steps, thinned to MAX_POINTS; series too short or
    holding NaN/±Inf are left out."""
    frame = metrics.lazy().select("timestamp", "service", "metric", "value")
    frame = frame.filter(pl.col("metric").cast(pl.String).is_in([*RISING, *FALLING]))
    series = (
        decoded(frame)
        .group_by("service", "metric", "timestamp")
        .agg(pl.col("value").mean())
        .sort("service", "metric", "timestamp")
        .collect()
    )
    for (service, metric), rows in series.group_by("service", "metric", maintain_order=True):
        step = rows.get_column("timestamp").diff().median()
        last = until + steps_after * (step if isinstance(step, timedelta) else timedelta(0))
        rows = rows.filter(pl.col("timestamp") <= last)
        if rows.height > MAX_POINTS:
            rows = rows.gather_every(math.ceil(rows.height / MAX_POINTS))
        values = rows.get_column("value").to_numpy()
        if rows.height >= MIN_POINTS and np.isfinite(values).all():
            yield str(service), str(metric), rows.get_column("timestamp"), values


def detect_onset(metrics: pl.DataFrame, alert_at: datetime) -> Onset | None:
    """The incident's onset from its canonical metrics, or None when no golden signal changed for
    the worse (or there is too little data to tell)."""
    # a few scrapes past the alert: the step that alerted is on both sides of the test
    series = list(_golden_series(metrics, alert_at, 3))
    # Bonferroni over the series: with dozens of them, one passes a per-series 10⁻³ by chance
    alpha = SIGNIFICANCE / max(len(series), 1)
    found: list[Onset] = []
    for service, metric, times, values in series:
        change = _series_onset(values, metric not in FALLING, alpha)
        if change is None:
            continue
        index, before, after, p = change
        found.append(Onset(times[index], service, metric, before, after, p))
    return min(found, key=lambda o: (o.at, o.p_value)) if found else None
