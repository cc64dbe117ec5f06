"""The workflow engine: decide paths, real parallelism, failure isolation, timeouts, retries,
approval gates and context passing — on a real SQLite store and real worker processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from warroom.application import resume
from warroom.sources.bundle import load_bundle
from warroom.sources.contract import BundleSpec
from warroom.store.repository import Store
from warroom.workflow.engine import Engine, RunOptions
from warroom.workflow.spec import ApprovalPolicy, WorkflowSpec, load_workflow

A = "support_agents"


def spec_of(tmp_path: Path, phases: list[dict[str, Any]]) -> WorkflowSpec:
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump({"name": "test", "phases": phases}))
    return load_workflow(path)


def run(store: Store, bundle_dir: Path, spec: WorkflowSpec, **options: Any) -> tuple[Engine, Any]:
    engine = Engine(store)
    opts = RunOptions(source=BundleSpec(path=str(bundle_dir)), **options)
    _, run_id = engine.start(load_bundle(bundle_dir), spec, opts)
    return engine, engine.run(run_id)


def decide_phases(signals: dict[str, float]) -> list[dict[str, Any]]:
    return [
        {"id": "assess", "agent": f"{A}:Signals", "params": {"signals": signals}},
        {
            "id": "investigate",
            "decide": [
                {
                    "path": "database",
                    "when": "signals.db_pool >= 0.9 or signals.db_cpu >= 0.85",
                    "agent": f"{A}:Sleeper",
                    "params": {"seconds": 0, "output": "db"},
                },
                {
                    "path": "application",
                    "when": "signals.error_ratio >= 3",
                    "agent": f"{A}:Sleeper",
                    "params": {"seconds": 0, "output": "app"},
                },
                {
                    "path": "infrastructure",
                    "default": True,
                    "agent": f"{A}:Sleeper",
                    "params": {"seconds": 0, "output": "infra"},
                },
            ],
        },
    ]


@pytest.mark.parametrize(
    ("signals", "path"),
    [
        ({"db_pool": 1.0, "error_ratio": 10}, "database"),
        ({"db_cpu": 0.95}, "database"),  # db_pool unmeasured: the other half of the `or` still decides
        ({"db_pool": 0.4, "db_cpu": 0.2, "error_ratio": 8}, "application"),
        ({"db_pool": 0.4, "error_ratio": 1.2}, "infrastructure"),
        ({}, "infrastructure"),
    ],
)
def test_decide_takes_first_matching_path_and_records_why(
    tmp_path: Path, bundle_dir: Path, store: Store, signals: dict[str, float], path: str
) -> None:
    _, result = run(store, bundle_dir, spec_of(tmp_path, decide_phases(signals)), processes=False)
    assert result.status == "succeeded"
    steps = {s.key: s for s in store.steps(result.run_id)}
    assert steps["investigate/decide"].result["path"] == path
    assert f"investigate/{path}" in steps
    assert [k for k in steps if k.startswith("investigate/") and k != "investigate/decide"] == [f"investigate/{path}"]
    decisions = [e for e in store.timeline(result.incident_id) if e.kind.value == "decision"]
    assert len(decisions) == 1 and path in decisions[0].summary
    assert decisions[0].data["values"]  # the values that decided it are on the timeline
    if path == "infrastructure":
        assert "no condition held" in decisions[0].data["rationale"]


def test_parallel_branches_overlap_in_separate_processes(tmp_path: Path, bundle_dir: Path, store: Store) -> None:
    branches = [
        {"agent": f"{A}:Sleeper", "id": f"b{i}", "params": {"seconds": 1.0, "output": f"b{i}"}} for i in range(3)
    ]
    spec = spec_of(tmp_path, [{"id": "deep", "parallel": branches}])
    _, result = run(store, bundle_dir, spec, processes=True, workers=3)
    steps = [s for s in store.steps(result.run_id) if s.kind == "agent"]
    assert len(steps) == 3
    latest_start = max(s.started_at for s in steps)
    earliest_end = min(s.finished_at for s in steps)
    assert latest_start < earliest_end, "branches ran one after another"
    pids = {s.result["outputs"][s.key.split("/")[1]]["pid"] for s in steps}
    assert len(pids) >= 2


def test_a_failing_or_timed_out_branch_does_not_sink_the_others(tmp_path: Path, bundle_dir: Path, store: Store) -> None:
    spec = spec_of(
        tmp_path,
        [
            {
                "id": "deep",
                "parallel": [
                    {"agent": f"{A}:Failing", "id": "broken"},
                    {"agent": f"{A}:Sleeper", "id": "slow", "timeout_s": 0.5, "params": {"seconds": 5}},
                    {"agent": f"{A}:Sleeper", "id": "fine", "params": {"seconds": 0.1, "output": "fine"}},
                ],
            },
            {
                "id": "after",
                "sequence": [{"agent": f"{A}:Sleeper", "id": "sleeper", "params": {"seconds": 0, "output": "after"}}],
            },
        ],
    )
    _, result = run(store, bundle_dir, spec, processes=True, workers=3)
    steps = {s.key: s for s in store.steps(result.run_id)}
    assert steps["deep/broken"].status == "failed" and "analysis blew up" in (steps["deep/broken"].error or "")
    assert steps["deep/slow"].status == "timed_out"
    assert steps["deep/fine"].status == "succeeded"
    assert steps["after/sleeper"].status == "succeeded"  # the run went on
    assert result.status == "completed_with_failures"
    kinds = [e.kind.value for e in store.timeline(result.incident_id)]
    assert kinds.count("step_failed") == 2


def test_retry_runs_a_step_again_until_it_succeeds(tmp_path: Path, bundle_dir: Path, store: Store) -> None:
    flag = tmp_path / "flag"
    spec = spec_of(tmp_path, [{"id": "p", "agent": f"{A}:FlakyOnce", "retries": 1, "params": {"flag": str(flag)}}])
    _, result = run(store, bundle_dir, spec, processes=False)
    (step,) = store.steps(result.run_id)
    assert step.status == "succeeded" and step.attempts == 2


def test_context_is_handed_from_phase_to_phase(tmp_path: Path, bundle_dir: Path, store: Store) -> None:
    spec = spec_of(
        tmp_path,
        [
            {
                "id": "one",
                "sequence": [{"agent": f"{A}:Sleeper", "id": "sleeper", "params": {"seconds": 0, "output": "first"}}],
            },
            {
                "id": "two",
                "sequence": [{"agent": f"{A}:Sleeper", "id": "sleeper", "params": {"seconds": 0, "output": "second"}}],
            },
        ],
    )
    _, result = run(store, bundle_dir, spec, processes=False)
    steps = {s.key: s for s in store.steps(result.run_id)}
    assert "first" in steps["two/sleeper"].result["outputs"]["second"]["seen"]
    assert "first" not in steps["one/sleeper"].result["outputs"]["first"]["seen"]


GATED = [
    {"id": "plan", "agent": f"{A}:Planner"},
    {"id": "act", "sequence": [{"agent": f"{A}:Executor", "id": "executor", "approval": "risky"}]},
]


def test_dry_run_passes_the_gate_with_only_low_risk_approved(tmp_path: Path, bundle_dir: Path, store: Store) -> None:
    _, result = run(store, bundle_dir, spec_of(tmp_path, GATED), processes=False)
    assert result.status == "succeeded"
    steps = {s.key: s for s in store.steps(result.run_id)}
    assert steps["act/executor/gate"].result["approved"] == ["recycle-pool"]
    assert steps["act/executor/gate"].result["not_approved"] == ["rollback"]
    assert steps["act/executor"].result["outputs"]["mitigation"]["approved"] == ["recycle-pool"]


def test_execute_waits_for_approval_then_resumes(tmp_path: Path, bundle_dir: Path, store: Store) -> None:
    engine, result = run(store, bundle_dir, spec_of(tmp_path, GATED), processes=False, execute=True)
    assert result.status == "waiting_approval"
    assert [a["id"] for a in result.pending] == ["rollback"]
    assert "act/executor" not in {s.key for s in store.steps(result.run_id)}
    engine.approve(result.incident_id, "rollback", "alice")
    response = resume(store, result.incident_id)
    assert response.result.status == "succeeded"
    steps = {s.key: s for s in store.steps(result.run_id)}
    assert steps["act/executor"].result["outputs"]["mitigation"]["approved"] == ["recycle-pool", "rollback"]
    audit = [(a.action_id, a.event, a.actor) for a in store.audit_log(result.incident_id)]
    assert ("rollback", "approved", "alice") in audit
    assert ("rollback", "executed", "executor") in audit
    kinds = [e.kind.value for e in store.timeline(result.incident_id)]
    assert "action_approved" in kinds and "action_executed" in kinds


def test_up_front_grant_approves_everything(tmp_path: Path, bundle_dir: Path, store: Store) -> None:
    _, result = run(
        store, bundle_dir, spec_of(tmp_path, GATED), processes=False, execute=True, grant=ApprovalPolicy.ALL
    )
    assert result.status == "succeeded"
    actors = {a.actor for a in store.audit_log(result.incident_id) if a.event == "approved"}
    assert actors == {"cli (--approve all)"}


def test_a_worker_that_dies_is_recorded_and_the_run_goes_on(tmp_path: Path, bundle_dir: Path, store: Store) -> None:
    spec = spec_of(
        tmp_path,
        [
            {"id": "deep", "parallel": [{"agent": f"{A}:Crasher", "id": "crash"}]},
            {"id": "next", "sequence": [{"agent": f"{A}:Sleeper", "id": "sleeper", "params": {"seconds": 0}}]},
        ],
    )
    _, result = run(store, bundle_dir, spec, processes=True, workers=2)
    steps = {s.key: s for s in store.steps(result.run_id)}
    assert steps["deep/crash"].status == "failed" and "worker process died" in (steps["deep/crash"].error or "")
    assert steps["next/sleeper"].status == "succeeded"


def test_respond_runs_its_steps_on_threads_over_one_copy(
    tmp_path: Path, bundle_dir: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from warroom import application
    from warroom.workflow import runner

    def no_second_read(source: object) -> None:
        raise AssertionError("the steps read the telemetry again")

    monkeypatch.setattr(runner, "read_spec", no_second_read)
    spec_path = tmp_path / "wf.yaml"
    spec_path.write_text(yaml.safe_dump({"name": "t", "phases": [{"id": "a", "agent": "incident-commander"}]}))
    response = application.respond(store, BundleSpec(path=str(bundle_dir)), str(spec_path), None)
    assert response.result.status == "succeeded"
    assert store.get_run(response.result.run_id).options["processes"] is False


def test_a_later_proposal_with_the_same_id_revises_the_earlier_one(
    tmp_path: Path, bundle_dir: Path, store: Store
) -> None:
    phases = [GATED[0], {"id": "revise", "agent": f"{A}:Reviser"}, GATED[1]]
    _, result = run(store, bundle_dir, spec_of(tmp_path, phases), processes=False)
    steps = {s.key: s for s in store.steps(result.run_id)}
    assert steps["act/executor/gate"].result["approved"] == ["recycle-pool", "rollback"]  # now low risk
    (row,) = [a for a in store.actions(result.incident_id) if a.action_id == "rollback"]
    assert row.data["title"] == "Roll back checkout to v1" and row.data["risk"] == "low"
    events = [a.event for a in store.audit_log(result.incident_id) if a.action_id == "rollback"]
    assert events[:2] == ["proposed", "revised"]
    proposals = [e.summary for e in store.timeline(result.incident_id) if e.kind.value == "action_proposed"]
    assert sum("Roll back" in p for p in proposals) == 2 and any(p.startswith("revised") for p in proposals)


def test_an_approved_action_is_not_revised(tmp_path: Path, bundle_dir: Path, store: Store) -> None:
    engine, result = run(store, bundle_dir, spec_of(tmp_path, GATED), processes=False, execute=True)
    engine.approve(result.incident_id, "rollback", "alice")
    with store.transaction() as session:
        assert (
            store.propose_action(session, result.incident_id, "rollback", {"id": "rollback", "risk": "low"}) == "kept"
        )
    (row,) = [a for a in store.actions(result.incident_id) if a.action_id == "rollback"]
    assert row.data["risk"] == "high"
