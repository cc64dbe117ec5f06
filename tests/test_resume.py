"""A run killed with SIGKILL at any point resumes without losing or repeating completed steps."""

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
import yaml
from sqlalchemy import create_engine, text

A = "support_agents"
TESTS = Path(__file__).parent

WORKFLOW = {
    "name": "kill-test",
    "phases": [
        {"id": "assess", "agent": f"{A}:Signals", "params": {"signals": {"db_pool": 1.0}}},
        {
            "id": "investigate",
            "decide": [
                {
                    "path": "database",
                    "when": "signals.db_pool >= 0.9",
                    "agent": f"{A}:Sleeper",
                    "params": {"seconds": 0.6, "output": "db"},
                },
                {"path": "other", "default": True, "agent": f"{A}:Sleeper", "params": {"seconds": 0.6}},
            ],
        },
        {
            "id": "deep",
            "parallel": [
                {"agent": f"{A}:Sleeper", "id": f"b{i}", "params": {"seconds": 0.8 + 0.4 * i, "output": f"b{i}"}}
                for i in range(3)
            ],
        },
        {
            "id": "final",
            "sequence": [{"agent": f"{A}:Sleeper", "id": "last", "params": {"seconds": 0.3, "output": "z"}}],
        },
    ],
}


def _warroom(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "warroom", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # so the kill takes the worker processes too
    )


def _recorded(db: Path) -> list[str]:
    if not db.exists():
        return []
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(text("select key from steps order by id"))]
    except Exception:  # the schema may not exist yet
        return []
    finally:
        engine.dispose()


@pytest.mark.long
@pytest.mark.parametrize("kill_after", [1, 3, 5])
def test_sigkill_then_resume_loses_and_repeats_nothing(tmp_path: Path, bundle_dir: Path, kill_after: int) -> None:
    wf = tmp_path / "wf.yaml"
    wf.write_text(yaml.safe_dump(WORKFLOW))
    db = tmp_path / "store.db"
    marks = tmp_path / "marks.txt"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "WARROOM_DB": f"sqlite:///{db}",
        "WARROOM_TEST_MARKS": str(marks),
    }
    proc = _warroom("respond", str(bundle_dir), "--workflow", str(wf), "--json", env=env)
    deadline = time.monotonic() + 60
    while len(_recorded(db)) < kill_after and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _recorded(db)
    assert len(before) >= kill_after

    resumed = subprocess.run(
        [sys.executable, "-m", "warroom", "resume", "INC-2026-001", "--json"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    # the test workflow's agents name no cause: the run finishes, and says so (docs/exit-codes.md)
    assert resumed.returncode == 3, resumed.stderr.decode()
    assert json.loads(resumed.stdout)["status"] == "cause_not_established"
    after = _recorded(db)
    assert after[: len(before)] == before  # nothing lost, nothing rewritten
    assert len(after) == len(set(after))  # nothing recorded twice
    expected = {
        "assess/support_agents:Signals",
        "investigate/decide",
        "investigate/database",
        "deep/b0",
        "deep/b1",
        "deep/b2",
        "final/last",
    }
    assert set(after) == expected

    # steps whose result was committed before the kill never ran again
    runs = Counter(marks.read_text().split())
    completed_before = {k for k in before if not k.endswith("/decide")}
    by_mark = {
        "assess/support_agents:Signals": "assess/signals",
        "investigate/database": "investigate/sleeper",
        "deep/b0": None,
        "deep/b1": None,
        "deep/b2": None,
        "final/last": "final/sleeper",
    }
    for key in completed_before:
        mark = by_mark.get(key)
        if mark is not None:
            assert runs[mark] == 1, (key, runs)

    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = conn.execute(text("select kind, dedupe_key from timeline")).fetchall()
    engine.dispose()
    kinds = Counter(kind for kind, _ in rows)
    assert kinds["phase_started"] == 4 and kinds["phase_finished"] == 4 and kinds["decision"] == 1
    assert kinds["alert"] == 1
