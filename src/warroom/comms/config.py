"""The `[comms]` section of `warroom.toml`: channels and cadence (docs/configuration.md).

Secrets never live in the file: a channel names the environment variable that holds its URL,
token or password (`webhook_url_env = "SLACK_WEBHOOK_URL"`). A channel whose variable is unset
becomes a channel that fails every delivery with that reason — recorded, never a crash.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from warroom.comms.channels import (
    BrokenChannel,
    Channel,
    ConsoleChannel,
    EmailChannel,
    FileChannel,
    SlackChannel,
    WebhookChannel,
)
from warroom.comms.message import Audience
from warroom.config_base import Strict


class _ChannelBase(Strict):
    name: str | None = None
    audiences: list[Audience] | None = None  # default: every audience


class ConsoleConfig(_ChannelBase):
    type: Literal["console"]


class FileConfig(_ChannelBase):
    type: Literal["file"]
    path: str = "."  # relative paths are under the run's output directory


class WebhookConfig(_ChannelBase):
    type: Literal["webhook"]
    url: str | None = None  # for URLs that are not secret (a loopback receiver, an internal bus)
    url_env: str | None = None
    headers_env: dict[str, str] = Field(default_factory=dict)  # header → variable holding its value
    timeout_s: float = 10.0


class SlackConfig(_ChannelBase):
    type: Literal["slack"]
    webhook_url: str | None = None
    webhook_url_env: str | None = None
    timeout_s: float = 10.0


class EmailConfig(_ChannelBase):
    type: Literal["email"]
    host: str
    port: int = 25
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    username_env: str | None = None
    password_env: str | None = None
    starttls: bool = False
    ssl: bool = False
    timeout_s: float = 10.0


ChannelConfig = Annotated[
    ConsoleConfig | FileConfig | WebhookConfig | SlackConfig | EmailConfig, Field(discriminator="type")
]


class CommsConfig(Strict):
    # Modest defaults: a channel that is down costs the run 0.5 + 1 s per message, not half a minute.
    retries: int = Field(default=2, ge=0, le=10)
    backoff_s: float = Field(default=0.5, ge=0)
    cadence_minutes: dict[str, float] = Field(default_factory=dict)  # severity → minutes
    channels: list[ChannelConfig] = Field(default_factory=list)


def _secret(env: Mapping[str, str], variable: str | None, literal: str | None, what: str) -> str:
    if literal:
        return literal
    if not variable:
        raise LookupError(f"{what}: give the name of the environment variable that holds it")
    value = env.get(variable)
    if not value:
        raise LookupError(f"environment variable {variable} ({what}) is not set")
    return value


def build_channels(
    configs: list[ChannelConfig], out_dir: str | Path | None = None, env: Mapping[str, str] | None = None
) -> list[Channel]:
    """Channel objects from the configuration; misconfigured ones become failing BrokenChannels."""
    env = os.environ if env is None else env
    channels: list[Channel] = []
    for index, cfg in enumerate(configs):
        name = cfg.name or f"{cfg.type}-{index + 1}"
        try:
            channels.append(_build(cfg, name, out_dir, env))
        except LookupError as exc:
            channels.append(BrokenChannel(name, str(exc).strip("'\""), cfg.audiences))
    return channels


def _build(cfg: ChannelConfig, name: str, out_dir: str | Path | None, env: Mapping[str, str]) -> Channel:
    if isinstance(cfg, ConsoleConfig):
        return ConsoleChannel(name, cfg.audiences)
    if isinstance(cfg, FileConfig):
        path = Path(cfg.path)
        if not path.is_absolute():
            path = Path(out_dir or ".") / path
        return FileChannel(path, name, cfg.audiences)
    if isinstance(cfg, WebhookConfig):
        url = _secret(env, cfg.url_env, cfg.url, f"{name} URL")
        headers = {
            header: _secret(env, var, None, f"{name} header {header}") for header, var in cfg.headers_env.items()
        }
        return WebhookChannel(url, name, cfg.audiences, headers=headers, timeout_s=cfg.timeout_s)
    if isinstance(cfg, SlackConfig):
        url = _secret(env, cfg.webhook_url_env, cfg.webhook_url, f"{name} webhook URL")
        return SlackChannel(url, name, cfg.audiences, timeout_s=cfg.timeout_s)
    username = _secret(env, cfg.username_env, None, f"{name} SMTP user") if cfg.username_env else None
    password = _secret(env, cfg.password_env, None, f"{name} SMTP password") if cfg.password_env else None
    return EmailChannel(
        cfg.host,
        cfg.port,
        cfg.sender,
        cfg.to,
        name,
        cfg.audiences,
        username=username,
        password=password,
        starttls=cfg.starttls,
        ssl=cfg.ssl,
        timeout_s=cfg.timeout_s,
    )
