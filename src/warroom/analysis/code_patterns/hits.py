"""What a detector reports: one occurrence of a pattern in one file, located to lines and function,
with the strength of the pattern (how certain it is that the code has this shape, not how likely it
caused an incident: the diagnosis engine weighs code against telemetry)."""

from __future__ import annotations

from dataclasses import dataclass, field

import tree_sitter as ts

from warroom.analysis.code_patterns.syntax import Function, SourceFile, end_line_of, line_of

# The finding kinds, in the order a reader of a change wants them when nothing else decides.
KINDS = (
    "resource_leak",
    "cpu_heavy",
    "unindexed_query",
    "lock_held",
    "unbounded_growth",
    "unbounded_retry",
    "destructive_migration",
    "config_change",
)


@dataclass
class PatternHit:
    """One occurrence of a pattern (line numbers are 1-based)."""

    kind: str
    subkind: str
    line: int
    end_line: int
    function: str | None
    function_start: int
    function_end: int
    detail: str
    snippet: str
    strength: float
    on_request_path: bool | None = None
    data: dict[str, object] = field(default_factory=dict)


def line_hit(
    kind: str, subkind: str, line: int, detail: str, snippet: str, strength: float, data: dict[str, object]
) -> PatternHit:
    """A hit on one line outside any function: a migration statement, a config key, a constant."""
    return PatternHit(kind, subkind, line, line, None, line, line, detail, snippet, strength, None, data)


@dataclass
class FileContext:
    """A parsed file and what every detector of it shares: which functions are on a request path."""

    source: SourceFile
    request_paths: dict[int, bool | None]

    def on_request_path(self, function: Function | None) -> bool | None:
        return self.request_paths.get(function.node.id) if function is not None else None

    def hit(
        self,
        kind: str,
        subkind: str,
        node: ts.Node,
        function: Function | None,
        detail: str,
        strength: float,
        data: dict[str, object] | None = None,
        end: ts.Node | None = None,
    ) -> PatternHit:
        line = line_of(node)
        return PatternHit(
            kind=kind,
            subkind=subkind,
            line=line,
            end_line=end_line_of(end or node),
            function=function.name if function is not None else None,
            function_start=function.start if function is not None else line,
            function_end=function.end if function is not None else end_line_of(end or node),
            detail=detail,
            snippet=self.source.snippet(line),
            strength=round(strength, 3),
            on_request_path=self.on_request_path(function),
            data=data or {},
        )
