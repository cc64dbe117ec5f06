"""Columnar access to the JSON `attributes` column of logs and spans (one regex pass per key).

Decoding a JSON object per row is several times slower than pulling the few keys an analysis needs
with a regular expression evaluated in polars' native string kernels, and it must stay columnar on
millions of request-log lines.
"""

from __future__ import annotations

import re

import polars as pl


def _pattern(key: str) -> str:
    # A string value (with escapes) in group 1, or a bare number / boolean in group 2.
    return r'"' + re.escape(key) + r'"\s*:\s*(?:"((?:[^"\\]|\\.)*)"|(-?[0-9][0-9.eE+\-]*|true|false))'


def attr(key: str, column: str = "attributes") -> pl.Expr:
    """The text value of one attribute key (null where absent), as a polars expression."""
    groups = pl.col(column).str.extract_groups(_pattern(key))
    return pl.coalesce(groups.struct.field("1"), groups.struct.field("2"))


def attr_float(key: str, column: str = "attributes") -> pl.Expr:
    return attr(key, column).cast(pl.Float64, strict=False)


def has_key(key: str, column: str = "attributes") -> pl.Expr:
    return pl.col(column).str.contains(f'"{key}"', literal=True).fill_null(False)


def with_attributes(
    frame: pl.DataFrame, text_keys: dict[str, str], number_keys: dict[str, str] | None = None
) -> pl.DataFrame:
    """Add one column per wanted key: {column name: attribute key}. Missing keys give nulls."""
    if "attributes" not in frame.columns:
        nulls = [pl.lit(None, pl.String).alias(name) for name in text_keys]
        nulls += [pl.lit(None, pl.Float64).alias(name) for name in (number_keys or {})]
        return frame.with_columns(nulls)
    exprs = [attr(key).alias(name) for name, key in text_keys.items()]
    exprs += [attr_float(key).alias(name) for name, key in (number_keys or {}).items()]
    return frame.with_columns(exprs)
