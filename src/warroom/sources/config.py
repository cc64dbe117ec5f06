"""`warroom.toml`'s `[sources]` section: where live telemetry comes from and how raw series are read.

Each live source has its own table (`[sources.prometheus]`, `[sources.loki]`, `[sources.otlp]`,
`[[sources.git]]`, `[sources.deploy_log]`); the keys shared by every reader of raw exports (the
mapping rule files, the label naming the service, the database's service name) sit in `[sources]`
itself. Secrets are never written here: a header's value is named by the environment variable
holding it (`headers_env`, `bearer_token_env`), read when the source is opened.
docs/configuration.md describes every key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from warroom.config_base import Strict
from warroom.errors import InputError
from warroom.sources.raw.reader import ReadOptions

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> timedelta:
    """`15s`, `1m`, `500ms`, `2h` → timedelta; ValueError naming the expected form."""
    found = _DURATION.match(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not a duration (expected a number and ms, s, m or h, e.g. 15s)")
    return timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2)])


class HttpEndpoint(Strict):
    """Where an HTTP source answers, and how a request authenticates."""

    # Header → the environment variable holding its value: {Authorization = "PROMETHEUS_AUTH"}.
    headers_env: dict[str, str] = Field(default_factory=dict)
    # The environment variable holding a bearer token (sent as `Authorization: Bearer …`).
    bearer_token_env: str | None = None
    timeout_s: float = Field(default=30.0, gt=0)

    # every endpoint's `url` (checked when the file is read, not on the first request at 3 a.m.)
    @field_validator("url", check_fields=False)
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"{value!r} is not an http(s) URL (expected e.g. http://prometheus:9090)")
        return value

    def headers(self, env: Mapping[str, str] | None = None, *, section: str = "sources") -> dict[str, str]:
        """The request headers, their values read from the environment now; an InputError naming
        the variable that is not set."""
        env = os.environ if env is None else env

        def read(variable: str, key: str) -> str:
            value = env.get(variable)
            if not value:
                raise InputError(f"environment variable {variable} is not set", field=f"{section}.{key}")
            return value

        headers = {header: read(variable, f"headers_env.{header}") for header, variable in self.headers_env.items()}
        if self.bearer_token_env:
            headers["Authorization"] = f"Bearer {read(self.bearer_token_env, 'bearer_token_env')}"
        return headers


class PrometheusConfig(HttpEndpoint):
    """A live Prometheus (HTTP API v1) and the budget of one investigation's reads from it."""

    url: str  # e.g. http://prometheus:9090 (a path prefix such as /prometheus is kept)
    step: str = "15s"  # query_range resolution
    rate_window: str | None = None  # the range of rate()/increase(); default four steps
    max_series: int = Field(default=5000, gt=0)  # series an investigation pulls, at most
    max_points: int = Field(default=2_000_000, gt=0)  # samples (series × steps), at most
    # Selectors of the series to discover besides those the mapping rules read (their unmapped
    # series are analysed by name). Empty: only what the rules read.
    selectors: list[str] = Field(default_factory=list)

    @field_validator("step", "rate_window")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    def step_delta(self) -> timedelta:
        return parse_duration(self.step)

    def window_delta(self) -> timedelta:
        return parse_duration(self.rate_window) if self.rate_window else 4 * self.step_delta()


class LokiConfig(HttpEndpoint):
    url: str
    selector: str | None = None  # a LogQL stream selector for every service's lines
    service_label: str = "service_name"  # the stream label naming the service (Loki's OTLP ingest default)
    max_lines: int = Field(default=50_000, gt=0)
    page_size: int = Field(default=5_000, gt=0)  # Loki's default max_entries_limit_per_query
    slice_minutes: float = Field(default=15.0, gt=0)


class OtlpSpoolConfig(Strict):
    spool: str  # where `warroom otlp-receive` (or `warroom serve`) appends the export requests
    max_spans: int = Field(default=200_000, gt=0)
    max_log_records: int = Field(default=100_000, gt=0)


class GitRepoConfig(Strict):
    path: str
    service: str | None = None  # the service its changes belong to (default: the folder's name)


class DeployLogConfig(HttpEndpoint):
    path: str | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _one_location(self) -> DeployLogConfig:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of path or url")
        return self


class SourcesConfig(Strict):
    prometheus: PrometheusConfig | None = None
    loki: LokiConfig | None = None
    otlp: OtlpSpoolConfig | None = None
    git: list[GitRepoConfig] = Field(default_factory=list)
    deploy_log: DeployLogConfig | None = None
    # A user's own mapping rule files (YAML, docs/bundle-format.md "Mapping rules"); theirs win over
    # the shipped rules for the series they record. Relative paths are relative to warroom.toml.
    mapping_rules: list[str] = Field(default_factory=list)
    # The label that names the service when the conventions (service, service_name, app, job, …)
    # do not find the right one.
    service_label: str | None = None
    # The service name of the database in traces and logs (default: the client's db.system value).
    database_service: str | None = None
    # How far back a live read reaches before now (`respond --live`; `capture --since` overrides it).
    lookback: str = "1h"
    # Where `respond --live` writes its snapshot when no --out is given (default: ./snapshots).
    snapshots: str | None = None

    @field_validator("lookback")
    @classmethod
    def _lookback(cls, value: str) -> str:
        parse_duration(value)
        return value

    def resolve(self, base: Path) -> SourcesConfig:
        """Paths in the file relative to the file, not to wherever warroom was started."""

        def at(path: str) -> str:
            return str((base / path).resolve())

        update: dict[str, object] = {
            "mapping_rules": [at(p) for p in self.mapping_rules],
            "git": [repo.model_copy(update={"path": at(repo.path)}) for repo in self.git],
        }
        if self.snapshots is not None:
            update["snapshots"] = at(self.snapshots)
        if self.otlp is not None:
            update["otlp"] = self.otlp.model_copy(update={"spool": at(self.otlp.spool)})
        if self.deploy_log is not None and self.deploy_log.path is not None:
            update["deploy_log"] = self.deploy_log.model_copy(update={"path": at(self.deploy_log.path)})
        return self.model_copy(update=update)

    def read_options(self) -> ReadOptions:
        return ReadOptions(
            mapping_rules=tuple(Path(p) for p in self.mapping_rules),
            service_label=self.service_label,
            database_service=self.database_service,
        )
