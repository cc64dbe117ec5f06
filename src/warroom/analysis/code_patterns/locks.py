"""Locks held across a slow call — evidence for lock contention: a database transaction (BEGIN …
COMMIT, a transaction block or decorator), a row lock (SELECT … FOR UPDATE) or a mutex held while the
code sleeps, calls over the network or runs a subprocess. Every other request that needs the same
rows or lock waits for that call to finish."""

from __future__ import annotations

import re
from dataclasses import dataclass

import tree_sitter as ts

from warroom.analysis.code_patterns.hits import FileContext, PatternHit
from warroom.analysis.code_patterns.syntax import (
    STRING_TYPES,
    Function,
    arguments,
    callee,
    line_of,
    qualified,
    string_value,
    text,
    walk,
)

SLEEPS = re.compile(
    r"^(time\.sleep|asyncio\.sleep|Thread\.sleep|time\.Sleep|TimeUnit\.\w+\.sleep|sleep|delay|setTimeout|"
    r"\w+\.sleep)$"
)
NETWORK = re.compile(
    r"^(requests\.\w+|httpx\.\w+|urllib\.request\.urlopen|urlopen|fetch|axios(\.\w+)?|got(\.\w+)?|superagent\.\w+|"
    r"http\.(Get|Post|Head|PostForm)|https?\.(get|request)|restTemplate\.\w+|webClient\.\w+|"
    r"subprocess\.\w+|exec\.Command|Runtime\.getRuntime\(\)\.exec)$"
)
CLIENT_RECEIVER = re.compile(r"(?i)(http|client|stub|api|gateway|rest|remote|provider|upstream|downstream)")
NOT_REMOTE = re.compile(r"(?i)(db|sql|tx|trx|conn|cursor|session|repo|dao|pool|cache|redis|log|map|list)")
CLIENT_METHODS = re.compile(
    r"^(Do|Get|Post|get|post|put|patch|delete|request|send|sendAsync|execute|exchange|call|fetch)$"
)
TX_BLOCK = re.compile(r"(\.transaction|\.atomic|\.begin|\.begin_nested|Transaction)\s*\(")
TX_DECORATOR = re.compile(r"(?i)(transaction\.atomic|transactional|atomic)")
TX_CALLBACK = re.compile(r"^(transaction|\$transaction|transact|withTransaction|runInTransaction)$")
BEGIN_METHODS = frozenset({"Begin", "BeginTx", "begin", "setAutoCommit", "beginTransaction"})
END_METHODS = frozenset({"Commit", "commit", "Rollback", "rollback", "Unlock", "unlock", "release", "RUnlock"})
LOCK_METHODS = frozenset({"Lock", "lock", "RLock", "acquire"})
FOR_UPDATE = re.compile(r"(?i)\bfor\s+(no\s+key\s+)?update\b|\bfor\s+share\b")


@dataclass
class Held:
    """A stretch of a function in which something is locked."""

    what: str  # "transaction" | "row lock" | "mutex"
    subkind: str
    start: ts.Node
    end_byte: int


def slow_call(node: ts.Node, family: str, declared: dict[str, str] | None = None) -> str | None:
    """ "sleep" / "network call" when a call waits on the clock or another process or host. A
    receiver is read by its name and, when it is a parameter, by its declared type (`catalog:
    Downstream` is a client whatever the parameter is called)."""
    name = qualified(node, family)
    receiver, method = callee(node, family)
    if SLEEPS.match(name) and not (receiver and NOT_REMOTE.search(receiver)):
        return "sleep"
    if NETWORK.match(name):
        return "network call"
    if receiver and CLIENT_METHODS.match(method):
        for what in (receiver, (declared or {}).get(receiver, "")):
            if what and CLIENT_RECEIVER.search(what) and not NOT_REMOTE.search(what):
                return "network call"
    return None


def _string_arg(call: ts.Node) -> str:
    args = arguments(call)
    return string_value(args[0]) if args and args[0].type in STRING_TYPES else ""


def _end_after(start: int, ends: list[ts.Node], var: str | None, function: Function) -> int:
    """Where a lock taken at `start` is given back: the first matching commit/unlock after it outside a
    `defer` (a deferred release holds it to the end of the function)."""
    for node in ends:
        if node.start_byte <= start:
            continue
        if var and not text(node).startswith(var):
            continue
        if any(a.type == "defer_statement" for a in _ancestors(node, function.node)):
            continue
        return node.start_byte
    return function.node.end_byte


def _ancestors(node: ts.Node, limit: ts.Node) -> list[ts.Node]:
    out, current = [], node.parent
    while current is not None and current.id != limit.id:
        out.append(current)
        current = current.parent
    return out


def _held_regions(function: Function, ctx: FileContext) -> list[Held]:
    family, grammar = ctx.source.family, ctx.source.grammar
    regions: list[Held] = []
    if any(TX_DECORATOR.search(m) for m in function.markers):
        regions.append(Held("transaction", "transaction_across_slow_call", function.node, function.node.end_byte))
    if family == "java" and re.search(r"\bsynchronized\b", text(function.node).split("(", 1)[0]):
        regions.append(Held("monitor", "mutex_across_slow_call", function.node, function.node.end_byte))
    nodes = list(walk(function.node, stop=grammar.functions - {"arrow_function", "function_expression", "lambda"}))
    calls = [n for n in nodes if n.type == grammar.call]
    ends = [
        c
        for c in calls
        if callee(c, family)[1] in END_METHODS or re.match(r"(?i)^\s*(commit|rollback)\b", _string_arg(c))
    ]
    for node in nodes:
        if node.type == "with_statement" and TX_BLOCK.search(text(node).split(":", 1)[0]):
            regions.append(Held("transaction", "transaction_across_slow_call", node, node.end_byte))
        elif node.type == "synchronized_statement":
            regions.append(Held("monitor", "mutex_across_slow_call", node, node.end_byte))
    for call in calls:
        receiver, method = callee(call, family)
        sql = _string_arg(call)
        if method in BEGIN_METHODS or re.match(r"(?i)^\s*(begin|start\s+transaction)\b", sql):
            if method == "setAutoCommit" and "false" not in text(call):
                continue
            regions.append(
                Held(
                    "transaction",
                    "transaction_across_slow_call",
                    call,
                    _end_after(call.start_byte, ends, None, function),
                )
            )
        elif FOR_UPDATE.search(sql) or any(
            FOR_UPDATE.search(string_value(s)) for s in walk(call) if s.type in STRING_TYPES
        ):
            regions.append(
                Held("row lock", "row_lock_across_slow_call", call, _end_after(call.start_byte, ends, None, function))
            )
        elif method in LOCK_METHODS and receiver and re.search(r"(?i)(mu|mutex|lock)", receiver):
            regions.append(
                Held("mutex", "mutex_across_slow_call", call, _end_after(call.start_byte, ends, receiver, function))
            )
        elif TX_CALLBACK.match(method):
            callback = next((a for a in arguments(call) if a.type in grammar.functions), None)
            if callback is not None:
                regions.append(Held("transaction", "transaction_across_slow_call", callback, callback.end_byte))
    return regions


LOCKING_TYPES = frozenset({"with_statement", "synchronized_statement"})


def _may_lock(function: Function) -> bool:
    if function.markers or function.types & LOCKING_TYPES:
        return True
    if function.calls & (BEGIN_METHODS | LOCK_METHODS) or any(TX_CALLBACK.match(c) for c in function.calls):
        return True
    body = text(function.node).lower()
    return "synchronized" in body or "begin" in body or "for update" in body or "for share" in body


def find_locks_held(function: Function, ctx: FileContext) -> list[PatternHit]:
    if not _may_lock(function):
        return []
    regions = _held_regions(function, ctx)
    if not regions:
        return []
    family, grammar = ctx.source.family, ctx.source.grammar
    calls = [
        n
        for n in walk(function.node, stop=grammar.functions - {"arrow_function", "function_expression", "lambda"})
        if n.type == grammar.call
    ]
    declared = {name: kind for name, kind in function.params if kind}
    hits = []
    reported: set[int] = set()
    for region in regions:
        for call in calls:
            if not (region.start.start_byte <= call.start_byte < region.end_byte) or call.id in reported:
                continue
            if region.start.type == grammar.call and call.start_byte < region.start.end_byte:
                continue
            kind = slow_call(call, family, declared)
            if kind is None:
                continue
            reported.add(call.id)
            name = qualified(call, family)
            detail = (
                f"the {region.what} taken at line {line_of(region.start)} is held across the {kind} {name}() at line "
                f"{line_of(call)}: every request that needs the same {'rows' if region.what != 'mutex' else 'lock'} "
                "waits for it (lock contention)"
            )
            data: dict[str, object] = {
                "held": region.what,
                "slow_call": name,
                "slow_line": line_of(call),
                "slow_kind": kind,
            }
            # The finding points where the lock is taken, up to the slow call: that is what every other
            # request waits on, and where the fix goes (commit before the call, or lock less).
            strength = 0.75 if kind == "sleep" else 0.7
            hit = ctx.hit("lock_held", region.subkind, region.start, function, detail, strength, data, call)
            hit.data["lock_line"] = line_of(region.start)
            hits.append(hit)
    return hits
