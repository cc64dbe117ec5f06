"""Severity from measured impact against the SLO, judged on a sustained window.

The rule reads the entry service's failure rate and p99 latency over the worst 5-minute stretch of
the incident window (`SUSTAINED_MINUTES`), never a single sample: a 5 s burst of failures does not
make an outage, a quarter of all requests failing for five minutes does. Five minutes is the short
window of the multiwindow burn-rate alerts in Google's SRE workbook: long enough to ride out one
bad scrape, short enough that a real outage is not averaged away. The failure rate is the same
per-request count the impact analysis uses (`analysis.impact`), so the two agree by construction;
the rule text names the window and the method.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from warroom.analysis.impact import request_outcomes, worst_window
from warroom.analysis.recovery import LATENCY, Series, bucket_size, signal_series, slice_telemetry
from warroom.figures import Figure, Window, format_clock, format_number
from warroom.incident import Severity
from warroom.sources.canonical import Telemetry

# Update cadence an on-call team commits to per severity, in minutes.
CADENCE_MINUTES = {Severity.P0: 10.0, Severity.P1: 15.0, Severity.P2: 30.0, Severity.P3: 60.0}
SUSTAINED_MINUTES = 5.0
DEFAULT_SLO_ERROR_RATE = 0.01


@dataclass(frozen=True)
class SeverityVerdict:
    severity: Severity
    rule: str
    error_rate: Figure | None = None
    latency_p99_ms: Figure | None = None
    slo_error_rate: Figure | None = None
    slo_latency_p99_ms: Figure | None = None

    def figures(self) -> dict[str, Figure]:
        """Every number the rule text shows, under its name (what reports cite)."""
        named = {
            "error_rate": self.error_rate,
            "latency_p99_ms": self.latency_p99_ms,
            "slo_error_rate": self.slo_error_rate,
            "slo_latency_p99_ms": self.slo_latency_p99_ms,
        }
        out = {k: v for k, v in named.items() if v is not None}
        if (
            self.latency_p99_ms
            and self.slo_latency_p99_ms
            and self.latency_p99_ms.known
            and self.slo_latency_p99_ms.known
        ):
            factor = (self.latency_p99_ms.value or 0.0) / (self.slo_latency_p99_ms.value or 1.0)
            out["latency_slo_factor"] = Figure(value=round(factor, 1), unit="×", method="p99 latency ÷ its SLO")
        return out


def assess_severity(
    error_rate: float | None,
    latency_p99_ms: float | None,
    slo_error_rate: float | None,
    slo_latency_p99_ms: float | None,
    revenue_flow_failing: bool = False,
    errors_over: str = "",
    latency_over: str = "",
) -> SeverityVerdict:
    """P0: most requests fail (≥ 50 %). P1: ≥ 5 % fail, p99 ≥ 4× its SLO, or a revenue flow fails
    beyond its SLO. P2: any SLO breached. P3: degraded within SLO, or nothing measured. `errors_over`
    and `latency_over` say where and over which window each value was measured."""
    err = error_rate if error_rate is not None else 0.0
    slo_err = slo_error_rate if slo_error_rate is not None else DEFAULT_SLO_ERROR_RATE
    latency_factor = (latency_p99_ms / slo_latency_p99_ms) if latency_p99_ms and slo_latency_p99_ms else None
    where = f" {errors_over}" if errors_over else ""
    pct = format_number(err, "ratio")
    slo_pct = format_number(slo_err, "ratio")
    lat_where = f" {latency_over}" if latency_over else ""
    if err >= 0.5:
        return SeverityVerdict(Severity.P0, f"{pct} of requests failing{where} (≥ 50 %: outage)")
    if err >= 0.05:
        return SeverityVerdict(Severity.P1, f"{pct} of requests failing{where} (≥ 5 %)")
    if latency_factor is not None and latency_factor >= 4:
        return SeverityVerdict(
            Severity.P1,
            f"p99 latency {format_number(latency_p99_ms or 0.0, 'ms')}{lat_where} is {latency_factor:.1f} × the "
            f"{format_number(slo_latency_p99_ms or 0.0, 'ms')} SLO (≥ 4×)",
        )
    if revenue_flow_failing and err > slo_err:
        return SeverityVerdict(Severity.P1, f"a revenue flow fails at {pct}{where}, above the {slo_pct} SLO")
    if err > slo_err:
        return SeverityVerdict(Severity.P2, f"error rate {pct}{where} above the {slo_pct} SLO")
    if latency_factor is not None and latency_factor > 1:
        return SeverityVerdict(
            Severity.P2,
            f"p99 latency {format_number(latency_p99_ms or 0.0, 'ms')}{lat_where} above the "
            f"{format_number(slo_latency_p99_ms or 0.0, 'ms')} SLO",
        )
    if error_rate is None and latency_p99_ms is None:
        return SeverityVerdict(Severity.P3, "no error rate or latency could be measured at the entry point")
    return SeverityVerdict(Severity.P3, f"degraded but within SLO{where or lat_where}")


def worst_latency(series: Series | None, window: Window, minutes: float = SUSTAINED_MINUTES) -> Figure:
    """The highest rolling median of the p99 samples over `minutes` inside the window."""
    if series is None or not series.values:
        return Figure(value=None, unit="ms", method="no p99 latency series at the entry service")
    frame = (
        pl.DataFrame({"t": series.times, "v": series.values})
        .filter((pl.col("t") >= window.start) & (pl.col("t") <= window.end))
        .group_by("t")
        .agg(pl.col("v").mean())
        .sort("t")
    )
    if frame.height == 0:
        return Figure(value=None, unit="ms", method=f"no {series.signal} samples in the window")
    span = timedelta(minutes=minutes)
    rolled = frame.rolling(index_column="t", period=f"{int(span.total_seconds())}s").agg(pl.col("v").median())
    complete = rolled.filter(pl.col("t") >= window.start + span)
    rolled = complete if complete.height else rolled
    best = rolled.sort(["v", "t"], descending=[True, False]).row(0, named=True)
    worst = Window(start=max(best["t"] - span, window.start), end=best["t"], basis=f"the worst {minutes:g} minutes")
    return Figure(
        value=float(best["v"]),
        unit="ms",
        method=f"median of {series.query} over the worst {minutes:g} minutes",
        window=worst,
    )


def measure_severity(
    telemetry: Telemetry,
    entry: str | None,
    window: Window,
    *,
    slo_error_rate: float | None,
    slo_latency_p99_ms: float | None,
    revenue_flow_failing: bool = False,
) -> SeverityVerdict:
    """Severity from the entry service's worst sustained failure rate and p99 latency."""
    outcomes = request_outcomes(slice_telemetry(telemetry, window.start, window.end), entry)
    errors = worst_window(outcomes, window, SUSTAINED_MINUTES) if outcomes is not None else None
    service = outcomes.service if outcomes is not None else entry
    latency = None
    if service:
        bucket = bucket_size((window.start, window.end))
        latency = worst_latency(signal_series(telemetry, LATENCY, [service], bucket), window)
    err = errors.value if errors is not None and errors.known else None
    p99 = latency.value if latency is not None and latency.known else None
    verdict = assess_severity(
        err,
        p99,
        slo_error_rate,
        slo_latency_p99_ms,
        revenue_flow_failing,
        _over(errors, service),
        _over(latency, service),
    )
    slo_err = Figure(
        value=slo_error_rate if slo_error_rate is not None else DEFAULT_SLO_ERROR_RATE,
        unit="ratio",
        method="the incident's error-rate SLO" if slo_error_rate is not None else "default error-rate SLO (1 %)",
    )
    slo_p99 = (
        Figure(value=slo_latency_p99_ms, unit="ms", method="the incident's p99 latency SLO")
        if slo_latency_p99_ms is not None
        else None
    )
    return SeverityVerdict(verdict.severity, verdict.rule, errors, latency, slo_err, slo_p99)


def _over(figure: Figure | None, service: str | None) -> str:
    if figure is None or figure.window is None:
        return ""
    span = f"{figure.window.start:%H:%M:%S}–{format_clock(figure.window.end)}"
    return f"at {service} over the worst {SUSTAINED_MINUTES:g} minutes ({span})"
