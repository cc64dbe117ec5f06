"""The `[serve]` table of warroom.toml: listener, store, routes, auth (docs/serve.md lists every key).

Read with the rest of the file by `warroom.config.load_config`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from warroom.config_base import Strict
from warroom.serve.matchers import parse_matcher

SEVERITIES = ("P0", "P1", "P2", "P3")


class RouteConfig(Strict):
    """Which alerts open incidents, with which workflow, reading which source."""

    name: str
    matchers: list[str] = Field(default_factory=list)  # all must match; none = every alert
    workflow: str = "critical-incident"
    min_severity: str = "P3"  # alerts below this severity are stored but open no incident
    # Where the route's telemetry comes from: "replay" a bundle as if live (`bundle`, default
    # --replay), or "live": the [sources] of the same warroom.toml, read for each incident.
    source: Literal["replay", "live"] = "replay"
    bundle: str | None = None  # the route's telemetry: a bundle replayed as if live (default: --replay)
    group_by: list[str] = Field(default_factory=lambda: ["alertname", "service"])  # alerts without a groupKey
    storm_window_s: float = Field(default=300.0, ge=0)  # new groups on this route join a fresh incident
    # a group's incident whose alerts have all resolved and stayed quiet this long no longer takes the
    # group's new alerts: they open a new incident (one left open after a failed response, never
    # closed, would swallow every later alert of its group)
    regroup_after_s: float = Field(default=1800.0, ge=0)

    @field_validator("matchers")
    @classmethod
    def _valid_matchers(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_matcher(text)
        return value

    @model_validator(mode="after")
    def _bundle_is_replayed(self) -> RouteConfig:
        if self.source == "live" and self.bundle is not None:
            raise ValueError('a live route reads [sources], not a bundle (leave out bundle, or source = "replay")')
        return self

    @field_validator("min_severity")
    @classmethod
    def _known_severity(cls, value: str) -> str:
        if value.upper() not in SEVERITIES:
            raise ValueError(f"'{value}' is not a severity (expected one of {', '.join(SEVERITIES)})")
        return value.upper()


class AuthConfig(Strict):
    """Header auth behind a reverse proxy that has authenticated the user (e.g. OIDC via oauth2-proxy)."""

    trusted_header: str | None = None  # e.g. "X-Forwarded-User"
    role_header: str | None = None  # e.g. "X-Forwarded-Role"; absent → default_role
    default_role: str = "viewer"
    trusted_proxies: list[str] = Field(default_factory=list)  # client addresses whose headers count


class ServeConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    db: str | None = None  # store URL (default: $WARROOM_DB or the user's data directory)
    reports_dir: str | None = None  # where each incident's reports are written (default: beside the store)
    replay: str | None = None  # a bundle served as if live: the source of routes without their own
    execute: bool = False  # actions stay dry runs unless set
    routes: list[RouteConfig] = Field(default_factory=lambda: [RouteConfig(name="default")])
    auth: AuthConfig = Field(default_factory=AuthConfig)
    workers: int = Field(default=2, ge=1, le=64)  # processes of the one warm agent pool

    def relative_to(self, base: Path) -> ServeConfig:
        """Bundle paths in the file are relative to the file, not to wherever warroom started."""
        routes = [
            r.model_copy(update={"bundle": str((base / r.bundle).resolve())}) if r.bundle else r for r in self.routes
        ]
        replay = str((base / self.replay).resolve()) if self.replay else None
        return self.model_copy(update={"routes": routes, "replay": replay})
