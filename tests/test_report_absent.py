"""A run that produced little: sections say "not established" and why, and nothing is invented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_report_support import T0, at
from warroom.incident import AgentReport, Incident, Severity
from warroom.record import PhaseRecord, RunRecord, StepRecord, StepStatus
from warroom.report import write_reports


def sparse_record() -> RunRecord:
    """Only the assessment ran: no diagnosis, no context, no timeline, no actions."""
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
        ("Impact", "no 'impact' in the run's context and no business context on the incident"),
        ("Timeline", "the timeline holds no alert, decision, action or communication events"),
        ("Contributing factors", "no post-incident analysis ran ('postmortem' absent from the context)"),
        ("Action items", "no post-incident analysis ran ('postmortem' absent from the context)"),
        ("What went well", "the run record shows no met target"),
        ("Evidence", "no finding in this run carried evidence"),
    ],
)
def test_absent_sections_say_why(out: Path, name: str, reason: str) -> None:
    text = section((out / "postmortem.md").read_text(), name)
    assert "_Not established: " in text
    assert reason in text


def test_root_cause_subsections_say_why(out: Path) -> None:
    text = (out / "postmortem.md").read_text()
    root = section(text, "Root cause")
    assert "no root-cause candidate was produced" in root
    assert "the investigation produced no ranked root-cause candidates" in root
    assert "change correlation did not run ('suspect_change' absent from the context)" in root
    assert "no code analysis ran ('code_findings' absent from the context)" in root


def test_failed_step_is_a_challenge(out: Path) -> None:
    text = section((out / "postmortem.md").read_text(), "Challenges")
    assert "incident-responder in phase triage failed after 1 min 00 s: bundle has no metrics" in text


def test_follow_up_review_is_scheduled_from_what_exists(out: Path) -> None:
    text = section((out / "postmortem.md").read_text(), "Follow-up review")
    # No detection, mitigation or resolution timestamp, and no timeline: nothing to schedule from.
    assert "not established" in text


def test_metrics_are_null_with_reasons(out: Path) -> None:
    data = json.loads((out / "metrics.json").read_text())
    for key in (
        "detection_to_assessment_min",
        "assessment_to_investigation_min",
        "investigation_to_resolution_min",
        "total_resolution_min",
        "rto_met",
        "communication_interval_min",
    ):
        assert data[key] is None, key
        assert data["basis"][key].startswith("not derivable"), key
    assert data["run_seconds"] == 60.0


def test_diagnosis_json_says_not_established(out: Path) -> None:
    data = json.loads((out / "diagnosis.json").read_text())
    assert data == {
        "incident_id": "INC-2024-002",
        "established": False,
        "reason": "the investigation produced no ranked root-cause candidates",
        "candidates": [],
    }


def test_empty_findings_and_context(out: Path) -> None:
    assert json.loads((out / "findings.json").read_text())["findings"] == []
    assert json.loads((out / "context.json").read_text()) == {}
    workflow = (out / "workflow.md").read_text()
    assert "_No report: the step did not complete._" in workflow
    assert "**Status**: failed: bundle has no metrics" in workflow
    timeline = (out / "timeline.md").read_text()
    assert "_Not established: the run recorded no timeline events._" in timeline


def test_empty_report_shows_no_findings(tmp_path: Path) -> None:
    record = sparse_record()
    step = record.phases[0].steps[0]
    step.status = StepStatus.SUCCEEDED
    step.report = AgentReport(agent="incident-responder", summary="nothing found")
    write_reports(record, tmp_path)
    assert "**Key Findings**: none reported." in (tmp_path / "workflow.md").read_text()
