"""`warroom respond` end to end on the bundled example, as a user runs it — and killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import create_engine, text

from warroom.report.lint import lint_reports

EXAMPLE = Path(__file__).parents[1] / "examples" / "checkout-pool-exhaustion"
REPORTS = {
    "facts.json",
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


def test_dry_run_reports_pass_the_linter_and_claim_no_recovery(uninterrupted: tuple[Path, dict[str, object]]) -> None:
    out, _ = uninterrupted
    assert lint_reports(out) == []
    facts = json.loads((out / "facts.json").read_text())
    # A dry run replays recorded data: nothing was executed, so nothing was mitigated or resolved.
    assert facts["mitigated_at"] is None and facts["resolved_at"] is None
    assert facts["recovery"]["basis"] == "replayed" and facts["recovery"]["verified"] is False
    assert all(a["mode"] in ("replayed", "proposed") for a in facts["actions"])
    summary = (out / "postmortem.md").read_text().split("## Summary", 1)[1].split("## ", 1)[0]
    assert "nothing was changed by warroom" in summary and "**Recovery**: not verified" in summary
    assert "**Status**: mitigating" in summary


def test_summary_figures_are_the_data_recounted(uninterrupted: tuple[Path, dict[str, object]]) -> None:
    out, _ = uninterrupted
    facts = json.loads((out / "facts.json").read_text())
    impact = facts["impact"]
    start, end = (datetime.fromisoformat(impact["window"][k]) for k in ("start", "end"))
    logs = pl.read_parquet(EXAMPLE / "logs.parquet").filter(
        (pl.col("service") == impact["service"]) & pl.col("timestamp").is_between(start, end)
    )
    status = logs["attributes"].str.extract(r'"http\.status_code":\s*(\d+)').cast(pl.Int64)
    status = status.drop_nulls()
    failed = int(((status >= 500) | (status == 429)).sum())
    assert impact["requests"]["value"] == status.len() and impact["failed_requests"]["value"] == failed
    assert abs(impact["failure_rate"]["value"] - failed / status.len()) < 1e-9
    rate = f"{round(100 * failed / status.len(), 1):g} %"
    assert rate in (out / "postmortem.md").read_text().split("## Impact", 1)[0]


@pytest.mark.long
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
    # The resumed run's reports pass the linter; the interruption is an event and not run time.
    assert lint_reports(out) == []
    facts = json.loads((out / "facts.json").read_text())
    assert facts["engine"]["interruptions"] and facts["engine"]["interruptions"][0]["previous_status"] == "running"
    assert any("interrupted" in summary for kind, _, summary in events if kind == "note")
    assert "Interrupted (running) and resumed" in (out / "postmortem.md").read_text()
