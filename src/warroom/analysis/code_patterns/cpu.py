"""CPU-heavy code: work that grows faster than the request or repeats per iteration what could be
done once — nested loops over request-sized collections, quadratic comparison, linear searches and
string concatenation inside loops, regex compilation, parsing and sorting inside loops, blocking
calls inside async handlers (and Node's event loop), busy-waits.

A loop is "over a request-sized collection" when it iterates a variable, attribute or call result;
loops over literals, constants (UPPER_CASE) and fixed ranges are bounded by the code itself. An inner
loop over a part of the outer element (`for item in order.items`) is linear in the total, not quadratic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import tree_sitter as ts

from warroom.analysis.code_patterns.hits import FileContext, PatternHit
from warroom.analysis.code_patterns.syntax import (
    AWAIT_TYPES,
    STRING_TYPES,
    Function,
    arguments,
    callee,
    line_of,
    qualified,
    text,
    walk,
)

ITERATION_METHODS = frozenset(
    {"forEach", "map", "filter", "reduce", "some", "every", "find", "flatMap", "findIndex", "sort"}
)
LITERAL_COLLECTIONS = frozenset(
    {"list", "tuple", "set", "dictionary", "array", "string", "integer", "int_literal", "decimal_integer_literal"}
)
CONSTANT_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
LINEAR_SEARCH = {
    "javascript": re.compile(r"^(includes|indexOf|find|findIndex|lastIndexOf)$"),
    "java": re.compile(r"^(contains|indexOf|lastIndexOf)$"),
    "go": re.compile(r"^slices\.(Contains|Index|ContainsFunc|IndexFunc)$"),
    "python": re.compile(r"^(index|count)$"),
}
REGEX_COMPILE = {
    "python": re.compile(r"^(re|regex)\.compile$"),
    "go": re.compile(r"^regexp\.(MustCompile|Compile|MatchString|MustCompilePOSIX|CompilePOSIX|Match)$"),
    "java": re.compile(r"^(Pattern\.compile|Pattern\.matches)$|\.(matches|replaceAll|replaceFirst)$"),
    "javascript": re.compile(r"^RegExp$"),
}
PARSERS = re.compile(
    r"^(json\.(loads|load)|yaml\.(safe_load|load|full_load|unsafe_load)|tomllib\.loads|toml\.loads|"
    r"(ET|ElementTree|etree|lxml\.etree)\.(fromstring|parse|XML)|minidom\.parse(String)?|xmltodict\.parse|"
    r"json\.Unmarshal|yaml\.Unmarshal|xml\.Unmarshal|toml\.Unmarshal|"
    r"\w*([mM]apper|[gG]son)\.(readValue|readTree|fromJson)|JSON\.(parse|parseObject)|"
    r"\w*(YAML|yaml)\.(parse|load)|\w*[bB]uilder\.parse)$"
)
SORTS = {
    "python": re.compile(r"^sorted$|\.sort$"),
    "go": re.compile(
        r"^(sort\.(Slice|SliceStable|Strings|Ints|Float64s|Sort|Stable)|slices\.(Sort|SortFunc|SortStableFunc))$"
    ),
    "java": re.compile(r"^(Collections\.sort|Arrays\.sort|Arrays\.parallelSort)$|\.(sort|sorted)$"),
    "javascript": re.compile(r"\.(sort|toSorted)$"),
}
BLOCKING_IN_ASYNC = re.compile(
    r"^(time\.sleep|requests\.(get|post|put|patch|delete|head|request)|urllib\.request\.urlopen|urlopen|"
    r"httpx\.(get|post|put|patch|delete|request|stream)|(psycopg2|psycopg|sqlite3|pymysql|MySQLdb|mysql\.connector)"
    r"\.connect|redis\.(Redis|StrictRedis)|subprocess\.(run|call|check_call|check_output)|os\.system|"
    r"socket\.create_connection)$"
)
NODE_BLOCKING = re.compile(r"Sync$|^(Atomics\.wait)$")
CLOCK_READ = re.compile(
    r"^(time\.(time|monotonic|perf_counter|time_ns|Now|Since|Until)|datetime\.(now|utcnow)|Date\.now|"
    r"System\.(currentTimeMillis|nanoTime)|Instant\.now|performance\.now|\w+\.(Before|After|Sub))$"
)


@dataclass
class Loop:
    node: ts.Node  # the loop statement, comprehension clause or iteration call
    body: ts.Node
    collection: ts.Node | None  # what it iterates (None: a while loop, or not known)
    variables: set[str]


def _collection(node: ts.Node, family: str) -> ts.Node | None:
    if node.type in ("for_in_statement", "for_in_clause") or (family == "python" and node.type == "for_statement"):
        return node.child_by_field_name("right")
    if node.type == "enhanced_for_statement":
        return node.child_by_field_name("value")
    if node.type == "for_statement" and family == "go":
        clause = next((c for c in node.named_children if c.type in ("range_clause", "for_clause")), None)
        if clause is not None and clause.type == "range_clause":
            return clause.child_by_field_name("right")
        cond = clause.child_by_field_name("condition") if clause is not None else None
        return _bound_of(cond)
    if node.type == "for_statement":
        return _bound_of(node.child_by_field_name("condition"))
    return None


def _bound_of(cond: ts.Node | None) -> ts.Node | None:
    """`i < len(items)` / `i < items.length` / `i < list.size()` → the collection; `i < 10` → the literal."""
    if cond is None or cond.type != "binary_expression":
        return None
    right = cond.child_by_field_name("right")
    if right is None:
        return None
    match = re.match(r"^(?:len\((.+)\)|(.+)\.(?:length|size\(\)|Len\(\)))$", text(right))
    if match:
        target = match.group(1) or match.group(2)
        return next((n for n in [right, *walk(right)] if text(n) == target), right)
    return right


def _loop_variables(node: ts.Node, family: str) -> set[str]:
    names: set[str] = set()
    left = (
        node.child_by_field_name("left") or node.child_by_field_name("name") or node.child_by_field_name("initializer")
    )
    if node.type == "for_statement" and family == "go":
        left = next((c for c in node.named_children if c.type in ("range_clause", "for_clause")), None)
        left = left.child_by_field_name("left") or left.child_by_field_name("initializer") if left is not None else None
    for n in [left, *walk(left)] if left is not None else []:
        if n.type == "identifier" and text(n) != "_":
            names.add(text(n))
    return names


def loops_of(function: Function, ctx: FileContext) -> list[Loop]:
    """Every loop of the function, including comprehensions and callbacks of iteration methods."""
    grammar, family = ctx.source.grammar, ctx.source.family
    out: list[Loop] = []
    for node in walk(function.node, stop=grammar.functions - {"arrow_function", "function_expression", "lambda"}):
        if node.type in grammar.loops:
            body = node.child_by_field_name("body") or (node.parent if node.type == "for_in_clause" else None) or node
            out.append(Loop(node, body, _collection(node, family), _loop_variables(node, family)))
        elif node.type == grammar.call and callee(node, family)[1] in ITERATION_METHODS:
            receiver = node.child_by_field_name("function")
            receiver = receiver.child_by_field_name("object") if receiver is not None else None
            callback = next((a for a in arguments(node) if a.type in grammar.functions), None)
            if callback is None or receiver is None:
                continue
            params = callback.child_by_field_name("parameters") or callback.child_by_field_name("parameter")
            variables = {
                text(n) for n in ([params, *walk(params)] if params is not None else []) if n.type == "identifier"
            }
            out.append(Loop(node, callback, receiver, variables))
    return out


def _inside(inner: ts.Node, outer: ts.Node) -> bool:
    return inner.id != outer.id and outer.start_byte <= inner.start_byte and inner.end_byte <= outer.end_byte


def _request_sized(collection: ts.Node | None) -> bool:
    if collection is None:
        return False
    if collection.type in LITERAL_COLLECTIONS or CONSTANT_NAME.match(text(collection).split(".")[-1]):
        return False
    if collection.type in ("call",) and text(collection.child_by_field_name("function")) == "range":
        args = [text(a) for a in arguments(collection)]
        return not all(re.fullmatch(r"\d+|[A-Z][A-Z0-9_]*", a) for a in args)
    return True


def _mentions_any(node: ts.Node, names: set[str]) -> bool:
    return any(n.type == "identifier" and text(n) in names for n in [node, *walk(node)])


def _nested(loops: list[Loop], function: Function, ctx: FileContext) -> list[PatternHit]:
    hits = []
    reported: set[int] = set()
    for outer in loops:
        if not _request_sized(outer.collection):
            continue
        for inner in loops:
            if inner.node.id in reported or inner.node.id == outer.node.id:
                continue
            if not _inside(inner.node, outer.body) or not _request_sized(inner.collection):
                continue
            assert inner.collection is not None and outer.collection is not None
            if _mentions_any(inner.collection, outer.variables):
                continue  # iterates a part of the outer element: linear in the total
            compares = any(_compares(c, outer, inner) for c in walk(inner.body))
            same = text(inner.collection) == text(outer.collection)
            subkind = "quadratic_comparison" if compares else "nested_loop"
            detail = (
                f"loop over `{text(inner.collection)[:60]}` inside a loop over `{text(outer.collection)[:60]}`"
                + (" comparing their elements pairwise" if compares else "")
                + ": the work grows with the product of the two sizes (quadratic when they grow with the request)"
            )
            strength = 0.8 if (compares or same) else 0.6
            data: dict[str, object] = {
                "outer": text(outer.collection)[:120],
                "inner": text(inner.collection)[:120],
                "outer_line": line_of(outer.node),
            }
            hits.append(ctx.hit("cpu_heavy", subkind, inner.node, function, detail, strength, data))
            reported.add(inner.node.id)
    return hits


COMPARE_METHODS = re.compile(r"^(equals|equalsIgnoreCase|compareTo|compare|Equal|EqualFold|Compare|localeCompare)$")


def _compares(node: ts.Node, outer: Loop, inner: Loop) -> bool:
    """A comparison of an element of the outer loop with one of the inner: `a == b`, `a.equals(b)`."""
    if node.type in ("comparison_operator", "binary_expression"):
        if not re.search(r"==|!=|\bin\b|<|>", "".join(text(c) for c in node.children if not c.is_named)):
            return False
    elif node.type in ("call", "call_expression", "method_invocation"):
        name = text(node.child_by_field_name("name") or node.child_by_field_name("function")).rsplit(".", 1)[-1]
        if not COMPARE_METHODS.match(name):
            return False
    else:
        return False
    return _mentions_any(node, outer.variables) and _mentions_any(node, inner.variables)


def _innermost_loop(node: ts.Node, loops: list[Loop]) -> Loop | None:
    inside = [loop for loop in loops if _inside(node, loop.body) or _inside(node, loop.node)]
    return min(inside, key=lambda loop: loop.body.end_byte - loop.body.start_byte) if inside else None


def _assigned_in(loop: Loop) -> set[str]:
    names = set(loop.variables)
    for node in walk(loop.body):
        if node.type in ("assignment", "augmented_assignment", "short_var_declaration", "variable_declarator"):
            left = node.child_by_field_name("left") or node.child_by_field_name("name")
            names |= {text(n) for n in ([left, *walk(left)] if left is not None else []) if n.type == "identifier"}
    return names


def _per_iteration_calls(loops: list[Loop], function: Function, ctx: FileContext) -> list[PatternHit]:
    """Regex compilation, parsing, sorting and linear searches repeated inside a request-sized loop."""
    family = ctx.source.family
    hits = []
    for node in walk(function.node, stop=ctx.source.grammar.functions - {"arrow_function", "lambda"}):
        is_call = node.type == ctx.source.grammar.call
        is_new = node.type in ("new_expression", "object_creation_expression")
        if not (is_call or is_new):
            continue
        loop = _innermost_loop(node, loops)
        if loop is None or not _request_sized(loop.collection):
            continue
        name = (
            text(node.child_by_field_name("constructor") or node.child_by_field_name("type"))
            if is_new
            else qualified(node, family)
        )
        hit = _classify_call(node, name, loop, function, ctx)
        if hit is not None:
            hits.append(hit)
    return hits


def _classify_call(node: ts.Node, name: str, loop: Loop, function: Function, ctx: FileContext) -> PatternHit | None:
    family = ctx.source.family
    args = arguments(node)
    varying = _assigned_in(loop)
    invariant = not any(_mentions_any(a, varying) for a in args)
    over = text(loop.collection)[:60] if loop.collection is not None else "the loop"
    data: dict[str, object] = {"call": name, "loop_line": line_of(loop.node), "loop_invariant": invariant}
    if REGEX_COMPILE[family].search(name):
        strength = 0.5 if family == "python" else 0.85  # Python's re caches compiled patterns
        detail = f"{name}() compiles a regular expression on every iteration over `{over}`: compile it once"
        return ctx.hit("cpu_heavy", "regex_in_loop", node, function, detail, strength, data)
    # Parsing or sorting each element once is linear work; the waste is redoing it on the same input.
    if PARSERS.search(name) and invariant and args:
        detail = f"{name}() parses the same input on every iteration over `{over}`: parse it once before the loop"
        return ctx.hit("cpu_heavy", "parse_in_loop", node, function, detail, 0.8, data)
    if SORTS[family].search(name):
        receiver = callee(node, family)[0] if node.type == ctx.source.grammar.call else None
        if not invariant or (receiver and _mentions_any_text(receiver, varying)):
            return None
        detail = f"{name}() sorts a collection the loop does not rebind on every iteration over `{over}`: n·m·log m"
        return ctx.hit("cpu_heavy", "sort_in_loop", node, function, detail, 0.7, data)
    receiver, method = callee(node, family) if node.type == ctx.source.grammar.call else (None, "")
    search = LINEAR_SEARCH[family]
    matched = search.search(name if family == "go" else method)
    if matched and (family == "go" or (receiver and not _mentions_any_text(receiver, loop.variables))):
        if family == "python" and not _is_list_var(receiver, function):
            return None
        detail = f"{name}() scans a collection linearly on every iteration over `{over}`: quadratic; use a set or map"
        return ctx.hit("cpu_heavy", "linear_search_in_loop", node, function, detail, 0.55, data)
    return None


def _mentions_any_text(code: str, names: set[str]) -> bool:
    return any(re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", code) for n in names)


def _is_list_var(name: str | None, function: Function) -> bool:
    """Whether the function binds `name` to a list (literal, comprehension, list(…), sorted(…))."""
    if not name:
        return False
    pattern = rf"(?m)^\s*{re.escape(name)}\s*(?::[^=]*)?=\s*(\[|list\(|sorted\()"
    return bool(re.search(pattern, text(function.node)))


def _python_membership(loops: list[Loop], function: Function, ctx: FileContext) -> list[PatternHit]:
    """`if x in items:` inside a loop, where `items` is a list the function built: a linear scan each time."""
    if ctx.source.family != "python":
        return []
    hits = []
    for node in walk(function.node, stop=ctx.source.grammar.functions):
        if node.type != "comparison_operator" or not re.search(r"\bin\b", text(node)):
            continue
        loop = _innermost_loop(node, loops)
        right = node.named_children[-1] if node.named_children else None
        if loop is None or not _request_sized(loop.collection) or right is None or right.type != "identifier":
            continue
        if _is_list_var(text(right), function) and text(right) not in loop.variables:
            detail = f"`in {text(right)}` scans a list on every iteration: quadratic; make it a set"
            hits.append(
                ctx.hit("cpu_heavy", "linear_search_in_loop", node, function, detail, 0.6, {"collection": text(right)})
            )
    return hits


STRING_INIT = re.compile(r"""^(?:[rRbBuUfF]*["'`]|String\.valueOf|str\()""")


def _string_vars(function: Function, ctx: FileContext) -> set[str]:
    """Variables the function initialises with a string (or declares as String)."""
    names = set()
    for node in walk(function.node, stop=ctx.source.grammar.functions):
        if node.type in ("assignment", "variable_declarator", "short_var_declaration", "var_spec"):
            left = node.child_by_field_name("left") or node.child_by_field_name("name")
            right = node.child_by_field_name("right") or node.child_by_field_name("value")
            if left is None or right is None:
                continue
            value = right.named_children[0] if right.type == "expression_list" and right.named_children else right
            declared = node.parent.child_by_field_name("type") if node.parent is not None else None
            if value.type in STRING_TYPES or STRING_INIT.match(text(value)) or text(declared) == "String":
                names.add(text(left.named_children[0] if left.type == "expression_list" else left))
    return names


def _string_concat(loops: list[Loop], function: Function, ctx: FileContext) -> list[PatternHit]:
    strings = _string_vars(function, ctx)
    hits = []
    for node in walk(function.node, stop=ctx.source.grammar.functions):
        if node.type not in (
            "augmented_assignment",
            "assignment_statement",
            "augmented_assignment_expression",
            "assignment_expression",
        ):
            continue
        left = text(node.child_by_field_name("left"))
        right = node.child_by_field_name("right")
        operator = next((text(c) for c in node.children if not c.is_named and "=" in text(c)), "")
        appends = operator == "+=" or (right is not None and re.match(rf"^{re.escape(left)}\s*\+", text(right)))
        loop = _innermost_loop(node, loops) if appends and left in strings else None
        if loop is None or not _request_sized(loop.collection) or left in loop.variables:
            continue
        detail = (
            f"`{left} +=` grows a string on every iteration over `{text(loop.collection)[:60]}`: each step copies "
            "what was built so far (quadratic); collect the parts and join once"
        )
        hits.append(ctx.hit("cpu_heavy", "string_concat_in_loop", node, function, detail, 0.7, {"variable": left}))
    return hits


def _blocking(function: Function, ctx: FileContext) -> list[PatternHit]:
    """A blocking call where the function runs on an event loop: Python's `async def`; for Node, any
    async function or request handler (a sync call there stops every other request)."""
    family = ctx.source.family
    node_loop = family == "javascript" and (function.is_async or ctx.on_request_path(function) is True)
    if not ((family == "python" and function.is_async) or node_loop):
        return []
    hits = []
    for node in walk(function.node, stop=ctx.source.grammar.functions):
        if node.type != ctx.source.grammar.call or (node.parent is not None and node.parent.type in AWAIT_TYPES):
            continue
        name = qualified(node, family)
        if family == "python" and BLOCKING_IN_ASYNC.match(name):
            strength = 0.9 if name == "time.sleep" or name.startswith("requests.") else 0.75
            detail = f"{name}() blocks the event loop inside `async def {function.name}`: every other request waits"
        elif family == "javascript" and NODE_BLOCKING.search(callee(node, family)[1]):
            strength = 0.75
            where = function.name or "a request handler"
            detail = f"{name}() blocks Node's event loop in {where}: every other request waits"
        else:
            continue
        hits.append(ctx.hit("cpu_heavy", "blocking_in_async", node, function, detail, strength, {"call": name}))
    return hits


def _busy_waits(loops: list[Loop], function: Function, ctx: FileContext) -> list[PatternHit]:
    """A loop that only re-reads the clock or a flag, never sleeping, awaiting or blocking on I/O."""
    family = ctx.source.family
    hits = []
    for loop in loops:
        if loop.node.type not in ("while_statement", "for_statement", "do_statement") or loop.collection is not None:
            continue
        if family == "python" and loop.node.type == "for_statement":
            continue
        calls = [n for n in walk(loop.node) if n.type == ctx.source.grammar.call]
        names = [qualified(c, family) for c in calls]
        if any(
            n.type in AWAIT_TYPES or n.type in ("yield", "receive_expression", "select_statement")
            for n in walk(loop.node)
        ):
            continue
        if any(not CLOCK_READ.match(n) for n in names):
            continue  # it calls something that may block, sleep or do the work
        body = [
            c for c in loop.body.named_children if c.type not in ("comment", "pass_statement", "continue_statement")
        ]
        reads_clock = bool(names)
        if not (reads_clock or not body):
            continue
        detail = (
            "loop spins on "
            + ("the clock" if reads_clock else "a condition with an empty body")
            + (" without sleeping or waiting: it burns a whole CPU until the condition changes")
        )
        hits.append(ctx.hit("cpu_heavy", "busy_wait", loop.node, function, detail, 0.8 if reads_clock else 0.7))
    return hits


def find_cpu_heavy(function: Function, ctx: FileContext) -> list[PatternHit]:
    hits = _blocking(function, ctx)
    if not (function.types & ctx.source.grammar.loops or function.calls & ITERATION_METHODS):
        return hits
    loops = loops_of(function, ctx)
    if loops:
        hits += _nested(loops, function, ctx)
        hits += _per_iteration_calls(loops, function, ctx)
        hits += _python_membership(loops, function, ctx)
        hits += _string_concat(loops, function, ctx)
        hits += _busy_waits(loops, function, ctx)
    return hits
