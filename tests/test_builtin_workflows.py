"""Every built-in workflow validates, renders, and decides its path from measured signals."""

from __future__ import annotations

import pytest

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


@pytest.mark.parametrize(
    ("signals", "path"),
    [
        ({"db_pool_utilization": 1.0, "cpu_max": 0.4}, "database"),
        ({"db_cpu": 0.97, "db_long_running_queries": 40}, "database"),
        ({"table_rows_drop": 0.99}, "database"),
        ({"db_error_ratio": 56.0, "db_pool_utilization": 0.04}, "database"),
        ({"cpu_max": 0.99, "auth_failure_ratio": 0.0}, "infrastructure"),
        ({"tls_cert_expired": 1.0}, "infrastructure"),
        ({"network_latency_ratio": 2500.0}, "infrastructure"),
        ({"dependency_latency_ratio": 7.2}, "infrastructure"),
        ({"cpu_max": 0.98, "auth_failure_ratio": 284.0}, "application"),  # the CPU burns on an attack
        ({"memory_max": 0.96, "error_rate_ratio": 199.0}, "application"),
        ({"error_rate_ratio": 115.0}, "application"),
        ({}, "application"),
    ],
)
def test_critical_incident_decides_from_signals(signals: dict[str, float], path: str) -> None:
    assert _investigation_path("critical-incident", signals) == path


def test_variations_add_their_own_path_first() -> None:
    assert _investigation_path("security-incident", {"auth_failure_ratio": 300.0, "cpu_max": 0.98}) == "security"
    assert _investigation_path("data-loss-incident", {"table_rows_drop": 0.5}) == "data"
    assert _investigation_path("network-incident", {"affected_share": 0.8}) == "infrastructure"
