"""Is a signal back to its baseline? Statistical recovery checks on an incident's telemetry.

Pure: polars frames in (the canonical tables of `sources/canonical.py`), typed results out.

For each signal (latency, error rate, success rate, and optionally saturation metrics such as
`db_pool_utilization`) we build one sample per scrape (metrics) or per time bucket (traces, logs)
for a baseline window and for a window observed after a mitigation, and ask a one-sided,
non-inferiority question with the Mann–Whitney U test:

* *recovered*: the post-action values are significantly **below** baseline + margin
  (H1 of ``mannwhitneyu(current - margin, baseline, alternative="less")``);
* *not recovered*: they are significantly **above** baseline + margin (the opposite alternative);
* neither at the chosen α: the data cannot tell — reported as *insufficient data*, as are
  windows with too few samples.

The margin ("how close counts as back") is relative to the SLO where the manifest has one: a
fraction of the headroom between the baseline and the SLO; never below the baseline's own noise
(robust standard deviation), an absolute floor, nor the measurement's resolution (the width of the
histogram bucket a quantile derived from buckets falls in: `resolution` of the metrics), so that a
shift smaller than normal jitter, or than what the measurement can tell, is not called a
regression. Samples are time series, hence autocorrelated: p-values are somewhat optimistic, which
the margin and the settle period (the first part of the post-action window, when the action is
still taking effect, is left out of the test) compensate for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from pydantic import BaseModel, Field
from scipy.special import ndtr

from warroom.analysis.attrs import attr_float
from warroom.sources import conventions as cv
from warroom.sources.canonical import Telemetry
from warroom.sources.manifest import Slo

if TYPE_CHECKING:
    from warroom.sources.incident_telemetry import IncidentTelemetry

LATENCY = "latency_p99_ms"
ERROR_RATE = cv.ERROR_RATE
SUCCESS_RATE = cv.SUCCESS_RATE

ERROR_LEVELS = ("ERROR", "FATAL", "CRITICAL", "PANIC", "ALERT", "EMERG", "SEVERE")
ERROR_STATUSES = ("ERROR", "STATUS_CODE_ERROR", "2")  # OTel status: ERROR / code 2
# Latency written in a log message, e.g. "duration=812ms", "took 1.2s", "latency_ms=40".
LATENCY_IN_MESSAGE = r"(?i)(?:duration|latency|elapsed|took|response_time)(?:_ms)?[\s=:]+(\d+(?:\.\d+)?)\s*(ms|s)?\b"
# Metrics whose rise is bad (saturation); every other extra metric is treated the same way
# unless it is a success/health measure listed here.
# Saturation metrics that carry a fault's signature (restarts are left out: a restart causes them).
CAUSE_METRICS = (
    cv.DB_POOL_UTILIZATION,
    cv.DB_POOL_WAIT_MS,
    cv.DB_CPU_UTILIZATION,
    cv.DB_LONG_RUNNING_QUERIES,
    cv.DB_LOCK_WAITS,
    cv.CPU_UTILIZATION,
    cv.MEMORY_UTILIZATION,
    cv.NETWORK_LATENCY_MS,
    cv.AUTH_FAILURES,
)
HIGHER_IS_BETTER = frozenset({cv.SUCCESS_RATE, cv.LB_HEALTHY_TARGETS, cv.REQUEST_RATE})


class Verdict(StrEnum):
    RECOVERED = "recovered"
    NOT_RECOVERED = "not_recovered"
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True)
class Tolerance:
    """How close to baseline counts as recovered, and how sure the test must be."""

    slo_headroom_fraction: float = 0.25  # of (SLO − baseline median), where an SLO applies
    relative: float = 0.2  # of the baseline median, where no SLO applies
    noise_factor: float = 1.0  # × the baseline's robust standard deviation (1.4826 × MAD)
    latency_floor_ms: float = 5.0
    rate_floor: float = 0.002  # 0.2 percentage points for error/success rates
    utilization_floor: float = 0.05
    alpha: float = 0.05
    min_samples: int = 8
    settle_fraction: float = 0.2  # of the post-action window, left out of the test
    max_samples: int = 4000  # per window; larger windows are thinned evenly (U test is O(n log n))


class Series(BaseModel):
    """One signal as samples over time, with where it came from."""

    signal: str
    source: str  # metrics | traces | logs
    query: str
    services: list[str] = Field(default_factory=list)
    times: list[datetime] = Field(default_factory=list)
    values: list[float] = Field(default_factory=list)
    # how finely the values are known (median of the samples' own, in the signal's unit): a
    # histogram quantile's bucket width (sources/mapping/resolution.py); None when not said
    resolution: float | None = None

    def array(self) -> np.ndarray:
        return np.asarray(self.values, dtype=float)


class SignalCheck(BaseModel):
    """The recovery test of one signal."""

    signal: str
    source: str
    query: str
    services: list[str] = Field(default_factory=list)
    higher_is_worse: bool = True
    baseline_value: float | None = None  # median of the baseline samples
    current_value: float | None = None  # median of the tested post-action samples
    baseline_samples: int = 0
    current_samples: int = 0
    margin: float | None = None
    resolution: float | None = None  # the baseline's measurement resolution, when it set the margin
    limit: float | None = None  # baseline value ± margin, in the worse direction
    slo: float | None = None
    within_slo: bool | None = None
    statistic: float | None = None  # Mann–Whitney U of (current − margin) vs baseline
    p_value: float | None = None  # of the alternative that decided (or the smaller one)
    effect: float | None = None  # Hodges–Lehmann shift current − baseline (signal units)
    verdict: Verdict
    reason: str
    baseline_start: datetime | None = None
    baseline_end: datetime | None = None
    current_start: datetime | None = None
    current_end: datetime | None = None
    recovered_at: datetime | None = None  # first time from which the signal stays within the limit
    advisory: bool = False  # reported, but not part of the overall verdict


class RecoveryResult(BaseModel):
    """All checks for one post-action window, and the overall verdict."""

    verdict: Verdict
    action: str | None = None
    checks: list[SignalCheck] = Field(default_factory=list)
    unavailable: list[str] = Field(default_factory=list)  # signals no modality could provide
    reason: str = ""
    recovered_at: datetime | None = None

    @property
    def recovered(self) -> bool:
        return self.verdict == Verdict.RECOVERED


# --------------------------------------------------------------------------------------------
# Signal extraction


def _to_datetimes(values: pl.Series) -> list[datetime]:
    return [v.astimezone(UTC) if v.tzinfo else v.replace(tzinfo=UTC) for v in values.to_list()]


def _series(signal: str, source: str, query: str, services: Sequence[str], frame: pl.DataFrame) -> Series:
    frame = frame.drop_nulls("value").filter(pl.col("value").is_finite()).sort("t")
    return Series(
        signal=signal,
        source=source,
        query=query,
        services=list(services),
        times=_to_datetimes(frame.get_column("t")),
        values=frame.get_column("value").cast(pl.Float64).to_list(),
    )


def _service_filter(frame: pl.DataFrame, services: Sequence[str]) -> pl.DataFrame:
    return frame.filter(pl.col("service").is_in(list(services))) if services else frame


def _names(frame: pl.DataFrame) -> list[str]:
    """The services present in a frame, sorted."""
    return sorted(str(name) for name in frame.get_column("service").unique().to_list())


def metric_series(
    metrics: pl.DataFrame | None, names: Sequence[str], services: Sequence[str], signal: str | None = None
) -> Series | None:
    """The first of `names` reported by the given services (all services when none are given)."""
    if metrics is None:
        return None
    for name in names:
        wanted = pl.col("metric") == name
        rows = metrics.filter(wanted & pl.col("service").is_in(list(services)) if services else wanted)
        if rows.height:
            used = _names(rows)
            frame = rows.select(pl.col("timestamp").alias("t"), pl.col("value"))
            where = ",".join(used)
            found = _series(signal or name, "metrics", f"{name}{{service in [{where}]}}", used, frame)
            if "resolution" in rows.columns:
                resolution = rows.get_column("resolution").drop_nulls().median()
                found.resolution = float(resolution) if isinstance(resolution, int | float) else None
            return found
    return None


def _span_frame(traces: pl.DataFrame, services: Sequence[str], entry_only: bool) -> pl.DataFrame:
    """Spans of the services, with duration (ms) and an error flag; entry spans only if asked
    (spans whose parent belongs to another service, or that have none: the service's requests)."""
    # Lazy: the service filter and the few columns used are applied before the parent join.
    spans = traces.lazy()
    if entry_only:
        parents = (
            traces.lazy()
            .select(pl.col("span_id").alias("parent_span_id"), pl.col("service").alias("parent_service"))
            .unique("parent_span_id")
        )
        spans = spans.join(parents, on="parent_span_id", how="left").filter(
            pl.col("parent_service").is_null() | (pl.col("parent_service") != pl.col("service"))
        )
    if services:
        spans = spans.filter(pl.col("service").is_in(list(services)))
    status_error = (
        pl.col("status").cast(pl.String).str.to_uppercase().is_in(list(ERROR_STATUSES)).fill_null(False)
        if "status" in traces.columns
        else pl.lit(False)
    )
    http_error = (
        attr_float("http.status_code").ge(500).fill_null(False) if "attributes" in traces.columns else pl.lit(False)
    )
    return spans.select(
        pl.col("start_time").alias("t"),
        pl.col("service").cast(pl.String),
        ((pl.col("end_time") - pl.col("start_time")).dt.total_microseconds() / 1000.0).alias("ms"),
        (status_error | http_error).alias("error"),
    ).collect()


def _roots_only(traces: pl.DataFrame) -> pl.DataFrame:
    """Root spans (no parent, or a parent not present in the data): one per end-to-end request."""
    known = traces.lazy().select(pl.col("span_id").alias("parent_span_id")).unique()
    keep = ["parent_span_id", "span_id", "service", "start_time", "end_time", "status", "attributes"]
    columns = [col for col in keep if col in traces.columns]
    return traces.lazy().select(columns).join(known, on="parent_span_id", how="anti").collect()


def bucket_size(*spans: tuple[datetime, datetime], target: int = 30) -> timedelta:
    """A bucket that yields about `target` samples in the shortest window, between 5 s and 5 min."""
    shortest = min((end - start).total_seconds() for start, end in spans) if spans else 600.0
    seconds = min(300.0, max(5.0, shortest / target))
    return timedelta(seconds=round(seconds))


def _bucketed(frame: pl.DataFrame, bucket: timedelta, value: pl.Expr, min_count: int) -> pl.DataFrame:
    """Events (spans, log lines) per bucket, each bucket stamped at its end as a scraped sample is
    (the value is known once the bucket is over): stamped at its start, a fault's first bucket read
    as an onset up to a bucket before the change that caused it."""
    every = f"{int(bucket.total_seconds())}s"
    return (
        frame.with_columns(pl.col("t").dt.truncate(every) + bucket)
        .group_by("t")
        .agg(value.alias("value"), pl.len().alias("n"))
        .filter(pl.col("n") >= min_count)
        .select("t", "value")
    )


def trace_series(
    traces: pl.DataFrame | None,
    signal: str,
    services: Sequence[str],
    bucket: timedelta,
    roots: bool = False,
    min_count: int = 5,
) -> Series | None:
    """p99 latency or error/success rate per time bucket from spans (entry spans of the services,
    or end-to-end root spans when `roots`)."""
    if traces is None or traces.height == 0:
        return None
    source = _roots_only(traces) if roots else traces
    spans = _span_frame(source, services, entry_only=not roots)
    if spans.height == 0:
        return None
    if signal == LATENCY:
        value = pl.col("ms").quantile(0.99, interpolation="linear")
        what = "p99 span duration (ms)"
    elif signal == ERROR_RATE:
        value = pl.col("error").cast(pl.Float64).mean()
        what = "fraction of spans in error"
    else:
        value = 1.0 - pl.col("error").cast(pl.Float64).mean()
        what = "fraction of spans without error"
    frame = _bucketed(spans, bucket, value, min_count)
    used = _names(spans)
    scope = "root spans" if roots else f"entry spans of [{','.join(used)}]"
    return _series(signal, "traces", f"{what} of {scope} per {int(bucket.total_seconds())}s", used, frame)


def log_series(
    logs: pl.DataFrame | None, signal: str, services: Sequence[str], bucket: timedelta, min_count: int = 5
) -> Series | None:
    """Latency (from durations written in messages or attributes) or error/success rate (HTTP
    status ≥ 500 where logged, else the share of error-level lines) per time bucket."""
    if logs is None or logs.height == 0:
        return None
    rows = _service_filter(logs, services)
    if rows.height == 0:
        return None
    used = _names(rows)
    per = f"per {int(bucket.total_seconds())}s"
    if signal == LATENCY:
        match = rows.get_column("message").str.extract_groups(LATENCY_IN_MESSAGE)
        amount = match.struct.field("1").cast(pl.Float64, strict=False)
        unit = match.struct.field("2")
        ms = pl.Series("ms", amount * pl.Series(np.where(unit.to_numpy() == "s", 1000.0, 1.0)))
        if "attributes" in rows.columns:
            for key in ("duration_ms", "latency_ms", "elapsed_ms"):
                ms = ms.fill_null(rows.select(attr_float(key)).to_series())
        timed = pl.DataFrame({"t": rows.get_column("timestamp"), "ms": ms}).drop_nulls("ms")
        if timed.height == 0:
            return None
        frame = _bucketed(timed, bucket, pl.col("ms").quantile(0.99, interpolation="linear"), min_count)
        return _series(signal, "logs", f"p99 of logged durations of [{','.join(used)}] {per}", used, frame)
    status = (
        rows.select(pl.coalesce(attr_float("status"), attr_float("http.status_code"))).to_series()
        if "attributes" in rows.columns
        else pl.Series("s", [None] * rows.height, dtype=pl.Float64)
    )
    if status.is_not_null().sum() >= max(min_count, rows.height // 2):
        flags = pl.DataFrame({"t": rows.get_column("timestamp"), "error": status.ge(500)}).drop_nulls()
        what = "share of logged requests with status >= 500"
    else:
        level = rows.get_column("level").cast(pl.String).str.to_uppercase()
        flags = pl.DataFrame({"t": rows.get_column("timestamp"), "error": level.is_in(list(ERROR_LEVELS))})
        what = "share of error-level log lines"
    value = pl.col("error").cast(pl.Float64).mean()
    if signal == SUCCESS_RATE:
        value = 1.0 - value
        what = f"1 - {what}"
    frame = _bucketed(flags, bucket, value, min_count)
    return _series(signal, "logs", f"{what} of [{','.join(used)}] {per}", used, frame)


def signal_series(
    telemetry: Telemetry, signal: str, services: Sequence[str], bucket: timedelta, entry: str | None = None
) -> Series | None:
    """A golden signal from the best modality available: metrics, then traces, then logs.

    Success rate is measured end to end: the entry service's `success_rate` metric, else root
    spans, else the entry service's error rate inverted; error rate and latency on `services`.
    """
    metrics = telemetry.metrics
    if signal == LATENCY:
        found = metric_series(metrics, cv.LATENCY_METRICS, services, signal)
        if found is not None and found.query.split("{")[0] != cv.LATENCY_P99:
            found.signal = found.query.split("{")[0]  # say honestly that it is not the p99
        return (
            found
            or trace_series(telemetry.traces, LATENCY, services, bucket)
            or log_series(telemetry.logs, LATENCY, services, bucket)
        )
    if signal == ERROR_RATE:
        found = metric_series(metrics, (cv.ERROR_RATE,), services, signal)
        if found is None:
            inverse = metric_series(metrics, (cv.SUCCESS_RATE,), services, signal)
            if inverse is not None:
                inverse.values = [1.0 - v for v in inverse.values]
                inverse.query = f"1 - {inverse.query}"
                found = inverse
        return (
            found
            or trace_series(telemetry.traces, ERROR_RATE, services, bucket)
            or log_series(telemetry.logs, ERROR_RATE, services, bucket)
        )
    if signal == SUCCESS_RATE:
        front = [entry] if entry else list(services)
        found = metric_series(metrics, (cv.SUCCESS_RATE,), front, signal)
        if found is None:
            # Aggregated metrics are steadier than sampled spans: the front door's error rate first.
            inverse = metric_series(metrics, (cv.ERROR_RATE,), front, signal)
            if inverse is not None:
                inverse.values = [1.0 - v for v in inverse.values]
                inverse.query = f"1 - {inverse.query}"
                found = inverse
        if found is None and telemetry.traces is not None:
            found = trace_series(telemetry.traces, SUCCESS_RATE, [entry] if entry else [], bucket, roots=True)
        return found or log_series(telemetry.logs, SUCCESS_RATE, front, bucket)
    # Any other name: a metric (saturation and the like), from the services or anyone reporting it.
    return metric_series(metrics, (signal,), services) or metric_series(metrics, (signal,), [])


# --------------------------------------------------------------------------------------------
# Statistics


def robust_sd(values: np.ndarray) -> float:
    """1.4826 × median absolute deviation: the standard deviation if the data were normal."""
    if values.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _thin(values: np.ndarray, limit: int) -> np.ndarray:
    if values.size <= limit:
        return values
    step = math.ceil(values.size / limit)
    return values[::step]


def hodges_lehmann(current: np.ndarray, baseline: np.ndarray, limit: int = 1500) -> float:
    """Median of all pairwise differences current − baseline: a robust shift estimate."""
    a, b = _thin(current, limit), _thin(baseline, limit)
    return float(np.median(np.subtract.outer(a, b)))


def slo_reference(signal: str, slo: Slo | None) -> float | None:
    """The SLO bound that applies to a signal, in its units (None if the manifest has none)."""
    if slo is None:
        return None
    if signal == LATENCY:
        return slo.latency_p99_ms
    if signal == ERROR_RATE:
        if slo.error_rate is not None:
            return slo.error_rate
        return 1.0 - slo.availability if slo.availability is not None else None
    if signal == SUCCESS_RATE:
        if slo.availability is not None:
            return slo.availability
        return 1.0 - slo.error_rate if slo.error_rate is not None else None
    return None


def margin_for(
    signal: str, baseline: np.ndarray, slo_value: float | None, tol: Tolerance, resolution: float | None = None
) -> float:
    """How far (in the worse direction) from the baseline median a recovered signal may sit: never
    closer than the measurement resolves (`resolution`: a histogram quantile moves by up to its
    bucket's width with no change users could see)."""
    center = float(np.median(baseline))
    if signal in (ERROR_RATE, SUCCESS_RATE):
        floor = tol.rate_floor
    elif signal.endswith("_ms"):
        floor = tol.latency_floor_ms
    elif "utilization" in signal:
        floor = tol.utilization_floor
    else:
        floor = 0.05 * abs(center) if center else 1e-6
    noise = robust_sd(baseline)
    if signal in (ERROR_RATE, SUCCESS_RATE) and baseline.size > 1:
        # Rates computed from a few events per bucket are discrete and skewed (mostly 0 errors):
        # the MAD collapses to 0 there, the standard deviation does not.
        noise = max(noise, float(np.std(baseline, ddof=1)))
    parts = [floor, tol.noise_factor * noise, resolution or 0.0]
    headroom = abs(slo_value - center) if slo_value is not None else 0.0
    if slo_value is not None and headroom > 0:
        parts.append(tol.slo_headroom_fraction * headroom)
    else:
        parts.append(tol.relative * abs(center))
    return max(parts)


@dataclass(frozen=True)
class _Test:
    verdict: Verdict
    statistic: float
    p_value: float
    reason: str


def mann_whitney(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Mann–Whitney U of x against y, normal approximation with tie and continuity corrections
    (scipy.stats.mannwhitneyu(method="asymptotic"), which the tests compare it with; not imported
    here because scipy.stats alone costs a second of every run's start-up): U of x, the one-sided
    p-value of "x is stochastically less than y", and that of "greater". Both 1.0 when every value ties."""
    n1, n2 = len(x), len(y)
    ranks = pl.Series(np.concatenate([x, y])).rank("average").to_numpy()
    u1 = float(ranks[:n1].sum()) - n1 * (n1 + 1) / 2.0
    n = n1 + n2
    ties = np.unique(np.concatenate([x, y]), return_counts=True)[1].astype(np.float64)
    variance = n1 * n2 / 12.0 * ((n + 1) - float((ties**3 - ties).sum()) / (n * (n - 1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.sqrt(variance)
        z_greater = (u1 - n1 * n2 / 2.0 - 0.5) / scale
        z_less = (n1 * n2 - u1 - n1 * n2 / 2.0 - 0.5) / scale
    return u1, float(np.clip(ndtr(-z_less), 0.0, 1.0)), float(np.clip(ndtr(-z_greater), 0.0, 1.0))


def non_inferiority(
    baseline: np.ndarray, current: np.ndarray, margin: float, higher_is_worse: bool, alpha: float
) -> _Test:
    """Mann–Whitney U on (current − margin) vs baseline, both one-sided alternatives."""
    b = baseline if higher_is_worse else -baseline
    c = current if higher_is_worse else -current
    shifted = c - margin
    u, p_ok, p_bad = mann_whitney(shifted, b)
    if p_ok < alpha:
        return _Test(Verdict.RECOVERED, u, p_ok, "within the margin of baseline")
    if p_bad < alpha:
        return _Test(Verdict.NOT_RECOVERED, u, p_bad, "beyond the margin of baseline")
    return _Test(
        Verdict.INSUFFICIENT_DATA,
        u,
        min(p_ok, p_bad),
        f"inconclusive at α={alpha} (p={min(p_ok, p_bad):.3f}); more post-action data needed",
    )


def per_time(times: Sequence[datetime], values: np.ndarray) -> tuple[list[datetime], np.ndarray]:
    """One value per timestamp (the mean over the services and replicas sampled at that time)."""
    if not len(times):
        return [], np.asarray([], dtype=float)
    frame = pl.DataFrame({"t": list(times), "v": values}).group_by("t").agg(pl.col("v").mean()).sort("t")
    return _to_datetimes(frame.get_column("t")), frame.get_column("v").to_numpy().astype(float)


def sustained_within(
    times: Sequence[datetime], values: np.ndarray, limit: float, higher_is_worse: bool, window: int | None = None
) -> datetime | None:
    """First time from which the rolling median of `window` samples (default: 5 % of the series,
    at least 5) never leaves the limit: isolated spikes (a retry burst) do not reset it."""
    if values.size == 0:
        return None
    k = min(window or max(5, values.size // 20), values.size)
    rolled = np.array([np.median(values[max(0, i - k + 1) : i + 1]) for i in range(values.size)])
    inside = rolled <= limit if higher_is_worse else rolled >= limit
    if not inside[-1]:
        return None
    outside = np.flatnonzero(~inside)
    start = int(outside[-1]) + 1 if outside.size else 0
    # The rolling median at `start` looks back k−1 samples: report the sample where it became true.
    return times[start]


def first_sustained_breach(
    times: Sequence[datetime], values: np.ndarray, limit: float, higher_is_worse: bool, run: int = 3
) -> datetime | None:
    """Onset: the first sample of the first run of `run` consecutive samples beyond the limit."""
    if values.size == 0:
        return None
    beyond = values > limit if higher_is_worse else values < limit
    k = min(run, values.size)
    count = 0
    for index, flag in enumerate(beyond):
        count = count + 1 if flag else 0
        if count >= k:
            return times[index - k + 1]
    return None


def baseline_limit(signal: str, baseline: np.ndarray, slo: Slo | None, tol: Tolerance) -> tuple[float, bool]:
    """The value beyond which a signal is abnormal (baseline median ± margin), and its direction."""
    higher_is_worse = signal not in HIGHER_IS_BETTER
    margin = margin_for(signal, baseline, slo_reference(signal, slo), tol)
    center = float(np.median(baseline))
    return (center + margin if higher_is_worse else center - margin), higher_is_worse


def check_signal(
    baseline: Series | None, current: Series | None, slo: Slo | None, tol: Tolerance = Tolerance()
) -> SignalCheck:
    """Test one signal's post-action samples against its baseline samples."""
    ref = current or baseline
    signal = ref.signal if ref is not None else "unknown"
    higher_is_worse = signal not in HIGHER_IS_BETTER
    base = SignalCheck(
        signal=signal,
        source=ref.source if ref is not None else "none",
        query=ref.query if ref is not None else "",
        services=ref.services if ref is not None else [],
        higher_is_worse=higher_is_worse,
        verdict=Verdict.INSUFFICIENT_DATA,
        reason="",
    )
    if baseline is None or not baseline.values:
        base.reason = "no baseline samples for this signal"
        return base
    if current is None or not current.values:
        base.reason = "no post-action samples for this signal"
        return base
    b = _thin(baseline.array(), tol.max_samples)
    values = current.array()
    cut = int(len(values) * tol.settle_fraction)
    if len(values) - cut < tol.min_samples:
        cut = max(0, len(values) - tol.min_samples)
    c = _thin(values[cut:], tol.max_samples)
    slo_value = slo_reference(signal, slo)
    base.slo = slo_value
    base.baseline_samples, base.current_samples = int(b.size), int(c.size)
    base.baseline_start, base.baseline_end = baseline.times[0], baseline.times[-1]
    base.current_start, base.current_end = current.times[cut], current.times[-1]
    base.baseline_value = float(np.median(b))
    base.current_value = float(np.median(c)) if c.size else None
    if b.size < tol.min_samples or c.size < tol.min_samples:
        base.reason = (
            f"not enough data: {b.size} baseline and {c.size} post-action samples "
            f"(at least {tol.min_samples} each needed)"
        )
        return base
    margin = margin_for(signal, b, slo_value, tol, baseline.resolution)
    limit = base.baseline_value + margin if higher_is_worse else base.baseline_value - margin
    test = non_inferiority(b, c, margin, higher_is_worse, tol.alpha)
    base.margin, base.limit = margin, limit
    if baseline.resolution is not None and margin == baseline.resolution:
        base.resolution = baseline.resolution
    base.statistic, base.p_value, base.verdict = test.statistic, test.p_value, test.verdict
    base.effect = hodges_lehmann(c, b)
    late = values[cut:][-max(tol.min_samples, (len(values) - cut) // 3) :]
    if test.verdict != Verdict.NOT_RECOVERED and late.size >= tol.min_samples and late.size < c.size:
        # A mitigation that only helps for a while (a leak refilling a recycled pool) shows in the
        # last third of the window: test it on its own.
        tail = non_inferiority(b, _thin(late, tol.max_samples), margin, higher_is_worse, tol.alpha)
        if tail.verdict == Verdict.NOT_RECOVERED:
            base.verdict, base.statistic, base.p_value = tail.verdict, tail.statistic, tail.p_value
            test = _Test(tail.verdict, tail.statistic, tail.p_value, "regressed in the last third of the window")
    if slo_value is not None and base.current_value is not None:
        base.within_slo = base.current_value <= slo_value if higher_is_worse else base.current_value >= slo_value
    times, means = per_time(current.times, values)
    base.recovered_at = sustained_within(times, means, limit, higher_is_worse)
    resolved = ", the histogram's bucket width there" if base.resolution is not None else ""
    base.reason = (
        f"median {base.current_value:.4g} vs baseline {base.baseline_value:.4g} "
        f"(limit {limit:.4g}, margin {margin:.3g}{resolved}): {test.reason}"
    )
    return base


# --------------------------------------------------------------------------------------------
# Windows and the whole assessment


def span_of(telemetry: Telemetry) -> tuple[datetime, datetime] | None:
    """First and last timestamp over all modalities."""
    lows: list[datetime] = []
    highs: list[datetime] = []
    for name, column in (("metrics", "timestamp"), ("logs", "timestamp"), ("traces", "start_time")):
        frame = getattr(telemetry, name)
        if frame is not None and frame.height:
            col = frame.get_column(column)
            low, high = col.min(), col.max()
            if isinstance(low, datetime) and isinstance(high, datetime):
                lows.append(low)
                highs.append(high)
    if not lows:
        return None
    return min(lows).astimezone(UTC), max(highs).astimezone(UTC)


def slice_telemetry(telemetry: Telemetry, start: datetime | None, end: datetime | None) -> Telemetry:
    """The part of the telemetry in [start, end) (changes are kept whole: they are history)."""

    def cut(frame: pl.DataFrame | None, column: str) -> pl.DataFrame | None:
        if frame is None:
            return None
        expr = pl.lit(True)
        if start is not None:
            expr = expr & (pl.col(column) >= start)
        if end is not None:
            expr = expr & (pl.col(column) < end)
        result = frame.filter(expr)
        return result if result.height else None

    return Telemetry(
        metrics=cut(telemetry.metrics, "timestamp"),
        logs=cut(telemetry.logs, "timestamp"),
        traces=cut(telemetry.traces, "start_time"),
        changes=telemetry.changes,
    )


def baseline_of(telemetry: IncidentTelemetry) -> Telemetry:
    """The incident's baseline: the source's fault-free period if it has one, else everything
    before the window start."""
    if telemetry.baseline is not None and telemetry.baseline.present():
        return telemetry.baseline
    window = telemetry.manifest.effective_window()
    return slice_telemetry(telemetry.current, None, window.start)


def assess_recovery(
    baseline: Telemetry,
    current: Telemetry,
    *,
    slo: Slo | None = None,
    services: Sequence[str] = (),
    entry_service: str | None = None,
    extra_metrics: Sequence[str] = (),
    advisory_metrics: Sequence[str] = (),
    indicators: Sequence[tuple[str, str]] = (),
    action: str | None = None,
    tol: Tolerance = Tolerance(),
) -> RecoveryResult:
    """Are latency, error rate and success rate (and any extra metrics) back to baseline?

    `advisory_metrics` are tested and reported but do not change the overall verdict (e.g. the
    metric that diagnosed the fault, whose meaning a mitigation such as a bigger pool changes)."""
    spans = [s for s in (span_of(baseline), span_of(current)) if s is not None]
    bucket = bucket_size(*spans)
    advisory = [m for m in advisory_metrics if m and m not in (LATENCY, ERROR_RATE, SUCCESS_RATE)]
    signals = [LATENCY, ERROR_RATE, SUCCESS_RATE, *[m for m in extra_metrics if m], *advisory]
    checks: list[SignalCheck] = []
    unavailable: list[str] = []
    for signal in dict.fromkeys(signals):
        before = signal_series(baseline, signal, services, bucket, entry_service)
        after = signal_series(current, signal, services, bucket, entry_service)
        if after is not None and before is not None and before.source != after.source:
            # Compare like with like: the baseline must come from the same modality.
            before = _same_source(baseline, signal, services, bucket, entry_service, after.source)
        if before is None and after is None:
            if signal not in advisory:
                unavailable.append(signal)
            continue
        check = check_signal(before, after, slo, tol)
        check.advisory = signal in advisory and signal not in extra_metrics
        checks.append(check)
    for service, metric in indicators:
        # The fault's own signature must be gone too, not only its symptoms.
        if any(c.signal == metric and c.services == [service] for c in checks):
            continue
        before = metric_series(baseline.metrics, (metric,), [service])
        after = metric_series(current.metrics, (metric,), [service])
        if before is not None or after is not None:
            checks.append(check_signal(before, after, slo, tol))
    return _overall(checks, unavailable, action)


def abnormal_indicators(
    baseline: Telemetry,
    incident: Telemetry,
    start: datetime,
    end: datetime,
    tol: Tolerance = Tolerance(),
    limit: int = 3,
) -> list[tuple[str, str]]:
    """(service, metric) saturation series that sit beyond baseline + margin in the last third of
    the incident window, most deviant first: the fault's signature, which recovery must remove."""
    if baseline.metrics is None or incident.metrics is None:
        return []
    names = list(CAUSE_METRICS)
    stats = (
        baseline.metrics.filter(pl.col("metric").is_in(names))
        .group_by("service", "metric")
        .agg(
            pl.col("value").median().alias("center"),
            (pl.col("value") - pl.col("value").median()).abs().median().alias("mad"),
            pl.len().alias("n"),
        )
        .filter(pl.col("n") >= tol.min_samples)
    )
    tail_start = end - (end - start) / 3
    tail = (
        incident.metrics.filter(
            pl.col("metric").is_in(names) & (pl.col("timestamp") >= tail_start) & (pl.col("timestamp") <= end)
        )
        .group_by("service", "metric")
        .agg(pl.col("value").median().alias("tail"))
    )
    scored: list[tuple[float, str, str]] = []
    for row in stats.join(tail, on=["service", "metric"]).iter_rows(named=True):
        center, metric = float(row["center"]), str(row["metric"])
        floor = (
            tol.utilization_floor
            if "utilization" in metric
            else tol.latency_floor_ms
            if metric.endswith("_ms")
            else 1.0
        )
        margin = max(floor, tol.noise_factor * 1.4826 * float(row["mad"]), tol.relative * abs(center))
        excess = (float(row["tail"]) - center) / margin
        if excess > 1.0:
            scored.append((excess, str(row["service"]), metric))
    scored.sort(reverse=True)
    return [(service, metric) for _, service, metric in scored[:limit]]


def _same_source(
    telemetry: Telemetry,
    signal: str,
    services: Sequence[str],
    bucket: timedelta,
    entry: str | None,
    source: str,
) -> Series | None:
    only = Telemetry()
    setattr(only, source, getattr(telemetry, source))
    return signal_series(only, signal, services, bucket, entry)


def _overall(every: list[SignalCheck], unavailable: list[str], action: str | None) -> RecoveryResult:
    checks = [c for c in every if not c.advisory]
    failing = [c.signal for c in checks if c.verdict == Verdict.NOT_RECOVERED]
    unsure = [c.signal for c in checks if c.verdict == Verdict.INSUFFICIENT_DATA]
    if failing:
        verdict = Verdict.NOT_RECOVERED
        reason = f"not back to baseline: {', '.join(failing)}"
    elif not checks or unsure:
        verdict = Verdict.INSUFFICIENT_DATA
        reason = f"cannot tell for: {', '.join(unsure or unavailable or ['any signal'])}"
    else:
        verdict = Verdict.RECOVERED
        reason = f"back to baseline: {', '.join(c.signal for c in checks)}"
    if unavailable:
        reason += f"; no data for {', '.join(unavailable)}"
    times = [c.recovered_at for c in checks if c.recovered_at is not None]
    recovered_at = max(times) if verdict == Verdict.RECOVERED and times else None
    return RecoveryResult(
        verdict=verdict,
        action=action,
        checks=every,
        unavailable=unavailable,
        reason=reason,
        recovered_at=recovered_at,
    )


def default_scope(telemetry: IncidentTelemetry) -> list[str]:
    """The user-facing services to judge recovery on: the alerting service and the front door."""
    manifest = telemetry.manifest
    return [s for s in dict.fromkeys([manifest.alert.service, manifest.entry_service]) if s]


def verify_after(
    telemetry: IncidentTelemetry,
    action_kind: str,
    *,
    services: Sequence[str] | None = None,
    extra_metrics: Sequence[str] = (),
    advisory_metrics: Sequence[str] = (),
    indicators: Sequence[tuple[str, str]] | None = None,
    tol: Tolerance = Tolerance(),
) -> RecoveryResult:
    """Did the mitigation `action_kind` recover the system? Reads the telemetry after it.

    Besides latency, error rate and success rate on the user-facing services, the saturation
    series that were abnormal at the end of the incident window (`indicators`; found in the data
    when not given) must be back to baseline: a bigger pool that hides a leak is not a recovery."""
    after = telemetry.after(action_kind)
    if after is None or not after.present():
        known = ", ".join(telemetry.recorded_actions() or []) or "none"
        return RecoveryResult(
            verdict=Verdict.INSUFFICIENT_DATA,
            action=action_kind,
            reason=f"no telemetry observed after '{action_kind}' (recorded: {known})",
        )
    scope = list(services) if services is not None else default_scope(telemetry)
    baseline = baseline_of(telemetry)
    if indicators is None:
        window = telemetry.manifest.effective_window()
        indicators = abnormal_indicators(baseline, telemetry.current, window.start, window.end, tol)
    return assess_recovery(
        baseline,
        after,
        slo=telemetry.manifest.slo,
        services=scope,
        entry_service=telemetry.manifest.entry_service,
        extra_metrics=extra_metrics,
        advisory_metrics=advisory_metrics,
        indicators=indicators,
        action=action_kind,
        tol=tol,
    )
