"""post-incident-analyst: cause, factors, measures and action items from the run's own data."""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from warroom.agents.base import AgentContext
from warroom.agents.documentation import IncidentDocumentationSpecialist
from warroom.agents.post_incident import PostIncidentAnalyst, detection_gap
from warroom.agents.recovery import RecoveryValidationSpecialist
from warroom.agents.resolution import IncidentResolutionCoordinator
from warroom.sources.bundle import load_bundle
from warroom.sources.incident_telemetry import IncidentTelemetry

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "recovery"))
from pipeline import base_context
from synth import write_bundle


def full_run(bundle: IncidentTelemetry, first_recovers: bool) -> dict[str, Any]:
    context = base_context()
    context.update(IncidentResolutionCoordinator().run(AgentContext(bundle, "INC-1", context)).outputs)
    plan = {a["kind"]: a["id"] for a in context["resolution_plan"]}
    tried = ["recycle_pool"] if first_recovers else ["raise_pool_size", "recycle_pool"]
    context["mitigation"] = {
        "outcomes": [
            {"action_id": plan[k], "status": "verified" if k == "recycle_pool" else "executed"} for k in tried
        ],
        "recovered_by": "recycle_pool",
    }
    for agent in (RecoveryValidationSpecialist(), IncidentDocumentationSpecialist()):
        context.update(agent.run(AgentContext(bundle, "INC-1", context)).outputs)
    return context


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> IncidentTelemetry:
    return load_bundle(write_bundle(tmp_path_factory.mktemp("pm") / "b", seed=51))


def postmortem(bundle: IncidentTelemetry, context: dict[str, Any]) -> dict[str, Any]:
    return PostIncidentAnalyst().run(AgentContext(bundle, "INC-1", context)).outputs["postmortem"]


def test_primary_cause_links_change_commit_file_and_line(bundle: IncidentTelemetry) -> None:
    pm = postmortem(bundle, full_run(bundle, first_recovers=True))
    cause = pm["primary_cause"]
    assert cause["change_id"] == "chg-103" and cause["commit"] == "def5678"
    assert cause["file"] == "services/checkout/saved_carts.go" and cause["line"] == 42
    assert "saved_carts.go:42" in cause["text"] and "chg-103" in cause["text"]
    assert cause["evidence_ids"] == ["E7"]


def test_factors_measures_and_items_come_from_the_evidence(bundle: IncidentTelemetry) -> None:
    pm = postmortem(bundle, full_run(bundle, first_recovers=True))
    factors = {f["kind"]: f for f in pm["contributing_factors"]}
    gap = factors["detection_gap"]
    assert gap["signal"] == "db_pool_utilization" and gap["service"] == "checkout" and gap["lead_min"] > 0
    assert "resource_leak" in factors
    assert factors["same_pattern"]["count"] == 2
    assert {p["location"] for p in pm["similar_patterns"]} == {
        "services/cart/store.go:88",
        "services/orders/repo.py:12",
    }
    assert factors["propagation"]["services"] == ["gateway"]  # the caller per topology, not the database
    assert "no_staging" not in factors  # the change history records no staging at all: nothing claimed
    measures = " | ".join(pm["preventive_measures"])
    assert "Alert on db_pool_utilization of checkout" in measures
    items = pm["action_items"]
    assert all(i["owner"] and i["due"] for i in items)
    assert not any("dev-" in i["owner"] for i in items)  # roles and teams, never the change's author
    fired = date(2024, 1, 15)
    assert all(date.fromisoformat(i["due"]) > fired for i in items)
    assert any(i["factor"] == "same_pattern" for i in items)


def test_lessons_follow_the_run(bundle: IncidentTelemetry) -> None:
    good = postmortem(bundle, full_run(bundle, first_recovers=True))["lessons_learned"]
    bad = postmortem(bundle, full_run(bundle, first_recovers=False))["lessons_learned"]
    assert any("first action (recycle_pool) recovered" in t for t in good["went_well"])
    assert any("raise_pool_size" in t and "did not recover" in t for t in bad["challenges"])
    assert any("time to detect" in t for t in good["went_well"] + good["challenges"])


def test_staging_gap_only_when_the_history_shows_staging(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", seed=52)
    changes = pl.read_csv(root / "changes.csv")
    staged = pl.DataFrame(
        {
            "id": ["chg-090"],
            "time": ["2024-01-15T12:00:00Z"],
            "service": ["checkout"],
            "kind": ["deploy"],
            "version": ["1.4.1"],
            "commit": ["abc1234"],
            "author": ["dev-b"],
            "description": ["staging deploy with load test"],
        }
    )
    pl.concat([changes, staged], how="vertical_relaxed").write_csv(root / "changes.csv")
    bundle = load_bundle(root)
    pm = postmortem(bundle, full_run(bundle, first_recovers=True))
    factors = {f["kind"]: f for f in pm["contributing_factors"]}
    assert factors["no_staging"]["change_id"] == "chg-103"
    assert factors["no_staging"]["staged_changes"] == ["chg-090"]


def test_without_context_the_analyst_says_what_it_lacks(bundle: IncidentTelemetry) -> None:
    report = PostIncidentAnalyst().run(AgentContext(bundle, "INC-1", {}))
    pm = report.outputs["postmortem"]
    assert pm["primary_cause"] is None
    assert any("diagnosis" in item for item in report.limitations)
    assert pm["lessons_learned"]["went_well"] or pm["lessons_learned"]["challenges"]


def test_restarts_a_change_of_the_service_caused_are_no_missed_alert(bundle: IncidentTelemetry) -> None:
    fired = bundle.manifest.alert.fired_at
    onset = {
        "at": (fired - timedelta(minutes=3)).isoformat(), "kind": "onset", "service": "checkout",
        "values": {"signal": "restarts", "limit": 1e-06, "baseline": 0.0, "peak": 3.0},
    }  # fmt: skip
    deploy = {"at": (fired - timedelta(minutes=3.5)).isoformat(), "kind": "change", "service": "checkout"}
    elsewhere = {**deploy, "service": "payment"}
    assert [g["signal"] for g in detection_gap([onset], bundle)] == ["restarts"]
    assert detection_gap([deploy, onset], bundle) == []  # the deploy's own restart, 30 s after it
    assert [g["signal"] for g in detection_gap([elsewhere, onset], bundle)] == ["restarts"]
