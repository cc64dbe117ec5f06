"""Refit the diagnosis' calibration map from benchmark results (`bench nezha --json`, `bench
scenarios --json`), and say how well calibrated it is on cases it was not fitted on.

A case is the top candidate of one benchmark run: its confidence (turned back into the engine's raw
probability through the map that produced it), how many modalities the run lacked (the modalities
the results say were dropped) and whether the answer was right — the service and the fault type
both. Groups are the datasets (one results file each) or, within them, the fault
types: each group's confidences come from a map fitted on the other groups only, and the expected
calibration error (ECE) reported is theirs. The map written is fitted on every case.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from warroom.analysis.diagnosis.calibration import (
    Bin,
    CalibrationMap,
    expected_calibration_error,
    fit,
    out_of_sample,
    reliability,
    shipped,
)
from warroom.errors import InputError

GroupBy = Literal["dataset", "fault"]


@dataclass(frozen=True)
class Case:
    dataset: str
    fault: str
    raw: float
    correct: bool
    missing: int = 0  # modalities (logs, traces, metrics) the run had none of


@dataclass
class Refit:
    fitted: CalibrationMap
    cases: int
    ece_before: float  # the current map, on every case
    ece_fitted: float  # the new map, on the cases it was fitted on
    ece_out_of_sample: float  # each group by a map fitted on the others
    table: list[Bin]  # reliability of the out-of-sample confidences
    inconclusive_before: int
    inconclusive_after: int


def _nezha_cases(name: str, result: dict[str, Any], current: CalibrationMap) -> list[Case]:
    missing = len(result.get("dropped") or [])
    return [
        Case(
            name,
            str(c.get("truth_fault")),
            current.raw_of(float(c["confidence"]), missing),
            c.get("rank") == 1 and bool(c.get("fault_type_correct")),
            missing,
        )
        for c in result["per_case"]
        if c.get("confidence") is not None
    ]


def _scenario_cases(name: str, result: dict[str, Any], current: CalibrationMap) -> list[Case]:
    return [
        Case(
            name,
            str(r.get("scenario")),
            current.raw_of(float(r["confidence"])),
            bool(r["correct"].get("service")) and bool(r["correct"].get("fault_type")),
        )
        for r in result["per_run"]
        if r.get("confidence") is not None
    ]


def read_cases(paths: list[Path], current: CalibrationMap) -> list[Case]:
    cases: list[Case] = []
    for path in paths:
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read benchmark results ({exc.__class__.__name__})", file=path) from None
        if isinstance(result, dict) and isinstance(result.get("per_case"), list):
            cases.extend(_nezha_cases(path.stem, result, current))
        elif isinstance(result, dict) and isinstance(result.get("per_run"), list):
            cases.extend(_scenario_cases(path.stem, result, current))
        else:
            raise InputError("expected the --json output of `warroom bench nezha` or `bench scenarios`", file=path)
    if not cases:
        raise InputError("no benchmark case with a candidate to calibrate on", file=paths[0] if paths else None)
    return cases


def refit(cases: list[Case], group_by: GroupBy, threshold: float, command: str) -> Refit:
    raw = [c.raw for c in cases]
    correct = [c.correct for c in cases]
    missing = [c.missing for c in cases]
    groups = [c.dataset if group_by == "dataset" else f"{c.dataset}:{c.fault}" for c in cases]
    a, b, c = fit(raw, correct, missing)
    fitted = CalibrationMap(a=round(a, 4), b=round(b, 4), c=round(c, 4), threshold=threshold)
    held_out = out_of_sample(raw, correct, groups, missing)
    current = shipped()
    before = [current.apply(r, m) for r, m in zip(raw, missing, strict=True)]
    after = [fitted.apply(r, m) for r, m in zip(raw, missing, strict=True)]
    ece_out = expected_calibration_error(held_out, correct)
    fitted = fitted.model_copy(
        update={
            "fitted_on": sorted({c.dataset for c in cases}),
            "cases": len(cases),
            "command": command,
            "out_of_sample_ece": ece_out,
        }
    )
    return Refit(
        fitted=fitted,
        cases=len(cases),
        ece_before=expected_calibration_error(before, correct),
        ece_fitted=expected_calibration_error(after, correct),
        ece_out_of_sample=ece_out,
        table=reliability(held_out, correct),
        inconclusive_before=sum(1 for p in before if p < current.threshold),
        inconclusive_after=sum(1 for p in after if p < threshold),
    )


def write_map(calibration: CalibrationMap, path: Path) -> None:
    header = "# The diagnosis' calibration map (analysis/diagnosis/calibration.py), written by the command below.\n"
    path.write_text(header + yaml.safe_dump(calibration.model_dump(), sort_keys=False), encoding="utf-8")
