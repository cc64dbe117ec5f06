"""Unbounded growth (a memory leak): process-wide containers that requests only ever add to, and
its relatives — memoization without a size bound, and event listeners registered per request.

Process-wide: a module/package-level or class-level (static) container, in Python, Go, Java and
JavaScript. It is bounded when the file ever removes from it, clears, re-binds or checks its size.
"""

from __future__ import annotations

import re

import tree_sitter as ts

from warroom.analysis.code_patterns.hits import FileContext, PatternHit
from warroom.analysis.code_patterns.syntax import callee, line_of, text, walk

CONTAINER_CALLS = re.compile(
    r"^(dict|list|set|OrderedDict|defaultdict|collections\.\w+|make|new (Map|Set|WeakRef)|Map|Set)\b"
)
CONTAINER_LITERALS = frozenset({"dictionary", "list", "set", "composite_literal", "object", "array"})
JAVA_CONTAINERS = re.compile(
    r"^new\s+(HashMap|LinkedHashMap|TreeMap|ConcurrentHashMap|ArrayList|LinkedList|HashSet|TreeSet|"
    r"ConcurrentLinkedQueue|CopyOnWriteArrayList|ArrayDeque)\b"
)
INSERT_METHODS = frozenset(
    {
        "append",
        "add",
        "setdefault",
        "update",
        "extend",
        "set",
        "push",
        "insert",
        "put",
        "putIfAbsent",
        "computeIfAbsent",
        "Store",
        "LoadOrStore",
        "addAll",
        "putAll",
        "offer",
    }
)
ASSIGNMENTS = frozenset({"assignment", "assignment_statement", "assignment_expression"})
SUBSCRIPTS = frozenset({"subscript", "index_expression", "subscript_expression"})
MEMO_DECORATOR = re.compile(r"^(functools\.)?(cache|lru_cache\(\s*(maxsize\s*=\s*)?None\s*\))$")
LISTENER_METHODS = frozenset({"on", "addListener", "addEventListener", "once", "prependListener"})
REQUEST_SCOPED = re.compile(r"^(req|res|request|response|reply|socket|ws|stream)$")


def _evicts(name: str, lines: list[str], declared: int) -> bool:
    """Whether the file ever removes from, clears, replaces or bounds the container (its own
    declaration, indented in a class body, is not a re-binding)."""
    source_text = "\n".join(line for number, line in enumerate(lines, 1) if number != declared)
    n = re.escape(name)
    patterns = [
        rf"\bdel\s+(\w+\.)?{n}\[",
        rf"\b{n}\.(pop|popitem|clear|remove|discard|delete|shift|splice|Delete|LoadAndDelete|removeIf|poll)\(",
        rf"\bdelete\((\w+\.)?{n}\s*,",
        rf"\bdelete\s+(\w+\.)?{n}\[",
        rf"\blen\((\w+\.)?{n}\)\s*[<>]=?",
        rf"\b{n}\.(size|length|Len)(\(\))?\s*[<>]=?",
        rf"^[ \t]+((self|cls|this)\.)?{n}[ \t]*=[^=]",  # re-bound inside a function: reset
    ]
    return any(re.search(p, source_text, re.MULTILINE) for p in patterns)


Binding = tuple[ts.Node | None, ts.Node | None]


def _python_bindings(root: ts.Node) -> list[Binding]:
    """Module-level assignments, and class attributes (they live as long as the module)."""
    tops = list(root.children)
    for node in root.children:
        if node.type in ("class_definition", "decorated_definition"):
            cls = node if node.type == "class_definition" else node.child_by_field_name("definition")
            body = cls.child_by_field_name("body") if cls is not None else None
            tops.extend(body.children if body is not None else [])
    found: list[Binding] = []
    for node in tops:
        if node.type == "expression_statement" and node.named_children:
            inner = node.named_children[0]
            if inner.type == "assignment":
                found.append((inner.child_by_field_name("left"), inner.child_by_field_name("right")))
    return found


def _go_bindings(root: ts.Node) -> list[Binding]:
    found: list[Binding] = []
    for node in root.children:
        if node.type != "var_declaration":
            continue
        for spec in [c for c in walk(node) if c.type == "var_spec"]:
            values = spec.child_by_field_name("value")
            value = values.named_children[0] if values is not None and values.named_children else None
            if value is None and text(spec.child_by_field_name("type")) == "sync.Map":
                value = spec.child_by_field_name("type")
            found.append((spec.child_by_field_name("name"), value))
    return found


def _javascript_bindings(root: ts.Node) -> list[Binding]:
    declarations = ("lexical_declaration", "variable_declaration", "export_statement")
    return [
        (decl.child_by_field_name("name"), decl.child_by_field_name("value"))
        for node in root.children
        if node.type in declarations
        for decl in walk(node)
        if decl.type == "variable_declarator"
    ]


def _java_bindings(root: ts.Node) -> list[Binding]:
    """Static fields, wherever their class is nested."""
    found: list[Binding] = []
    for field in [n for n in walk(root) if n.type == "field_declaration"]:
        modifiers = next((c for c in field.children if c.type == "modifiers"), None)
        if modifiers is None or "static" not in text(modifiers).split():
            continue
        for decl in [c for c in field.named_children if c.type == "variable_declarator"]:
            found.append((decl.child_by_field_name("name"), decl.child_by_field_name("value")))
    return found


BINDINGS = {"python": _python_bindings, "go": _go_bindings, "javascript": _javascript_bindings, "java": _java_bindings}


def _declarations(root: ts.Node, family: str) -> list[Binding]:
    """(name, value) of the module-, package- or class-level bindings."""
    bindings = BINDINGS.get(family)
    return bindings(root) if bindings is not None else []


def process_wide_containers(root: ts.Node, family: str) -> dict[str, int]:
    """Names bound at module/package/class level to an empty or literal container, with their line."""
    found: dict[str, int] = {}
    for left, right in _declarations(root, family):
        if left is None or right is None or left.type != "identifier":
            continue
        value = text(right)
        if (
            right.type in CONTAINER_LITERALS
            or CONTAINER_CALLS.match(value)
            or JAVA_CONTAINERS.match(value)
            or value == "sync.Map"
        ):
            found[text(left)] = line_of(left)
    return found


def _base_name(node: ts.Node | None) -> str:
    """`self._cache` / `Cls._cache` / `this.cache` / `cache` → the container's own name."""
    return text(node).rsplit(".", 1)[-1] if node is not None else ""


def _insertion(node: ts.Node, names: dict[str, int], family: str) -> str | None:
    """The container a statement adds to: `NAME[k] = v`, `NAME.append(…)`, `NAME = append(NAME, …)`."""
    if node.type in ASSIGNMENTS:
        left = node.child_by_field_name("left")
        right = node.child_by_field_name("right")
        if left is not None and left.type == "expression_list" and left.named_children:
            left = left.named_children[0]
        if left is not None and left.type in SUBSCRIPTS:
            base = (
                left.child_by_field_name("value")
                or left.child_by_field_name("operand")
                or left.child_by_field_name("object")
                or (left.named_children[0] if left.named_children else None)
            )
            if _base_name(base) in names:
                return _base_name(base)
        if left is not None and _base_name(left) in names and right is not None and text(right).startswith("append("):
            return _base_name(left)
        return None
    receiver, method = callee(node, family)
    if receiver is not None and method in INSERT_METHODS and receiver.rsplit(".", 1)[-1] in names:
        return receiver.rsplit(".", 1)[-1]
    return None


def find_growth(ctx: FileContext) -> list[PatternHit]:
    source = ctx.source
    names = process_wide_containers(source.root, source.family)
    hits: list[PatternHit] = []
    if names:
        growing = {n: line for n, line in names.items() if not _evicts(n, source.lines, line)}
        seen: set[str] = set()
        for node in walk(source.root):
            if node.type not in ASSIGNMENTS and node.type != source.grammar.call:
                continue
            name = _insertion(node, growing, source.family)
            function = source.function_at(node) if name is not None else None
            if name is None or name in seen or function is None:
                continue  # filled once at import time is bounded by the code itself
            seen.add(name)
            detail = (
                f"adds to the process-wide {name} (declared at line {growing[name]}) and nothing ever evicts, "
                "bounds or clears it: memory grows with traffic until the process is killed"
            )
            data: dict[str, object] = {"container": name, "declared_line": growing[name]}
            hits.append(ctx.hit("unbounded_growth", "process_wide_container", node, function, detail, 0.85, data))
    hits.extend(_memoization(ctx))
    hits.extend(_listeners(ctx))
    return hits


def _memoization(ctx: FileContext) -> list[PatternHit]:
    """`@cache` / `@lru_cache(maxsize=None)` on a function with arguments: one entry per distinct call."""
    hits = []
    for function in ctx.source.functions:
        params = [p for p, _ in function.params if p not in ("self", "cls")]
        marker = next((m for m in function.markers if MEMO_DECORATOR.match(m.replace(" ", ""))), None)
        if marker is None or not params:
            continue
        detail = (
            f"@{marker} keeps one result per distinct ({', '.join(params)}) for the life of the process and never "
            "evicts: with request-supplied arguments, memory grows with traffic"
        )
        hits.append(ctx.hit("unbounded_growth", "unbounded_memoization", function.node, function, detail, 0.6))
    return hits


def _listeners(ctx: FileContext) -> list[PatternHit]:
    """A request handler that registers an event listener on a long-lived emitter (JS)."""
    if ctx.source.family != "javascript":
        return []
    hits = []
    for function in ctx.source.functions:
        if ctx.on_request_path(function) is not True:
            continue
        for node in walk(function.node, stop=ctx.source.grammar.functions):
            if node.type != "call_expression":
                continue
            receiver, method = callee(node, "javascript")
            removed = re.search(
                rf"{re.escape(receiver or '')}\.(off|removeListener|removeEventListener|removeAllListeners)\(",
                text(function.node),
            )
            if method in LISTENER_METHODS and receiver and not REQUEST_SCOPED.match(receiver) and not removed:
                detail = (
                    f"registers a listener on the long-lived `{receiver}` on every request and never removes it: "
                    "listeners (and what their closures hold) pile up"
                )
                hits.append(ctx.hit("unbounded_growth", "listener_per_request", node, function, detail, 0.65))
    return hits
