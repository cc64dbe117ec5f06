"""change-executor agent: plan from the context or the runbooks, bundle replay with the statistical
recovery check, outputs for the engine (mitigation with outcomes, recovered_by, audit)."""

from __future__ import annotations

import json
import pickle

from test_actions_runbook import make_bundle
from warroom.agents.base import AgentContext
from warroom.agents.change_executor import ChangeExecutor
from warroom.incident import RecommendedAction, RiskLevel
from warroom.sources.bundle import load_bundle

DIAGNOSIS = [
    {
        "rank": 1,
        "service": "checkout",
        "fault_type": "connection_leak",
        "indicator": "db_pool_utilization",
        "confidence": 0.9,
    }
]


def test_plans_from_runbooks_and_replays_the_bundle(tmp_path):
    bundle = load_bundle(make_bundle(tmp_path / "bundle"))
    ctx = AgentContext(
        telemetry=bundle,
        incident_id="INC-1",
        context={"diagnosis": DIAGNOSIS},
        params={"action_vars": {"kube_context": "prod", "namespace": "shop"}},
    )
    report = ChangeExecutor().run(ctx)
    mitigation = report.outputs["mitigation"]
    assert mitigation["plan_source"] == "runbook connection-pool-exhaustion"
    assert mitigation["target"] == "bundle" and mitigation["dry_run"] is True
    assert mitigation["recovered_by"] == "rollback" and mitigation["recovered_by_action"] == "rollback-deploy"
    verdicts = [(o["action_id"], o["verified"]) for o in mitigation["outcomes"]]
    assert verdicts == [
        ("kill-long-queries", False),
        ("recycle-pool", False),
        ("raise-pool-size", None),
        ("rollback-deploy", True),
    ]
    # What a live run would have executed is listed, from the runbook's adapter binding.
    recycle = mitigation["outcomes"][1]["data"]["command"]
    assert recycle == "kubectl --context prod --namespace shop rollout restart deployment/checkout"
    assert [a.id for a in report.actions][-1] == "fix-forward"  # the whole plan is reported
    assert all(f.evidence for f in report.findings)
    json.dumps(report.outputs)  # JSON-able for the context


def test_uses_the_resolution_plan_and_enforces_approvals_in_bundle_mode(tmp_path):
    bundle = load_bundle(make_bundle(tmp_path / "bundle"))
    plan = [
        RecommendedAction(id="a-recycle", title="Recycle", kind="recycle_pool", risk=RiskLevel.MEDIUM),
        RecommendedAction(id="b-rollback", title="Roll back", kind="rollback", risk=RiskLevel.HIGH),
    ]
    ctx = AgentContext(
        telemetry=bundle,
        incident_id="INC-1",
        context={"resolution_plan": [a.model_dump() for a in plan], "diagnosis": DIAGNOSIS},
        params={"execute": True, "target": "bundle", "approved_actions": ["a-recycle"], "approval_policy": "risky"},
    )
    report = ChangeExecutor().run(ctx)
    mitigation = report.outputs["mitigation"]
    assert mitigation["plan_source"] == "resolution_plan"
    assert [(o.action_id, o.status) for o in report.outcomes] == [("a-recycle", "executed"), ("b-rollback", "skipped")]
    assert mitigation["recovered"] is False and "awaiting approval: b-rollback" in mitigation["summary"]
    ctx.params["approved_actions"] = ["a-recycle", "b-rollback"]
    ctx.params["journal_path"] = str(tmp_path / "audit.jsonl")
    again = ChangeExecutor().run(ctx)
    assert again.outputs["mitigation"]["recovered_by"] == "rollback"


def test_nothing_to_do_is_said_and_agent_is_picklable(tmp_path):
    bundle = load_bundle(make_bundle(tmp_path / "bundle"))
    agent = pickle.loads(pickle.dumps(ChangeExecutor()))
    report = agent.run(AgentContext(telemetry=bundle, incident_id="INC-1"))
    assert report.outcomes == [] and report.limitations
    odd = [{"rank": 1, "service": "x", "fault_type": "gremlins", "indicator": "moon_phase", "confidence": 0.2}]
    report = agent.run(AgentContext(telemetry=bundle, incident_id="INC-1", context={"diagnosis": odd}))
    assert "no runbook fits the diagnosis" in report.limitations


def test_actions_settings_come_from_warroom_toml(tmp_path):
    bundle = load_bundle(make_bundle(tmp_path / "bundle"))
    config = tmp_path / "warroom.toml"
    config.write_text('[actions]\npolicy = "all"\n[actions.vars]\nkube_context = "prod-eu"\nnamespace = "shop"\n')
    ctx = AgentContext(
        telemetry=bundle,
        incident_id="INC-1",
        context={"diagnosis": DIAGNOSIS},
        params={"config": str(config), "execute": True, "target": "bundle"},
    )
    report = ChangeExecutor().run(ctx)
    mitigation = report.outputs["mitigation"]
    assert mitigation["policy"] == "all"
    assert all(o["status"] == "skipped" for o in mitigation["outcomes"])  # nothing approved under "all"
    rollback = next(a for a in report.actions if a.id == "rollback-deploy")
    assert rollback.parameters["params"]["context"] == "prod-eu"
