"""When each signal left its baseline: one method for every onset the reports quote.

Method: the baseline's median plus a margin (the recovery tolerance: never below the baseline's
own noise nor an absolute floor) is the limit; the onset is the first sample of the first run of
three consecutive samples beyond it (`first_sustained_breach`). Each onset keeps the series it was
read from, thinned for charts, so a report can draw what the onset was measured on.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import polars as pl
from pydantic import BaseModel, Field

from warroom.analysis.recovery import (
    ERROR_RATE,
    LATENCY,
    Series,
    Tolerance,
    baseline_limit,
    baseline_of,
    bucket_size,
    first_sustained_breach,
    metric_series,
    per_time,
    signal_series,
    slice_telemetry,
    span_of,
)
from warroom.sources import conventions as cv
from warroom.sources.canonical import Telemetry
from warroom.sources.incident_telemetry import IncidentTelemetry

# Signals whose onset is worth a line on the timeline (golden signals first, then saturation).
ONSET_SIGNALS = (
    LATENCY,
    ERROR_RATE,
    cv.DB_POOL_UTILIZATION,
    cv.DB_POOL_WAIT_MS,
    cv.DB_CPU_UTILIZATION,
    cv.DB_LONG_RUNNING_QUERIES,
    cv.CPU_UTILIZATION,
    cv.MEMORY_UTILIZATION,
    cv.RESTARTS,
    cv.NETWORK_LATENCY_MS,
    cv.AUTH_FAILURES,
)
USER_FACING = (LATENCY, ERROR_RATE)
DATABASE_SIGNALS = (cv.DB_CPU_UTILIZATION, cv.DB_LONG_RUNNING_QUERIES, cv.DB_LOCK_WAITS, cv.DB_QUERY_TIME_MS)
CHART_POINTS = 160  # about one point per 4 px of a chart: more only make the report heavier
METHOD = "first of 3 consecutive samples beyond the baseline median + margin"


class Point(BaseModel):
    at: datetime
    value: float


class SignalOnset(BaseModel):
    """One signal of one service that left its baseline, and the series it was measured on."""

    service: str
    signal: str
    source: str
    query: str
    at: datetime
    baseline: float
    limit: float
    peak: float
    higher_is_worse: bool = True
    method: str = METHOD
    points: list[Point] = Field(default_factory=list)


def thin(times: list[datetime], values: np.ndarray, limit: int = CHART_POINTS) -> list[Point]:
    """At most `limit` points: the mean of each run of consecutive samples (spikes keep their
    place; a max would exaggerate them, a stride could drop them)."""
    if len(times) <= limit:
        return [Point(at=t, value=float(v)) for t, v in zip(times, values, strict=True)]
    out: list[Point] = []
    for chunk in np.array_split(np.arange(len(times)), limit):
        if chunk.size:
            out.append(Point(at=times[int(chunk[chunk.size // 2])], value=float(np.mean(values[chunk]))))
    return out


def series_points(series: Series | None, limit: int = CHART_POINTS) -> list[Point]:
    if series is None or not series.values:
        return []
    times, values = per_time(series.times, series.array())
    return thin(times, values, limit)


def _onset(before: Series | None, during: Series | None, tol: Tolerance) -> SignalOnset | None:
    if before is None or during is None or len(before.values) < tol.min_samples or not during.values:
        return None
    base = before.array()
    limit, higher_is_worse = baseline_limit(during.signal, base, None, tol)
    times, values = per_time(during.times, during.array())
    at = first_sustained_breach(times, values, limit, higher_is_worse)
    if at is None:
        return None
    peak = float(np.max(values) if higher_is_worse else np.min(values))
    return SignalOnset(
        service=",".join(during.services),
        signal=during.signal,
        source=during.source,
        query=during.query,
        at=at,
        baseline=float(np.median(base)),
        limit=limit,
        peak=peak,
        higher_is_worse=higher_is_worse,
        points=thin(times, values),
    )


def _reporting_database(metrics: pl.DataFrame | None) -> list[str]:
    if metrics is None:
        return []
    return metrics.filter(pl.col("metric").is_in(DATABASE_SIGNALS)).get_column("service").unique().sort().to_list()


def signal_onsets(telemetry: IncidentTelemetry, services: list[str], tol: Tolerance = Tolerance()) -> list[SignalOnset]:
    """Onsets per signal and service inside the incident window, oldest first. The services that
    report database metrics are followed too, even when no one named them."""
    periods = _periods(telemetry)
    found: list[SignalOnset] = []
    for service in dict.fromkeys([*services, *periods.reporting_database]):
        found.extend(periods.onsets(service, tol))
    return sorted(found, key=lambda o: o.at)


class _Periods:
    """The baseline and the window of one read of an incident's telemetry, each service's metric
    rows split out once, and the onsets of each service as first measured: the agents that follow
    the same services (monitoring, documentation, impact) each ask, and a service's onsets depend
    on nothing but the telemetry and the tolerance."""

    def __init__(self, telemetry: IncidentTelemetry) -> None:
        self._read = (telemetry.manifest, telemetry.current, telemetry.baseline)
        window = telemetry.manifest.effective_window()
        self.baseline = baseline_of(telemetry)
        self.during = slice_telemetry(telemetry.current, window.start, window.end)
        spans = [s for s in (span_of(self.baseline), span_of(self.during)) if s is not None]
        self.bucket = bucket_size(*spans) if spans else timedelta(minutes=1)
        self.reporting_database = _reporting_database(self.during.metrics)
        # every (signal, service) pair reads only its service's rows instead of filtering the
        # whole table again (same rows, same order)
        self._before_by = _metrics_by_service(self.baseline.metrics)
        self._during_by = _metrics_by_service(self.during.metrics)
        self._onsets: dict[tuple[str, Tolerance], list[SignalOnset]] = {}
        self._lock = threading.Lock()

    def reads(self, telemetry: IncidentTelemetry) -> bool:
        """Still the telemetry these periods were cut from (the same manifest and tables)."""
        manifest, current, baseline = self._read
        return telemetry.manifest is manifest and telemetry.current is current and telemetry.baseline is baseline

    def onsets(self, service: str, tol: Tolerance) -> list[SignalOnset]:
        with self._lock:
            known = self._onsets.get((service, tol))
        if known is not None:
            return known
        baseline = replace(self.baseline, metrics=self._before_by.get(service))
        during = replace(self.during, metrics=self._during_by.get(service))
        found = []
        for signal in ONSET_SIGNALS:
            before, now = _pair(baseline, during, signal, service, self.bucket)
            onset = _onset(before, now, tol)
            if onset is not None:
                found.append(onset)
        with self._lock:
            self._onsets[(service, tol)] = found
        return found


# The latest read's periods (held while that telemetry lives; a new read replaces them).
_LATEST: list[tuple[weakref.ref[IncidentTelemetry], _Periods]] = []
_LATEST_LOCK = threading.RLock()  # re-entrant: a freed telemetry's callback may run inside it


def _periods(telemetry: IncidentTelemetry) -> _Periods:
    with _LATEST_LOCK:
        if _LATEST and _LATEST[0][0]() is telemetry and _LATEST[0][1].reads(telemetry):
            return _LATEST[0][1]
        periods = _Periods(telemetry)
        _LATEST[:] = [(weakref.ref(telemetry, _forget), periods)]
        return periods


def _forget(gone: weakref.ref[IncidentTelemetry]) -> None:
    # the telemetry was freed: do not keep its tables alive through its periods
    with _LATEST_LOCK:
        if _LATEST and _LATEST[0][0] is gone:
            _LATEST.clear()


def _metrics_by_service(metrics: pl.DataFrame | None) -> dict[str, pl.DataFrame]:
    """A metrics table's rows per service (a service with none is absent, as a period without metrics)."""
    if metrics is None:
        return {}
    return {str(key[0]): rows for key, rows in metrics.partition_by("service", as_dict=True).items()}


def _pair(
    baseline: Telemetry, during: Telemetry, signal: str, service: str, bucket: timedelta
) -> tuple[Series | None, Series | None]:
    if signal in USER_FACING:  # golden signals: metrics, else traces, else logs
        return signal_series(baseline, signal, [service], bucket), signal_series(during, signal, [service], bucket)
    # a saturation metric of this very service only
    return metric_series(baseline.metrics, (signal,), [service]), metric_series(during.metrics, (signal,), [service])


def impact_start(onsets: list[SignalOnset], entry: str | None, fallback: datetime) -> tuple[datetime, str]:
    """When users started to notice: the first user-facing onset (latency or errors) at the entry
    service, else at any service, else `fallback` (the alert)."""
    facing = [o for o in onsets if o.signal in USER_FACING]
    at_entry = [o for o in facing if entry and o.service == entry]
    for group, where in ((at_entry, f"at {entry}"), (facing, "at any followed service")):
        if group:
            first = min(group, key=lambda o: o.at)
            return first.at, f"from the first user-facing onset {where}: {first.signal} of {first.service} ({METHOD})"
    return fallback, "from the alert (no user-facing signal left its baseline)"
