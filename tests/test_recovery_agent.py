"""recovery-validation-specialist: validates the applied action, escalates when it did not help."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import pytest

from warroom.agents.base import AgentContext
from warroom.agents.recovery import RecoveryValidationSpecialist
from warroom.agents.resolution import IncidentResolutionCoordinator
from warroom.sources.bundle import load_bundle
from warroom.sources.incident_telemetry import IncidentTelemetry

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "recovery"))
from pipeline import base_context
from synth import write_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> IncidentTelemetry:
    return load_bundle(write_bundle(tmp_path_factory.mktemp("rec") / "b", seed=31))


def planned(bundle: IncidentTelemetry) -> dict[str, Any]:
    context = base_context()
    context.update(IncidentResolutionCoordinator().run(AgentContext(bundle, "INC-1", context)).outputs)
    return context


def run(bundle: IncidentTelemetry, context: dict[str, Any]) -> Any:
    agent = pickle.loads(pickle.dumps(RecoveryValidationSpecialist()))  # runs in worker processes
    return agent.run(AgentContext(bundle, "INC-1", context))


def ids(context: dict[str, Any]) -> dict[str, str]:
    return {a["kind"]: a["id"] for a in context["resolution_plan"]}


def test_recovering_action_is_validated(bundle: IncidentTelemetry) -> None:
    context = planned(bundle)
    context["mitigation"] = {
        "outcomes": [{"action_id": ids(context)["recycle_pool"], "status": "verified", "verified": True}],
        "recovered_by": "recycle_pool",
    }
    report = run(bundle, context)
    recovery = report.outputs["recovery"]
    assert recovery["recovered"] is True and recovery["action"] == "recycle_pool"
    signals = {c["signal"]: c for c in recovery["checks"]}
    assert {"latency_p99_ms", "error_rate", "success_rate"} <= set(signals)
    assert signals["latency_p99_ms"]["verdict"] == "recovered"
    assert signals["latency_p99_ms"]["p_value"] < 0.05
    assert signals["db_pool_utilization"]["advisory"] is True  # the diagnosed indicator, reported too
    assert recovery["next_action"] is None and not report.actions
    assert recovery["alert_to_recovery_min"] > 0
    assert all(f.evidence and f.evidence[0].values["baseline_samples"] > 0 for f in report.findings)


def test_non_recovering_action_escalates_to_the_next(bundle: IncidentTelemetry) -> None:
    context = planned(bundle)
    plan_ids = ids(context)
    context["mitigation"] = {
        "outcomes": [{"action_id": plan_ids["raise_pool_size"], "status": "executed", "verified": False}],
        "recovered_by": None,
    }
    report = run(bundle, context)
    recovery = report.outputs["recovery"]
    assert recovery["recovered"] is False and recovery["verdict"] == "not_recovered"
    kinds = [a["kind"] for a in context["resolution_plan"]]
    expected = kinds[kinds.index("raise_pool_size") + 1]
    assert recovery["next_action"]["kind"] == expected
    assert report.actions[0].kind == expected
    assert "escalate" in report.summary


def test_without_mitigation_the_plan_s_first_action_is_checked(bundle: IncidentTelemetry) -> None:
    context = planned(bundle)
    report = run(bundle, context)
    assert report.outputs["recovery"]["action"] == context["resolution_plan"][0]["kind"]
    assert any("mitigation" in item for item in report.limitations)


def test_no_after_telemetry_is_not_enough_data(tmp_path: Path) -> None:
    from synth import Shape

    bare = load_bundle(write_bundle(tmp_path / "b", seed=32, shape=Shape(recovering=(), failing=())))
    report = run(bare, planned(bare))
    assert report.outputs["recovery"]["verdict"] == "insufficient_data"
    assert report.outputs["recovery"]["recovered"] is False
    assert any("no telemetry was recorded after any action" in item for item in report.limitations)


def test_an_undone_action_is_reported_as_executed_then_undone_not_as_a_replay(bundle: IncidentTelemetry) -> None:
    """The loop took the action for real and took it back: its after-data follows a real change."""
    context = planned(bundle)
    context["mitigation"] = {
        "outcomes": [{"action_id": ids(context)["raise_pool_size"], "status": "undone", "verified": False}],
        "recovered_by": None,
    }
    report = run(bundle, context)
    recovery = report.outputs["recovery"]
    assert recovery["basis"] == "undone" and recovery["verified"] is False
    assert all("replay" not in f.title and f.kind == "recovery_undone" for f in report.findings)
    assert "after the executed (then undone) raise_pool_size" in report.summary
