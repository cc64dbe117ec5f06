"""The truth of each fault the lab injected: for scoring only, kept where warroom never reads.

Truth files live in the lab's truth/ folder; a capture copies the one of its incident beside the
capture folder (NAME.truth.json next to NAME/), never inside it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from warroom.lab.topology import LabPaths

MitigationAction = Literal[
    "rollback", "config_revert", "restart", "terminate_query", "create_index", "rate_limit", "block_sources"
]


class Mitigation(BaseModel):
    action: MitigationAction
    detail: str
    # Other first actions that end the fault as well (a rollback removes a query the index would serve).
    alternatives: list[MitigationAction] = []


class Truth(BaseModel):
    fault: str
    fault_type: str
    service: str
    change_kind: Literal["code", "config", "traffic"]
    commit: str | None = None
    previous_commit: str | None = None
    file: str | None = None
    lines: tuple[int, int] | None = None
    defect_line: int | None = None
    description: str
    mitigation: Mitigation
    onset: datetime
    # When and how `lab end` took the fault out (a revert deployed, the traffic stopped).
    ended: datetime | None = None
    ended_by: str | None = None


def _path(paths: LabPaths, truth: Truth) -> Path:
    return paths.truth / f"{truth.onset.strftime('%Y%m%dT%H%M%SZ')}-{truth.fault}.json"


def write(paths: LabPaths, truth: Truth) -> Path:
    """Record (or update) one fault's truth."""
    paths.truth.mkdir(parents=True, exist_ok=True)
    path = _path(paths, truth)
    path.write_text(truth.model_dump_json(indent=2) + "\n")
    return path


def all_truths(paths: LabPaths) -> list[Truth]:
    """Every fault the lab injected, oldest first (for a benchmark's scoring; warroom never reads it)."""
    return [Truth.model_validate_json(path.read_text()) for path in sorted(paths.truth.glob("*.json"))]


def open_fault(paths: LabPaths, fault: str) -> Truth | None:
    """The latest injection of `fault` that has not been ended."""
    found = [truth for truth in all_truths(paths) if truth.fault == fault and truth.ended is None]
    return found[-1] if found else None


def active_in(paths: LabPaths, start: datetime, end: datetime) -> Truth | None:
    """The latest fault whose onset falls in [start, end] (the incident a capture of that window shows)."""
    found = [truth for truth in all_truths(paths) if start <= truth.onset <= end]
    return found[-1] if found else None


def healed_before(paths: LabPaths, moment: datetime) -> Truth | None:
    """The fault that was last taken out at or before `moment` (the lab healed from it then)."""
    found = [truth for truth in all_truths(paths) if truth.ended is not None and truth.ended <= moment]
    return max(found, key=lambda truth: truth.ended or moment) if found else None
