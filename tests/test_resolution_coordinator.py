"""incident-resolution-coordinator: plans from runbooks or playbooks, parameters from the data."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from warroom.agents.base import AgentContext
from warroom.agents.resolution import IncidentResolutionCoordinator, playbook_data, select_playbook
from warroom.incident import RecommendedAction
from warroom.sources.bundle import load_bundle
from warroom.sources.incident_telemetry import IncidentTelemetry

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "recovery"))
from pipeline import base_context
from synth import Shape, write_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> IncidentTelemetry:
    return load_bundle(write_bundle(tmp_path_factory.mktemp("res") / "b", seed=21))


def plan(bundle: IncidentTelemetry, context: dict[str, Any]) -> tuple[list[RecommendedAction], Any]:
    report = IncidentResolutionCoordinator().run(AgentContext(bundle, "INC-1", context))
    actions = [RecommendedAction.model_validate(a) for a in report.outputs["resolution_plan"]]
    return actions, report


def test_pool_leak_plan_is_ordered_with_measured_parameters(bundle: IncidentTelemetry) -> None:
    actions, report = plan(bundle, base_context())
    kinds = [a.kind for a in actions]
    assert {"recycle_pool", "raise_pool_size", "rollback", "fix_forward"} <= set(kinds)
    assert [a.parameters["order"] for a in actions] == list(range(1, len(actions) + 1))
    # Immediate actions come before the rollback, which comes before the fix.
    priorities = [a.priority for a in actions]
    assert priorities == sorted(priorities, key=["immediate", "short_term", "follow_up"].index)
    by = {a.kind: a for a in actions}
    raise_pool = by["raise_pool_size"].parameters
    assert raise_pool["from_size"] == 20 and raise_pool["to_size"] > 20  # pool size measured from metrics
    rollback = by["rollback"].parameters
    assert rollback["change_id"] == "chg-103" and rollback["to_version"] == "1.4.1"  # previous deploy in changes
    assert by["fix_forward"].parameters["file"] == "services/checkout/saved_carts.go"
    assert by["fix_forward"].parameters["line"] == 42
    assert all(a.rollback for a in actions)
    assert "100%" in by["recycle_pool"].rationale  # the measured pool saturation
    assert report.outputs["resolution_deadline"].startswith("2024-01-15T15:00")  # alert + 30 min RTO


def test_playbook_used_when_no_runbook_fits(bundle: IncidentTelemetry) -> None:
    context = base_context()
    context["diagnosis"][0].update(fault_type="something_new", indicator="latency_p99_ms")
    actions, report = plan(bundle, context)
    assert report.outputs["resolution_source"] == "playbook generic"
    kinds = [a.kind for a in actions]
    assert kinds[0] == "recycle_pool"  # the pool was measured saturated
    assert "scale_out" not in kinds  # CPU was never measured high: condition recorded as not met
    assert any("scale_out" in item for item in report.limitations)
    assert "rollback" in kinds


def test_missing_context_keys_are_named_and_plan_still_built(bundle: IncidentTelemetry) -> None:
    actions, report = plan(bundle, {})
    assert actions  # from measured signals only
    assert "rollback" not in [a.kind for a in actions]
    assert any("diagnosis" in item for item in report.limitations)
    assert any("suspect_change" in item for item in report.limitations)


def test_a_measured_fact_can_rule_an_action_out(tmp_path: Path) -> None:
    """The pool runbook's pool actions are left out when the pool was measured far from full."""
    healthy = load_bundle(write_bundle(tmp_path / "b", seed=22, shape=Shape(onset_min=500, pool_full_min=510)))
    actions, report = plan(healthy, base_context())
    assert "rollback" in [a.kind for a in actions]
    assert "recycle_pool" not in [a.kind for a in actions]
    assert any("recycle_pool" in item and "contradict" in item for item in report.limitations)


def test_playbook_selection_prefers_the_fault_type_over_the_indicator() -> None:
    assert select_playbook("missing_index", "db_pool_utilization")["name"] == "slow-query-missing-index"
    assert select_playbook("connection leak", None)["name"] == "connection-pool-exhaustion"
    assert select_playbook(None, None)["name"] == "generic"
    kinds = set(playbook_data()["actions"])
    for book in playbook_data()["playbooks"]:
        for priority in ("immediate", "short_term", "follow_up"):
            for entry in book.get(priority) or []:
                assert (entry if isinstance(entry, str) else entry["kind"]) in kinds
