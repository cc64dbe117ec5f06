"""The repository writer: one git fast-import for the whole history, fixed dates, same SHAs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from warroom.errors import InputError
from warroom.scenarios import generate
from warroom.scenarios.repo import Commit, write_bundle_file, write_checkout, write_repository

HISTORY = [
    Commit("add service", "Ana Souza", "ana@shop.example", 1_700_000_000, {"svc/main.go": "package main\n"}),
    Commit("add readme", "Tom Becker", "tom@shop.example", 1_700_000_600, {"README.md": "# shop\n"}),
    Commit("remove readme", "Tom Becker", "tom@shop.example", 1_700_001_200, {"README.md": None}, label="bad"),
]


def test_history_is_written_with_fixed_authors_and_dates(tmp_path: Path) -> None:
    shas = write_repository(HISTORY, tmp_path / "one.git")
    again = write_repository(HISTORY, tmp_path / "two.git")
    assert shas == again and len(set(shas)) == 3
    write_bundle_file(tmp_path / "one.git", tmp_path / "repo.bundle")
    write_checkout(tmp_path / "one.git", tmp_path / "checkout")
    log = subprocess.run(
        ["git", "log", "--format=%H %at %an %s"], cwd=tmp_path / "checkout", check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert log[0] == f"{shas[2]} 1700001200 Tom Becker remove readme"
    assert log[-1].startswith(f"{shas[0]} 1700000000 Ana Souza")
    assert not (tmp_path / "checkout" / "README.md").exists()
    assert (tmp_path / "checkout" / "svc" / "main.go").read_text() == "package main\n"
    cloned = tmp_path / "from-bundle"
    subprocess.run(["git", "clone", "--quiet", str(tmp_path / "repo.bundle"), str(cloned)], check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cloned, check=True, capture_output=True, text=True)
    assert head.stdout.strip() == shas[2]


def test_output_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("not a directory")
    with pytest.raises(InputError, match="not a directory"):
        generate("pool-exhaustion", 1, target, scale="small")


def test_unknown_scale_and_repo_mode_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown scale"):
        generate("pool-exhaustion", 1, tmp_path, scale="huge")
    with pytest.raises(InputError, match="unknown repo mode"):
        generate("pool-exhaustion", 1, tmp_path, scale="small", repo="svn")
