"""The three investigation paths agree on the fused diagnosis, and the code explorer follows it to
the line: checked on small generated scenarios (read through the bundle format only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from warroom.agents.application import ApplicationIncidentSpecialist
from warroom.agents.base import AgentContext
from warroom.agents.code_explorer import CodeExplorer
from warroom.agents.database import DatabaseIncidentSpecialist
from warroom.agents.infrastructure import InfrastructureIncidentSpecialist
from warroom.scenarios import generate
from warroom.sources.bundle import load_bundle


@pytest.fixture(scope="module", params=["network-delay", "memory-leak"])
def scenario(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(request.param) / "bundle"
    generate(request.param, 7, out, scale="small", repo="checkout")
    return out


def test_every_path_names_the_same_service_and_fault(scenario: Path) -> None:
    truth = json.loads((scenario / "ground_truth.json").read_text())
    bundle = load_bundle(scenario)
    tops = []
    for agent in (DatabaseIncidentSpecialist(), ApplicationIncidentSpecialist(), InfrastructureIncidentSpecialist()):
        report = agent.run(AgentContext(bundle, "INC-1"))
        json.dumps(report.outputs)
        top = report.outputs["diagnosis"][0]
        tops.append((top["service"], top["fault_type"]))
        assert top["evidence_ids"], "the top candidate cites no evidence"
    assert tops == [(truth["service"], truth["fault_type"])] * 3


def test_code_explorer_follows_the_diagnosis_to_the_line(scenario: Path) -> None:
    truth = json.loads((scenario / "ground_truth.json").read_text())
    bundle = load_bundle(scenario)
    ctx = AgentContext(bundle, "INC-1")
    ctx.context.update(ApplicationIncidentSpecialist().run(ctx).outputs)
    report = CodeExplorer().run(ctx)
    change = report.outputs.get("suspect_change") or ctx.context.get("suspect_change")
    if truth["change_id"] is None:
        assert change is None  # no change causes a network delay: nothing to roll back
        return
    location = truth["code_location"]
    assert isinstance(change, dict)
    assert change["id"] == truth["change_id"]
    assert change["code_file"] == location["file"] and abs(change["code_line"] - location["line"]) <= 3
