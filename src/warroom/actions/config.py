"""The `[actions]` section of `warroom.toml`: approval policy, dry-run mode, runbooks, variables."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from warroom.config_base import Strict


class ActionsConfig(Strict):
    policy: Literal["none", "risky", "all"] = "risky"
    kubectl_dry_run: Literal["none", "client", "server"] = "none"
    runbooks: list[str] = Field(default_factory=list)
    vars: dict[str, Any] = Field(default_factory=dict)
    recovery_probe: dict[str, Any] | None = None
