"""Redaction of a whole record in one pass over its distinct strings (warroom.redact does the work).

Calling `redact` once per string costs a fixed price per call (it runs every detector), which for a
run with ten thousand timeline events dominates report writing. Here every distinct string is
redacted once, in chunks joined by a whitespace-only separator that no detector's secret class can
consume; a chunk whose separators did not survive is redone string by string, so the result is the
same as redacting each string alone, or masks more, never less.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any

Redact = Callable[[str], str]
RedactObj = Callable[[Any], Any]

# Newline + ASCII record separator + newline: all three are whitespace to `re`, so secret values
# (which detectors match as runs of non-space characters) end at it, and line-based detectors see
# each string on its own lines.
SEPARATOR = "\n\x1e\n"
CHUNK_CHARS = 1 << 16


def redactors() -> tuple[Redact, RedactObj]:
    """warroom.redact's functions, looked up at call time so reports work while it is being built."""
    try:
        module = importlib.import_module("warroom.redact")
    except ImportError:
        # Until the redaction module exists, text passes through unchanged; the report test that
        # plants secrets fails meanwhile, which keeps this from going unnoticed.
        return (lambda text: text), (lambda obj: obj)
    return module.redact, module.redact_obj


def redact_many(strings: Iterable[str], redact: Redact) -> dict[str, str]:
    """Each distinct string → its redacted form."""
    out: dict[str, str] = {}
    chunk: list[str] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if not chunk:
            return
        parts = redact(SEPARATOR.join(chunk)).split(SEPARATOR)
        if len(parts) == len(chunk):
            out.update(zip(chunk, parts, strict=True))
        else:  # a mask swallowed a separator: fall back to one call per string for this chunk
            out.update((s, redact(s)) for s in chunk)
        chunk.clear()
        size = 0

    for text in dict.fromkeys(strings):
        if "\x1e" in text:
            out[text] = redact(text)
            continue
        chunk.append(text)
        size += len(text) + len(SEPARATOR)
        if size >= CHUNK_CHARS:
            flush()
    flush()
    return out


def _collect(obj: Any, strings: set[str], keys: set[str]) -> None:
    if isinstance(obj, str):
        strings.add(obj)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(key, str):
                keys.add(key)
            _collect(value, strings, keys)
    elif isinstance(obj, list | tuple):
        for item in obj:
            _collect(item, strings, keys)


def redact_tree(obj: Any, redact: Redact | None = None, redact_obj: RedactObj | None = None) -> Any:
    """Like `redact_obj(obj)` (same masking of values under secret-named keys), but batched."""
    default_redact, default_redact_obj = redactors()
    text_fn = redact or default_redact
    obj_fn = redact_obj or default_redact_obj
    strings: set[str] = set()
    keys: set[str] = set()
    _collect(obj, strings, keys)
    mapping = redact_many(sorted(strings | keys), text_fn)
    # Which key names redact_obj treats as secret, asked of redact_obj itself (few distinct keys).
    probe = "x"
    secret_keys = {k for k in keys if obj_fn({k: probe}).get(k, probe) != probe}

    def rebuild(node: Any) -> Any:
        if isinstance(node, str):
            return mapping[node]
        if isinstance(node, dict):
            out: dict[Any, Any] = {}
            for key, value in node.items():
                if key in secret_keys and isinstance(value, str | int | float):
                    out[key] = obj_fn({key: value})[key]
                else:
                    out[mapping[key] if isinstance(key, str) else key] = rebuild(value)
            return out
        if isinstance(node, list):
            return [rebuild(item) for item in node]
        if isinstance(node, tuple):
            return tuple(rebuild(item) for item in node)
        return node

    return rebuild(obj)
