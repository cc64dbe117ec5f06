"""The lab's own repository and its faults: real git, the shipped templates, no running lab."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from warroom.cli import app
from warroom.lab import deploy, faults, operations, repo
from warroom.lab.topology import LabError, LabPaths

FAULT_TYPES = {
    "db_pool_exhaustion",
    "missing_index",
    "slow_dependency",
    "bad_config",
    "cpu_consumption",
    "memory_leak",
    "lock_contention",
    "dependency_down",
    "credential_stuffing",
    "code_exception",
    "code_error",
}


def test_repository_has_an_ordinary_history_by_several_authors(tmp_path: Path) -> None:
    head = repo.create(tmp_path / "shop")
    log = repo.git(tmp_path / "shop", "log", "--format=%an|%s").splitlines()
    assert len(log) >= 8
    assert len({line.split("|")[0] for line in log}) >= 4
    # The tree at HEAD is the shipped service source, byte for byte.
    assert (tmp_path / "shop" / "shop" / "catalog" / "app.py").read_text() == repo.template_text("shop/catalog/app.py")
    # An earlier commit held an earlier version of a file (history, not one dump of the final tree).
    root = repo.git(tmp_path / "shop", "rev-list", "--max-parents=0", "HEAD").strip()
    first_catalog = repo.git(tmp_path / "shop", "show", f"{root}:shop/catalog/app.py")
    assert "page * PAGE_SIZE" in first_catalog and "max(page, 0)" not in first_catalog
    assert repo.create(tmp_path / "shop") == head  # idempotent


def test_every_fault_is_an_ordinary_change_with_a_locatable_defect(tmp_path: Path) -> None:
    registry = faults.registry()
    assert len(registry) >= 8
    shop = tmp_path / "shop"
    base = repo.create(shop)
    for name, fault in registry.items():
        assert fault.fault_type in FAULT_TYPES, name
        if fault.traffic is not None:
            continue
        files = faults.edited_files(fault, lambda path: (shop / path).read_text())
        commit = repo.commit_files(shop, files, fault.author or "", fault.message or "")
        defect_file = fault.defect_file or next(iter(files))
        start, end = faults.changed_lines(LabPaths(tmp_path), commit, defect_file)
        line = faults.defect_line(files[defect_file], fault.defect or "")
        assert start <= line <= end, name
        # Nothing in the change names the fault: the commit looks like any other.
        text = repo.git(shop, "show", commit).lower()
        assert name not in text and fault.fault_type not in text and "fault" not in text, name
        repo.git(shop, "reset", "--quiet", "--hard", base)


def test_lab_commands_reject_bad_input_in_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    unknown = runner.invoke(app, ["lab", "break", "disk_full", "--dir", str(tmp_path)])
    assert unknown.exit_code == 2
    assert "unknown fault 'disk_full'" in unknown.output and len(unknown.output.strip().splitlines()) == 1
    idle = runner.invoke(app, ["lab", "status", "--dir", str(tmp_path)])
    assert idle.exit_code == 2 and "no lab is running" in idle.output
    args = ["lab", "capture", "--out", str(tmp_path / "c"), "--dir", str(tmp_path), "--since", "soon"]
    since = runner.invoke(app, args)
    assert since.exit_code == 2


@pytest.mark.parametrize("bad", ['{"products": 10}', "not json"])
def test_a_broken_lab_settings_file_is_named(tmp_path: Path, bad: str) -> None:
    (tmp_path / "lab.json").write_text(bad)
    result = CliRunner().invoke(app, ["lab", "up", "--dir", str(tmp_path)])
    assert result.exit_code == 2 and "lab.json" in result.output


def _record(service: str, commit: str, kind: str = "deploy", status: str = "succeeded") -> deploy.DeployRecord:
    return deploy.DeployRecord(
        time=datetime.now(UTC),
        service=service,
        version=commit[:12],
        commit=commit,
        previous_version=None,
        previous_commit=None,
        commits=[],
        author=None,
        kind=kind,
        description="",
        deployed_by="test",
        status=status,
    )


def test_rollback_goes_to_the_version_before_the_running_one(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path)
    paths.ensure()
    for record in (
        _record("checkout", "a" * 40),
        _record("payment", "b" * 40),
        _record("checkout", "c" * 40),
        _record("checkout", "c" * 40, kind="restart"),  # a restart is not a version
        _record("checkout", "d" * 40, status="failed"),  # a failed deploy never ran
    ):
        deploy.append(paths, record)
    assert operations.previous_version(paths, "checkout") == "a" * 40
    with pytest.raises(LabError, match="nothing to roll back to"):
        operations.previous_version(paths, "payment")
    with pytest.raises(LabError, match="no deploy"):
        operations.previous_version(paths, "auth")


def test_a_revert_is_a_new_commit_that_restores_the_files(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    repo.create(shop)
    fault = faults.get("slow_dependency")
    before = (shop / "config/payment.yaml").read_text()
    commit = repo.commit_files(
        shop, faults.edited_files(fault, lambda p: (shop / p).read_text()), fault.author or "", "x"
    )
    reverted = repo.revert(shop, commit)
    assert (shop / "config/payment.yaml").read_text() == before
    assert repo.git(shop, "log", "-1", "--format=%an|%s", reverted).strip() == 'Wei Chen|Revert "x"'
    assert repo.is_ancestor(shop, commit, reverted)
