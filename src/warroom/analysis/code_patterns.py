"""Syntax-tree detectors for the code patterns behind database incidents, in Go, Python, Java and
JavaScript (tree-sitter): resources acquired without release on some path, SQL queries whose
WHERE/JOIN columns have no index in the schema, retry loops without a bound, and process-wide
caches that only ever grow (a memory leak).

Pure functions over source text; the git plumbing lives in analysis/code.py.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

import tree_sitter as ts

LANGUAGES = {
    ".go": "go",
    ".py": "python",
    ".java": "java",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
}


def language_of(path: str) -> str | None:
    dot = path.rfind(".")
    return LANGUAGES.get(path[dot:].lower()) if dot >= 0 else None


GRAMMARS = {
    "go": "tree_sitter_go",
    "python": "tree_sitter_python",
    "java": "tree_sitter_java",
    "javascript": "tree_sitter_javascript",
}


@cache
def parser_for(language: str) -> ts.Parser:
    grammar = importlib.import_module(GRAMMARS[language])
    return ts.Parser(ts.Language(grammar.language()))


FUNCTION_TYPES = {
    "go": {"function_declaration", "method_declaration", "func_literal"},
    "python": {"function_definition"},
    "java": {"method_declaration", "constructor_declaration", "lambda_expression"},
    "javascript": {
        "function_declaration",
        "function_expression",
        "arrow_function",
        "method_definition",
        "generator_function_declaration",
    },
}
CALL_TYPES = {"go": "call_expression", "python": "call", "java": "method_invocation", "javascript": "call_expression"}
EXIT_TYPES = {"return_statement", "raise_statement", "throw_statement"}
LOOP_TYPES = {"for_statement", "while_statement", "do_statement"}
STRING_TYPES = {
    "interpreted_string_literal",
    "raw_string_literal",
    "string",
    "string_literal",
    "text_block",
    "template_string",
}
CONCAT_TYPES = {"binary_expression", "concatenated_string", "parenthesized_expression"}

# Method names that hand out a resource the caller must give back, per language, with what it is.
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
LOCK_METHODS = {"Lock", "RLock", "lock", "acquire"}
RELEASE_NAMES = {
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
RELEASE_HINT = re.compile(r"(?i)(close|release|put|return|free|unlock|dispose|destroy)")
SLEEP_HINT = re.compile(r"(?i)(sleep|backoff|settimeout|delay)")
COUNTER_HINT = re.compile(r"(?i)(attempt|retr|tries|try|count|max|limit|budget|^i$|^n$)")
CANCEL_HINT = re.compile(r"(ctx\.Done|ctx\.Err|Deadline|time\.After|\.isInterrupted|signal\.aborted)")
SQL_START = re.compile(r"^\s*(select|update|delete|with)\b", re.IGNORECASE)


@dataclass
class PatternHit:
    """One occurrence of a pattern in one file (line numbers are 1-based)."""

    kind: str  # resource_leak | unindexed_query | unbounded_retry | unbounded_cache
    line: int
    end_line: int
    function: str | None
    function_start: int
    function_end: int
    detail: str
    snippet: str
    confidence: float
    data: dict[str, object] = field(default_factory=dict)


def _text(node: ts.Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", "replace")


def _walk(node: ts.Node, stop: set[str] | None = None) -> Iterator[ts.Node]:
    """Pre-order descendants of `node`, not descending into nodes whose type is in `stop`."""
    stack = list(reversed(node.children))
    while stack:
        current = stack.pop()
        yield current
        if stop and current.type in stop:
            continue
        stack.extend(reversed(current.children))


def _function_name(node: ts.Node) -> str | None:
    name = node.child_by_field_name("name")
    if name is not None:
        return _text(name)
    parent = node.parent
    # An anonymous function bound to a name: `const handler = async () => {}`.
    if parent is not None and parent.type == "variable_declarator":
        return _text(parent.child_by_field_name("name"))
    return None


def _callee(call: ts.Node, language: str) -> tuple[str | None, str]:
    """(receiver text or None, method or function name)."""
    if language == "java":
        obj = call.child_by_field_name("object")
        return (_text(obj) if obj is not None else None, _text(call.child_by_field_name("name")))
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
        return _text(operand), _text(member)
    return None, _text(func)


def _arguments(call: ts.Node) -> list[str]:
    args = call.child_by_field_name("arguments")
    if args is None:
        return []
    return [_text(child) for child in args.named_children]


def _binding(call: ts.Node, language: str) -> tuple[str | None, str]:
    """The variable a call's result is bound to, and how: 'var', 'managed' (with / try-with-resources),
    'statement' (result unused), or 'other' (used inline)."""
    node = call
    parent = node.parent
    while parent is not None and parent.type in (
        "await_expression",
        "parenthesized_expression",
        "expression_list",
        "as_pattern",
    ):
        if parent.type == "as_pattern" and parent.parent is not None and parent.parent.type == "with_item":
            return None, "managed"
        node, parent = parent, parent.parent
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
        if names and _text(names[0]) != "_":
            return _text(names[0]), "var"
        return None, "other"
    if kind == "assignment":  # python
        left = parent.child_by_field_name("left")
        if left is not None and left.type in ("identifier", "attribute"):
            return _text(left), "var"
        if left is not None and left.type in ("pattern_list", "tuple_pattern") and left.named_children:
            return _text(left.named_children[0]), "var"
        return None, "other"
    if kind == "variable_declarator":
        return _text(parent.child_by_field_name("name")), "var"
    if kind == "assignment_expression":
        return _text(parent.child_by_field_name("left")), "var"
    if kind == "var_spec":
        names = [c for c in parent.named_children if c.type == "identifier"]
        return (_text(names[0]), "var") if names else (None, "other")
    return None, "other"


def _has_ancestor(node: ts.Node, types: set[str], limit: ts.Node) -> ts.Node | None:
    current = node.parent
    while current is not None and current.id != limit.id:
        if current.type in types:
            return current
        current = current.parent
    return None


def _statement_of(node: ts.Node, function: ts.Node) -> ts.Node:
    """The statement (child of a block) that contains `node`."""
    current = node
    while current.parent is not None and current.parent.id != function.id:
        if current.parent.type in ("block", "statement_list", "statement_block", "module"):
            return current
        current = current.parent
    return current


def _error_check_after(statement: ts.Node) -> ts.Node | None:
    """Go's `if err != nil { return … }` right after an acquisition: on that path nothing was acquired."""
    sibling = statement.next_named_sibling
    if sibling is not None and sibling.type == "if_statement":
        cond = _text(sibling.child_by_field_name("condition"))
        if "err" in cond and "nil" in cond:
            return sibling
    return None


def _mentions(node: ts.Node, name: str) -> bool:
    pattern = re.compile(r"(?<![\w.])" + re.escape(name) + r"(?!\w)")
    return bool(pattern.search(_text(node)))


BLOCK_TYPES = {"block", "statement_list", "statement_block", "module"}


def _enclosing_block(node: ts.Node, function: ts.Node) -> ts.Node | None:
    statement = _statement_of(node, function)
    parent = statement.parent
    return parent if parent is not None and parent.type in BLOCK_TYPES else None


def _dominates(release: ts.Node, exit_node: ts.Node, function: ts.Node) -> bool:
    """The release runs on every path to the exit: it sits earlier in a block that also holds the exit
    (a release inside an `if` does not cover an exit after that `if`)."""
    if release.end_byte > exit_node.start_byte:
        return False
    block = _enclosing_block(release, function)
    return block is not None and block.start_byte <= exit_node.start_byte < block.end_byte


def _dominates_end(release: ts.Node, body: ts.Node, function: ts.Node) -> bool:
    """The release runs before the function falls off its end: it sits in the body's top-level block."""
    block = _enclosing_block(release, function)
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
    return any(_text(v).strip() == var for v in values)


def _leaks(function: ts.Node, language: str, lines: list[str]) -> list[PatternHit]:
    hits: list[PatternHit] = []
    nested = FUNCTION_TYPES[language]
    call_type = CALL_TYPES[language]
    body_nodes = list(_walk(function, stop=nested))
    calls = [n for n in body_nodes if n.type == call_type]
    acquire = ACQUIRE[language]
    fname = _function_name(function)
    for call in calls:
        receiver, method = _callee(call, language)
        if method not in acquire:
            continue
        if language == "go" and method in ("Open", "OpenFile", "Create") and receiver not in ("os",):
            continue  # sql.Open returns a long-lived pool handle, not a per-request resource
        if language == "python" and method == "open" and receiver is not None:
            continue
        if language == "python" and method == "connect" and receiver is None:
            continue
        var, how = _binding(call, language)
        if how == "managed":
            continue
        if how == "statement" and method in LOCK_METHODS and receiver:
            var = receiver
        elif how != "var" or not var:
            continue
        resource = acquire[method]
        statement = _statement_of(call, function)
        acquired_end = statement.end_byte
        if statement.type == "with_statement":
            continue
        err_check = _error_check_after(statement) if language == "go" else None
        releases: list[tuple[ts.Node, bool]] = []  # (call, guaranteed: deferred / finally)
        transferred = False
        passed_on = False
        for node in body_nodes:
            if node.start_byte < acquired_end:
                continue
            if node.type == call_type:
                recv, name = _callee(node, language)
                args = _arguments(node)
                if (recv == var and name in RELEASE_NAMES) or (
                    var in args and (name in RELEASE_NAMES or RELEASE_HINT.search(name or ""))
                ):
                    guaranteed = _has_ancestor(node, {"defer_statement", "finally_clause"}, function) is not None
                    releases.append((node, guaranteed))
                elif var in args:
                    passed_on = True
            elif node.type == "return_statement" and _returns(node, var):
                transferred = True  # handed to the caller, who owns it from now on
            elif node.type == "with_item" and _mentions(node, var):
                transferred = True  # `with conn:` / `with closing(conn):` releases it
            elif node.type in ("assignment_statement", "assignment", "assignment_expression"):
                right = node.child_by_field_name("right")
                left = _text(node.child_by_field_name("left"))
                if right is not None and _text(right).strip() == var and "." in left:
                    transferred = True  # stored on an object that owns it from now on
        if transferred or any(g for _, g in releases):
            continue
        line = call.start_point[0] + 1
        if not releases:
            detail = f"{resource} `{var}` acquired by {method}() is never released in {fname or 'this function'}"
            if passed_on:
                detail += " (it is passed to another call, which may or may not release it)"
            confidence = 0.6 if passed_on else 0.85
            path_line = None
        else:
            release_nodes = [r for r, _ in releases]
            exits = [
                n
                for n in body_nodes
                if n.type in EXIT_TYPES
                and n.start_byte >= acquired_end
                and (err_check is None or not (err_check.start_byte <= n.start_byte < err_check.end_byte))
                and not any(_dominates(r, n, function) for r in release_nodes)
            ]
            body = function.child_by_field_name("body")
            falls_off = body is not None and not _ends_with_exit(body)
            if falls_off and body is not None and not any(_dominates_end(r, body, function) for r in release_nodes):
                exits.append(body)
            if not exits:
                continue
            path_line = exits[0].start_point[0] + 1 if exits[0].type in EXIT_TYPES else exits[0].end_point[0] + 1
            release_line = min(r.start_point[0] for r, _ in releases) + 1
            detail = (
                f"{resource} `{var}` acquired by {method}() is released at line {release_line} only on the "
                f"normal path: the early exit at line {path_line} returns without releasing it"
            )
            confidence = 0.75
        hits.append(
            PatternHit(
                kind="resource_leak",
                line=line,
                end_line=call.end_point[0] + 1,
                function=fname,
                function_start=function.start_point[0] + 1,
                function_end=function.end_point[0] + 1,
                detail=detail,
                snippet=lines[line - 1].strip() if line - 1 < len(lines) else "",
                confidence=confidence,
                data={"resource": resource, "variable": var, "acquire": method, "exit_line": path_line},
            )
        )
    return hits


def _is_infinite(loop: ts.Node, language: str) -> tuple[bool, str]:
    """(no bound in the loop header, header text)."""
    if language == "go":
        heads = [c for c in loop.named_children if c.type not in ("block", "comment")]
        if not heads:
            return True, "for {"
        head = heads[0]
        if head.type in ("for_clause", "range_clause"):
            return False, _text(head)
        return not _bounded_condition(head), _text(head)
    if loop.type == "for_statement":
        cond = loop.child_by_field_name("condition")
        if language == "python" or (cond is not None and cond.type != "empty_statement"):
            return False, _text(cond)
        return True, "for (;;)"
    cond = loop.child_by_field_name("condition")
    if cond is None:
        return True, ""
    return not _bounded_condition(cond), _text(cond)


def _bounded_condition(cond: ts.Node) -> bool:
    text = _text(cond).strip("() ")
    if text in ("true", "True", "1"):
        return False
    return _has_counter_comparison(cond)


def _has_counter_comparison(node: ts.Node) -> bool:
    for child in [node, *_walk(node)]:
        if child.type in ("binary_expression", "comparison_operator"):
            ops = {_text(c) for c in child.children if not c.is_named}
            if ops & {"<", "<=", ">", ">=", "==", "!="}:
                idents = [
                    _text(c)
                    for c in [child, *_walk(child)]
                    if c.type in ("identifier", "field_identifier", "property_identifier")
                ]
                if any(COUNTER_HINT.search(name) for name in idents):
                    return True
    return False


def _retries(function: ts.Node, language: str, lines: list[str]) -> list[PatternHit]:
    hits: list[PatternHit] = []
    call_type = CALL_TYPES[language]
    for loop in _walk(function, stop=FUNCTION_TYPES[language]):
        if loop.type not in LOOP_TYPES:
            continue
        infinite, header = _is_infinite(loop, language)
        if not infinite:
            continue
        body = loop.child_by_field_name("body") or loop
        body_text = _text(body)
        calls = [n for n in _walk(body, stop=FUNCTION_TYPES[language]) if n.type == call_type]
        sleeps = [c for c in calls if SLEEP_HINT.search(_callee(c, language)[1] or "")]
        handles_error = bool(re.search(r"\berr\b|\bexcept\b|\bcatch\b", body_text))
        if not (sleeps and handles_error):
            continue  # an event loop or a worker loop, not a retry
        if _has_counter_comparison(body) or CANCEL_HINT.search(body_text):
            continue
        line = loop.start_point[0] + 1
        hits.append(
            PatternHit(
                kind="unbounded_retry",
                line=line,
                end_line=loop.end_point[0] + 1,
                function=_function_name(function),
                function_start=function.start_point[0] + 1,
                function_end=function.end_point[0] + 1,
                detail=(
                    f"retry loop `{header.strip() or loop.type}` retries on error with "
                    f"{_callee(sleeps[0], language)[1]}() but has no attempt limit or deadline"
                ),
                snippet=lines[line - 1].strip() if line - 1 < len(lines) else "",
                confidence=0.65,
                data={"header": header.strip()},
            )
        )
    return hits


def _string_value(node: ts.Node) -> str:
    raw = _text(node)
    if node.type == "template_string":
        raw = re.sub(r"\$\{[^}]*\}", "?", raw)
    return re.sub(r"""^[rRbBuUfF]*(\"\"\"|'''|"|'|`)|(\"\"\"|'''|"|'|`)$""", "", raw)


def sql_literals(root: ts.Node) -> list[tuple[int, str]]:
    """(1-based line, SQL text) for every string expression that reads as a query; adjacent pieces
    joined with `+` (or Python's implicit concatenation) count as one query."""
    groups: dict[int, tuple[ts.Node, list[ts.Node]]] = {}
    for node in _walk(root, stop=STRING_TYPES):
        if node.type not in STRING_TYPES:
            continue
        top = node
        while top.parent is not None and top.parent.type in CONCAT_TYPES:
            top = top.parent
        groups.setdefault(top.id, (top, []))[1].append(node)
    found = []
    for top, parts in groups.values():
        text = " ".join(_string_value(p) for p in sorted(parts, key=lambda n: n.start_byte))
        if SQL_START.match(text):
            found.append((top.start_point[0] + 1, text))
    return found


@dataclass
class Schema:
    """Tables, columns and index prefixes, from the repository's SQL migrations."""

    columns: dict[str, set[str]] = field(default_factory=dict)
    indexes: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)  # table → name → cols
    sources: dict[str, str] = field(default_factory=dict)  # table → file that created it

    def leading(self, table: str) -> set[str]:
        return {cols[0] for cols in self.indexes.get(table, {}).values() if cols}


IDENT = r'"?([A-Za-z_][\w]*)"?'
QUALIFIED = r'(?:"?[A-Za-z_]\w*"?\.)?' + IDENT
_CREATE_TABLE = re.compile(
    r"create\s+(?:unlogged\s+|temporary\s+|temp\s+)?table\s+(?:if\s+not\s+exists\s+)?" + QUALIFIED + r"\s*\(",
    re.IGNORECASE,
)
_CREATE_INDEX = re.compile(
    r"create\s+(unique\s+)?index\s+(?:concurrently\s+)?(?:if\s+not\s+exists\s+)?(?:" + QUALIFIED + r"\s+)?"
    r"on\s+(?:only\s+)?" + QUALIFIED + r"\s*(?:using\s+\w+\s*)?\(([^;]*?)\)\s*(?:include|where|with|;|$)",
    re.IGNORECASE,
)
_DROP_INDEX = re.compile(r"drop\s+index\s+(?:concurrently\s+)?(?:if\s+exists\s+)?" + QUALIFIED, re.IGNORECASE)
_ALTER_ADD = re.compile(
    r"alter\s+table\s+(?:only\s+)?(?:if\s+exists\s+)?"
    + QUALIFIED
    + r"\s+add\s+(?:constraint\s+"
    + IDENT
    + r"\s+)?(primary\s+key|unique)\s*\(([^)]*)\)",
    re.IGNORECASE,
)
_ADD_COLUMN = re.compile(
    r"alter\s+table\s+(?:only\s+)?(?:if\s+exists\s+)?"
    + QUALIFIED
    + r"\s+add\s+(?:column\s+)?(?:if\s+not\s+exists\s+)?"
    + IDENT
    + r"\s",
    re.IGNORECASE,
)
_DROP_TABLE = re.compile(r"drop\s+table\s+(?:if\s+exists\s+)?" + QUALIFIED, re.IGNORECASE)


def _split_top(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for pos, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:pos])
            start = pos + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _cols(text: str) -> tuple[str, ...]:
    return tuple(c.strip().strip('"').split()[0].lower() for c in text.split(",") if c.strip())


def _strip_sql_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", " ", re.sub(r"--[^\n]*", " ", text), flags=re.DOTALL)


def parse_schema(files: list[tuple[str, str]]) -> Schema:
    """Apply migrations in path order: CREATE TABLE (primary key, unique), CREATE/DROP INDEX,
    ALTER TABLE ADD PRIMARY KEY/UNIQUE/COLUMN, DROP TABLE."""
    schema = Schema()
    for path, raw in sorted(files):
        text = _strip_sql_comments(raw)
        events: list[tuple[int, str, re.Match[str]]] = []
        for name, pattern in (
            ("table", _CREATE_TABLE),
            ("index", _CREATE_INDEX),
            ("drop_index", _DROP_INDEX),
            ("alter", _ALTER_ADD),
            ("add_column", _ADD_COLUMN),
            ("drop_table", _DROP_TABLE),
        ):
            events.extend((m.start(), name, m) for m in pattern.finditer(text))
        for _, name, match in sorted(events, key=lambda e: e[0]):
            if name == "table":
                table = match.group(1).lower()
                body_start = match.end()
                depth, pos = 1, body_start
                while pos < len(text) and depth:
                    depth += {"(": 1, ")": -1}.get(text[pos], 0)
                    pos += 1
                schema.columns[table] = set()
                schema.indexes[table] = {}
                schema.sources[table] = path
                for part in _split_top(text[body_start : pos - 1]):
                    head = part.split()[0].lower().strip('"')
                    key = re.match(r"(?:constraint\s+\S+\s+)?(primary\s+key|unique)\s*\(([^)]*)\)", part, re.I)
                    if key:
                        schema.indexes[table][
                            f"{table}_{key.group(1).split()[0].lower()}_{len(schema.indexes[table])}"
                        ] = _cols(key.group(2))
                        continue
                    if head in ("constraint", "check", "foreign", "exclude", "like"):
                        continue
                    schema.columns[table].add(head)
                    if re.search(r"\bprimary\s+key\b|\bunique\b", part, re.I):
                        schema.indexes[table][f"{table}_{head}_key"] = (head,)
            elif name == "index":
                index_name = (match.group(2) or f"anon_{match.start()}").lower()
                table = match.group(3).lower()
                schema.indexes.setdefault(table, {})[index_name] = _cols(match.group(4))
            elif name == "drop_index":
                gone = match.group(1).lower()
                for idx in schema.indexes.values():
                    idx.pop(gone, None)
            elif name == "alter":
                table = match.group(1).lower()
                schema.indexes.setdefault(table, {})[f"{table}_alter_{match.start()}"] = _cols(match.group(4))
            elif name == "add_column":
                column = match.group(2).lower()
                if column not in ("constraint", "primary", "unique", "foreign", "check"):
                    schema.columns.setdefault(match.group(1).lower(), set()).add(column)
            elif name == "drop_table":
                table = match.group(1).lower()
                schema.columns.pop(table, None)
                schema.indexes.pop(table, None)
    return schema


_KEYWORDS = {
    "where",
    "join",
    "inner",
    "left",
    "right",
    "full",
    "outer",
    "cross",
    "on",
    "group",
    "order",
    "limit",
    "for",
    "returning",
    "set",
    "using",
    "as",
    "and",
    "or",
    "not",
    "union",
    "having",
    "offset",
    "natural",
}
_TABLE_REF = re.compile(r"\b(from|join|update|into)\s+" + QUALIFIED + r"(?:\s+(?:as\s+)?([A-Za-z_]\w*))?", re.I)
_PREDICATE = re.compile(
    r"(?:([A-Za-z_]\w*)\.)?([A-Za-z_]\w*)\s*(?:=|<>|!=|<=|>=|<|>|\s+in\s*\(|\s+like\s|\s+ilike\s|\s+between\s|\s+is\s)",
    re.I,
)
_CLAUSE_END = (
    r"(?=\bgroup\s+by\b|\border\s+by\b|\blimit\b|\bfor\s+update\b|\breturning\b|\bunion\b|\bhaving\b|\boffset\b|$)"
)


def query_predicates(sql: str) -> tuple[dict[str, str], list[tuple[str | None, str, str]]]:
    """(alias → table, [(qualifier, column, clause)]) for the WHERE and JOIN … ON columns of a query."""
    flat = " ".join(sql.split())
    aliases: dict[str, str] = {}
    for match in _TABLE_REF.finditer(flat):
        table = match.group(2).lower()
        aliases.setdefault(table, table)
        alias = match.group(3)
        if alias and alias.lower() not in _KEYWORDS:
            aliases[alias.lower()] = table
    preds: list[tuple[str | None, str, str]] = []
    for where in re.finditer(r"\bwhere\b(.*?)" + _CLAUSE_END, flat, re.I):
        preds.extend((q.lower() if q else None, c.lower(), "WHERE") for q, c in _PREDICATE.findall(where.group(1)))
    for on in re.finditer(r"\bon\b(.*?)(?=\bjoin\b|\bwhere\b|\bleft\b|\binner\b|" + _CLAUSE_END[3:], flat, re.I):
        for side in re.findall(r"([A-Za-z_]\w*)\.([A-Za-z_]\w*)", on.group(1)):
            preds.append((side[0].lower(), side[1].lower(), "JOIN"))
    skip = _KEYWORDS | {"null", "true", "false", "now", "lower", "upper", "coalesce"}
    return aliases, [p for p in preds if p[1] not in skip]


def unindexed_columns(sql: str, schema: Schema) -> list[dict[str, object]]:
    """Per table filtered or joined by the query: the predicate columns when none of them leads an
    index (so the planner has to scan). Tables the migrations do not define are not judged."""
    aliases, preds = query_predicates(sql)
    main_tables = [t for t in dict.fromkeys(aliases.values()) if t in schema.columns]
    by_table: dict[str, list[tuple[str, str]]] = {}
    for qualifier, column, clause in preds:
        if qualifier is not None:
            table = aliases.get(qualifier)
        else:
            owners = [t for t in main_tables if column in schema.columns.get(t, set())]
            table = owners[0] if owners else (main_tables[0] if len(main_tables) == 1 else None)
        if table is None or table not in schema.columns:
            continue
        by_table.setdefault(table, []).append((column, clause))
    problems = []
    for table, cols in by_table.items():
        leading = schema.leading(table)
        names = [c for c, _ in cols]
        if any(c in leading for c in names):
            continue
        join_sides = {c for c, clause in cols if clause == "JOIN"}
        problems.append(
            {
                "table": table,
                "columns": sorted(set(names)),
                "clauses": sorted({clause for _, clause in cols}),
                "indexes": {k: list(v) for k, v in schema.indexes.get(table, {}).items()},
                "join_only": bool(join_sides) and join_sides == set(names),
                "defined_in": schema.sources.get(table),
            }
        )
    return problems


def _enclosing_function(node: ts.Node, language: str) -> ts.Node | None:
    current = node.parent
    while current is not None:
        if current.type in FUNCTION_TYPES[language]:
            return current
        current = current.parent
    return None


def _queries(root: ts.Node, language: str, lines: list[str], schema: Schema | None) -> list[PatternHit]:
    if schema is None or not schema.columns:
        return []
    hits = []
    for line, sql in sql_literals(root):
        problems = unindexed_columns(sql, schema)
        # A join whose only unindexed side is the outer table is fine when the other side is indexed.
        problems = [p for p in problems if not p["join_only"]] or []
        if not problems:
            continue
        point = root.descendant_for_point_range((line - 1, 0), (line - 1, max(len(lines[line - 1]) - 1, 0)))
        func = _enclosing_function(point, language) if point is not None else None
        first = problems[0]
        cols = ", ".join(str(c) for c in first["columns"])  # type: ignore[attr-defined]
        hits.append(
            PatternHit(
                kind="unindexed_query",
                line=line,
                end_line=line + sql.count("\n"),
                function=_function_name(func) if func is not None else None,
                function_start=(func.start_point[0] + 1) if func is not None else line,
                function_end=(func.end_point[0] + 1) if func is not None else line,
                detail=(
                    f"query filters {first['table']} on {cols} ({'/'.join(first['clauses'])}) but no index in the "  # type: ignore[arg-type]
                    f"migrations starts with {'that column' if len(first['columns']) == 1 else 'any of them'}: "  # type: ignore[arg-type]
                    "every call scans the table"
                ),
                snippet=" ".join(sql.split())[:240],
                confidence=0.75,
                data={"query": " ".join(sql.split()), "tables": problems},
            )
        )
    return hits


# A process-wide container: Python module-level `NAME = {}` / `[]` / `set()` / `dict()` …,
# Go package-level `var name = map[K]V{}` / `make(map…)` / a slice, JavaScript top-level `new Map()` / `{}`.
CONTAINER_CALLS = re.compile(r"^(dict|list|set|OrderedDict|defaultdict|collections\.\w+|make|new (Map|Set)|Map|Set)\b")
CONTAINER_LITERALS = {"dictionary", "list", "set", "composite_literal", "object", "array"}


def _evicts(name: str, text: str, language: str) -> bool:
    """Whether the file ever removes from, clears, replaces or bounds the container."""
    n = re.escape(name)
    patterns = [
        rf"\bdel\s+{n}\[",
        rf"\b{n}\.(pop|popitem|clear|remove|discard|delete|shift|splice)\(",
        rf"\bdelete\({n}\s*,",
        rf"\bdelete\s+{n}\[",
        rf"\blen\({n}\)\s*[<>]=?",
        rf"\b{n}\.(size|length)\s*[<>]=?",
        rf"^[ \t]+{n}[ \t]*=[^=]",  # re-bound inside a function: reset
    ]
    return any(re.search(p, text, re.MULTILINE) for p in patterns)


def _module_containers(root: ts.Node, language: str) -> dict[str, int]:
    """Names bound at module/package level to an empty or literal container, with their line."""
    found: dict[str, int] = {}
    for node in root.children:
        targets: list[tuple[ts.Node | None, ts.Node | None]] = []
        if language == "python" and node.type == "expression_statement" and node.named_children:
            inner = node.named_children[0]
            if inner.type == "assignment":
                targets.append((inner.child_by_field_name("left"), inner.child_by_field_name("right")))
        elif language == "go" and node.type == "var_declaration":
            for spec in [c for c in _walk(node) if c.type == "var_spec"]:
                values = spec.child_by_field_name("value")
                value = values.named_children[0] if values is not None and values.named_children else None
                targets.append((spec.child_by_field_name("name"), value))
        elif language == "javascript" and node.type in ("lexical_declaration", "variable_declaration"):
            for decl in [c for c in node.named_children if c.type == "variable_declarator"]:
                targets.append((decl.child_by_field_name("name"), decl.child_by_field_name("value")))
        for left, right in targets:
            if left is None or right is None or left.type != "identifier":
                continue
            if right.type in CONTAINER_LITERALS or CONTAINER_CALLS.match(_text(right)):
                found[_text(left)] = left.start_point[0] + 1
    return found


def _insertion(node: ts.Node, names: dict[str, int], language: str) -> str | None:
    """The container a statement adds to: `NAME[k] = v`, `NAME.append(…)`, `NAME = append(NAME, …)`."""
    if node.type in ("assignment", "assignment_statement", "assignment_expression"):
        left = node.child_by_field_name("left")
        right = node.child_by_field_name("right")
        if left is not None and left.type == "expression_list" and left.named_children:
            left = left.named_children[0]
        if left is not None and left.type in ("subscript", "index_expression", "subscript_expression"):
            base = left.child_by_field_name("value") or left.child_by_field_name("operand")
            base = (
                base or left.child_by_field_name("object") or (left.named_children[0] if left.named_children else None)
            )
            if base is not None and _text(base) in names:
                return _text(base)
        if left is not None and _text(left) in names and right is not None and _text(right).startswith("append("):
            return _text(left)
    if node.type in ("call", "call_expression"):
        receiver, method = _callee(node, language)
        if receiver in names and method in ("append", "add", "setdefault", "update", "extend", "set", "push", "insert"):
            return receiver
    return None


def _unbounded_caches(root: ts.Node, language: str, lines: list[str]) -> list[PatternHit]:
    names = _module_containers(root, language)
    if not names:
        return []
    text = "\n".join(lines)
    growing = {n: line for n, line in names.items() if not _evicts(n, text, language)}
    hits: list[PatternHit] = []
    seen: set[str] = set()
    for node in _walk(root):
        name = (
            _insertion(node, growing, language)
            if node.type in ("assignment", "assignment_statement", "assignment_expression", "call", "call_expression")
            else None
        )
        if name is None or name in seen:
            continue
        func = _enclosing_function(node, language)
        if func is None:
            continue  # filled once at import time: bounded by the code itself
        seen.add(name)
        line = node.start_point[0] + 1
        hits.append(
            PatternHit(
                kind="unbounded_cache",
                line=line,
                end_line=node.end_point[0] + 1,
                function=_function_name(func),
                function_start=func.start_point[0] + 1,
                function_end=func.end_point[0] + 1,
                detail=(
                    f"adds to the process-wide {name} (declared at line {growing[name]}) on every call and nothing "
                    "ever evicts, bounds or clears it: memory grows with traffic until the process is killed"
                ),
                snippet=lines[line - 1].strip()[:240] if line - 1 < len(lines) else "",
                confidence=0.8,
                data={"container": name, "declared_line": growing[name]},
            )
        )
    return hits


def analyse_source(
    source: bytes, language: str, schema: Schema | None = None, kinds: set[str] | None = None
) -> list[PatternHit]:
    """Every hit of the wanted pattern kinds in one file."""
    tree = parser_for(language).parse(source)
    lines = source.decode("utf-8", "replace").splitlines()
    wanted = kinds or {"resource_leak", "unindexed_query", "unbounded_retry", "unbounded_cache"}
    hits: list[PatternHit] = []
    if wanted & {"resource_leak", "unbounded_retry"}:
        for node in [tree.root_node, *_walk(tree.root_node)]:
            if node.type not in FUNCTION_TYPES[language]:
                continue
            if "resource_leak" in wanted:
                hits.extend(_leaks(node, language, lines))
            if "unbounded_retry" in wanted:
                hits.extend(_retries(node, language, lines))
    if "unindexed_query" in wanted:
        hits.extend(_queries(tree.root_node, language, lines, schema))
    if "unbounded_cache" in wanted:
        hits.extend(_unbounded_caches(tree.root_node, language, lines))
    return hits
