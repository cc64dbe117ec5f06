"""Every built-in workflow validates, renders, and decides its path from measured signals."""

from __future__ import annotations

import pytest

from warroom.analysis.faults import path_of, registry
from warroom.application import load_spec
from warroom.workflow.interpreter import decide
from warroom.workflow.render import render_workflow
from warroom.workflow.spec import PhaseKind, builtin_workflows

BUILTINS = sorted(builtin_workflows())


def test_the_seed_workflows_are_built_in() -> None:
    assert {"critical-incident", "platform-ops", "security-incident", "data-loss-incident", "network-incident"} <= set(
        BUILTINS
    )
    assert [p.id for p in load_spec("critical-incident").phases] == [
        "assess",
        "investigate",
        "deep-investigation",
        "resolve",
        "recover",
        "postmortem",
    ]
    assert len(load_spec("platform-ops").phases) == 5


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_workflow_renders_every_phase_and_agent(name: str) -> None:
    spec = load_spec(name)
    text = render_workflow(spec, {"symptoms": "API p99 > 2s", "classification": "P1"})
    for index, phase in enumerate(spec.phases, 1):
        assert f"## Phase {index}: {phase.title}" in text
        for step in phase.steps:
            assert f"`{step.agent}`" in text
    assert "[classification]" not in text


def _investigation_path(name: str, signals: dict[str, float]) -> str:
    phase = next(p for p in load_spec(name).phases if p.kind == PhaseKind.DECIDE)
    return decide(phase, {"signals": signals}).path


@pytest.mark.parametrize("fault_type", registry().names())
def test_critical_incident_follows_the_registry_path_of_the_diagnosis(fault_type: str) -> None:
    mechanism = "db_pool_exhaustion" if registry().fault_types[fault_type].path == "mechanism" else None
    signals = {"path": path_of(fault_type, mechanism), "fault_type": fault_type}
    assert _investigation_path("critical-incident", signals) == signals["path"]


def test_critical_incident_investigates_the_application_without_a_diagnosis() -> None:
    assert _investigation_path("critical-incident", {"path": None, "fault_type": None}) == "application"


def test_variations_add_their_own_path_first() -> None:
    attack = {"auth_failure_ratio": 300.0, "fault_type": "credential_stuffing", "path": "application"}
    assert _investigation_path("security-incident", attack) == "security"
    lost = {"table_rows_drop": 0.5, "fault_type": "data_loss_migration", "path": "database"}
    assert _investigation_path("data-loss-incident", lost) == "data"
    assert _investigation_path("network-incident", {"affected_share": 0.8, "path": None}) == "infrastructure"
