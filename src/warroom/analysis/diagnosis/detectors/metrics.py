"""Metric evidence: every series' robust z against its reference, the trend of memory after its onset,
and expired certificates.

One test family per metric: every service's series of it. A series' strength is its peak robust z in
the window (`analysis.metrics.score_series`: distance from the reference median in units of a scale
that idle or flat series cannot shrink to nothing). Its effect is the size of the move on the
metric's own scale: for a fraction of a limit (`*_utilization`) the share of the remaining headroom
it consumed (a move from 2 % to 3 % CPU starves nobody), for anything else the change relative to
the reference level (a doubling counts fully).

Memory: a leak keeps growing after its onset, a higher working set steps up and stays there. The
trend is the Mann-Kendall statistic of the series from its onset to the window's end (standard
normal when there is no trend), a test of its own family. No absolute level (such as "90 % of the
limit") is used anywhere. A service's memory is its share of the limit where one is known, else its
working set (`memory_usage_mib`) against its own reference: a container without a limit leaks too.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np
import polars as pl

from warroom.analysis import metrics as metrics_mod
from warroom.analysis import surprise
from warroom.analysis.diagnosis.detectors.result import DetectorResult
from warroom.analysis.diagnosis.evidence import Observation, critical_z, noise_level
from warroom.analysis.diagnosis.periods import Periods
from warroom.sources import conventions as cv

EMIT_Z = 2.0  # series moving less than this are not even candidates
CPU_PER_REQUEST = "cpu_per_request"
COUNTERS = (cv.RESTARTS,)  # events per interval: tested by their totals, not by a peak
TABLE_KEY = "@"  # metric@table: a table's row count is its own series
MIN_TREND_POINTS = 6
RESET_STEPS = 10.0  # a drop this many usual steps deep (or RESET_SHARE of the level) is a restart
RESET_SHARE = 0.05
# Series that measure one thing several ways count once, as their strongest: the latency
# percentiles of a service, and its error rate with its success rate.
FAMILIES = {
    f"{metric}.up": "latency.up" for metric in ("latency_p50_ms", "latency_p90_ms", "latency_p95_ms", "latency_p99_ms")
} | {
    f"{cv.ERROR_RATE}.up": "errors.up",
    f"{cv.SUCCESS_RATE}.down": "errors.up",
    f"{cv.MEMORY_USAGE_MIB}.up": f"{cv.MEMORY_UTILIZATION}.up",
}
MEMORY_SERIES = (cv.MEMORY_UTILIZATION, cv.MEMORY_USAGE_MIB)  # a service's memory: the first it reports


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
    for derived in (_per_request(metrics, periods), _per_table(metrics, periods)):
        if derived is not None and derived.height:
            scored = pl.concat([scored, derived], how="vertical_relaxed")
    # Each metric is its own test family: some series follow their reference closely (memory), others
    # differ systematically between the two periods (a test load's request mix), and their noise
    # levels differ accordingly.
    # A series' strength is its peak over the window's points: a maximum of that many draws, so the
    # family's comparisons are its series times their points.
    noise: dict[str, float] = {}
    for (metric,), frame in scored.group_by("metric"):
        noise[str(metric)] = noise_level(
            frame.get_column("z").fill_nan(0.0).fill_null(0.0).to_list(),
            tests=int(frame.get_column("points").fill_null(1).sum()),
        )
        # measured on these services, moved or not (what a missing observation means)
        for direction in ("up", "down"):
            signal = f"{str(metric).partition(TABLE_KEY)[0]}.{direction}"
            result.measure(FAMILIES.get(signal, signal), frame.get_column("service").cast(pl.String).to_list())
    result.tests = scored.height
    _counters(periods, result)
    scored = _memory_measure(scored)
    for row in scored.filter(~pl.col("metric").is_in(COUNTERS)).iter_rows(named=True):
        value = _f(row["z"])
        if abs(value) < EMIT_Z:
            continue
        metric, service = str(row["metric"]), str(row["service"])
        metric, _, table = metric.partition(TABLE_KEY)
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
                query=f'{metric}{{service="{service}"' + (f',instance="{table}"' if table else "") + "}",
                start=periods.start,
                end=periods.end,
                data={
                    "metric": metric,
                    "table": table or None,
                    "scale": round(_f(row["base_scale"]), 6),
                    "points": int(row["points"] or 0),
                },
            )
        )
    result.observations = _strongest_per_family(result.observations)
    _per_request_effect(result.observations)
    if "memory_utilization.trend" in known:
        _memory_trend(periods, scored, result)
    return result


def _memory_measure(scored: pl.DataFrame) -> pl.DataFrame:
    """One memory series per service: its share of the limit where it reports one (how close it runs
    to being killed), else its working set."""
    limited = scored.filter(pl.col("metric") == cv.MEMORY_UTILIZATION).get_column("service").unique()
    return scored.filter(~((pl.col("metric") == cv.MEMORY_USAGE_MIB) & pl.col("service").is_in(limited.implode())))


def _counters(periods: Periods, result: DetectorResult) -> None:
    """Event counts per interval (container restarts): the window's total against the reference's
    rate, as a Poisson tail (one restart per replica is nothing for a peak z, and everything
    against a reference that never restarted)."""
    metrics = periods.current.metrics
    assert metrics is not None

    def totals(frame: pl.LazyFrame) -> pl.DataFrame:
        return (
            frame.filter(pl.col("metric").is_in(COUNTERS))
            .with_columns(pl.col("service").cast(pl.String), pl.col("metric").cast(pl.String))
            .group_by("service", "metric")
            .agg(pl.col("value").sum().alias("total"), pl.col("timestamp").n_unique().alias("steps"))
            .collect()
        )

    window = totals(metrics.lazy().filter(pl.col("timestamp").is_between(periods.start, periods.end)))
    if window.height == 0:
        return
    parts = [metrics.lazy().filter(pl.col("timestamp") < periods.reference_end)]
    if periods.baseline.metrics is not None:
        parts.append(periods.baseline.metrics.lazy())
    reference = totals(pl.concat(parts, how="diagonal_relaxed")).rename({"total": "ref_total", "steps": "ref_steps"})
    joined = window.join(reference, on=["service", "metric"], how="inner")
    if joined.height == 0:
        return
    expected = (joined.get_column("ref_total").to_numpy() + 0.5) * (
        joined.get_column("steps").to_numpy() / np.maximum(joined.get_column("ref_steps").to_numpy(), 1)
    )
    strengths = surprise.burst_z(joined.get_column("total").to_numpy(), expected)
    noise = critical_z(joined.height)
    for row, strength, mean in zip(joined.iter_rows(named=True), strengths, expected, strict=True):
        if strength < EMIT_Z:
            continue
        metric, service = str(row["metric"]), str(row["service"])
        result.add(
            Observation(
                detector="metrics.counts",
                modality="metrics",
                signal=f"{metric}.up",
                service=service,
                strength=float(strength),
                noise=noise,
                baseline=round(float(mean), 3),
                value=float(row["total"]),
                peak=float(row["total"]),
                unit="events in the window (expected from the reference rate)",
                query=f'sum({metric}{{service="{service}"}})',
                start=periods.start,
                end=periods.end,
            )
        )


def _per_table(metrics: pl.DataFrame, periods: Periods) -> pl.DataFrame | None:
    """Row counts per table (`db_table_rows`, the instance names the table): one table losing its rows
    must not be averaged away among the others."""

    def tables(frame: pl.DataFrame | None) -> pl.DataFrame | None:
        if frame is None or "instance" not in frame.columns:
            return None
        rows = frame.filter(pl.col("metric") == cv.DB_TABLE_ROWS)
        if rows.height == 0:
            return None
        return rows.with_columns(
            (pl.lit(cv.DB_TABLE_ROWS + TABLE_KEY) + pl.col("instance").cast(pl.String)).alias("metric")
        ).select("timestamp", "service", "metric", "value")

    current = tables(metrics)
    if current is None:
        return None
    return metrics_mod.score_series(current, tables(periods.baseline.metrics), periods.start, periods.end)


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
    """Mann-Kendall trend of memory from each service's onset (the window's start if it has none),
    per instance and per stretch between restarts: a leaking replica climbs until it is OOM-killed
    and starts again low, and replicas restart at different times, so their average would show a
    sawtooth where each replica shows a climb. The stretches' statistics add up (a stratified test)."""
    metrics = periods.current.metrics
    assert metrics is not None
    # `scored` holds one memory series per service (_memory_measure): the one its trend is read on
    rows = {str(r["service"]): r for r in scored.filter(pl.col("metric").is_in(MEMORY_SERIES)).iter_rows(named=True)}
    if not rows:
        return
    measure = {name: (str(r["metric"]), r["onset"]) for name, r in rows.items()}
    onsets = {name: onset for name, (_, onset) in measure.items()}
    keys = ["service", "instance"] if "instance" in metrics.columns else ["service"]
    series = (
        metrics.lazy()
        .filter(pl.col("metric").is_in(MEMORY_SERIES) & pl.col("timestamp").is_between(periods.start, periods.end))
        .with_columns(pl.col(keys).cast(pl.String))
        .group_by(*keys, "metric", "timestamp")
        .agg(pl.col("value").mean())
        .sort("timestamp")
        .collect()
    )
    per_service: dict[str, list[tuple[float, float, float]]] = {}
    for key, frame in series.group_by([*keys, "metric"]):
        name, metric = str(key[0]), str(key[-1])
        if name not in measure or measure[name][0] != metric:
            continue
        onset = onsets.get(name) or periods.start
        # From where the series left its reference (the onset is where it reached half its peak: a
        # leak climbing since is half over by then); a step leaves it at once and stays flat after.
        base, scale = _f(rows[name]["base_median"]), max(_f(rows[name]["base_scale"]), 1e-12)
        departed = frame.filter(((pl.col("value") - base) / scale) >= EMIT_Z).get_column("timestamp")
        start = min(onset, departed[0]) if departed.len() else onset
        values = frame.filter(pl.col("timestamp") >= start).get_column("value").to_numpy()
        per_service.setdefault(name, []).extend(_stretch_trends(values, fraction=metric == cv.MEMORY_UTILIZATION))
    trends: list[tuple[str, float, float, int]] = []
    for name, parts in per_service.items():
        s_total, var_total = sum(p[0] for p in parts), sum(p[1] for p in parts)
        z = 0.0 if s_total == 0 or var_total <= 0 else (s_total - math.copysign(1.0, s_total)) / math.sqrt(var_total)
        # A smooth series trends "significantly" on the smallest drift (its points are not
        # independent): what the trend is worth is the share of the remaining headroom it climbed.
        effect = max((p[2] for p in parts), default=0.0)
        trends.append((name, z, effect, len(parts)))
    noise = noise_level([t[1] for t in trends])
    for name, trend, effect, stretches in trends:
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
                effect=effect,
                onset=onsets.get(name),
                unit="fraction",
                query=f'{measure[name][0]}{{service="{name}"}} per instance from its onset',
                start=onsets.get(name) or periods.start,
                end=periods.end,
                data={"stretches": stretches},
            )
        )


def _stretch_trends(values: np.ndarray, *, fraction: bool = True) -> list[tuple[float, float, float]]:
    """Per stretch between resets (a drop far larger than the series' usual step): the Mann-Kendall S,
    its variance, and how far the stretch climbed along its Theil-Sen slope: for a share of the limit
    (`fraction`) the share of the headroom, for a working set its growth over its starting level (a
    doubling counts fully)."""
    if values.size < MIN_TREND_POINTS:
        return []
    steps = np.diff(values)
    usual = float(np.median(np.abs(steps))) if steps.size else 0.0
    level = float(np.median(np.abs(values)))
    resets = np.flatnonzero(steps < -max(RESET_STEPS * usual, RESET_SHARE * level, 1e-12)) + 1
    out = []
    for part in np.split(values, resets):
        n = part.size
        if n < MIN_TREND_POINTS:
            continue
        pairwise = part[None, :] - part[:, None]
        upper = np.triu_indices(n, 1)
        s = float(np.sign(pairwise[upper]).sum())
        var = n * (n - 1) * (2 * n + 5) / 18.0
        slope = float(np.median(pairwise[upper] / (upper[1] - upper[0])))
        room = 1.0 - float(part[0]) if fraction else abs(float(part[0]))
        rise = max(slope * (n - 1), 0.0) / max(room, 0.05 if fraction else 1e-9)
        out.append((s, var, min(rise, 1.0)))
    return out
