from __future__ import annotations

from pathlib import Path

import pytest

from support_bundle import write_bundle
from warroom.store.repository import Store


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    return write_bundle(tmp_path / "bundle")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    db = Store(f"sqlite:///{tmp_path / 'warroom.db'}")
    yield db
    db.close()
