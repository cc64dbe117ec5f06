"""Which functions of a file run on a request path: reachable from an HTTP or gRPC handler
(a decorated route, a handler registration, a servlet or controller method, an express route).

True: the function is a handler or a handler of the same file calls it (directly or through other
functions of the file; names from other files can be added as `callers_elsewhere`). False: it is
test code, a program's entry point, or a scheduled/background task. None: we could not tell.
"""

from __future__ import annotations

import re

import tree_sitter as ts

from warroom.analysis.code_patterns.syntax import Function, SourceFile, arguments, string_value, text

PY_ROUTE_DECORATOR = re.compile(
    r"(?:^|\.)(route|get|post|put|patch|delete|head|options|websocket|api_route|api_view|view_config)\s*\("
)
JAVA_ROUTE_ANNOTATION = re.compile(
    r"^(Get|Post|Put|Delete|Patch|Request|Message)Mapping\b|^(GET|POST|PUT|DELETE|PATCH|Path)\b"
)
SERVLET_METHODS = frozenset({"doGet", "doPost", "doPut", "doDelete", "doPatch", "service"})
GO_HANDLER_TYPES = re.compile(r"http\.ResponseWriter|\*http\.Request|gin\.Context|echo\.Context|fiber\.Ctx")
BACKGROUND_MARKER = re.compile(r"(?i)^(\w+\.)*(task|shared_task|periodic_task|scheduled|cron|job)\b")
REQUEST_PARAM = frozenset({"request", "req"})
RESPONSE_PARAM = frozenset({"res", "response", "reply", "resp", "h"})
TEST_PATH = re.compile(
    r"(^|/)(tests?|__tests__|spec|src/test)/|(^|/)test_[^/]*\.py$|_test\.go$|\.(test|spec)\.[jt]sx?$"
)


def is_handler(function: Function, family: str) -> bool:
    params = [name for name, _ in function.params if name not in ("self", "cls")]
    types = " ".join(kind for _, kind in function.params)
    if family == "python":
        if any(PY_ROUTE_DECORATOR.search(m) for m in function.markers):
            return True
        # Django/Flask-style views and gRPC servicer methods: (request) or (request, context).
        return bool(params) and params[0] in REQUEST_PARAM
    if family == "go":
        if function.name == "ServeHTTP" or GO_HANDLER_TYPES.search(types):
            return True
        # A gRPC service method: (ctx context.Context, req *pb.XRequest) (*pb.XResponse, error).
        return "context.Context" in types and bool(re.search(r"Request\b", types))
    if family == "java":
        if any(JAVA_ROUTE_ANNOTATION.search(m) for m in function.markers):
            return True
        if function.name in SERVLET_METHODS and "HttpServletRequest" in types:
            return True
        return "StreamObserver" in types
    # javascript / typescript
    if function.route is not None:
        return True
    if function.name in ("GET", "POST", "PUT", "PATCH", "DELETE"):  # Next.js route handlers
        return True
    return len(params) >= 2 and params[0] in REQUEST_PARAM and params[1] in RESPONSE_PARAM


def registered_handlers(source: SourceFile) -> set[str]:
    """Names passed to a route registration in this file: `mux.HandleFunc("/x", h.list)`,
    `app.get('/x', listOrders)`, `router.add_get('/x', handler)` (a path string, then a function)."""
    names: set[str] = set()
    for node in source.calls:
        args = arguments(node)
        if len(args) < 2 or args[0].type not in ("string", "interpreted_string_literal", "string_literal"):
            continue
        if not string_value(args[0]).startswith("/"):
            continue
        for arg in args[1:]:
            if arg.type in ("identifier", "selector_expression", "member_expression", "attribute", "field_access"):
                names.add(re.split(r"[.]", text(arg))[-1])
            elif arg.type in ("unary_expression", "composite_literal") and arg.named_children:
                # Go: mux.Handle("/x", &handlers.ListHandler{…}) registers that type's ServeHTTP.
                names.add("ServeHTTP")
    return names


def _background(function: Function, source: SourceFile) -> bool:
    if TEST_PATH.search(source.path):
        return True
    if function.name in ("main", "init", "__main__") or (function.name or "").startswith("test"):
        return True
    return any(BACKGROUND_MARKER.search(m) for m in function.markers)


def request_paths(source: SourceFile, callers_elsewhere: frozenset[str] = frozenset()) -> dict[int, bool | None]:
    """Function node id → on a request path (True / False / None = could not tell)."""
    registered = registered_handlers(source)
    by_name: dict[str, list[Function]] = {}
    for function in source.functions:
        if function.name:
            by_name.setdefault(function.name, []).append(function)
    reached: set[int] = set()
    queue = [
        f
        for f in source.functions
        if is_handler(f, source.family) or (f.name and (f.name in registered or f.name in callers_elsewhere))
    ]
    while queue:
        function = queue.pop()
        if function.node.id in reached:
            continue
        reached.add(function.node.id)
        for name in function.calls:
            queue.extend(by_name.get(name, []))
        # Closures defined inside a handler run on its request path too.
        queue.extend(f for f in source.functions if _inside(f.node, function.node))
    out: dict[int, bool | None] = {}
    for function in source.functions:
        if function.node.id in reached and not TEST_PATH.search(source.path):
            out[function.node.id] = True
        elif _background(function, source):
            out[function.node.id] = False
        else:
            out[function.node.id] = None
    return out


def _inside(inner: ts.Node, outer: ts.Node) -> bool:
    return inner.id != outer.id and outer.start_byte <= inner.start_byte and inner.end_byte <= outer.end_byte


def handler_callers(source: SourceFile, names: set[str]) -> set[str]:
    """Which of `names` this file calls from a function on its request path (for a cross-file hop)."""
    paths = request_paths(source)
    found: set[str] = set()
    for function in source.functions:
        if paths.get(function.node.id):
            found |= function.calls & names
    return found | (registered_handlers(source) & names)
