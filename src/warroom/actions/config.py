"""The `[actions]` section of `warroom.toml`: approval policy, dry-run mode, runbooks, variables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from warroom.config_base import Strict
from warroom.sources.config import parse_duration


@dataclass(frozen=True)
class Patience:
    """How a live recovery check waits for the system (see ActionsConfig)."""

    settle: timedelta
    timeout: timedelta
    every: timedelta
    watch: timedelta


class ActionsConfig(Strict):
    policy: Literal["none", "risky", "all"] = "risky"
    kubectl_dry_run: Literal["none", "client", "server"] = "none"
    runbooks: list[str] = Field(default_factory=list)
    vars: dict[str, Any] = Field(default_factory=dict)
    recovery_probe: dict[str, Any] | None = None
    # A live action's effect takes time: wait `settle` before the first re-query, then re-query
    # every `verify_every` until recovered or `verify_timeout` has passed (not recovered); after a
    # recovery keep re-querying for `watch` and report a regression. Replays read after/ at once.
    settle: str = "60s"
    verify_timeout: str = "5m"
    verify_every: str = "15s"
    watch: str = "0s"

    @field_validator("settle", "verify_timeout", "verify_every", "watch")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    def patience(self) -> Patience:
        return Patience(
            settle=parse_duration(self.settle),
            timeout=parse_duration(self.verify_timeout),
            every=max(parse_duration(self.verify_every), timedelta(milliseconds=10)),
            watch=parse_duration(self.watch),
        )
