"""Resources acquired without release on some path: connections, pool checkouts, cursors,
statements, files, locks; in Go, Python (sync and async), Java and JavaScript/TypeScript.

A release is guaranteed when it is deferred (Go), in a `finally` (Python, Java, JS, also a promise's
`.finally(…)`), or the resource is managed (`with` / `async with`, try-with-resources). Otherwise it
must dominate every exit after the acquisition (an early `return`/`raise`/`throw`, falling off the end)
and, where exceptions exist, nothing between the acquisition and the release may throw.
"""

from __future__ import annotations

import re

import tree_sitter as ts

from warroom.analysis.code_patterns.hits import FileContext, PatternHit
from warroom.analysis.code_patterns.syntax import (
    AWAIT_TYPES,
    BLOCK_TYPES,
    EXIT_TYPES,
    Function,
    arguments,
    callee,
    enclosing_block,
    has_ancestor,
    line_of,
    mentions,
    statement_of,
    text,
    walk,
)

# Method names that hand out a resource the caller must give back, per family, with what it is.
ACQUIRE: dict[str, dict[str, str]] = {
    "go": {
        "Conn": "database connection",
        "Acquire": "database connection",
        "Begin": "transaction",
        "BeginTx": "transaction",
        "Query": "result rows",
        "QueryContext": "result rows",
        "Prepare": "prepared statement",
        "PrepareContext": "prepared statement",
        "Open": "file",
        "OpenFile": "file",
        "Create": "file",
        "Dial": "network connection",
        "DialContext": "network connection",
        "Lock": "lock",
        "RLock": "lock",
    },
    "python": {
        "getconn": "database connection",
        "get_connection": "database connection",
        "connect": "database connection",
        "raw_connection": "database connection",
        "acquire": "connection or lock",
        "cursor": "cursor",
        "open": "file",
    },
    "java": {
        "getConnection": "database connection",
        "borrowObject": "pooled object",
        "prepareStatement": "prepared statement",
        "createStatement": "statement",
        "executeQuery": "result set",
        "lock": "lock",
    },
    "javascript": {
        "connect": "database connection",
        "getConnection": "database connection",
        "acquire": "database connection",
        "openSync": "file",
    },
}
LOCK_METHODS = frozenset({"Lock", "RLock", "lock", "acquire"})
# Resources that die with the connection they come from (a DB-API cursor, a JDBC statement or result
# set): when that connection is acquired in the same function, its own finding (or its release) covers them.
DEPENDENT = {
    "python": frozenset({"cursor"}),
    "java": frozenset({"prepareStatement", "createStatement", "executeQuery"}),
}
RELEASE_NAMES = frozenset(
    {
        "Close",
        "Release",
        "Unlock",
        "RUnlock",
        "Commit",
        "Rollback",
        "Put",
        "close",
        "release",
        "putconn",
        "unlock",
        "commit",
        "rollback",
        "end",
        "returnObject",
        "closeSync",
        "destroy",
        "dispose",
    }
)
RELEASE_HINT = re.compile(r"(?i)(close|release|put|return|free|unlock|dispose|destroy)")
GUARANTEED = frozenset({"defer_statement", "finally_clause"})
TRY_TYPES = frozenset({"try_statement", "try_with_resources_statement"})
HANDLER_TYPES = frozenset({"except_clause", "catch_clause"})


def _binding(call: ts.Node) -> tuple[str | None, str]:
    """The variable a call's result is bound to, and how: 'var', 'managed' (with / try-with-resources),
    'statement' (result unused), or 'other' (used inline)."""
    parent = call.parent
    while parent is not None and (
        parent.type in AWAIT_TYPES or parent.type in ("parenthesized_expression", "expression_list", "as_pattern")
    ):
        if parent.type == "as_pattern" and parent.parent is not None and parent.parent.type == "with_item":
            return None, "managed"
        parent = parent.parent
    if parent is None:
        return None, "other"
    kind = parent.type
    if kind in ("with_item", "resource"):
        return None, "managed"
    if kind == "expression_statement":
        return None, "statement"
    if kind in ("short_var_declaration", "assignment_statement"):
        left = parent.child_by_field_name("left")
        names = [c for c in (left.named_children if left is not None else []) if c.type == "identifier"]
        return (text(names[0]), "var") if names and text(names[0]) != "_" else (None, "other")
    if kind == "assignment":  # python
        left = parent.child_by_field_name("left")
        if left is not None and left.type in ("identifier", "attribute"):
            return text(left), "var"
        if left is not None and left.type in ("pattern_list", "tuple_pattern") and left.named_children:
            return text(left.named_children[0]), "var"
        return None, "other"
    if kind == "variable_declarator":
        return text(parent.child_by_field_name("name")), "var"
    if kind == "assignment_expression":
        return text(parent.child_by_field_name("left")), "var"
    if kind == "var_spec":
        names = [c for c in parent.named_children if c.type == "identifier"]
        return (text(names[0]), "var") if names else (None, "other")
    return None, "other"


def _error_check_after(statement: ts.Node) -> ts.Node | None:
    """Go's `if err != nil { return … }` right after an acquisition: on that path nothing was acquired."""
    sibling = statement.next_named_sibling
    if sibling is not None and sibling.type == "if_statement":
        cond = text(sibling.child_by_field_name("condition"))
        if "err" in cond and "nil" in cond:
            return sibling
    return None


def _dominates(release: ts.Node, exit_node: ts.Node, function: ts.Node) -> bool:
    """The release runs on every path to the exit: it sits earlier in a block that also holds the exit
    (a release inside an `if` does not cover an exit after that `if`)."""
    if release.end_byte > exit_node.start_byte:
        return False
    block = enclosing_block(release, function)
    return block is not None and block.start_byte <= exit_node.start_byte < block.end_byte


def _dominates_end(release: ts.Node, body: ts.Node, function: ts.Node) -> bool:
    """The release runs before the function falls off its end: it sits in the body's top-level block."""
    block = enclosing_block(release, function)
    if block is None:
        return False
    return block.id == body.id or (block.parent is not None and block.parent.id == body.id)


def _ends_with_exit(body: ts.Node) -> bool:
    node = body
    while node.named_children:
        last = [c for c in node.named_children if c.type != "comment"]
        if not last:
            return False
        node = last[-1]
        if node.type in EXIT_TYPES:
            return True
        if node.type not in BLOCK_TYPES:
            return False
    return False


def _returns(node: ts.Node, var: str) -> bool:
    values = []
    for child in node.named_children:
        values.extend(child.named_children if child.type in ("expression_list", "tuple") else [child])
    return any(text(v).strip() == var for v in values)


def _manages(item: ts.Node, var: str) -> bool:
    """`with conn:` / `with closing(conn) as c:` hand the resource to a context manager;
    `with conn.cursor() as cur:` only uses it."""
    value = item.named_children[0] if item.named_children else None
    if value is not None and value.type == "as_pattern" and value.named_children:
        value = value.named_children[0]
    if value is None:
        return False
    if text(value).strip() == var:
        return True
    return value.type == "call" and any(text(a).strip() == var for a in arguments(value))


def _body_nodes(function: Function, ctx: FileContext) -> list[ts.Node]:
    """The function's own nodes, plus deferred closures and `.finally(() => …)` callbacks, which run
    as part of it (`defer func() { conn.Close() }()`)."""
    grammar = ctx.source.grammar
    nodes = list(walk(function.node, stop=grammar.functions))
    extra: list[ts.Node] = []
    for node in nodes:
        if node.type == "defer_statement" or (
            node.type == grammar.call and callee(node, ctx.source.family)[1] == "finally"
        ):
            extra.extend(n for n in walk(node) if n.type not in grammar.functions)
    seen = {n.id for n in nodes}
    return nodes + [n for n in extra if n.id not in seen]


def _guaranteed(node: ts.Node, function: ts.Node, family: str) -> bool:
    if has_ancestor(node, GUARANTEED, function) is not None:
        return True
    current = node.parent
    while current is not None and current.id != function.id:  # inside `.finally(…)`'s callback
        if current.type == "call_expression" and callee(current, family)[1] == "finally":
            return True
        current = current.parent
    return False


def _acquisitions(function: Function, ctx: FileContext) -> list[tuple[ts.Node, str, str, str]]:
    """(call, variable, method, resource) for each acquisition whose release this function owns."""
    family = ctx.source.family
    table = ACQUIRE[family]
    out: list[tuple[ts.Node, str, str, str]] = []
    start, end = function.node.start_byte, function.node.end_byte
    for call in ctx.source.calls:
        if not (start <= call.start_byte < end) or ctx.source.function_at(call) is not function:
            continue
        receiver, method = callee(call, family)
        if method not in table:
            continue
        if family == "go" and method in ("Open", "OpenFile", "Create") and receiver != "os":
            continue  # sql.Open returns a long-lived pool handle, not a per-request resource
        if family == "python" and method == "open" and receiver is not None:
            continue
        if family == "python" and method == "connect" and receiver is None:
            continue
        var, how = _binding(call)
        if how == "managed":
            continue
        if how == "statement" and method in LOCK_METHODS and receiver:
            var = receiver
        elif how != "var" or not var:
            continue
        if statement_of(call, function.node).type == "with_statement":
            continue
        if method in DEPENDENT.get(family, ()) and receiver in {v for _, v, _, _ in out}:
            continue
        out.append((call, var, method, table[method]))
    return out


def _uses_after(
    acquired_end: int, var: str, body_nodes: list[ts.Node], fnode: ts.Node, family: str, call_type: str
) -> tuple[list[tuple[ts.Node, bool]], bool, bool]:
    """What the function does with `var` after acquiring it: its release calls (each with whether
    it is guaranteed: deferred / in a finally), whether ownership leaves the function (returned,
    managed by `with`, stored on an object), and whether it is passed to another call."""
    releases: list[tuple[ts.Node, bool]] = []
    transferred = passed_on = False
    for node in body_nodes:
        if node.start_byte < acquired_end:
            continue
        if node.type == call_type:
            recv, name = callee(node, family)
            args = [text(a) for a in arguments(node)]
            if (recv == var and name in RELEASE_NAMES) or (
                var in args and (name in RELEASE_NAMES or RELEASE_HINT.search(name or ""))
            ):
                releases.append((node, _guaranteed(node, fnode, family)))
            elif var in args:
                passed_on = True
        elif node.type == "return_statement" and _returns(node, var):
            transferred = True  # handed to the caller, who owns it from now on
        elif node.type == "with_item" and _manages(node, var):
            transferred = True  # `with conn:` / `with closing(conn):` releases it
        elif node.type in ("assignment_statement", "assignment", "assignment_expression"):
            right = node.child_by_field_name("right")
            left = text(node.child_by_field_name("left"))
            if right is not None and text(right).strip() == var and "." in left:
                transferred = True  # stored on an object that owns it from now on
    return releases, transferred, passed_on


def find_leaks(function: Function, ctx: FileContext) -> list[PatternHit]:
    if not function.calls & ACQUIRE[ctx.source.family].keys():
        return []
    hits: list[PatternHit] = []
    family = ctx.source.family
    call_type = ctx.source.grammar.call
    fnode = function.node
    acquisitions = _acquisitions(function, ctx)
    body_nodes = _body_nodes(function, ctx) if acquisitions else []
    for call, var, method, resource in acquisitions:
        statement = statement_of(call, fnode)
        acquired_end = statement.end_byte
        err_check = _error_check_after(statement) if family == "go" else None
        releases, transferred, passed_on = _uses_after(acquired_end, var, body_nodes, fnode, family, call_type)
        if transferred or any(g for _, g in releases):
            continue
        described = f"{resource} `{var}` acquired by {method}()"
        where = function.name or "this function"
        data: dict[str, object] = {"resource": resource, "variable": var, "acquire": method}
        if not releases:
            detail = f"{described} is never released in {where}"
            if passed_on:
                detail += " (it is passed to another call, which may or may not release it)"
            hits.append(
                ctx.hit("resource_leak", "never_released", call, function, detail, 0.55 if passed_on else 0.9, data)
            )
            continue
        release_nodes = [r for r, _ in releases]
        exit_node = _unreleased_exit(function, body_nodes, acquired_end, err_check, release_nodes)
        release_line = min(line_of(r) for r in release_nodes)
        if exit_node is not None:
            exit_line = line_of(exit_node) if exit_node.type in EXIT_TYPES else exit_node.end_point[0] + 1
            detail = (
                f"{described} is released at line {release_line} only on some paths: the exit at line "
                f"{exit_line} leaves without releasing it"
            )
            hits.append(
                ctx.hit("resource_leak", "early_exit", call, function, detail, 0.8, {**data, "exit_line": exit_line})
            )
            continue
        thrower = _unprotected_throw(body_nodes, acquired_end, release_nodes, var, ctx) if family != "go" else None
        if thrower is not None:
            detail = (
                f"{described} is released at line {release_line} outside a finally/with: when the call at "
                f"line {line_of(thrower)} throws, the {resource} is never given back"
            )
            hits.append(
                ctx.hit(
                    "resource_leak",
                    "exception_path",
                    call,
                    function,
                    detail,
                    0.6,
                    {**data, "exit_line": line_of(thrower)},
                )
            )
    return hits


def _unreleased_exit(
    function: Function,
    body_nodes: list[ts.Node],
    acquired_end: int,
    err_check: ts.Node | None,
    releases: list[ts.Node],
) -> ts.Node | None:
    fnode = function.node
    exits = [
        n
        for n in body_nodes
        if n.type in EXIT_TYPES
        and n.start_byte >= acquired_end
        and (err_check is None or not (err_check.start_byte <= n.start_byte < err_check.end_byte))
        and not any(_dominates(r, n, fnode) for r in releases)
    ]
    body = fnode.child_by_field_name("body")
    if body is not None and not _ends_with_exit(body) and not any(_dominates_end(r, body, fnode) for r in releases):
        exits.append(body)
    return exits[0] if exits else None


def _unprotected_throw(
    body_nodes: list[ts.Node], acquired_end: int, releases: list[ts.Node], var: str, ctx: FileContext
) -> ts.Node | None:
    """The first call between the acquisition and the first release that can throw without a handler
    of the same try releasing the resource."""
    first_release = min(r.start_byte for r in releases)
    for node in body_nodes:
        if node.type != ctx.source.grammar.call or not (acquired_end <= node.start_byte < first_release):
            continue
        if any(node.start_byte >= r.start_byte and node.end_byte <= r.end_byte for r in releases):
            continue
        if not _handled(node, var):
            return node
    return None


def _handled(node: ts.Node, var: str) -> bool:
    """Inside a try whose except/catch mentions the resource (releases or re-raises after releasing)."""
    current = node.parent
    while current is not None:
        if current.type in TRY_TYPES:
            handlers = [c for c in current.named_children if c.type in HANDLER_TYPES]
            if any(mentions(h, var) for h in handlers):
                return True
        current = current.parent
    return False
