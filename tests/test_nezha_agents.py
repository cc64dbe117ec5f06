"""The investigation agents on an imported Nezha case: contract, context keys, evidence."""

from __future__ import annotations

import json
import pickle
import tarfile
from pathlib import Path

import pytest

from warroom.agents.application import ApplicationIncidentSpecialist
from warroom.agents.base import AgentContext
from warroom.agents.infrastructure import InfrastructureIncidentSpecialist
from warroom.agents.log_analysis import LogAnalysisSpecialist
from warroom.agents.monitoring import MonitoringSpecialist
from warroom.sources.bundle import load_bundle
from warroom.sources.nezha import import_nezha

ARCHIVE = Path(__file__).parent / "fixtures" / "nezha" / "nezha-mini.tar.xz"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("nezha")
    with tarfile.open(ARCHIVE) as tar:
        tar.extractall(root, filter="data")
    return import_nezha(root, tmp_path_factory.mktemp("bundles"), None, None)


def test_agents_are_picklable_and_named() -> None:
    for cls in (
        MonitoringSpecialist,
        LogAnalysisSpecialist,
        ApplicationIncidentSpecialist,
        InfrastructureIncidentSpecialist,
    ):
        agent = pickle.loads(pickle.dumps(cls()))
        assert agent.spec.name.endswith("specialist")
    assert "performance-engineer" in MonitoringSpecialist.spec.aliases
    assert "error-detective" in LogAnalysisSpecialist.spec.aliases


def test_application_and_infrastructure_outputs(bundles: list[Path]) -> None:
    code_case = load_bundle(bundles[0])
    report = ApplicationIncidentSpecialist().run(AgentContext(code_case, "INC-1"))
    json.dumps(report.outputs)  # context values must be JSON-able
    assert report.outputs["diagnosis"][0]["service"] == "ts-contacts-service"
    assert report.findings[0].kind == "root_cause" and report.findings[0].evidence
    cpu_case = load_bundle(bundles[2])
    infra = InfrastructureIncidentSpecialist().run(AgentContext(cpu_case, "INC-2"))
    assert "cpu_contention on ts-verification-code-service" in infra.summary
    assert infra.outputs["evidence"]


def test_monitoring_and_log_agents(bundles: list[Path]) -> None:
    cpu_case = load_bundle(bundles[2])
    mon = MonitoringSpecialist().run(AgentContext(cpu_case, "INC-3"))
    assert any(a["service"] == "ts-verification-code-service" for a in mon.outputs["metric_anomalies"])
    code_case = load_bundle(bundles[0])
    logs = LogAnalysisSpecialist().run(AgentContext(code_case, "INC-4"))
    assert any(t["service"] == "ts-contacts-service" for t in logs.outputs["log_timeline"])
    assert logs.findings
