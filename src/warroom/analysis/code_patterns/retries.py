"""Retry loops without a bound: a loop with no attempt limit or deadline in its header or body that
sleeps and retries on error (Go `for {}`, `while True:`, `while (true)`, `for (;;)`)."""

from __future__ import annotations

import re

import tree_sitter as ts

from warroom.analysis.code_patterns.hits import FileContext, PatternHit
from warroom.analysis.code_patterns.syntax import Function, callee, text, walk

SLEEP_HINT = re.compile(r"(?i)(sleep|backoff|settimeout|delay)")
COUNTER_HINT = re.compile(r"(?i)(attempt|retr|tries|try|count|max|limit|budget|^i$|^n$)")
CANCEL_HINT = re.compile(r"(ctx\.Done|ctx\.Err|Deadline|time\.After|\.isInterrupted|signal\.aborted)")
RETRY_LOOPS = frozenset({"for_statement", "while_statement", "do_statement"})


def unbounded_header(loop: ts.Node, family: str) -> tuple[bool, str]:
    """(the loop header sets no bound, header text)."""
    if family == "go":
        heads = [c for c in loop.named_children if c.type not in ("block", "comment")]
        if not heads:
            return True, "for {"
        head = heads[0]
        if head.type in ("for_clause", "range_clause"):
            return False, text(head)
        return not _bounded_condition(head), text(head)
    if loop.type == "for_statement":
        cond = loop.child_by_field_name("condition")
        if family == "python" or (cond is not None and cond.type != "empty_statement"):
            return False, text(cond)
        return True, "for (;;)"
    cond = loop.child_by_field_name("condition")
    if cond is None:
        return True, ""
    return not _bounded_condition(cond), text(cond)


def _bounded_condition(cond: ts.Node) -> bool:
    if text(cond).strip("() ") in ("true", "True", "1"):
        return False
    return has_counter_comparison(cond)


def has_counter_comparison(node: ts.Node) -> bool:
    for child in [node, *walk(node)]:
        if child.type in ("binary_expression", "comparison_operator"):
            ops = {text(c) for c in child.children if not c.is_named}
            if ops & {"<", "<=", ">", ">=", "==", "!="}:
                idents = [
                    text(c)
                    for c in [child, *walk(child)]
                    if c.type in ("identifier", "field_identifier", "property_identifier")
                ]
                if any(COUNTER_HINT.search(name) for name in idents):
                    return True
    return False


def find_retries(function: Function, ctx: FileContext) -> list[PatternHit]:
    if not function.types & RETRY_LOOPS:
        return []
    hits: list[PatternHit] = []
    grammar, family = ctx.source.grammar, ctx.source.family
    for loop in walk(function.node, stop=grammar.functions):
        if loop.type not in RETRY_LOOPS:
            continue
        infinite, header = unbounded_header(loop, family)
        if not infinite:
            continue
        body = loop.child_by_field_name("body") or loop
        body_text = text(body)
        calls = [n for n in walk(body, stop=grammar.functions) if n.type == grammar.call]
        sleeps = [c for c in calls if SLEEP_HINT.search(callee(c, family)[1] or "")]
        if not (sleeps and re.search(r"\berr\b|\bexcept\b|\bcatch\b", body_text)):
            continue  # an event loop or a worker loop, not a retry
        if has_counter_comparison(body) or CANCEL_HINT.search(body_text):
            continue
        detail = (
            f"retry loop `{header.strip() or loop.type}` retries on error with "
            f"{callee(sleeps[0], family)[1]}() but has no attempt limit or deadline"
        )
        hits.append(
            ctx.hit("unbounded_retry", "no_attempt_limit", loop, function, detail, 0.7, {"header": header.strip()})
        )
    return hits
