"""Exit codes that mean something, and no process left behind (issue 13).

0 diagnosed (and, if executed, recovered) · 2 bad input · 3 failed steps or cause not established ·
4 waiting for approval · 5 interrupted — the same in `--json`'s `status`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from warroom.cli import app

A = "support_agents"
TESTS = Path(__file__).parent
DIAGNOSE = {"id": "diagnose", "agent": f"{A}:Diagnoser"}
PLAN_AND_ACT = [
    {"id": "plan", "agent": f"{A}:Planner"},
    {"id": "act", "sequence": [{"agent": f"{A}:Executor", "id": "executor", "approval": "risky"}]},
]


def _workflow(tmp_path: Path, phases: list[dict[str, Any]]) -> Path:
    path = tmp_path / "wf.yaml"
    path.write_text(yaml.safe_dump({"name": "outcomes", "phases": phases}))
    return path


@pytest.mark.parametrize(
    ("phases", "flags", "code", "status"),
    [
        ([DIAGNOSE, *PLAN_AND_ACT], [], 0, "diagnosed"),
        ([{**DIAGNOSE, "params": {"inconclusive": True}}], [], 3, "cause_not_established"),
        ([{"id": "s", "agent": f"{A}:Sleeper", "params": {"seconds": 0}}], [], 3, "cause_not_established"),
        ([DIAGNOSE, {"id": "broken", "agent": f"{A}:Failing"}], [], 3, "failed_steps"),
        ([DIAGNOSE, *PLAN_AND_ACT], ["--execute"], 4, "waiting_approval"),
        # executed and approved, but nothing moved the incident to resolved: not a recovery
        ([DIAGNOSE, *PLAN_AND_ACT], ["--execute", "--approve", "all"], 3, "not_recovered"),
    ],
)
def test_exit_code_and_json_status_say_how_the_run_ended(
    tmp_path: Path,
    bundle_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    phases: list[dict[str, Any]],
    flags: list[str],
    code: int,
    status: str,
) -> None:
    args = ["respond", str(bundle_dir), "-w", str(_workflow(tmp_path, phases)), "--json", *flags]
    done = CliRunner().invoke(app, [*args, "--db", f"sqlite:///{tmp_path / 'w.db'}"])
    assert done.exit_code == code, done.output
    assert json.loads(done.stdout)["status"] == status


def test_bad_input_in_json_mode_is_exit_2_with_a_status(tmp_path: Path) -> None:
    done = CliRunner().invoke(
        app, ["respond", str(tmp_path / "nowhere"), "--json", "--db", f"sqlite:///{tmp_path}/w.db"]
    )
    assert done.exit_code == 2
    payload = json.loads(done.stdout)
    assert payload["status"] == "bad_input" and "not a directory" in payload["error"]


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "WARROOM_DB": f"sqlite:///{tmp_path / 'store.db'}",
        "WARROOM_TEST_MARKS": str(tmp_path / "marks.txt"),  # each step's agent notes when it starts
    }


def _sleepers_running(tmp_path: Path) -> int:
    marks = tmp_path / "marks.txt"
    return marks.read_text().split().count("deep/sleeper") if marks.exists() else 0


def _start_long_run(tmp_path: Path, bundle_dir: Path) -> tuple[subprocess.Popen[bytes], list[psutil.Process]]:
    """`warroom respond` with steps in two worker processes, once they are running."""
    workflow = _workflow(
        tmp_path,
        [
            DIAGNOSE,
            {
                "id": "deep",
                "parallel": [{"agent": f"{A}:Sleeper", "id": f"s{i}", "params": {"seconds": 60}} for i in range(2)],
            },
        ],
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "warroom", "respond", str(bundle_dir), "-w", str(workflow), "--json", "--processes"],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 90
    while _sleepers_running(tmp_path) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()  # mid-run: both parallel steps under way in the workers
    descendants = psutil.Process(proc.pid).children(recursive=True)
    assert len(descendants) >= 2  # the spawn workers (and multiprocessing's resource tracker)
    return proc, descendants


def _gone(processes: list[psutil.Process], within_s: float) -> list[psutil.Process]:
    """Those still alive after `within_s` (a zombie waiting for init to reap it is gone: it runs nothing)."""
    deadline = time.monotonic() + within_s
    alive = list(processes)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p)]
        time.sleep(0.05)
    return alive


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.long
def test_sigkill_of_respond_leaves_no_process_behind(tmp_path: Path, bundle_dir: Path) -> None:
    proc, descendants = _start_long_run(tmp_path, bundle_dir)
    proc.kill()  # SIGKILL: no handler runs in the parent, only the workers' own watch on it
    proc.wait()
    left = _gone(descendants, within_s=5)
    for process in left:
        process.kill()
    assert not left, [" ".join(p.cmdline())[:120] for p in left]


@pytest.mark.long
def test_sigterm_interrupts_the_run_with_exit_5_and_leaves_it_resumable(tmp_path: Path, bundle_dir: Path) -> None:
    proc, descendants = _start_long_run(tmp_path, bundle_dir)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 5, err.decode()
    assert json.loads(out)["status"] == "interrupted"
    assert "warroom resume INC-2026-001" in err.decode() and "Traceback" not in err.decode()
    assert not _gone(descendants, within_s=5)
    engine = create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("select status from runs")).scalar_one() == "interrupted"
        # resume picks an interrupted run up where it stopped; what was committed stays
        assert conn.execute(text("select count(*) from steps where key like 'diagnose/%'")).scalar_one() == 1
    engine.dispose()
