"""`warroom bench captures`: real incidents (lab captures with their truth beside them) replayed
through respond and scored as the live loop scores them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warroom.analysis.diagnosis.calibration import CalibrationMap
from warroom.bench.calibrate import read_cases
from warroom.bench.captures import find_captures, run_capture_bench
from warroom.cli import app
from warroom.errors import InputError

FIXTURES = Path(__file__).parent / "fixtures" / "lab"


def _corpus(tmp_path: Path, name: str) -> Path:
    root = tmp_path / "captures"
    root.mkdir()
    (root / name).symlink_to(FIXTURES / name, target_is_directory=True)
    shutil.copy(FIXTURES / f"{name}.truth.json", root / f"{name}.truth.json")
    return root


def test_a_folder_without_truths_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "lonely").mkdir()
    with pytest.raises(InputError, match="no capture with its truth beside it"):
        find_captures(tmp_path)


def test_a_truth_that_is_not_one_names_its_file_and_exits_2(tmp_path: Path) -> None:
    root = _corpus(tmp_path, "cpu_consumption")
    broken = json.loads((root / "cpu_consumption.truth.json").read_text())
    del broken["service"]
    (root / "cpu_consumption.truth.json").write_text(json.dumps(broken))
    done = CliRunner().invoke(app, ["bench", "captures", str(root)])
    assert done.exit_code == 2
    assert "cpu_consumption.truth.json" in done.output and "service" in done.output
    assert "Traceback" not in done.output


@pytest.mark.long
def test_a_capture_is_scored_on_every_field_and_feeds_the_calibration(tmp_path: Path) -> None:
    root = _corpus(tmp_path, "cpu_consumption")
    result = run_capture_bench(root, tmp_path / "work")
    (case,) = result["per_case"]
    assert case["rank"] == 1 and case["top_service"] == "catalog"
    assert case["correct"] == {
        "service": True,
        "fault_type": True,
        "change": True,
        "location": True,
        "first_action": True,
    }
    assert case["first_action"] == "rollback"
    assert result["all_right"] == 1
    path = tmp_path / "captures.json"
    path.write_text(json.dumps(result))
    (calibration_case,) = read_cases([path], CalibrationMap())
    assert calibration_case.correct and calibration_case.missing == 0
