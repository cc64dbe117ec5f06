"""write_reports on a hand-built critical-incident run: every file, its sections, its numbers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from test_report_support import T0, build_record, impact_facts
from warroom.figures import Figure
from warroom.incident import Evidence, Finding
from warroom.report import REPORT_FILES, write_reports
from warroom.report.evidence import index_evidence
from warroom.report.lint import lint_reports

POSTMORTEM_SECTIONS = (
    "Summary",
    "Impact",
    "Detection",
    "Response",
    "Root cause",
    "Propagation path",
    "Resolution",
    "Timeline",
    "Lessons learned",
    "Action items",
    "Appendix",
)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("reports")
    write_reports(build_record(failed_branch=True), out_dir)
    return out_dir


def section(text: str, name: str) -> str:
    return text.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]


def test_writes_every_file(tmp_path: Path) -> None:
    written = write_reports(build_record(), tmp_path / "nested" / "out")
    assert set(written) == set(REPORT_FILES)
    for name, path in written.items():
        assert path == tmp_path / "nested" / "out" / name
        assert path.stat().st_size > 0
    assert not list((tmp_path / "nested" / "out").glob("*.tmp"))


def test_postmortem_follows_the_industry_structure(out: Path) -> None:
    text = (out / "postmortem.md").read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings == list(POSTMORTEM_SECTIONS)
    for sub in ("Trigger", "Root cause", "Contributing factors", "What went well", "What went badly"):
        assert f"### {sub}" in text
    assert "Blameless" in text
    # Blameless: the change and the code are identified by commit and file, never by person.
    assert "jdoe" not in text
    assert "deploy-4711" in section(text, "Root cause")


def test_summary_is_short_and_every_figure_is_a_fact(out: Path) -> None:
    text = (out / "postmortem.md").read_text()
    summary = [line for line in section(text, "Summary").splitlines() if line.startswith("- ")]
    assert 5 <= len(summary) <= 15
    facts = json.loads((out / "facts.json").read_text())
    impact = next(line for line in summary if line.startswith("- **Impact**"))
    assert "25 % of requests at api-gateway failed" in impact and "3,500 of 14,000 requests" in impact
    assert "revenue impact 42,000 USD (estimated)" in impact
    assert "impact.failure_rate" in impact  # the facts comment the linter reads
    assert facts["figures"]["impact.failure_rate"]["value"] == 0.25
    assert lint_reports(out) == []


def test_impact_table_shows_window_method_and_basis(out: Path) -> None:
    impact = section((out / "postmortem.md").read_text(), "Impact")
    assert (
        "| Failed requests (share) | 25 % | measured | 2024-01-15 14:03:00 UTC → 14:23:00 UTC | failed ÷ all" in impact
    )
    assert "| Revenue impact | 42,000 USD | estimated |" in impact
    assert "Scope: a subset of users: 15,000 of 60,000 active users saw a failure." in impact


def test_a_figure_not_measured_states_no_basis(tmp_path: Path) -> None:
    record = build_record()
    missing = Figure(value=None, unit="count", method="not counted: the logs carry no user_id")
    record.context["impact"] = {**impact_facts().model_copy(update={"users_affected": missing}).as_context()}
    write_reports(record, tmp_path)
    table = section((tmp_path / "postmortem.md").read_text(), "Impact")
    assert "| Users who saw a failure | not measured | — | — | not counted: the logs carry no user_id |" in table


def test_resolution_says_what_each_action_did(out: Path) -> None:
    resolution = section((out / "postmortem.md").read_text(), "Resolution")
    assert (
        "| A1: Kill long-running queries | kill_long_queries | checkout-db | low | executed; recovery not seen |"
        in (resolution)
    )
    assert "executed; recovery verified" in resolution
    assert "Recovery: recovered: signals back to baseline at 14:48:00 UTC after the executed rollback (verified)" in (
        resolution
    )


def test_postmortem_cites_evidence(out: Path) -> None:
    text = (out / "postmortem.md").read_text()
    # Every bullet says what it rests on, or says that it rests on nothing.
    for line in text.splitlines():
        if line.startswith("- "):
            assert "[evidence:" in line or "(source:" in line or "(no evidence cited)" in line, line
    # A candidate citing evidence the run does not hold is called out, not silently passed on:
    # E-deploy came only from the log-analysis branch, which timed out in this run.
    assert "Cited but not found among this run's evidence: E-deploy, E-missing." in text
    table = text.split("### E. Evidence", 1)[1]
    for ev_id in ("E-pool", "E-logs", "E-checkout", "E-after"):
        assert f"| {ev_id} |" in table
    assert "| E-deploy |" not in table


def test_timeline_is_sorted_and_labels_its_clock(out: Path) -> None:
    timeline = section((out / "postmortem.md").read_text(), "Timeline")
    rows = [line for line in timeline.splitlines() if re.match(r"^\| 20", line)]
    times = [r.split("|")[1].strip() for r in rows]
    assert times == sorted(times)
    assert any("| incident | onset |" in r for r in rows) and any("| response | decision |" in r for r in rows)
    assert any("A2 (Roll back checkout-service to v2.13.2): executed; recovery verified" in r for r in rows)


def test_metrics_say_how_they_were_derived(out: Path) -> None:
    metrics = (out / "postmortem.md").read_text().split("### B. Response metrics", 1)[1].split("###", 1)[0]
    assert (
        "| Detection to resolution | 25 min 00 s | detection to resolution: incident.detected_at → verified recovery"
        in (metrics)
    )
    assert "| RTO met | yes |" in metrics


def test_action_items_have_owner_and_due_date(out: Path) -> None:
    items = section((out / "postmortem.md").read_text(), "Action items")
    rows = [line for line in items.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert len(rows) == 2
    assert "checkout team (post-incident analysis)" in rows[0]
    assert "2024-01-22 (policy: 7 days after the verified recovery" in rows[0]
    # No owner given: the incident's technical lead, labelled as a policy default.
    assert "Mike Rodriguez (policy: the incident's technical lead)" in rows[1]
    assert "2024-01-29" in rows[1]
    assert "Follow-up review: 2024-01-22" in items


def test_lessons_are_the_analysts_and_the_runs(out: Path) -> None:
    lessons = section((out / "postmortem.md").read_text(), "Lessons learned")
    badly = lessons.split("### What went badly", 1)[1]
    assert "log-analysis-specialist timed out after 1 attempt(s): timed out after 600 s" in badly
    well = lessons.split("### What went well", 1)[1].split("###", 1)[0]
    assert "Rollback was rehearsed (source: post-incident analysis)" in well
    # The deep-investigation phase had a timed-out branch, so it is not praised for its branches.
    assert "branches of phase deep-investigation" not in well
    assert "3 branches of phase recover ran at once" in well


def test_workflow_md_has_execution_results_per_phase(out: Path) -> None:
    text = (out / "workflow.md").read_text()
    phases = re.findall(r"^### Phase (\d+): (.+) \(`([\w-]+)`\)$", text, flags=re.M)
    assert [p[2] for p in phases] == [
        "assess",
        "investigate",
        "deep-investigation",
        "resolve",
        "recover",
        "postmortem",
    ]
    investigate = text.split("(`investigate`)", 1)[1].split("### Phase 3", 1)[0]
    assert "**Decision**: Path database (condition `signals.db_pool_utilization >= 0.9" in investigate
    assert "**Rationale**: pool utilisation 1.0 >= 0.9" in investigate
    assert "**Agent Used**: database-incident-specialist" in investigate
    assert "**Duration**: 3 min 00 s" in investigate
    assert '"suspect_service": "checkout-service"' in investigate  # context produced
    deep = text.split("(`deep-investigation`)", 1)[1].split("### Phase 4", 1)[0]
    assert "parallel execution: 4 branches, up to 4 at once" in deep
    assert "1 did not succeed" in deep
    for letter, agent in zip(
        "ABCD",
        ["monitoring-specialist", "log-analysis-specialist", "customer-impact-analyst", "security-incident-analyst"],
        strict=True,
    ):
        assert f"#### Branch {letter}: {agent}" in deep
    assert "**Status**: timed_out: timed out after 600 s" in deep
    assert "Pool saturation precedes the latency rise (confidence 80%" in deep
    resolve = text.split("(`resolve`)", 1)[1].split("### Phase 5", 1)[0]
    assert "2. **short_term**: Roll back checkout-service to v2.13.2" in resolve
    assert "`A2`: executed; recovery verified (p99 180 ms)" in resolve
    assert "## Key Metrics Achieved" in text and "## Lessons Learned" in text


def test_timeline_md_lists_every_event_by_time(out: Path) -> None:
    record = build_record()
    text = (out / "timeline.md").read_text()
    rows = [line for line in text.splitlines() if re.match(r"^\| \d+ \| 20", line)]
    assert len(rows) == len(record.timeline)
    times = [r.split("|")[2].strip() for r in rows]
    assert times == sorted(times)
    assert rows[0].startswith("| 1 | 2024-01-15 14:22:00Z | T-1m00s | alert | alertmanager |")
    # A pipe inside a summary is escaped so the table keeps its columns.
    finding_row = next(r for r in rows if "| finding |" in r)
    assert "100% \\| saturated" in finding_row
    assert "E-pool, E-logs, F-pool" in finding_row
    assert f"detection at {T0:%Y-%m-%d %H:%M:%S}Z" in text


def test_diagnosis_json_is_ranked_with_evidence(out: Path) -> None:
    data = json.loads((out / "diagnosis.json").read_text())
    assert data["established"] is True
    first, second = data["candidates"]
    assert first == {
        "rank": 1,
        "service": "checkout-service",
        "fault_type": "db_pool_exhaustion",
        "indicator": "db_pool_utilization",
        "change_id": "deploy-4711",
        "confidence": 0.91,
        "evidence_ids": ["E-pool", "E-logs", "E-deploy"],
        "reason": "pool at 100% after deploy",
    }
    assert second["rank"] == 2 and second["change_id"] is None


def test_diagnosis_falls_back_to_context(tmp_path: Path) -> None:
    record = build_record()
    candidates = [c.model_dump(mode="json") for c in reversed(record.diagnosis)]
    record = record.model_copy(update={"diagnosis": [], "context": {**record.context, "diagnosis": candidates}})
    write_reports(record, tmp_path)
    data = json.loads((tmp_path / "diagnosis.json").read_text())
    assert [c["rank"] for c in data["candidates"]] == [1, 2]


def test_findings_json_has_all_findings_with_evidence(out: Path) -> None:
    data = json.loads((out / "findings.json").read_text())
    findings = data["findings"]
    # 6 findings reported; the log-analysis branch timed out and reported none.
    assert len(findings) == 5
    ids = [f["id"] for f in findings]
    assert len(set(ids)) == len(ids)
    pool = next(f for f in findings if f["id"] == "F-pool")
    assert pool["phase"] == "investigate" and pool["agent"] == "database-incident-specialist"
    assert [e["id"] for e in pool["evidence"]] == ["E-pool", "E-logs"]
    # Evidence without an id gets one derived from its content, the same wherever it is cited.
    latency_ids = {e["id"] for f in findings for e in f["evidence"] if e["query"] == "api-gateway/latency_p99_ms"}
    assert len(latency_ids) == 1 and next(iter(latency_ids)).startswith("E-")
    assert [e["id"] for e in data["context_evidence"]] == ["E-pool"]


def test_ids_are_stable(tmp_path: Path) -> None:
    write_reports(build_record(), tmp_path / "a")
    write_reports(build_record(), tmp_path / "b")
    for name in ("findings.json", "diagnosis.json", "metrics.json", "context.json", "postmortem.md", "workflow.md"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text(), name

    # Ids come from content, not position: a finding added in front leaves the others' ids alone.
    before = {e.finding.title: e.id for e in index_evidence(build_record()).findings}
    record = build_record()
    first = record.phases[0].steps[0].report
    assert first is not None
    first.findings.insert(0, Finding(title="new", confidence=0.5, evidence=[Evidence(source="logs", query="q")]))
    after = {e.finding.title: e.id for e in index_evidence(record).findings}
    assert {t: after[t] for t in before} == before


def test_duplicate_finding_ids_are_made_unique() -> None:
    record = build_record()
    report = record.phases[0].steps[0].report
    assert report is not None
    report.findings.append(Finding(id="F-pool", title="same id, other finding", confidence=0.3))
    ids = [e.id for e in index_evidence(record).findings]
    assert ids.count("F-pool") == 1 and "F-pool-2" in ids


def test_context_json_is_the_context(out: Path) -> None:
    data = json.loads((out / "context.json").read_text())
    record = build_record(failed_branch=True)
    assert set(data) == set(record.context)
    assert data["suspect_change"]["id"] == "deploy-4711"
    assert data["impact"]["users_affected"]["value"] == 15000


def test_without_post_incident_analysis_the_sections_say_so(tmp_path: Path) -> None:
    write_reports(build_record(with_postmortem=False), tmp_path)
    text = (tmp_path / "postmortem.md").read_text()
    assert "_Not established: no post-incident analysis ran" in section(text, "Root cause").split("### Contributing")[1]
    assert "4 branches of phase deep-investigation ran at once" in section(text, "Lessons learned")
    assert lint_reports(tmp_path) == []
