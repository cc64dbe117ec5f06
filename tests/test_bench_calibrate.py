"""`warroom bench calibrate`: a map refitted on benchmark results, judged on held-out groups."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml
from typer.testing import CliRunner

from warroom.analysis.diagnosis.calibration import CalibrationMap, shipped
from warroom.cli import app


def _nezha_results(path: Path, seed: int) -> Path:
    """Under-confident answers: right about 90 % of the time at a raw probability near 0.45 (the
    confidences recorded are what the shipped map made of it, as a benchmark records them)."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(60):
        right = bool(rng.random() < 0.9)
        cases.append(
            {
                "case": f"c{i}",
                "truth_fault": ("cpu_consumption", "code_error", "memory_leak")[i % 3],
                "rank": 1 if right else 2,
                "fault_type_correct": right,
                "confidence": shipped().apply(float(np.clip(rng.normal(0.45 if right else 0.3, 0.05), 0.01, 0.99))),
            }
        )
    path.write_text(json.dumps({"per_case": cases}))
    return path


def test_refit_lowers_the_held_out_error_and_writes_a_loadable_map(tmp_path: Path) -> None:
    results = [_nezha_results(tmp_path / "day1.json", 1), _nezha_results(tmp_path / "day2.json", 2)]
    out = tmp_path / "calibration.yaml"
    done = CliRunner().invoke(app, ["bench", "calibrate", *map(str, results), "--out", str(out)])
    assert done.exit_code == 0, done.output
    fitted = CalibrationMap.model_validate(yaml.safe_load(out.read_text()))
    assert fitted.cases == 120 and fitted.fitted_on == ["day1", "day2"] and "bench calibrate" in fitted.command
    assert fitted.out_of_sample_ece is not None and fitted.out_of_sample_ece < 0.15
    assert fitted.apply(0.45) > 0.8  # right 9 times in 10 at that raw confidence
    assert abs(fitted.raw_of(fitted.apply(0.3)) - 0.3) < 1e-9


def test_a_file_that_is_not_benchmark_output_is_one_line(tmp_path: Path) -> None:
    wrong = tmp_path / "x.json"
    wrong.write_text('{"cases": 3}')
    done = CliRunner().invoke(app, ["bench", "calibrate", str(wrong)])
    assert done.exit_code == 2
    assert "x.json" in done.output and "bench nezha" in done.output and "Traceback" not in done.output
