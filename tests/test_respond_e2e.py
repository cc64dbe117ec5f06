"""`warroom respond` end to end on the bundled example, as a user runs it — and killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

EXAMPLE = Path(__file__).parents[1] / "examples" / "checkout-pool-exhaustion"
REPORTS = {
    "postmortem.md",
    "postmortem.html",
    "timeline.md",
    "workflow.md",
    "context.json",
    "findings.json",
    "diagnosis.json",
    "metrics.json",
}


def _env(tmp_path: Path, name: str) -> dict[str, str]:
    return {**os.environ, "WARROOM_DB": f"sqlite:///{tmp_path / name}", "XDG_CACHE_HOME": str(tmp_path / "cache")}


def _top(diagnosis_file: Path) -> dict[str, object]:
    payload = json.loads(diagnosis_file.read_text())
    candidates = payload["candidates"] if isinstance(payload, dict) else payload
    return candidates[0]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    tmp = tmp_path_factory.mktemp("e2e")
    out = tmp / "out"
    done = subprocess.run(
        [sys.executable, "-m", "warroom", "respond", str(EXAMPLE), "--out", str(out), "--json"],
        env=_env(tmp, "store.db"),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out, json.loads(done.stdout)


def test_respond_writes_every_report_and_names_the_pool(uninterrupted: tuple[Path, dict[str, object]]) -> None:
    out, printed = uninterrupted
    assert {p.name for p in out.iterdir()} >= REPORTS
    top = _top(out / "diagnosis.json")
    assert top["service"] == "checkout"
    assert "pool" in str(top["indicator"]) or "pool" in str(top["fault_type"])
    assert printed["diagnosis"][0]["service"] == "checkout"  # --json prints diagnosis and metrics
    assert "total_resolution_min" in printed["metrics"]
    assert "checkout" in (out / "postmortem.md").read_text()


def test_killed_and_resumed_run_ends_with_the_same_diagnosis(
    tmp_path: Path, uninterrupted: tuple[Path, dict[str, object]]
) -> None:
    out = tmp_path / "out"
    env = _env(tmp_path, "store.db")
    db = tmp_path / "store.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "warroom", "respond", str(EXAMPLE), "--out", str(out), "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    steps = 0
    while steps < 4 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        if db.exists():
            engine = create_engine(f"sqlite:///{db}")
            try:
                with engine.connect() as conn:
                    steps = conn.execute(text("select count(*) from steps")).scalar_one()
            except Exception:
                steps = 0
            finally:
                engine.dispose()
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run(
        [sys.executable, "-m", "warroom", "resume", "INC-2024-001", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    reference, _ = uninterrupted
    mine, theirs = _top(out / "diagnosis.json"), _top(reference / "diagnosis.json")
    assert (mine["service"], mine["fault_type"], mine["indicator"]) == (
        theirs["service"],
        theirs["fault_type"],
        theirs["indicator"],
    )
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        keys = [row[0] for row in conn.execute(text("select key from steps"))]
        events = conn.execute(text("select kind, source, summary from timeline")).fetchall()
    engine.dispose()
    assert len(keys) == len(set(keys))
    counts = Counter(events)
    repeated = [
        event
        for event, n in counts.items()
        if n > 1 and event[0] in ("phase_started", "phase_finished", "decision", "alert", "status_changed")
    ]
    assert not repeated, repeated
