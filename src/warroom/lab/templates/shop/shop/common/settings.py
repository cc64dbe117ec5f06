"""Service settings: config/<service>.yaml from the release, wiring from the environment.

The YAML holds what the team tunes (pool sizes, timeouts, feature settings) and is reviewed like
code; addresses of the database and of other services come from the platform's environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Settings:
    service: str
    config: dict[str, Any]
    database_url: str | None
    upstreams: dict[str, str] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, Any]:
        value = self.config.get(name) or {}
        if not isinstance(value, dict):
            raise ValueError(f"config/{self.service}.yaml: '{name}' must be a mapping")
        return value


def load(service: str) -> Settings:
    root = Path(os.environ.get("SHOP_RELEASE_DIR", Path(__file__).resolve().parents[2]))
    path = root / "config" / f"{service}.yaml"
    config = yaml.safe_load(path.read_text()) or {}
    # UPSTREAM_CATALOG_URL=http://127.0.0.1:8101 -> {"catalog": "http://127.0.0.1:8101"}
    upstreams = {
        key[len("UPSTREAM_") : -len("_URL")].lower(): value
        for key, value in os.environ.items()
        if key.startswith("UPSTREAM_") and key.endswith("_URL")
    }
    return Settings(service, config, os.environ.get("DATABASE_URL"), upstreams)
