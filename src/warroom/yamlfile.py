"""Load YAML into pydantic models with errors that name the file, line and field."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from warroom.errors import InputError

ModelT = TypeVar("ModelT", bound=BaseModel)


def _node_at(root: yaml.Node | None, loc: Sequence[int | str]) -> yaml.Node | None:
    """The YAML node that names a pydantic error location: the key of a mapping entry (where the
    field is written), an item of a sequence, or the deepest node that exists along the way."""
    node = root
    named: yaml.Node | None = root
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == str(key)), None)
            if match is None:
                return named
            named, node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = named = node.value[key]
        else:
            return named
    return named


def line_of(root: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    node = _node_at(root, loc)
    return node.start_mark.line + 1 if node is not None else None


def read_yaml(path: Path, error: type[InputError] = InputError) -> tuple[Any, yaml.Node | None]:
    """Parse a YAML file; return the data and its node tree (for line numbers)."""
    if not path.is_file():
        raise error("file not found", file=path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read as UTF-8 text ({exc.__class__.__name__})", file=path) from None
    try:
        # libyaml's parser (as the mapping rules read theirs): the pure-Python one was a tenth of a
        # run's time spent on workflows and runbooks
        node = yaml.compose(text, Loader=yaml.CSafeLoader)
        data = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise error(f"invalid YAML: {problem}", file=path, line=line) from None
    return data, node


def validation_error(
    exc: ValidationError, path: Path, node: yaml.Node | None, error: type[InputError] = InputError
) -> InputError:
    """Turn the first pydantic error into a one-line error with file, line and field."""
    first = exc.errors()[0]
    loc = [part for part in first["loc"] if isinstance(part, int | str)]
    field = ".".join(str(part) for part in loc) or None
    message = first["msg"].removeprefix("Value error, ")
    return error(message, file=path, line=line_of(node, loc), field=field)


def load_model(path: Path, model: type[ModelT], error: type[InputError] = InputError) -> ModelT:
    data, node = read_yaml(path, error)
    if not isinstance(data, dict):
        raise error("expected a mapping at the top level", file=path, line=1)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, path, node, error) from None
