"""The syntax trees every code detector reads: which grammar parses a file, the node types each
language uses for the shapes the detectors look for (functions, calls, loops, strings, blocks), and
small helpers over tree-sitter nodes.

Node type names change between grammar releases (tree-sitter-python 0.23 renamed `await` nodes):
the grammar versions are pinned in pyproject.toml and tests/test_code_grammars.py asserts both the
installed versions and the node shapes each detector relies on.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

import tree_sitter as ts


@dataclass(frozen=True)
class Grammar:
    """One language as the detectors see it. `family` groups grammars whose trees share node types
    (TypeScript's trees are JavaScript's plus type annotations), so a detector is written once per family."""

    name: str
    family: str
    module: str
    entry: str  # the module's function that returns the language pointer
    functions: frozenset[str]
    call: str
    loops: frozenset[str]


_JS_FUNCTIONS = frozenset(
    {
        "function_declaration",
        "function_expression",
        "function",
        "arrow_function",
        "method_definition",
        "generator_function_declaration",
    }
)
_JS_LOOPS = frozenset({"for_statement", "for_in_statement", "while_statement", "do_statement"})
GRAMMARS: dict[str, Grammar] = {
    "go": Grammar(
        "go",
        "go",
        "tree_sitter_go",
        "language",
        frozenset({"function_declaration", "method_declaration", "func_literal"}),
        "call_expression",
        frozenset({"for_statement"}),
    ),
    "python": Grammar(
        "python",
        "python",
        "tree_sitter_python",
        "language",
        frozenset({"function_definition", "lambda"}),
        "call",
        frozenset({"for_statement", "while_statement", "for_in_clause"}),
    ),
    "java": Grammar(
        "java",
        "java",
        "tree_sitter_java",
        "language",
        frozenset({"method_declaration", "constructor_declaration", "lambda_expression"}),
        "method_invocation",
        frozenset({"for_statement", "enhanced_for_statement", "while_statement", "do_statement"}),
    ),
    "javascript": Grammar(
        "javascript", "javascript", "tree_sitter_javascript", "language", _JS_FUNCTIONS, "call_expression", _JS_LOOPS
    ),
    "typescript": Grammar(
        "typescript",
        "javascript",
        "tree_sitter_typescript",
        "language_typescript",
        _JS_FUNCTIONS,
        "call_expression",
        _JS_LOOPS,
    ),
    "tsx": Grammar(
        "tsx", "javascript", "tree_sitter_typescript", "language_tsx", _JS_FUNCTIONS, "call_expression", _JS_LOOPS
    ),
}
EXTENSIONS = {
    ".go": "go",
    ".py": "python",
    ".java": "java",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
}
EXIT_TYPES = frozenset({"return_statement", "raise_statement", "throw_statement"})
BLOCK_TYPES = frozenset({"block", "statement_list", "statement_block", "module", "program", "source_file"})
STRING_TYPES = frozenset(
    {"interpreted_string_literal", "raw_string_literal", "string", "string_literal", "text_block", "template_string"}
)
# Nodes that glue string pieces into one expression: `+`, Python's implicit concatenation and `%`.
CONCAT_TYPES = frozenset({"binary_expression", "binary_operator", "concatenated_string", "parenthesized_expression"})
AWAIT_TYPES = frozenset({"await", "await_expression"})  # python ≥ 0.23: `await`; javascript: `await_expression`


def language_of(path: str) -> str | None:
    dot = path.rfind(".")
    if dot < 0 or path.endswith(".d.ts"):
        return None
    return EXTENSIONS.get(path[dot:].lower())


@cache
def parser_for(language: str) -> ts.Parser:
    grammar = GRAMMARS[language]
    module = importlib.import_module(grammar.module)
    return ts.Parser(ts.Language(getattr(module, grammar.entry)()))


def text(node: ts.Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace")


def walk(node: ts.Node, stop: frozenset[str] | set[str] | None = None) -> Iterator[ts.Node]:
    """Pre-order descendants of `node`, not descending into nodes whose type is in `stop`."""
    stack = list(reversed(node.children))
    while stack:
        current = stack.pop()
        yield current
        if stop and current.type in stop:
            continue
        stack.extend(reversed(current.children))


def line_of(node: ts.Node) -> int:
    return node.start_point[0] + 1


def end_line_of(node: ts.Node) -> int:
    return node.end_point[0] + 1


def callee(call: ts.Node, family: str) -> tuple[str | None, str]:
    """(receiver text or None, method or function name) of a call."""
    if family == "java":
        obj = call.child_by_field_name("object")
        return (text(obj) if obj is not None else None, text(call.child_by_field_name("name")))
    func = call.child_by_field_name("function")
    if func is None:
        return None, ""
    if func.type in ("selector_expression", "attribute", "member_expression"):
        operand = func.child_by_field_name("operand") or func.child_by_field_name("object")
        member = (
            func.child_by_field_name("field")
            or func.child_by_field_name("attribute")
            or func.child_by_field_name("property")
        )
        return text(operand), text(member)
    return None, text(func)


def qualified(call: ts.Node, family: str) -> str:
    """`receiver.method` (or the bare name) of a call, for matching against tables of known APIs."""
    receiver, name = callee(call, family)
    return f"{receiver}.{name}" if receiver else name


def arguments(call: ts.Node) -> list[ts.Node]:
    args = call.child_by_field_name("arguments")
    if args is None:
        return []
    return [c for c in args.named_children if c.type != "comment"]


def has_ancestor(node: ts.Node, types: frozenset[str] | set[str], limit: ts.Node) -> ts.Node | None:
    current = node.parent
    while current is not None and current.id != limit.id:
        if current.type in types:
            return current
        current = current.parent
    return None


def statement_of(node: ts.Node, function: ts.Node) -> ts.Node:
    """The statement (child of a block) that contains `node`."""
    current = node
    while current.parent is not None and current.parent.id != function.id:
        if current.parent.type in BLOCK_TYPES:
            return current
        current = current.parent
    return current


def enclosing_block(node: ts.Node, function: ts.Node) -> ts.Node | None:
    parent = statement_of(node, function).parent
    return parent if parent is not None and parent.type in BLOCK_TYPES else None


def mentions(node: ts.Node, name: str) -> bool:
    return bool(re.search(r"(?<![\w.])" + re.escape(name) + r"(?!\w)", text(node)))


def string_value(node: ts.Node) -> str:
    """The text of a string literal without quotes; interpolations (f-strings, `${}`) become `?`."""
    if node.type == "string" and any(c.type == "interpolation" for c in node.children):
        return "".join("?" if c.type == "interpolation" else text(c) for c in node.children[1:-1])
    raw = text(node)
    if node.type == "template_string":
        raw = re.sub(r"\$\{[^}]*\}", "?", raw)
    return re.sub(r"""^[rRbBuUfF]*(\"\"\"|'''|"|'|`)|(\"\"\"|'''|"|'|`)$""", "", raw)


@dataclass
class Function:
    """A function, method or closure of one file, with what the request-path analysis reads."""

    node: ts.Node
    name: str | None
    is_async: bool
    params: list[tuple[str, str]]  # (name, declared type or "")
    markers: list[str]  # decorators (Python) or annotations (Java), as written
    route: str | None = None  # the path of a route registration this function is passed to (JS)
    calls: set[str] = field(default_factory=set)  # names it (or a closure inside it) calls
    types: set[str] = field(default_factory=set)  # node types inside it (its closures' included)

    @property
    def start(self) -> int:
        return line_of(self.node)

    @property
    def end(self) -> int:
        return end_line_of(self.node)

    @property
    def body(self) -> ts.Node:
        return self.node.child_by_field_name("body") or self.node


@dataclass
class SourceFile:
    """One parsed file: the tree, its lines and its functions (outermost first, in source order)."""

    path: str
    language: str
    family: str
    grammar: Grammar
    root: ts.Node
    lines: list[str]
    functions: list[Function]
    by_id: dict[int, Function]
    calls: list[ts.Node]  # every call of the file, in source order

    def function_at(self, node: ts.Node) -> Function | None:
        """The innermost function that contains `node`."""
        current: ts.Node | None = node
        while current is not None:
            found = self.by_id.get(current.id)
            if found is not None:
                return found
            current = current.parent
        return None

    def snippet(self, line: int) -> str:
        return self.lines[line - 1].strip()[:240] if 0 < line <= len(self.lines) else ""


def parse(path: str, source: bytes, language: str) -> SourceFile:
    grammar = GRAMMARS[language]
    tree = parser_for(language).parse(source)
    lines = source.decode("utf-8", "replace").splitlines()
    functions: list[Function] = []
    calls: list[ts.Node] = []
    # One walk of the tree: every function learns which node types and call names it holds (its
    # closures' included), so a detector skips a function that cannot have its pattern.
    stack: list[tuple[ts.Node, tuple[Function, ...]]] = [(c, ()) for c in reversed(tree.root_node.children)]
    while stack:
        node, owners = stack.pop()
        if node.type in grammar.functions:
            function = _function(node, grammar)
            functions.append(function)
            owners = (*owners, function)
        elif node.type == grammar.call:
            calls.append(node)
            name = callee(node, grammar.family)[1]
            for owner in owners:
                owner.calls.add(name)
        for owner in owners:
            owner.types.add(node.type)
        stack.extend((c, owners) for c in reversed(node.children))
    return SourceFile(
        path,
        language,
        grammar.family,
        grammar,
        tree.root_node,
        lines,
        functions,
        {f.node.id: f for f in functions},
        calls,
    )


def _function(node: ts.Node, grammar: Grammar) -> Function:
    family = grammar.family
    is_async = any(c.type == "async" for c in node.children) or text(node).startswith("async ")
    markers: list[str] = []
    if family == "python" and node.parent is not None and node.parent.type == "decorated_definition":
        markers = [text(d).lstrip("@") for d in node.parent.named_children if d.type == "decorator"]
    elif family == "java":
        modifiers = next((c for c in node.children if c.type == "modifiers"), None)
        if modifiers is not None:
            markers = [text(a).lstrip("@") for a in modifiers.named_children if "annotation" in a.type]
    route = _route_of(node, family)
    return Function(node, function_name(node, family), is_async, _params(node, family), markers, route)


def _params(node: ts.Node, family: str) -> list[tuple[str, str]]:
    params = node.child_by_field_name("parameters")
    if params is None:
        return []
    out: list[tuple[str, str]] = []
    for p in params.named_children:
        if family == "go" and p.type == "parameter_declaration":
            kind = text(p.child_by_field_name("type"))
            out.extend((text(n), kind) for n in p.children_by_field_name("name"))
        elif family == "java" and p.type in ("formal_parameter", "spread_parameter"):
            out.append((text(p.child_by_field_name("name")), text(p.child_by_field_name("type"))))
        elif p.type == "identifier":
            out.append((text(p), ""))
        elif p.type in ("typed_parameter", "typed_default_parameter", "default_parameter"):
            name = p.child_by_field_name("name") or (p.named_children[0] if p.named_children else None)
            out.append((text(name), text(p.child_by_field_name("type"))))
        elif p.type in ("required_parameter", "optional_parameter"):  # typescript
            out.append((text(p.child_by_field_name("pattern")), text(p.child_by_field_name("type")).lstrip(": ")))
        elif p.type == "assignment_pattern":
            out.append((text(p.child_by_field_name("left")), ""))
    return out


ROUTE_METHODS = frozenset({"get", "post", "put", "patch", "delete", "all", "head", "options", "route", "use"})


def _route_of(node: ts.Node, family: str) -> str | None:
    """The route a function is registered for when it is passed inline to `app.get('/x', …)` (JS)."""
    args = node.parent
    call = args.parent if args is not None else None
    if family != "javascript" or call is None or call.type != "call_expression" or args is None:
        return None
    _, method = callee(call, family)
    first = arguments(call)[:1]
    if method.lower() in ROUTE_METHODS and first and first[0].type in ("string", "template_string"):
        return f"{method.upper()} {string_value(first[0])}"
    return None


def function_name(node: ts.Node, family: str) -> str | None:
    name = node.child_by_field_name("name")
    if name is not None:
        return text(name)
    parent = node.parent
    # An anonymous function bound to a name: `const handler = async () => {}`, `h.x = function () {}`.
    if parent is not None and parent.type == "variable_declarator":
        return text(parent.child_by_field_name("name"))
    if parent is not None and parent.type in ("assignment_expression", "pair"):
        return text(parent.child_by_field_name("left") or parent.child_by_field_name("key"))
    route = _route_of(node, family)
    return f"{route} handler" if route else None
