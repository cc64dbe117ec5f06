"""Label matchers in Alertmanager's syntax: `name="value"`, `name!="value"`, `name=~"re"`, `name!~"re"`.

Regular expressions are anchored (the whole value must match), as in Alertmanager and Prometheus.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_MATCHER = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # = != =~ !~
    value: str
    pattern: re.Pattern[str] | None

    def matches(self, labels: dict[str, Any]) -> bool:
        actual = str(labels.get(self.label, ""))  # a missing label matches the empty string
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.pattern is not None
        found = self.pattern.fullmatch(actual) is not None
        return found if self.op == "=~" else not found


def parse_matcher(text: str) -> Matcher:
    """One matcher; ValueError naming what was expected."""
    found = _MATCHER.match(text)
    if found is None:
        raise ValueError(f"'{text}' is not a matcher (expected label=\"value\", !=, =~ or !~ with a quoted value)")
    label, op, raw = found.groups()
    value = raw.encode("utf-8").decode("unicode_escape") if "\\" in raw else raw
    pattern = None
    if op in ("=~", "!~"):
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise ValueError(f"'{text}': invalid regular expression ({exc})") from None
    return Matcher(label, op, value, pattern)
