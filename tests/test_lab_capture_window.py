"""`lab capture` holds one incident: its window begins after the previous fault ended or the lab started."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from warroom.lab import truth as lab_truth
from warroom.lab.capture import window_start
from warroom.lab.topology import LabPaths, LabState

NOW = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)


def _fault(paths: LabPaths, name: str, onset: datetime, ended: datetime | None) -> lab_truth.Truth:
    truth = lab_truth.Truth(
        fault=name,
        fault_type=name,
        service="checkout",
        change_kind="code",
        commit="a" * 40,
        description=name,
        mitigation=lab_truth.Mitigation(action="rollback", detail="roll back"),
        onset=onset,
        ended=ended,
        ended_by=None if ended is None else "revert deployed to checkout",
    )
    lab_truth.write(paths, truth)
    return truth


def _lab_started(paths: LabPaths, at: datetime) -> None:
    paths.run.mkdir(parents=True, exist_ok=True)
    # this process stands in for the supervisor: read_state only asks whether the pid is alive
    state = LabState(supervisor_pid=os.getpid(), control_port=1, token="t", ports={}, started_at=at, ready=True)
    paths.state.write_text(state.model_dump_json())


def test_a_capture_begins_after_the_previous_fault_ended(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path)
    _lab_started(paths, NOW - timedelta(hours=2))
    earlier = _fault(paths, "db_pool_exhaustion", NOW - timedelta(minutes=25), NOW - timedelta(minutes=14))
    _fault(paths, "lock_contention", NOW - timedelta(minutes=6), None)

    start, why = window_start(paths, NOW - timedelta(minutes=30), NOW)

    assert start == earlier.ended
    assert why is not None and "db_pool_exhaustion ended" in why
    shown = lab_truth.active_in(paths, start, NOW)
    assert shown is not None and shown.fault == "lock_contention"  # the capture's truth is its own incident


def test_a_capture_of_the_healthy_lab_begins_after_the_last_heal(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path)
    _lab_started(paths, NOW - timedelta(hours=2))
    # its onset is before the window, its end in it: what the window shows first is its recovery
    ended = _fault(paths, "cpu_consumption", NOW - timedelta(minutes=70), NOW - timedelta(minutes=9)).ended

    start, _ = window_start(paths, NOW - timedelta(hours=1), NOW)

    assert start == ended
    assert lab_truth.active_in(paths, start, NOW) is None  # no truth beside it: no fault in the window


def test_a_capture_begins_when_the_lab_last_started(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path)
    _fault(paths, "bad_config", NOW - timedelta(minutes=50), NOW - timedelta(minutes=45))
    _lab_started(paths, NOW - timedelta(minutes=12))
    _fault(paths, "missing_index", NOW - timedelta(minutes=4), None)

    start, why = window_start(paths, NOW - timedelta(hours=1), NOW)

    assert start == NOW - timedelta(minutes=12)
    assert why is not None and "the lab started" in why


@pytest.mark.parametrize(
    ("earlier", "window_minutes"),
    [
        # two faults at once: the one ended after the shown incident began is part of it, not before it
        ((20, 2), 30),
        # the window asked already begins after the earlier fault ended
        ((50, 40), 10),
    ],
)
def test_a_window_is_kept_when_nothing_before_the_incident_is_in_it(
    tmp_path: Path, earlier: tuple[int, int], window_minutes: int
) -> None:
    paths = LabPaths(tmp_path)
    _lab_started(paths, NOW - timedelta(hours=2))
    onset, ended = earlier
    _fault(paths, "slow_dependency", NOW - timedelta(minutes=onset), NOW - timedelta(minutes=ended))
    _fault(paths, "lock_contention", NOW - timedelta(minutes=5), None)

    asked = NOW - timedelta(minutes=window_minutes)
    assert window_start(paths, asked, NOW) == (asked, None)
