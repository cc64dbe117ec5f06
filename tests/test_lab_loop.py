"""The closed loop, live, on the compressed timeline: a real fault in the lab, the alert from
Alertmanager to warroom serve (started with the warroom.toml `lab up` wrote), the incident, the
diagnosis from live sources, the first proposed action approved over the REST API, executed for
real through the lab's change path, recovery verified live, the postmortem written.

Runs with `make test-lab` (pytest -m lab), through the benchmark's own driver (bench/lab.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from warroom.bench.lab import run_lab_bench
from warroom.cli import app
from warroom.lab.topology import LabPaths, free_port
from warroom.serve.config import RouteConfig

pytestmark = [pytest.mark.lab, pytest.mark.timeout(480, method="signal")]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabPaths]:
    if "source" not in RouteConfig.model_fields:
        pytest.skip('needs warroom serve\'s live routes ([[serve.routes]] source = "live", branch serve)')
    root = tmp_path_factory.mktemp("lab")
    up = ["lab", "up", "--dir", str(root), "--products=20000", "--timeline=compressed", f"--serve-port={free_port()}"]
    result = CliRunner().invoke(app, up)
    assert result.exit_code == 0, result.output
    try:
        yield LabPaths(root)
    finally:
        CliRunner().invoke(app, ["lab", "down", "--dir", str(root)])


def test_a_leak_is_rolled_back_and_its_recovery_verified(lab: LabPaths) -> None:
    result = run_lab_bench(lab, ["db_pool_exhaustion"], timeout=120, command="test")
    run = result.runs[0]
    assert run.error is None, run.error
    assert run.incident is not None and run.alert_to_diagnosis_s is not None
    assert run.first_action == "rollback" and run.score is not None and run.score.first_action
    assert run.recovery == "verified" and run.alert_to_recovery_s is not None
    postmortem = lab.serve / "reports" / run.incident / "postmortem.md"
    assert postmortem.exists() and "rollback" in postmortem.read_text().lower()
    assert result.lab.cpu_seconds > 0 and result.serve.peak_rss_mb > 0
