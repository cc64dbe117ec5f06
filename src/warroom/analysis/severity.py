"""Severity from measured impact against the SLO: the rule that chose it is part of the answer."""

from __future__ import annotations

from dataclasses import dataclass

from warroom.incident import Severity

# Update cadence an on-call team commits to per severity, in minutes.
CADENCE_MINUTES = {Severity.P0: 10.0, Severity.P1: 15.0, Severity.P2: 30.0, Severity.P3: 60.0}


@dataclass(frozen=True)
class SeverityVerdict:
    severity: Severity
    rule: str


def assess_severity(
    error_rate: float | None,
    latency_p99_ms: float | None,
    slo_error_rate: float | None,
    slo_latency_p99_ms: float | None,
    revenue_flow_failing: bool = False,
) -> SeverityVerdict:
    """P0: most requests fail (≥ 50 %). P1: ≥ 5 % fail, p99 ≥ 4× its SLO, or a revenue flow fails
    beyond its SLO. P2: any SLO breached. P3: degraded within SLO, or nothing measured."""
    err = error_rate if error_rate is not None else 0.0
    slo_err = slo_error_rate if slo_error_rate is not None else 0.01
    latency_factor = (latency_p99_ms / slo_latency_p99_ms) if latency_p99_ms and slo_latency_p99_ms else None
    if err >= 0.5:
        return SeverityVerdict(Severity.P0, f"{err:.1%} of requests failing (≥ 50 %: outage)")
    if err >= 0.05:
        return SeverityVerdict(Severity.P1, f"{err:.1%} of requests failing (≥ 5 %)")
    if latency_factor is not None and latency_factor >= 4:
        return SeverityVerdict(
            Severity.P1,
            f"p99 latency {latency_p99_ms:.0f} ms is {latency_factor:.1f}× the {slo_latency_p99_ms:.0f} ms SLO (≥ 4×)",
        )
    if revenue_flow_failing and err > slo_err:
        return SeverityVerdict(Severity.P1, f"a revenue flow fails at {err:.1%}, above the {slo_err:.1%} SLO")
    if err > slo_err:
        return SeverityVerdict(Severity.P2, f"error rate {err:.1%} above the {slo_err:.1%} SLO")
    if latency_factor is not None and latency_factor > 1:
        return SeverityVerdict(
            Severity.P2, f"p99 latency {latency_p99_ms:.0f} ms above the {slo_latency_p99_ms:.0f} ms SLO"
        )
    if error_rate is None and latency_p99_ms is None:
        return SeverityVerdict(Severity.P3, "no error rate or latency could be measured at the entry point")
    return SeverityVerdict(Severity.P3, "degraded but within SLO")
