"""The mitigation loop with real subprocesses: dry run, approvals, failure, timeout, failed
verification undone, escalation, exhaustion, and resume without repeating an executed action."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from warroom.actions.contract import Check
from warroom.actions.journal import AuditEvent, AuditStep, InMemoryJournal, JsonlJournal
from warroom.actions.loop import run_mitigation, summarize
from warroom.actions.policy import Approval, ApprovalPolicy, Mode, parse_approvals
from warroom.incident import ActionOutcome, RecommendedAction, RiskLevel

PY = sys.executable
ENV = {"PATH": "/usr/bin:/bin"}


def append(path: Path, text: str) -> list[str]:
    """argv that appends a line to a file (a visible, countable side effect)."""
    return [PY, "-c", f"open({str(path)!r}, 'a').write({text!r} + '\\n')"]


def shell_action(
    action_id: str, argv: list[str], risk: str = "low", kind: str = "restart", **extra
) -> RecommendedAction:
    return RecommendedAction(
        id=action_id,
        title=f"run {action_id}",
        kind=kind,
        risk=RiskLevel(risk),
        parameters={"adapter": "shell", "params": {"argv": argv, **extra}},
    )


def recovered_when(flag: Path):
    def verifier(action: RecommendedAction, outcomes: Sequence[ActionOutcome]) -> Check:
        ok = flag.exists()
        return Check(ok=ok, detail="healthy" if ok else "still failing")

    return verifier


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def steps(journal, action_id: str) -> list[str]:
    return [e.step.value for e in journal.events() if e.action_id == action_id]


def test_dry_run_is_the_default_and_changes_nothing(tmp_path):
    side = tmp_path / "side"
    plan = [shell_action("a1", append(side, "a1")), shell_action("a2", append(side, "a2"), risk="high")]
    journal = InMemoryJournal()
    outcomes = run_mitigation(plan, {}, journal, recovered_when(tmp_path / "flag"), Mode(env=ENV))
    assert [o.status for o in outcomes] == ["dry_run", "dry_run"]
    assert not side.exists()
    assert all("would run" in o.detail for o in outcomes)
    summary = summarize(plan, outcomes, Mode())
    assert summary.dry_run and "would run a1, a2" in summary.summary
    assert steps(journal, "a1") == ["proposed", "dry_run", "completed"]


def test_unapproved_risky_action_is_refused_and_low_risk_runs(tmp_path):
    side, flag = tmp_path / "side", tmp_path / "flag"
    plan = [
        shell_action("risky", append(side, "risky"), risk="high"),
        shell_action(
            "safe", [*append(side, "safe")[:2], f"open({str(flag)!r}, 'w'); open({str(side)!r}, 'a').write('safe\\n')"]
        ),
    ]
    journal = InMemoryJournal()
    mode = Mode(execute=True, policy=ApprovalPolicy.RISKY, env=ENV)
    outcomes = run_mitigation(plan, {}, journal, recovered_when(flag), mode)
    assert [o.status for o in outcomes] == ["skipped", "verified"]
    assert lines(side) == ["safe"]
    assert "needs approval" in outcomes[0].detail
    assert steps(journal, "risky") == ["proposed", "blocked", "completed"]
    summary = summarize(plan, outcomes, mode)
    assert summary.recovered and summary.recovered_by_action == "safe"


def test_policy_all_requires_approval_even_for_low_risk_and_records_who(tmp_path):
    side, flag = tmp_path / "side", tmp_path / "flag"
    plan = [shell_action("low", ["touch", str(flag)])]
    journal = InMemoryJournal()
    mode = Mode(execute=True, policy=ApprovalPolicy.ALL, env=ENV)
    blocked = run_mitigation(plan, {}, journal, recovered_when(flag), mode)
    assert blocked[0].status == "skipped" and not flag.exists()

    journal = InMemoryJournal()
    approvals = parse_approvals([{"action_id": "low", "approved_by": "alice", "approved_at": "2026-01-02T03:04:05Z"}])
    outcomes = run_mitigation(plan, approvals, journal, recovered_when(flag), mode)
    assert outcomes[0].status == "verified" and outcomes[0].verified is True
    approved = next(e for e in journal.events() if e.step is AuditStep.APPROVED)
    assert approved.actor == "alice" and approved.data["approved_at"].startswith("2026-01-02T03:04:05")
    assert outcomes[0].data["approved_by"] == "alice"
    assert not side.exists()


def test_failure_and_timeout_escalate_to_the_next_action(tmp_path):
    flag = tmp_path / "flag"
    plan = [
        shell_action("fails", [PY, "-c", "import sys; sys.exit(2)"]),
        shell_action("hangs", [PY, "-c", "import time; time.sleep(30)"], timeout_s=0.5),
        shell_action("fixes", ["touch", str(flag)]),
        shell_action("never", ["touch", str(tmp_path / "never")]),
    ]
    journal = InMemoryJournal()
    mode = Mode(execute=True, policy=ApprovalPolicy.NONE, env=ENV)
    outcomes = run_mitigation(plan, {}, journal, recovered_when(flag), mode)
    assert [o.status for o in outcomes] == ["failed", "timed_out", "verified"]
    assert not (tmp_path / "never").exists()
    assert steps(journal, "hangs") == ["proposed", "started", "timed_out", "completed"]
    finished = next(e for e in journal.events() if e.step is AuditStep.FINISHED)
    assert finished.data["recovered_by_action"] == "fixes"


def test_failed_verification_is_undone_then_escalated(tmp_path):
    state, flag = tmp_path / "state", tmp_path / "flag"
    plan = [
        shell_action(
            "bad-change",
            ["touch", str(state)],
            verify_argv=[PY, "-c", "import sys; sys.exit(1)"],  # the change did not take effect
            undo_argv=["rm", "-f", str(state)],
        ),
        shell_action("good-change", ["touch", str(flag)]),
    ]
    journal = InMemoryJournal()
    outcomes = run_mitigation(
        plan, {}, journal, recovered_when(flag), Mode(execute=True, policy=ApprovalPolicy.NONE, env=ENV)
    )
    assert [o.status for o in outcomes] == ["undone", "verified"]
    assert not state.exists()
    assert steps(journal, "bad-change") == ["proposed", "started", "executed", "not_recovered", "undone", "completed"]


def test_not_recovered_is_undone_and_exhaustion_is_reported(tmp_path):
    state = tmp_path / "state"
    plan = [
        shell_action("undoable", ["touch", str(state)], undo_argv=["rm", "-f", str(state)]),
        shell_action("permanent", ["true"]),
        RecommendedAction(id="manual", title="Call the vendor", kind="failover_dependency", risk=RiskLevel.LOW),
    ]
    journal = InMemoryJournal()
    mode = Mode(execute=True, policy=ApprovalPolicy.NONE, env=ENV)
    outcomes = run_mitigation(plan, {}, journal, recovered_when(tmp_path / "flag"), mode)
    assert [o.status for o in outcomes] == ["undone", "executed", "skipped"]
    assert not state.exists()
    assert "cannot be undone" in outcomes[1].detail
    assert "manual step" in outcomes[2].detail
    summary = summarize(plan, outcomes, mode)
    assert summary.exhausted and not summary.recovered
    assert "runbook exhausted" in summary.summary


def test_resume_never_repeats_an_executed_action(tmp_path):
    side, flag = tmp_path / "side", tmp_path / "flag"
    plan = [
        shell_action("first", append(side, "first")),
        shell_action("second", [PY, "-c", f"open({str(side)!r}, 'a').write('second\\n'); open({str(flag)!r}, 'w')"]),
    ]
    mode = Mode(execute=True, policy=ApprovalPolicy.NONE, env=ENV)
    path = tmp_path / "audit.jsonl"
    # First run: only the first action is in the plan when the "crash" happens.
    run_mitigation(plan[:1], {}, JsonlJournal(path), recovered_when(flag), mode)
    assert lines(side) == ["first"]
    # Resume with the full plan and a fresh journal object over the same file.
    outcomes = run_mitigation(plan, {}, JsonlJournal(path), recovered_when(flag), mode)
    assert lines(side) == ["first", "second"]
    assert [o.status for o in outcomes] == ["executed", "verified"]
    # A third run repeats nothing at all.
    again = run_mitigation(plan, {}, JsonlJournal(path), recovered_when(flag), mode)
    assert lines(side) == ["first", "second"]
    assert [o.action_id for o in again] == ["first", "second"]


def test_action_started_before_a_crash_is_not_repeated(tmp_path):
    side = tmp_path / "side"
    journal = JsonlJournal(tmp_path / "audit.jsonl")
    journal.record(AuditEvent(action_id="risky", kind="restart", step=AuditStep.PROPOSED))
    journal.record(AuditEvent(action_id="risky", kind="restart", step=AuditStep.STARTED))
    with (tmp_path / "audit.jsonl").open("a") as handle:
        handle.write('{"action_id": "risky", "step": "exec')  # torn line from the crash
    plan = [shell_action("risky", append(side, "risky"))]
    outcomes = run_mitigation(plan, {}, journal, None, Mode(execute=True, policy=ApprovalPolicy.NONE, env=ENV))
    assert outcomes[0].status == "failed" and outcomes[0].data["interrupted"] is True
    assert not side.exists()


def test_an_action_executed_before_a_stop_is_verified_on_resume_not_repeated(tmp_path):
    """The run stopped while a live check waited for the change to take effect: the resumed run
    goes on with the check, from the moment the change was made, and never runs it again."""
    side, flag = tmp_path / "side", tmp_path / "flag"
    journal = JsonlJournal(tmp_path / "audit.jsonl")
    for step in (AuditStep.PROPOSED, AuditStep.STARTED, AuditStep.EXECUTED):
        journal.record(AuditEvent(action_id="restart", kind="restart", step=step, detail="exit 0"))
    executed_at = journal.events()[-1].at
    flag.touch()
    asked: list[Sequence[ActionOutcome]] = []

    def verifier(action: RecommendedAction, outcomes: Sequence[ActionOutcome]) -> Check:
        asked.append(outcomes)
        return recovered_when(flag)(action, outcomes)

    plan = [shell_action("restart", append(side, "restart"))]
    outcomes = run_mitigation(plan, {}, journal, verifier, Mode(execute=True, policy=ApprovalPolicy.NONE, env=ENV))
    assert not side.exists()  # not run again
    assert [o.status for o in outcomes] == ["verified"] and outcomes[0].data["resumed"] is True
    assert asked[0][-1].data["at"] == executed_at.isoformat()  # the check reads from the change's moment
    assert steps(journal, "restart")[-2:] == ["verified", "completed"]


def test_secrets_in_actions_never_reach_the_journal(tmp_path):
    secret = "postgres://app:Hunter2Hunter2@db/shop"
    plan = [shell_action("leaky", [PY, "-c", f"print({secret!r}); print('token=ghp_' + 'a'*36)"])]
    path = tmp_path / "audit.jsonl"
    outcomes = run_mitigation(
        plan, {}, JsonlJournal(path), None, Mode(execute=True, policy=ApprovalPolicy.NONE, env=ENV)
    )
    text = path.read_text()
    assert "Hunter2Hunter2" not in text and "ghp_aaaa" not in text
    assert "Hunter2Hunter2" not in outcomes[0].model_dump_json()


def test_approvals_parse_from_every_shape():
    assert set(parse_approvals(["a", "b"])) == {"a", "b"}
    by_map = parse_approvals({"a": "bob", "b": {"approved_by": "carol"}})
    assert by_map["a"].approved_by == "bob" and by_map["b"].approved_by == "carol"
    assert isinstance(parse_approvals([Approval(action_id="x")])["x"], Approval)


def test_unknown_adapter_and_bad_params_are_failed_outcomes(tmp_path):
    plan = [
        RecommendedAction(id="u", title="?", kind="restart", risk=RiskLevel.LOW, parameters={"adapter": "nope"}),
        RecommendedAction(
            id="b",
            title="?",
            kind="restart",
            risk=RiskLevel.LOW,
            parameters={"adapter": "shell", "params": {"argv": "rm -rf /"}},
        ),
    ]
    outcomes = run_mitigation(plan, {}, InMemoryJournal(), None, Mode(execute=True, policy=ApprovalPolicy.NONE))
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert "unknown action adapter" in outcomes[0].detail


def test_a_shared_journal_file_keeps_incidents_apart(tmp_path):
    side = tmp_path / "side"
    plan = [shell_action("same-id", append(side, "run"))]
    mode = Mode(execute=True, policy=ApprovalPolicy.NONE, env=ENV)
    path = tmp_path / "audit.jsonl"
    run_mitigation(plan, {}, JsonlJournal(path, "INC-1"), None, mode)
    run_mitigation(plan, {}, JsonlJournal(path, "INC-1"), None, mode)  # resumed: not repeated
    run_mitigation(plan, {}, JsonlJournal(path, "INC-2"), None, mode)  # another incident: runs
    assert lines(side) == ["run", "run"]
    assert {e.incident_id for e in JsonlJournal(path).events()} == {"INC-1", "INC-2"}
