"""The base of every section model of `warroom.toml`: unknown keys are errors (usually typos)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
