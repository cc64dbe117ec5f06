"""`warroom.toml`: channels, cadence and action settings (docs/configuration.md describes every key).

Secrets never live in the file: a channel names the environment variable that holds its URL,
token or password (`webhook_url_env = "SLACK_WEBHOOK_URL"`). A channel whose variable is unset
becomes a channel that fails every delivery with that reason — recorded, never a crash.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
from warroom.errors import InputError

CONFIG_ENV = "WARROOM_CONFIG"
DEFAULT_NAME = "warroom.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _ChannelBase(_Strict):
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


class CommsConfig(_Strict):
    # Modest defaults: a channel that is down costs the run 0.5 + 1 s per message, not half a minute.
    retries: int = Field(default=2, ge=0, le=10)
    backoff_s: float = Field(default=0.5, ge=0)
    cadence_minutes: dict[str, float] = Field(default_factory=dict)  # severity → minutes
    channels: list[ChannelConfig] = Field(default_factory=list)


class ActionsConfig(_Strict):
    policy: Literal["none", "risky", "all"] = "risky"
    kubectl_dry_run: Literal["none", "client", "server"] = "none"
    runbooks: list[str] = Field(default_factory=list)
    vars: dict[str, Any] = Field(default_factory=dict)
    recovery_probe: dict[str, Any] | None = None


class WarroomConfig(_Strict):
    comms: CommsConfig = Field(default_factory=CommsConfig)
    actions: ActionsConfig = Field(default_factory=ActionsConfig)
    serve: dict[str, Any] = Field(default_factory=dict)  # validated by warroom.serve.config
    path: str | None = Field(default=None, exclude=True)


def find_config(explicit: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """The config file to use: an explicit path, then $WARROOM_CONFIG, then ./warroom.toml."""
    env = os.environ if env is None else env
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise InputError("configuration file not found", file=path)
        return path
    if env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV])
        if not path.is_file():
            raise InputError(f"configuration file not found (from ${CONFIG_ENV})", file=path)
        return path
    local = Path(DEFAULT_NAME)
    return local if local.is_file() else None


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> WarroomConfig:
    """The configuration, or the defaults when there is no file."""
    found = find_config(path, env)
    if found is None:
        return WarroomConfig()
    try:
        data = tomllib.loads(found.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read ({exc.__class__.__name__})", file=found) from None
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        raise InputError(f"invalid TOML: {str(exc).split(' (at line')[0]}", file=found, line=line) from None
    try:
        config = WarroomConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InputError(first["msg"], file=found, field=where or None) from None
    config.path = str(found)
    # Runbook paths in the file are relative to the file, not to wherever warroom was started.
    config.actions.runbooks = [str((found.parent / p).resolve()) for p in config.actions.runbooks]
    return config


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
