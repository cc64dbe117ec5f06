"""The committed example bundle reproduces the seeds' incident and is what the generator writes."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from warroom.cli import app
from warroom.scenarios import generate
from warroom.sources import conventions as cv
from warroom.sources.bundle import load_bundle
from warroom.sources.incident_telemetry import IncidentTelemetry

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "checkout-pool-exhaustion"


@pytest.fixture(scope="module")
def bundle() -> IncidentTelemetry:
    return load_bundle(EXAMPLE)


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads((EXAMPLE / "ground_truth.json").read_text())


def _onset(truth: dict) -> datetime:
    return datetime.fromisoformat(truth["onset"].replace("Z", "+00:00"))


def _worst(frame: pl.DataFrame, service: str, metric: str) -> pl.DataFrame:
    selected = frame.filter((pl.col("service") == service) & (pl.col("metric") == metric))
    return selected.group_by("timestamp").agg(pl.col("value").max()).sort("timestamp")


def test_example_is_small_and_complete(bundle: IncidentTelemetry) -> None:
    size = sum(p.stat().st_size for p in EXAMPLE.rglob("*") if p.is_file())
    assert size < 5 * 1024 * 1024
    assert bundle.missing_modalities() == []
    assert (EXAMPLE / "repo.bundle").is_file() and (EXAMPLE / "topology.yaml").is_file()
    assert bundle.baseline is not None
    assert {"rollback", "restart", "raise_pool_size", "recycle_pool", "kill_long_queries"} <= set(
        bundle.recorded_actions() or []
    )


def test_example_is_the_seeds_incident(bundle: IncidentTelemetry, truth: dict) -> None:
    assert truth["service"] == "checkout" and truth["fault_type"] == "db_pool_exhaustion"
    assert truth["path"] == "database" and truth["recovering_actions"][0] == "rollback"
    onset = _onset(truth)
    metrics = bundle.metrics
    assert metrics is not None
    p99 = _worst(metrics, "gateway", cv.LATENCY_P99).filter(pl.col("timestamp") > onset + timedelta(minutes=2))
    assert p99["value"].median() > 4 * 500  # far above the 500 ms SLO
    pool = _worst(metrics, "checkout", cv.DB_POOL_UTILIZATION).filter(pl.col("timestamp") > onset)
    assert pool["value"].max() == 1.0
    errors = metrics.filter((pl.col("service") == "checkout") & (pl.col("metric") == cv.ERROR_RATE))
    before = errors.filter(pl.col("timestamp") < onset - timedelta(minutes=20))["value"].mean()
    during = errors.filter(pl.col("timestamp") > onset + timedelta(minutes=2))["value"].mean()
    assert isinstance(before, float) and isinstance(during, float) and during > 0.3 > before
    logs = bundle.logs
    assert logs is not None
    pool_lines = logs.filter((pl.col("service") == "checkout") & pl.col("message").str.contains("acquire db conn"))
    assert pool_lines.height > 50
    checkout_failures = logs.filter(pl.col("message").str.starts_with("POST /api/checkout 503"))
    assert checkout_failures.height > 20
    changes = bundle.changes
    assert changes is not None
    deploy = changes.filter(pl.col("id") == truth["change_id"])
    assert deploy["service"][0] == "checkout" and deploy["kind"][0] == "deploy"
    lead = onset - deploy["time"][0]
    assert timedelta(minutes=5) < lead < timedelta(minutes=30)
    assert changes.filter(pl.col("service") != "checkout").height >= 3


def test_example_business_context(bundle: IncidentTelemetry) -> None:
    manifest = bundle.manifest
    assert manifest.business.revenue_per_minute and manifest.business.revenue_per_minute > 1000
    assert manifest.objectives.rto_minutes == 30 and manifest.objectives.rpo_minutes == 5
    assert manifest.comms.cadence_minutes == 15
    assert manifest.slo.latency_p99_ms == 500
    assert manifest.alert.service == "gateway"


def test_example_repository_holds_the_missing_close(truth: dict, tmp_path: Path) -> None:
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", str(EXAMPLE / "repo.bundle"), str(clone)], check=True)
    location = truth["code_location"]
    text = subprocess.run(
        ["git", "show", f"{location['commit']}:{location['file']}"],
        cwd=clone,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = text.splitlines()
    assert "conn, err := h.DB.Conn(ctx)" in lines[location["line"] - 1]
    function = "\n".join(lines[location["line"] - 3 :])
    assert "applyPromotion" in function and "conn.Close()" not in function.split("\n}\n")[0]
    log = subprocess.run(["git", "log", "--oneline"], cwd=clone, check=True, capture_output=True, text=True)
    assert len(log.stdout.splitlines()) > 20


def test_example_is_reproducible_by_the_generator(truth: dict, tmp_path: Path) -> None:
    """The README's command rewrites the example byte for byte."""
    assert f"--seed {truth['seed']} --scale small" in (EXAMPLE / "README.md").read_text()
    out = generate("pool-exhaustion", truth["seed"], tmp_path / "again", scale="small", repo="bundle")
    for path in sorted(EXAMPLE.rglob("*")):
        if path.is_file() and path.name != "README.md":
            twin = out / path.relative_to(EXAMPLE)
            assert twin.is_file(), path
            assert hashlib.sha256(twin.read_bytes()).digest() == hashlib.sha256(path.read_bytes()).digest(), path


def test_cli_lists_and_rejects_unknown_scenario(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["scenario", "list", "--json"])
    assert listed.exit_code == 0
    assert len(json.loads(listed.stdout)) == 10
    bad = runner.invoke(app, ["scenario", "generate", "no-such-thing", "--seed", "1", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2
    assert "unknown scenario 'no-such-thing'" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    scale = runner.invoke(app, ["scenario", "generate", "pool-exhaustion", "--scale", "huge", "--out", str(tmp_path)])
    assert scale.exit_code == 2
