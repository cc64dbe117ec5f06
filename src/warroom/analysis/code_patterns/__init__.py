"""Code evidence detectors: pure functions over source text and tree-sitter syntax trees, in Go,
Python (sync and async), Java and JavaScript/TypeScript. One module per detector family:

- leaks: resources acquired without release on some path (resource_leak)
- cpu: CPU-heavy code — nested loops, per-iteration regex/parse/sort, blocking in async (cpu_heavy)
- queries + schema: predicates no index covers; destructive and index-dropping migrations
- locks: transactions, row locks and mutexes held across slow calls (lock_held)
- growth: process-wide containers that only grow (unbounded_growth)
- retries: retry loops without a bound (unbounded_retry)
- config: changed settings of config files and code constants (config_change)
- reach: whether a function is on a request path

The git plumbing (which files and lines a change touched, which commit carries what) is in
analysis/code.py.
"""

from __future__ import annotations

from warroom.analysis.code_patterns.config import config_changes, constant_changes, is_config
from warroom.analysis.code_patterns.cpu import find_cpu_heavy
from warroom.analysis.code_patterns.growth import find_growth
from warroom.analysis.code_patterns.hits import KINDS, FileContext, PatternHit
from warroom.analysis.code_patterns.leaks import ACQUIRE, find_leaks
from warroom.analysis.code_patterns.locks import find_locks_held
from warroom.analysis.code_patterns.queries import find_queries, unindexed_columns
from warroom.analysis.code_patterns.reach import handler_callers, request_paths
from warroom.analysis.code_patterns.retries import find_retries
from warroom.analysis.code_patterns.schema import (
    Schema,
    destructive_statements,
    dropped_indexes,
    is_migration,
    parse_schema,
)
from warroom.analysis.code_patterns.syntax import SourceFile, language_of, parse

__all__ = [
    "ACQUIRE",
    "KINDS",
    "PatternHit",
    "Schema",
    "SourceFile",
    "analyse_file",
    "analyse_source",
    "config_changes",
    "constant_changes",
    "destructive_statements",
    "dropped_indexes",
    "handler_callers",
    "is_config",
    "is_migration",
    "language_of",
    "parse",
    "parse_schema",
    "unindexed_columns",
]

FUNCTION_DETECTORS = (
    ("resource_leak", find_leaks),
    ("cpu_heavy", find_cpu_heavy),
    ("lock_held", find_locks_held),
    ("unbounded_retry", find_retries),
)


def analyse_file(
    source: SourceFile,
    schema: Schema | None = None,
    kinds: set[str] | None = None,
    callers_elsewhere: frozenset[str] = frozenset(),
) -> list[PatternHit]:
    """Every hit of the wanted pattern kinds in one parsed file, in source order.
    `callers_elsewhere`: names of this file's functions that request handlers of other files call."""
    wanted = kinds or set(KINDS)
    ctx = FileContext(source, request_paths(source, callers_elsewhere))
    hits: list[PatternHit] = []
    for function in source.functions:
        for kind, detector in FUNCTION_DETECTORS:
            if kind in wanted:
                hits.extend(detector(function, ctx))
    if "unindexed_query" in wanted:
        hits.extend(find_queries(ctx, schema))
    if "unbounded_growth" in wanted:
        hits.extend(find_growth(ctx))
    # A closure's loop is also its enclosing function's loop: keep one hit per place and pattern.
    unique: dict[tuple[str, str, int], PatternHit] = {}
    for hit in hits:
        key = (hit.kind, hit.subkind, hit.line)
        if (
            key not in unique
            or hit.function_end - hit.function_start < unique[key].function_end - unique[key].function_start
        ):
            unique[key] = hit
    return sorted(unique.values(), key=lambda h: (h.line, h.kind))


def analyse_source(
    source: bytes, language: str, schema: Schema | None = None, kinds: set[str] | None = None, path: str = ""
) -> list[PatternHit]:
    """Every hit of the wanted pattern kinds in one file's text."""
    return analyse_file(parse(path, source, language), schema, kinds)
