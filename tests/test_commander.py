"""Severity from measured impact, affected services, scope and decide signals from the data."""

from __future__ import annotations

from pathlib import Path

import pytest

from support_bundle import write_bundle
from warroom.agents.base import AgentContext
from warroom.agents.commander import IncidentCommander
from warroom.analysis.severity import assess_severity
from warroom.incident import Severity
from warroom.sources.bundle import load_bundle


@pytest.mark.parametrize(
    ("error_rate", "p99", "revenue_flow", "expected"),
    [
        (0.6, 300.0, False, Severity.P0),
        (0.15, 300.0, False, Severity.P1),
        (0.002, 2500.0, False, Severity.P1),  # 5× the 500 ms SLO
        (0.02, 300.0, True, Severity.P1),
        (0.02, 300.0, False, Severity.P2),
        (0.002, 700.0, False, Severity.P2),
        (0.002, 300.0, False, Severity.P3),
        (None, None, False, Severity.P3),
    ],
)
def test_severity_rule(error_rate: float | None, p99: float | None, revenue_flow: bool, expected: Severity) -> None:
    verdict = assess_severity(error_rate, p99, 0.01, 500.0, revenue_flow_failing=revenue_flow)
    assert verdict.severity == expected
    assert verdict.rule and not verdict.rule.startswith("P")


def test_commander_assesses_from_the_data(tmp_path: Path) -> None:
    bundle = load_bundle(write_bundle(tmp_path / "b"))
    report = IncidentCommander().run(AgentContext(telemetry=bundle, incident_id="INC-1"))
    incident, signals = report.outputs["incident"], report.outputs["signals"]
    assert incident["severity"] == "P1" and "failing" in incident["severity_rule"]
    assert set(incident["affected_services"]) == {"checkout", "gateway"}  # catalog stayed flat
    assert signals["entry_service"] == "gateway"
    assert signals["db_pool_utilization"] >= 0.9 and signals["error_rate_ratio"] > 3
    assert signals["db_cpu"] is None  # not measured is not zero
    assert incident["communication_plan"]["cadence_minutes"] == 15
    assert incident["roles"]["communications_lead"]["kind"] == "agent"
    assert incident["started_at"] is not None
    severity = next(f for f in report.findings if f.id == "f-assess-severity")
    assert severity.evidence and severity.evidence[0].values["peak"] > 0.1


def test_commander_without_metrics_falls_back_to_logs(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b")
    (root / "metrics.parquet").unlink()
    report = IncidentCommander().run(AgentContext(telemetry=load_bundle(root), incident_id="INC-1"))
    assert "no metrics in the bundle" in report.limitations
    assert "checkout" in report.outputs["incident"]["affected_services"]
