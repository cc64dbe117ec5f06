"""A generated scenario run with --execute: the reports pass the linter and claim only what ran.

The bundle has no live targets, so every action of the plan is a manual step: skipped, never
executed. The incident must stay short of monitoring and resolved, whatever the recorded data
after an action shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from warroom.report.lint import lint_reports


@pytest.mark.long
def test_execute_on_a_generated_scenario(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    env = {**os.environ, "WARROOM_DB": f"sqlite:///{tmp_path / 'store.db'}", "XDG_STATE_HOME": str(tmp_path)}
    warroom = [sys.executable, "-m", "warroom"]
    made = subprocess.run(
        [*warroom, "scenario", "generate", "missing-index", "--seed", "3", "--scale", "small", "--out", str(bundle)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    out = tmp_path / "out"
    done = subprocess.run(
        [*warroom, "respond", str(bundle), "--out", str(out), "--execute", "--approve", "all", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert lint_reports(out) == []
    facts = json.loads((out / "facts.json").read_text())
    assert facts["actions"] and not [a for a in facts["actions"] if a["mode"] == "executed"]
    assert facts["mitigated_at"] is None and facts["resolved_at"] is None and not facts["recovery"]["verified"]
    incident = subprocess.run(
        [*warroom, "incidents", "show", json.loads(done.stdout)["incident_id"]], env=env, capture_output=True, text=True
    )
    assert json.loads(incident.stdout)["status"] == "mitigating"
    summary = (out / "postmortem.md").read_text().split("## Summary", 1)[1].split("## ", 1)[0]
    assert "nothing was changed by warroom" in summary and "not executed" in summary
