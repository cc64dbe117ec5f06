"""Importer and benchmark on a small carve of three Nezha cases (tests/fixtures/nezha)."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from warroom.agents.investigation import investigate
from warroom.analysis.faults import canonical_fault
from warroom.bench.nezha import run_nezha_bench
from warroom.cli import app
from warroom.sources.bundle import load_bundle
from warroom.sources.nezha import import_nezha, import_nezha_detailed, service_of

ARCHIVE = Path(__file__).parent / "fixtures" / "nezha" / "nezha-mini.tar.xz"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("nezha")
    with tarfile.open(ARCHIVE) as tar:
        tar.extractall(target, filter="data")
    return target


def test_service_of_strips_replicaset_and_pod_hash() -> None:
    assert service_of("ts-contacts-service-866bd68c97-xcqfx") == "ts-contacts-service"
    assert service_of("ts-food-service-f5756978c-k8vqf") == "ts-food-service"
    assert service_of("frontend") == "frontend"


def test_import_writes_valid_bundles_without_leaking_labels(root: Path, tmp_path: Path) -> None:
    paths = import_nezha(root, tmp_path, None, None)
    assert [p.name for p in paths] == [
        "nezha-2023-01-29T08-43-04",
        "nezha-2023-01-29T10-12-48",
        "nezha-2023-01-29T14-23-31",
    ]
    bundle = load_bundle(paths[0])
    truth = json.loads((paths[0] / "ground_truth.json").read_text())
    assert truth["service"] == "ts-contacts-service"
    assert truth["fault_type"] == "return"
    assert truth["inner_service_label"].startswith("c.s.ContactsServiceImpl")
    assert bundle.manifest.alert.fired_at.isoformat() == "2023-01-29T08:43:04+00:00"
    assert bundle.baseline is not None and bundle.baseline.logs is not None
    manifest_text = (paths[0] / "incident.yaml").read_text()
    assert "contacts" not in manifest_text
    metrics = bundle.metrics
    assert metrics is not None
    names = set(metrics.get_column("metric").unique())
    assert {"cpu_utilization", "memory_utilization", "latency_p99_ms", "success_rate", "request_rate"} <= names
    cpu = metrics.filter(pl.col("metric") == "cpu_utilization").get_column("value")
    assert float(cpu.max()) <= 1.5  # percentages became fractions
    logs = bundle.logs
    assert logs is not None
    assert set(logs.get_column("level").unique()) <= {"INFO", "WARN", "ERROR", "DEBUG", "TRACE", "FATAL"}
    assert logs.get_column("instance").cast(pl.String).str.starts_with(logs.get_column("service").cast(pl.String)).all()
    # The application text is UTC+8; the record timestamp (UTC) is kept and the text loses its clock.
    assert not logs.get_column("message").str.contains(r"^\d{2}:\d{2}:\d{2}\.").any()


def test_one_case_and_broken_case(root: Path, tmp_path: Path) -> None:
    only = import_nezha(root, tmp_path / "one", None, "2023-01-29 14:23:31")
    assert [p.name for p in only] == ["nezha-2023-01-29T14-23-31"]
    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    for kind in ("log", "trace"):
        for path in (broken / "rca_data" / "2023-01-29" / kind).glob(f"10_1*_{kind}.csv"):
            path.unlink()
    result = import_nezha_detailed(broken, tmp_path / "out", None, None)
    assert len(result.bundles) == 2
    assert [case for case, _ in result.failures] == ["nezha-2023-01-29T10-12-48"]


def test_investigate_finds_each_root_cause(root: Path, tmp_path: Path) -> None:
    for path in import_nezha(root, tmp_path, None, None):
        truth = json.loads((path / "ground_truth.json").read_text())
        diagnosis = investigate(load_bundle(path))
        top = diagnosis.candidates[0]
        assert top.service == truth["service"], (path.name, diagnosis.candidates[:3])
        assert top.fault_type == canonical_fault(truth["fault_type"])
        known = {o.id for o in diagnosis.observations}
        assert top.evidence_ids and set(top.evidence_ids) <= known


def test_bench_json_and_cli(root: Path, tmp_path: Path) -> None:
    result = run_nezha_bench(root, None, tmp_path / "work")
    assert result["cases"] == 3 and result["ac1"] == 1.0 and result["fault_type_acc"] == 1.0
    assert result["peak_rss_mb"] > 0 and result["median_s"] > 0
    runner = CliRunner()
    out = runner.invoke(app, ["bench", "nezha", str(root), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert set(data) >= {"cases", "ac1", "ac3", "ac5", "fault_type_acc", "median_s", "p95_s", "peak_rss_mb"}
    bad = runner.invoke(app, ["import", "nezha", str(tmp_path / "nope"), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2
    bad_date = runner.invoke(app, ["bench", "nezha", str(root), "--date", "1999-01-01"])
    assert bad_date.exit_code == 2
