"""Metric evidence: every series' robust z against its reference, the trend of memory after its onset,
and expired certificates.

One test family: every (service, metric) series scored. A series' strength is its peak robust z in
the window (`analysis.metrics.score_series`: distance from the reference median in units of a scale
that idle or flat series cannot shrink to nothing). Its effect is the size of the move on the
metric's own scale: for a fraction of a limit (`*_utilization`) the share of the remaining headroom
it consumed (a move from 2 % to 3 % CPU starves nobody), for anything else the change relative to
the reference level (a doubling counts fully).

Memory: a leak keeps growing after its onset, a higher working set steps up and stays there. The
trend is the Mann-Kendall statistic of the series from its onset to the window's end (standard
normal when there is no trend), a test of its own family. No absolute level (such as "90 % of the
limit") is used anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np
import polars as pl

from warroom.analysis import metrics as metrics_mod
from warroom.analysis.diagnosis.detectors.result import DetectorResult
from warroom.analysis.diagnosis.evidence import Observation, noise_level
from warroom.analysis.diagnosis.periods import Periods
from warroom.sources import conventions as cv

EMIT_Z = 2.0  # series moving less than this are not even candidates
CPU_PER_REQUEST = "cpu_per_request"
MIN_TREND_POINTS = 6
# Series that measure one thing several ways count once, as their strongest: the latency
# percentiles of a service, and its error rate with its success rate.
FAMILIES = {
    f"{metric}.up": "latency.up" for metric in ("latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms")
} | {f"{cv.ERROR_RATE}.up": "errors.up", f"{cv.SUCCESS_RATE}.down": "errors.up"}


def _unit(metric: str) -> str | None:
    if metric.endswith("_ms"):
        return "ms"
    if metric.endswith("_utilization") or metric in (cv.ERROR_RATE, cv.SUCCESS_RATE):
        return "fraction"
    if metric.endswith("_seconds"):
        return "s"
    return None


def _effect(metric: str, base: float, delta: float, scale: float) -> float:
    if metric.endswith("_utilization"):
        room = (1.0 - base) if delta > 0 else base
        return float(min(abs(delta) / max(room, 0.05), 1.0))
    return float(min(abs(delta) / (abs(base) + scale), 1.0))


def _f(value: object) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else 0.0


def mann_kendall_z(values: np.ndarray) -> float:
    """The Mann-Kendall trend statistic of a series as z (ties ignored in the variance)."""
    n = values.size
    if n < MIN_TREND_POINTS:
        return 0.0
    diff = np.sign(values[None, :] - values[:, None])
    s = float(np.triu(diff, 1).sum())
    var = n * (n - 1) * (2 * n + 5) / 18.0
    if s == 0:
        return 0.0
    return (s - math.copysign(1.0, s)) / math.sqrt(var)


def detect(periods: Periods, known: Collection[str]) -> DetectorResult:
    result = DetectorResult("metrics")
    metrics = periods.current.metrics
    if metrics is None or metrics.height == 0:
        result.limitations.append("metrics: none, so CPU, memory, pool and database saturation could not be checked")
        return result
    scored = metrics_mod.score_series(metrics, periods.baseline.metrics, periods.start, periods.end)
    if scored.height == 0:
        result.limitations.append("metrics: no points in the window or no reference points to compare")
        return result
    derived = _per_request(metrics, periods)
    if derived is not None:
        scored = pl.concat([scored, derived], how="vertical_relaxed")
    # Each metric is its own test family: some series follow their reference closely (memory), others
    # differ systematically between the two periods (a test load's request mix), and their noise
    # levels differ accordingly.
    noise = {
        str(metric): noise_level(frame.get_column("z").fill_nan(0.0).fill_null(0.0).to_list())
        for (metric,), frame in scored.group_by("metric")
    }
    result.tests = scored.height
    for row in scored.iter_rows(named=True):
        value = _f(row["z"])
        if abs(value) < EMIT_Z:
            continue
        metric, service = str(row["metric"]), str(row["service"])
        signal = f"{metric}.{'up' if value > 0 else 'down'}"
        expired = metric == cv.TLS_CERT_EXPIRY_SECONDS and _f(row["peak"]) < 0
        if expired:
            signal = f"{metric}.expired"
        signal = FAMILIES.get(signal, signal)
        if signal not in known:
            continue
        base, delta = _f(row["base_median"]), _f(row["delta"])
        result.add(
            Observation(
                detector="metrics.robust_z",
                modality="metrics",
                signal=signal,
                service=service,
                strength=min(abs(value), 1e3),
                noise=noise[metric],
                effect=1.0 if expired else _effect(metric, base, delta, _f(row["base_scale"])),
                onset=row["onset"],
                baseline=base,
                peak=_f(row["peak"]),
                unit=_unit(metric),
                query=f'{metric}{{service="{service}"}}',
                start=periods.start,
                end=periods.end,
                data={"metric": metric, "scale": round(_f(row["base_scale"]), 6), "points": int(row["points"] or 0)},
            )
        )
    result.observations = _strongest_per_family(result.observations)
    _per_request_effect(result.observations)
    if "memory_utilization.trend" in known:
        _memory_trend(periods, scored, result)
    return result


def _per_request(metrics: pl.DataFrame, periods: Periods) -> pl.DataFrame | None:
    """CPU per request (`cpu_per_request`), scored like any series: a surge of traffic raises a
    service's CPU with its requests, a hot loop or a contending process raises the CPU each request
    costs."""

    def ratio(frame: pl.DataFrame | None) -> pl.DataFrame | None:
        if frame is None or frame.height == 0:
            return None
        wide = (
            frame.lazy()
            .filter(pl.col("metric").is_in([cv.CPU_UTILIZATION, cv.REQUEST_RATE]))
            .with_columns(pl.col("service").cast(pl.String), pl.col("metric").cast(pl.String))
            .group_by("service", "timestamp")
            .agg(
                pl.col("value").filter(pl.col("metric") == cv.CPU_UTILIZATION).mean().alias("cpu"),
                pl.col("value").filter(pl.col("metric") == cv.REQUEST_RATE).sum().alias("rate"),
            )
            .drop_nulls()
            .filter(pl.col("rate") > 0)
            .select(
                "timestamp",
                "service",
                pl.lit(CPU_PER_REQUEST).alias("metric"),
                (pl.col("cpu") / pl.col("rate")).alias("value"),
            )
            .collect()
        )
        return wide if wide.height else None

    current = ratio(metrics)
    if current is None:
        return None
    return metrics_mod.score_series(current, ratio(periods.baseline.metrics), periods.start, periods.end)


def _per_request_effect(observations: list[Observation]) -> None:
    """The CPU a request costs matters only as far as the CPU itself moved: its effect is that of the
    service's CPU observation (none when the CPU did not move)."""
    cpu = {o.service: o.effect for o in observations if o.signal == f"{cv.CPU_UTILIZATION}.up"}
    for o in observations:
        if o.signal == f"{CPU_PER_REQUEST}.up":
            o.effect = min(o.effect, cpu.get(o.service, 0.0))


def _strongest_per_family(observations: list[Observation]) -> list[Observation]:
    best: dict[tuple[str, str], Observation] = {}
    for o in observations:
        key = (o.service, o.signal)
        if key not in best or o.strength > best[key].strength:
            best[key] = o
    return list(best.values())


def _memory_trend(periods: Periods, scored: pl.DataFrame, result: DetectorResult) -> None:
    """Mann-Kendall trend of memory from each series' own onset (the window's start if it has none)."""
    metrics = periods.current.metrics
    assert metrics is not None
    onsets = {
        str(r["service"]): r["onset"]
        for r in scored.filter(pl.col("metric") == cv.MEMORY_UTILIZATION).iter_rows(named=True)
    }
    if not onsets:
        return
    series = (
        metrics.lazy()
        .filter(
            (pl.col("metric") == cv.MEMORY_UTILIZATION) & pl.col("timestamp").is_between(periods.start, periods.end)
        )
        .with_columns(pl.col("service").cast(pl.String))
        .group_by("service", "timestamp")
        .agg(pl.col("value").mean())
        .sort("timestamp")
        .collect()
    )
    trends: list[tuple[str, float, int]] = []
    for service, frame in series.group_by("service"):
        name = str(service[0])
        onset = onsets.get(name) or periods.start
        values = frame.filter(pl.col("timestamp") >= onset).get_column("value").to_numpy()
        trends.append((name, mann_kendall_z(values), int(values.size)))
    noise = noise_level([t[1] for t in trends])
    for name, trend, points in trends:
        if trend < EMIT_Z:
            continue
        result.add(
            Observation(
                detector="metrics.mann_kendall",
                modality="metrics",
                signal="memory_utilization.trend",
                service=name,
                strength=trend,
                noise=noise,
                onset=onsets.get(name),
                unit="fraction",
                query=f'{cv.MEMORY_UTILIZATION}{{service="{name}"}} from its onset',
                start=onsets.get(name) or periods.start,
                end=periods.end,
                data={"points": points},
            )
        )
