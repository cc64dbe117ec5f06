"""A run that produced little: sections say "not established" and why, and nothing is invented."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_report_support import T0, at
from warroom.incident import Incident, Severity
from warroom.record import PhaseRecord, RunRecord, StepRecord, StepStatus
from warroom.report import write_reports
from warroom.report.lint import lint_reports


def sparse_record() -> RunRecord:
    """Only the assessment ran, and it failed: no diagnosis, no context, no timeline, no actions."""
    return RunRecord(
        incident=Incident(id="INC-2024-002", title="Latency on search", severity=Severity.P3),
        workflow="platform-ops",
        run_status="failed",
        phases=[
            PhaseRecord(
                id="triage",
                title="Triage",
                kind="agent",
                started_at=T0,
                finished_at=at(1),
                steps=[
                    StepRecord(
                        phase_id="triage",
                        step_id="triage/incident-responder",
                        agent="incident-responder",
                        status=StepStatus.FAILED,
                        started_at=T0,
                        finished_at=at(1),
                        error="bundle has no metrics",
                        report=None,
                    )
                ],
            )
        ],
    )


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("sparse")
    write_reports(sparse_record(), out_dir)
    return out_dir


def section(text: str, name: str) -> str:
    return text.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Impact", "no impact analysis ran"),
        ("Detection", "the record holds no alert and no onset"),
        ("Propagation path", "no service left its baseline"),
        ("Timeline", "the run recorded no timeline events"),
        ("Action items", "no post-incident analysis ran"),
    ],
)
def test_absent_sections_say_why(out: Path, name: str, reason: str) -> None:
    text = section((out / "postmortem.md").read_text(), name)
    assert "_Not established: " in text and reason in text


def test_root_cause_subsections_say_why(out: Path) -> None:
    text = section((out / "postmortem.md").read_text(), "Root cause")
    assert "the change history was not looked at in this run" in text
    assert "no root-cause candidate was produced" in text


def test_nothing_is_claimed_that_did_not_happen(out: Path) -> None:
    summary = section((out / "postmortem.md").read_text(), "Summary")
    assert "**Mitigation**: no action was proposed" in summary
    assert "**Recovery**: not checked: no recovery validation ran" in summary
    assert "**Impact**: not measured" in summary
    assert lint_reports(out) == []


def test_failed_step_is_what_went_badly(out: Path) -> None:
    badly = section((out / "postmortem.md").read_text(), "Lessons learned").split("### What went badly", 1)[1]
    assert "incident-responder failed after 1 attempt(s): bundle has no metrics" in badly


def test_follow_up_review_is_scheduled_from_what_exists(out: Path) -> None:
    text = (out / "postmortem.md").read_text()
    assert "Follow-up review: not scheduled (no timestamp to schedule from)" in text
