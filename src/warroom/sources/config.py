"""`[sources]` of warroom.toml: where the live event sources are and what a read may pull.

Secrets never sit in the file: a header value may name an environment variable as `env:NAME`,
resolved when the source is opened (docs/configuration.md).

```toml
[sources.loki]
url = "http://loki:3100"
selector = '{namespace="shop"}'        # or leave it out: one selector per service, by service_label
service_label = "service_name"
headers = {Authorization = "env:LOKI_AUTH", X-Scope-OrgID = "shop"}
max_lines = 50000

[sources.otlp]
spool = "/var/lib/warroom/otlp"       # where `warroom otlp-receive` appends export requests
max_spans = 200000
max_log_records = 100000

[[sources.git]]
path = "/srv/checkout"
service = "checkout"

[sources.deploy_log]
url = "https://ci.example/deploys.jsonl"   # or path = "/var/log/deploys.jsonl"
headers = {Authorization = "env:CI_TOKEN"}
```
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import Field, model_validator

from warroom.config_base import Strict
from warroom.errors import InputError

ENV_PREFIX = "env:"


def resolve_headers(headers: Mapping[str, str], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Header values with `env:NAME` replaced by the variable's value; a missing one is an error."""
    env = os.environ if env is None else env
    resolved: dict[str, str] = {}
    for name, value in headers.items():
        if value.startswith(ENV_PREFIX):
            variable = value.removeprefix(ENV_PREFIX)
            if variable not in env:
                raise InputError(f"environment variable {variable} is not set", field=f"headers.{name}")
            value = env[variable]
        resolved[name] = value
    return resolved


class LokiConfig(Strict):
    url: str
    selector: str | None = None  # a LogQL stream selector for every service's lines
    service_label: str = "service_name"  # the stream label naming the service (Loki's OTLP ingest default)
    headers: dict[str, str] = Field(default_factory=dict)
    max_lines: int = Field(default=50_000, gt=0)
    page_size: int = Field(default=5_000, gt=0)  # Loki's default max_entries_limit_per_query
    slice_minutes: float = Field(default=15.0, gt=0)
    timeout_seconds: float = Field(default=30.0, gt=0)


class OtlpSpoolConfig(Strict):
    spool: str
    max_spans: int = Field(default=200_000, gt=0)
    max_log_records: int = Field(default=100_000, gt=0)


class GitRepoConfig(Strict):
    path: str
    service: str | None = None  # the service its changes belong to (default: the folder's name)


class DeployLogConfig(Strict):
    path: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _one_location(self) -> DeployLogConfig:
        if (self.path is None) == (self.url is None):
            raise ValueError("give exactly one of path or url")
        return self


class SourcesConfig(Strict):
    loki: LokiConfig | None = None
    otlp: OtlpSpoolConfig | None = None
    git: list[GitRepoConfig] = Field(default_factory=list)
    deploy_log: DeployLogConfig | None = None
