"""Series selectors written as PromQL writes them (`http_requests_total{status=~"5.."}`): parsed once,
matched against a table of label sets offline, rendered back to PromQL for a live Prometheus."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import polars as pl

Op = Literal["=", "!=", "=~", "!~"]

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
_SELECTOR = re.compile(rf"^\s*(?P<name>{_NAME})?\s*(?:\{{(?P<body>.*)\}})?\s*$", re.DOTALL)
_MATCHER = re.compile(rf'\s*(?P<label>{_LABEL})\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*(?:,|$)')


@dataclass(frozen=True)
class Matcher:
    label: str
    op: Op
    value: str

    def promql(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.label}{self.op}"{escaped}"'

    def expression(self, column: pl.Expr) -> pl.Expr:
        """This matcher over a column of label values (an absent label is the empty string, as in
        PromQL; regular expressions are anchored at both ends, as in PromQL)."""
        value = column.fill_null("")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        matched = value.str.contains(f"^(?:{self.value})$")
        return matched if self.op == "=~" else ~matched


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...] = ()

    def promql(self, extra: tuple[Matcher, ...] = ()) -> str:
        matchers = (*self.matchers, *extra)
        body = ", ".join(m.promql() for m in matchers)
        return f"{self.metric}{{{body}}}" if matchers else self.metric

    def expression(self, columns: set[str]) -> pl.Expr:
        """Which rows of a series table (a `metric` column and one column per label) it selects."""
        selected = pl.col("metric") == self.metric
        for matcher in self.matchers:
            column = pl.col(matcher.label) if matcher.label in columns else pl.lit(None, dtype=pl.String)
            selected = selected & matcher.expression(column)
        return selected


def parse_selector(text: str) -> Selector:
    """`name{label="v", other=~"re"}` → Selector; ValueError naming what is wrong."""
    found = _SELECTOR.match(text)
    if found is None or not found.group("name"):
        raise ValueError(f'not a series selector (expected name{{label="value", …}}): {text!r}')
    body = (found.group("body") or "").strip()
    matchers: list[Matcher] = []
    position = 0
    while position < len(body):
        matched = _MATCHER.match(body, position)
        if matched is None:
            raise ValueError(f"cannot read the label matcher at {body[position:][:40]!r} in {text!r}")
        value = re.sub(r"\\(.)", r"\1", matched.group("value"))
        op: Op = matched.group("op")  # type: ignore[assignment]
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"bad regular expression {value!r} in {text!r}: {exc}") from None
        matchers.append(Matcher(matched.group("label"), op, value))
        position = matched.end()
    return Selector(found.group("name"), tuple(matchers))
