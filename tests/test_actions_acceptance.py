"""Issue 5 acceptance: a runbook against real local targets — PostgreSQL with a long query holding a
connection, a loopback HTTP service whose health recovers after a restart, a git deploy repository
with a bad head — executed with every action approved, and the same run as a dry run."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actions_helpers import LongQuery, deploy_repo, git, http_service
from test_actions_runbook import make_bundle
from warroom.agents.base import AgentContext
from warroom.agents.change_executor import ChangeExecutor
from warroom.sources.bundle import load_bundle

pgserver = pytest.importorskip("pgserver")

SECRET = "Acc3ptance-Pg-Passw0rd"

RUNBOOK = """
name: checkout-local
description: Acceptance runbook against local targets.
match:
  fault_types: [acceptance_pool_exhaustion]
recovery: checkout health endpoint answers 200 and the deploy repository is back on the good release.
steps:
  - id: kill-long-queries
    kind: kill_long_queries
    title: Terminate checkout's long queries
    risk: medium
    rollback: Not reversible.
    adapter: sql.terminate_long_queries
    params: {url_env: ACCEPTANCE_DB_URL, min_seconds: 0.5, application: "{service}"}
  - id: restart-checkout
    kind: restart
    title: Restart {service}
    risk: medium
    rollback: Nothing to undo.
    adapter: http
    params:
      method: POST
      url: "{service_url}/restart"
      backoff_s: 0.05
      verify: {url: "{service_url}/health", expect_status: [200]}
  - id: rollback-deploy
    kind: rollback
    title: Revert the bad release {change_commit}
    risk: high
    rollback: Revert the revert.
    adapter: git.revert
    params: {repo: "{deploy_repo}", commit: "{change_commit}", branch: main}
"""


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    # Its own temporary directory, not pytest's: pytest prunes old basetemp folders, which can pull
    # the data directory from under a server when several test sessions run at once.
    folder = tempfile.mkdtemp(prefix="warroom-pg-")
    server = pgserver.get_server(folder, cleanup_mode="stop")
    try:
        yield server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def setup(tmp_path: Path, pg_url: str, base: str, monkeypatch: pytest.MonkeyPatch, execute: bool):
    repo = tmp_path / "deploy"
    commits = deploy_repo(repo)
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "checkout.yaml").write_text(RUNBOOK)
    monkeypatch.setenv("ACCEPTANCE_DB_URL", pg_url.replace("postgres:@", f"postgres:{SECRET}@", 1))
    bundle = load_bundle(make_bundle(tmp_path / "bundle"))
    out = tmp_path / "out"
    ctx = AgentContext(
        telemetry=bundle,
        incident_id="INC-2026-005",
        context={
            "diagnosis": [
                {
                    "rank": 1,
                    "service": "checkout",
                    "fault_type": "acceptance_pool_exhaustion",
                    "indicator": "db_pool_utilization",
                    "confidence": 0.9,
                    "change_id": commits["bad"],
                }
            ]
        },
        params={
            "execute": execute,
            "target": "live",
            "approval_policy": "all",
            "approved_actions": {
                a: {"approved_by": "oncall@example.com", "approved_at": "2026-03-01T12:05:00Z"}
                for a in ("kill-long-queries", "restart-checkout", "rollback-deploy")
            },
            "runbooks": [str(tmp_path / "runbooks")],
            "action_vars": {"service_url": base, "deploy_repo": str(repo), "change_commit": commits["bad"]},
            "recovery_probe": {
                "http": {"url": f"{base}/health", "expect_status": [200]},
                "argv": ["git", "-C", str(repo), "diff", "--quiet", commits["good"], "HEAD"],
            },
            "out_dir": str(out),
        },
    )
    return ctx, repo, commits, out


def test_executed_runbook_fixes_all_three_targets_and_audits_every_step(tmp_path, pg_url, monkeypatch):
    query = LongQuery(pg_url, seconds=120, application="checkout").start(pg_url)
    with http_service() as (base, state):
        ctx, repo, commits, out = setup(tmp_path, pg_url, base, monkeypatch, execute=True)
        time.sleep(0.6)  # the query must be older than the runbook's 0.5 s threshold
        report = ChangeExecutor().run(ctx)
        mitigation = report.outputs["mitigation"]
        statuses = [(o.action_id, o.status) for o in report.outcomes]
        assert statuses == [
            ("kill-long-queries", "executed"),
            ("restart-checkout", "executed"),
            ("rollback-deploy", "verified"),
        ], [o.detail for o in report.outcomes]
        # the long query is terminated
        assert query.finished.wait(10) and query.error
        # the service was restarted and its probe passes
        assert state.restarts == 1 and state.healthy
        # the rollback commit exists
        assert f"This reverts commit {commits['bad']}" in git(repo, "log", "-1", "--format=%B")
        assert mitigation["recovered_by"] == "rollback" and mitigation["recovered"] is True
        assert mitigation["plan_source"] == "runbook checkout-local"

        steps = {}
        for event in mitigation["audit"]:
            steps.setdefault(event["action_id"], []).append(event["step"])
        for action in ("kill-long-queries", "restart-checkout"):
            assert steps[action][:5] == ["proposed", "approved", "started", "executed", "not_recovered"]
        assert steps["rollback-deploy"] == ["proposed", "approved", "started", "executed", "verified", "completed"]
        approved = next(e for e in mitigation["audit"] if e["step"] == "approved")
        assert approved["actor"] == "oncall@example.com" and approved["data"]["approved_at"].startswith("2026-03-01")
        assert steps[""] == ["finished"]

        # the same steps are on the timeline, with who approved
        timeline = [(e.kind.value, e.data["action_id"], e.data["step"]) for e in report.timeline]
        assert ("action_approved", "rollback-deploy", "approved") in timeline
        assert ("action_executed", "kill-long-queries", "executed") in timeline
        assert ("action_verified", "restart-checkout", "not_recovered") in timeline
        assert ("action_verified", "rollback-deploy", "verified") in timeline
        assert next(e for e in report.timeline if e.kind.value == "action_approved").source == "oncall@example.com"

        journal = (out / "actions-audit.jsonl").read_text()
        assert len(journal.splitlines()) == len(mitigation["audit"])
        everything = journal + json.dumps(report.model_dump(mode="json"))
        assert SECRET not in everything


def test_dry_run_changes_nothing_and_lists_what_would_run(tmp_path, pg_url, monkeypatch):
    query = LongQuery(pg_url, seconds=30, application="checkout").start(pg_url)
    with http_service() as (base, state):
        ctx, repo, commits, out = setup(tmp_path, pg_url, base, monkeypatch, execute=False)
        time.sleep(0.6)
        report = ChangeExecutor().run(ctx)
        assert [o.status for o in report.outcomes] == ["dry_run", "dry_run", "dry_run"]
        details = [o.detail for o in report.outcomes]
        assert "would terminate 1 backend(s)" in details[0]
        assert f"POST {base}/restart" in details[1]
        assert "would revert" in details[2] and "new order handler" in details[2]
        assert not query.finished.is_set()
        assert state.restarts == 0 and not state.recorded("/restart")
        assert git(repo, "rev-parse", "HEAD") == commits["bad"]
        assert report.outputs["mitigation"]["dry_run"] is True
        assert (
            "would run kill-long-queries, restart-checkout, rollback-deploy" in report.outputs["mitigation"]["summary"]
        )
        assert SECRET not in json.dumps(report.model_dump(mode="json")) + (out / "actions-audit.jsonl").read_text()
    # terminate the dry run's query so the server shuts down promptly
    from warroom.actions.contract import RunOptions
    from warroom.actions.sql import TerminateLongQueries

    adapter = TerminateLongQueries()
    adapter.execute(adapter.parse({"url": pg_url, "min_seconds": 0, "application": "checkout"}), RunOptions())


def test_unapproved_run_is_refused_under_policy_all(tmp_path, pg_url, monkeypatch):
    with http_service() as (base, state):
        ctx, repo, commits, _ = setup(tmp_path, pg_url, base, monkeypatch, execute=True)
        ctx.params["approved_actions"] = ["kill-long-queries"]  # only the first one
        report = ChangeExecutor().run(ctx)
        statuses = [o.status for o in report.outcomes]
        assert statuses[1:] == ["skipped", "skipped"]
        assert state.restarts == 0 and git(repo, "rev-parse", "HEAD") == commits["bad"]
        assert "awaiting approval: restart-checkout, rollback-deploy" in report.outputs["mitigation"]["summary"]
