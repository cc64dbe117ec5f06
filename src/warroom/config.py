"""`warroom.toml`: one file, one section per domain (docs/configuration.md describes every key).

Each section's model lives with its domain (`comms/config.py`, `actions/config.py`, …); this
module finds the file, reads it and validates it as a whole.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, ValidationError

from warroom.actions.config import ActionsConfig
from warroom.comms.config import CommsConfig
from warroom.config_base import Strict
from warroom.errors import InputError
from warroom.serve.config import ServeConfig
from warroom.sources.config import SourcesConfig

CONFIG_ENV = "WARROOM_CONFIG"
DEFAULT_NAME = "warroom.toml"


class WarroomConfig(Strict):
    comms: CommsConfig = Field(default_factory=CommsConfig)
    actions: ActionsConfig = Field(default_factory=ActionsConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    sources: SourcesConfig = Field(default_factory=SourcesConfig)
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
        raise InputError(first["msg"].removeprefix("Value error, "), file=found, field=where or None) from None
    config.path = str(found)
    # Paths in the file are relative to the file, not to wherever warroom was started.
    config.actions.runbooks = [str((found.parent / p).resolve()) for p in config.actions.runbooks]
    config.serve = config.serve.relative_to(found.parent)
    config.sources = config.sources.resolve(found.parent)
    return config
