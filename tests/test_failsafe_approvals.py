"""Reject and skip: a human's no is audited and on the timeline, and the run goes on (issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from test_engine import GATED, run, spec_of
from warroom.application import resume
from warroom.cli import app
from warroom.errors import InputError
from warroom.store.repository import Store


def test_a_rejected_action_is_never_taken_and_the_run_goes_on(tmp_path: Path, bundle_dir: Path, store: Store) -> None:
    engine, result = run(store, bundle_dir, spec_of(tmp_path, GATED), processes=False, execute=True)
    assert result.status == "waiting_approval" and [a["id"] for a in result.pending] == ["rollback"]
    engine.reject(result.incident_id, "rollback", "alice", "rollback window closed")
    response = resume(store, result.incident_id)
    assert response.result.status == "succeeded"  # no longer blocked by the unapproved action
    steps = {s.key: s for s in store.steps(result.run_id)}
    gate = steps["act/executor/gate"].result
    assert gate["rejected"] == ["rollback"] and gate["not_approved"] == [] and gate["approved"] == ["recycle-pool"]
    assert steps["act/executor"].result["outputs"]["mitigation"]["approved"] == ["recycle-pool"]  # the next action
    audit = [(a.action_id, a.event, a.actor, a.data.get("reason")) for a in store.audit_log(result.incident_id)]
    assert ("rollback", "rejected", "alice", "rollback window closed") in audit
    assert not any(a[0] == "rollback" and a[1] == "executed" for a in audit)
    rejected = [e for e in store.timeline(result.incident_id) if e.kind.value == "action_rejected"]
    assert len(rejected) == 1 and "rollback window closed" in rejected[0].summary
    assert {r.action_id: r.status for r in store.actions(result.incident_id)}["rollback"] == "rejected"


def test_skip_sets_an_action_aside_and_late_or_repeated_decisions_are_refused(
    tmp_path: Path, bundle_dir: Path, store: Store
) -> None:
    engine, result = run(store, bundle_dir, spec_of(tmp_path, GATED), processes=False, execute=True)
    with pytest.raises(InputError, match="reason"):
        engine.skip(result.incident_id, "rollback", "bob", "  ")
    engine.skip(result.incident_id, "rollback", "bob", "doing it by hand")
    with pytest.raises(InputError, match="already skipped"):
        engine.approve(result.incident_id, "rollback", "carol")
    assert resume(store, result.incident_id).result.status == "succeeded"
    with pytest.raises(InputError, match="too late"):
        engine.reject(result.incident_id, "recycle-pool", "bob", "changed my mind")  # already executed
    kinds = [e.kind.value for e in store.timeline(result.incident_id)]
    assert kinds.count("action_skipped") == 1


def test_cli_reject_and_skip(tmp_path: Path, bundle_dir: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = Store(url)
    _, result = run(store, bundle_dir, spec_of(tmp_path, GATED), processes=False, execute=True)
    store.close()
    cli = CliRunner()
    done = cli.invoke(app, ["reject", result.incident_id, "rollback", "--by", "alice", "--db", url])
    assert done.exit_code == 2 and "--reason" in done.output  # the reason is required
    done = cli.invoke(
        app, ["reject", result.incident_id, "rollback", "--reason", "too risky", "--by", "alice", "--db", url]
    )
    assert done.exit_code == 0, done.output
    done = cli.invoke(app, ["skip", result.incident_id, "nope", "--reason", "x", "--db", url])
    assert done.exit_code == 2 and "has no action 'nope'" in done.output
    done = cli.invoke(app, ["resume", result.incident_id, "--json", "--db", url])
    assert '"run_status": "succeeded"' in done.output
