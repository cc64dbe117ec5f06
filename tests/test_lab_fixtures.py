"""Captures of the live lab (tests/fixtures/lab/<fault>/, truth beside) read as a user reads them.

Each fixture is `warroom lab capture --gzip` of a real fault on the normal timeline. The test
holds warroom to what a capture must give it: `bundle validate` accepts the folder, `respond`
runs to an outcome that is not bad input (0 diagnosed, 3 cause not established or failed steps)
and the reports it writes pass the report linter. What it diagnosed is scored elsewhere (the
truth is never given to warroom); here only that it reads the system's own exports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warroom.cli import app
from warroom.report.lint import lint_reports

FIXTURES = Path(__file__).parent / "fixtures" / "lab"
CAPTURES = sorted(path for path in FIXTURES.iterdir() if path.is_dir())


def _warroom(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WARROOM_DB": f"sqlite:///{tmp_path / 'store.db'}", "XDG_CACHE_HOME": str(tmp_path / "c")}
    return subprocess.run(
        [sys.executable, "-m", "warroom", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_every_capture_has_its_truth_beside_it_and_never_inside() -> None:
    assert CAPTURES
    for capture in CAPTURES:
        truth = json.loads((FIXTURES / f"{capture.name}.truth.json").read_text())
        assert truth["fault"] == capture.name
        assert not list(capture.rglob("*truth*"))


# The one respond runs on (seconds of CPU each); every fixture is checked for its truth above.
CAPTURE = FIXTURES / "cpu_consumption"


@pytest.fixture(scope="module")
def responded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    tmp = tmp_path_factory.mktemp("lab-capture")
    out = tmp / "out"
    return out, _warroom(tmp, "respond", str(CAPTURE), "--out", str(out), "--json")


def test_a_capture_validates() -> None:
    # In process: one interpreter start less than a subprocess (respond below needs its own).
    checked = CliRunner().invoke(app, ["bundle", "validate", str(CAPTURE)])
    assert checked.exit_code == 0, checked.output
    shown = " ".join(checked.output.split())  # Rich wraps at the runner's width
    assert "valid bundle" in shown
    assert "manifest: derived from the alert" in shown


def test_a_capture_responds(responded: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    _, done = responded
    assert done.returncode in (0, 3), done.stderr
    result = json.loads(done.stdout)
    assert result["status"] in ("diagnosed", "cause_not_established", "failed_steps")
    assert result["diagnosis"], "a capture with firing alerts gives at least one candidate"


def test_the_reports_of_a_capture_lint(responded: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, done = responded
    assert done.returncode in (0, 3), done.stderr
    assert lint_reports(out) == []
