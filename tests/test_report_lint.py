"""The report linter fails on each defect a signer would reject, and passes the reports we write."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from test_report_support import build_record
from warroom.report import write_reports
from warroom.report.lint import lint_reports


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    write_reports(build_record(), out)
    return out


def planted(clean: Path, tmp_path: Path, name: str, change: Callable[[str], str]) -> list[str]:
    """The rules the linter reports after one change to one file of a clean report."""
    copy = tmp_path / "report"
    shutil.copytree(clean, copy)
    path = copy / name
    path.write_text(change(path.read_text()))
    return sorted({p.rule for p in lint_reports(copy)})


def test_the_reports_we_write_pass(clean: Path) -> None:
    assert lint_reports(clean) == []


def append_line(text: str) -> Callable[[str], str]:
    return lambda doc: doc.replace("\n## Detection", f"\n{text}\n\n## Detection", 1)


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (append_line("Revert the offending commit {change_commit}."), "placeholder"),
        (append_line("Owner: None."), "placeholder"),
        (append_line("Critical services: []"), "empty-value"),
        (append_line("z-score 2716792452830 above baseline"), "raw-float"),
        (append_line("baseline median 0.07980000000000001"), "raw-float"),
        (append_line("Change correlation: no change precedes the onset."), "change-claim"),
        (append_line("Roll back change CHG-9999 on checkout."), "change-claim"),
        (append_line("It came with commit abcdef1234."), "change-claim"),
    ],
)
def test_each_defect_is_caught(clean: Path, tmp_path: Path, change: Callable[[str], str], rule: str) -> None:
    assert rule in planted(clean, tmp_path, "postmortem.md", change)


def test_a_summary_number_must_be_the_cited_fact(clean: Path, tmp_path: Path) -> None:
    # 25 % is the fact; 44.5 % (a single-sample peak) is not.
    rules = planted(
        clean,
        tmp_path,
        "postmortem.md",
        lambda t: t.replace("25 % of requests at api-gateway", "44.5 % of requests at api-gateway", 1),
    )
    assert rules == ["summary-fact"]
    html = planted(
        clean, tmp_path / "h", "postmortem.html", lambda t: t.replace("3,500 of 14,000", "3,600 of 14,000", 1)
    )
    assert html == ["summary-fact"]


def test_a_timeline_going_backwards_is_caught(clean: Path, tmp_path: Path) -> None:
    def swap(text: str) -> str:
        start = text.index("## Timeline")
        rows = [m.start() for m in re.finditer(r"^\| 20\d\d-", text, flags=re.M) if m.start() > start]
        assert len(rows) >= 2
        first_end = text.index("\n", rows[0])
        second_end = text.index("\n", rows[1])
        a, b = text[rows[0] : first_end], text[rows[1] : second_end]
        return text[: rows[0]] + b + text[first_end : rows[1]] + a + text[second_end:]

    assert "timeline-order" in planted(clean, tmp_path, "postmortem.md", swap)


def test_recovery_claims_need_a_verified_recovery(clean: Path, tmp_path: Path) -> None:
    copy = tmp_path / "report"
    shutil.copytree(clean, copy)
    facts = json.loads((copy / "facts.json").read_text())
    facts["recovery"]["verified"] = False
    (copy / "facts.json").write_text(json.dumps(facts))
    path = copy / "postmortem.md"
    path.write_text(path.read_text() + "\nRecovered by action kind 'rollback'.\n")
    found = [p for p in lint_reports(copy) if p.rule == "recovery-claim"]
    assert any("recovered by" in p.message.lower() for p in found)


def test_a_rollback_without_any_change_in_the_data(clean: Path, tmp_path: Path) -> None:
    copy = tmp_path / "report"
    shutil.copytree(clean, copy)
    facts = json.loads((copy / "facts.json").read_text())
    facts["changes"] = {"history": False, "checked": True, "ids": [], "commits": [], "preceding": [], "suspect": None}
    (copy / "facts.json").write_text(json.dumps(facts))
    problems = lint_reports(copy)
    assert any(p.rule == "change-claim" and p.file == "facts.json" and "A2" in p.message for p in problems)


def test_cli_exit_codes(clean: Path, tmp_path: Path) -> None:
    run = [sys.executable, "-m", "warroom", "report", "lint"]
    ok = subprocess.run([*run, str(clean)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "no problems" in ok.stdout
    bad = tmp_path / "bad"
    shutil.copytree(clean, bad)
    (bad / "timeline.md").write_text((bad / "timeline.md").read_text() + "\nValue: {missing}\n")
    failed = subprocess.run([*run, str(bad)], capture_output=True, text=True, check=False)
    assert failed.returncode == 1 and "timeline.md:" in failed.stdout and "placeholder" in failed.stdout
    missing = subprocess.run([*run, str(tmp_path / "nowhere")], capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr


def test_a_long_value_is_cut_between_words_not_inside_an_address() -> None:
    """An evidence value longer than a table cell holds is cut at a word: cut inside an address
    (`100.64…`) it would read as a number nobody wrote, which the linter rejects."""
    from warroom.report.render import fmt_value

    text = fmt_value(["a" * 228, "100.64.0.0/20"])  # 240 characters would end inside the address
    assert text == "a" * 228 + " …"
    assert fmt_value(["a" * 20, "100.64.0.0/20"]) == "a" * 20 + ", 100.64.0.0/20"
