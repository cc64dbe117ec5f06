"""Queries whose predicates no index covers: every call scans the table.

A query is read from SQL text (string literals, pieces joined with `+`, `%`, f-strings, template
strings, and `sql += "…"` built up in a function) or from an ORM's query builder (SQLAlchemy and
Django keyword filters, GORM's `Where("col = ?")`, knex/Sequelize/Prisma/TypeORM `where` objects,
Spring Data's derived `findByX` methods). Its WHERE and JOIN columns are judged against the schema
the migrations build; tables the migrations do not define are never judged.
"""

from __future__ import annotations

import re

import tree_sitter as ts

from warroom.analysis.code_patterns.hits import FileContext, PatternHit
from warroom.analysis.code_patterns.schema import QUALIFIED, Schema
from warroom.analysis.code_patterns.syntax import (
    CONCAT_TYPES,
    STRING_TYPES,
    arguments,
    callee,
    line_of,
    string_value,
    text,
    walk,
)

SQL_START = re.compile(r"^\s*(select|update|delete|with)\b", re.IGNORECASE)
_KEYWORDS = frozenset(
    {
        *("where", "join", "inner", "left", "right", "full", "outer", "cross", "on", "group", "order", "limit"),
        *("for", "returning", "set", "using", "as", "and", "or", "not", "union", "having", "offset", "natural"),
    }
)
_TABLE_REF = re.compile(r"\b(from|join|update|into)\s+" + QUALIFIED + r"(?:\s+(?:as\s+)?([A-Za-z_]\w*))?", re.I)
_PREDICATE = re.compile(
    r"(?:([A-Za-z_]\w*)\.)?([A-Za-z_]\w*)\s*(=|<>|!=|<=|>=|<|>|\s+in\s*\(|\s+like\s|\s+ilike\s|\s+between\s|\s+is\s)",
    re.I,
)
# A column compared by inequality narrows nothing an index could find (`id <> %s` reads every other
# row): it neither needs an index nor shows that one is used.
_NOT_NARROWING = frozenset({"<>", "!="})
_CLAUSE_END = (
    r"(?=\bgroup\s+by\b|\border\s+by\b|\blimit\b|\bfor\s+update\b|\breturning\b|\bunion\b|\bhaving\b|\boffset\b|$)"
)
_SKIP = _KEYWORDS | {"null", "true", "false", "now", "lower", "upper", "coalesce"}


def query_predicates(sql: str) -> tuple[dict[str, str], list[tuple[str | None, str, str]]]:
    """(alias → table, [(qualifier, column, clause)]) for the WHERE and JOIN … ON columns of a query;
    names keep their case so ORM names (`OrderItem`, `customerEmail`) can be resolved against the schema."""
    flat = " ".join(sql.split())
    aliases: dict[str, str] = {}
    for match in _TABLE_REF.finditer(flat):
        table = match.group(2)
        aliases.setdefault(table.lower(), table)
        alias = match.group(3)
        if alias and alias.lower() not in _KEYWORDS:
            aliases[alias.lower()] = table
    preds: list[tuple[str | None, str, str]] = []
    for where in re.finditer(r"\bwhere\b(.*?)" + _CLAUSE_END, flat, re.I):
        preds.extend(
            (q.lower() if q else None, c, "WHERE")
            for q, c, op in _PREDICATE.findall(where.group(1))
            if op.strip() not in _NOT_NARROWING
        )
    for on in re.finditer(r"\bon\b(.*?)(?=\bjoin\b|\bwhere\b|\bleft\b|\binner\b|" + _CLAUSE_END[3:], flat, re.I):
        for side in re.findall(r"([A-Za-z_]\w*)\.([A-Za-z_]\w*)", on.group(1)):
            preds.append((side[0].lower(), side[1], "JOIN"))
    return aliases, [p for p in preds if p[1].lower() not in _SKIP]


def unindexed_columns(sql: str, schema: Schema) -> list[dict[str, object]]:
    """Per table filtered or joined by the query: the predicate columns when none of them leads an
    index (so the planner has to scan). Tables the migrations do not define are not judged."""
    aliases, preds = query_predicates(sql)
    resolved = {alias: schema.table_for(table) for alias, table in aliases.items()}
    main_tables = [t for t in dict.fromkeys(resolved.values()) if t is not None]
    by_table: dict[str, list[tuple[str, str]]] = {}
    for qualifier, name, clause in preds:
        table: str | None
        if qualifier is not None:
            table = resolved.get(qualifier)
        else:
            owners = [t for t in main_tables if schema.column_of(t, name)]
            table = owners[0] if owners else (main_tables[0] if len(main_tables) == 1 else None)
        column = schema.column_of(table, name) if table else None
        if table is None or column is None:
            continue  # a column the schema does not know (a typo, a JSON path, another database): not judged
        by_table.setdefault(table, []).append((column, clause))
    problems = []
    for table, cols in by_table.items():
        names = [c for c, _ in cols]
        if any(c in schema.leading(table) for c in names):
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


def _assigned_var(top: ts.Node) -> tuple[str | None, bool]:
    """(variable a string expression is assigned to, whether by `+=`)."""
    parent = top.parent
    if parent is None:
        return None, False
    if parent.type in ("augmented_assignment", "assignment_statement", "assignment_expression", "assignment"):
        op = next((text(c) for c in parent.children if not c.is_named and "=" in text(c)), "=")
        left = parent.child_by_field_name("left")
        return text(left).strip() or None, op == "+="
    if parent.type == "augmented_assignment_expression":
        return text(parent.child_by_field_name("left")), True
    if parent.type in ("variable_declarator", "short_var_declaration") or (
        parent.type == "expression_list" and parent.parent is not None and parent.parent.type == "short_var_declaration"
    ):
        holder = parent if parent.type == "variable_declarator" else parent.parent
        name = holder.child_by_field_name("name") or holder.child_by_field_name("left") if holder else None
        return text(name).strip() or None, False
    return None, False


def sql_literals(ctx: FileContext) -> list[tuple[ts.Node, str]]:
    """(node, SQL text) for every string expression that reads as a query; pieces joined with `+`,
    `%` or implicit concatenation count as one, and so does `sql += "…"` after `sql = "SELECT …"`."""
    groups: dict[int, tuple[ts.Node, list[ts.Node]]] = {}
    for node in walk(ctx.source.root, stop=STRING_TYPES):
        if node.type not in STRING_TYPES:
            continue
        top = node
        while top.parent is not None and top.parent.type in CONCAT_TYPES:
            top = top.parent
        groups.setdefault(top.id, (top, []))[1].append(node)
    found: list[list[object]] = []
    open_query: dict[tuple[int, str], list[object]] = {}  # (function, variable) → the query being built
    for top, parts in sorted(groups.values(), key=lambda g: g[0].start_byte):
        piece = " ".join(string_value(p) for p in sorted(parts, key=lambda n: n.start_byte))
        var, appended = _assigned_var(top)
        function = ctx.source.function_at(top)
        scope = (function.node.id if function is not None else 0, var or "")
        if appended and var and scope in open_query:
            open_query[scope][1] = f"{open_query[scope][1]} {piece}"
        elif SQL_START.match(piece):
            entry: list[object] = [top, piece]
            found.append(entry)
            if var:
                open_query[scope] = entry
    return [(entry[0], str(entry[1])) for entry in found if isinstance(entry[0], ts.Node)]


# ---- query builders -------------------------------------------------------------------------

KEYWORD_FILTERS = frozenset({"filter", "filter_by", "get", "exclude", "get_or_create", "update_or_create"})
EXPRESSION_FILTERS = frozenset({"filter", "where"})
WHERE_OBJECT_CALLS = frozenset(
    {"findAll", "findOne", "findFirst", "findMany", "findUnique", "find", "count", "update", "destroy", "findOneBy"}
)
KNEX_WHERE = frozenset({"where", "andWhere", "orWhere", "whereIn", "first"})
DERIVED = re.compile(
    r"^(?:find|get|read|query|count|exists|delete|stream)(?:All|First\d*|Top\d*|Distinct)?By([A-Z]\w*)$"
)
DERIVED_SUFFIX = re.compile(
    r"(IgnoreCase|Containing|StartingWith|EndingWith|GreaterThanEqual|GreaterThan|LessThanEqual|LessThan|Between|"
    r"NotIn|In|NotNull|IsNull|Null|Like|NotLike|Not|Is|Equals|Before|After|True|False)$"
)
REPOSITORY_BASE = re.compile(r"(?:Jpa|Crud|PagingAndSorting|Mongo|Reactive\w*)Repository<\s*(\w+)")


def _chain(call: ts.Node, family: str) -> list[ts.Node]:
    """The calls of a method chain this call ends, outermost last: `db.Model(&X{}).Where(…)`."""
    calls = [call]
    node = call
    while True:
        if family == "java":
            inner = node.child_by_field_name("object")
        else:
            func = node.child_by_field_name("function")
            inner = None
            if func is not None:
                inner = func.child_by_field_name("object") or func.child_by_field_name("operand")
        if inner is None or inner.type not in ("call", "call_expression", "method_invocation"):
            return calls
        calls.append(inner)
        node = inner


def _root_name(call: ts.Node, family: str) -> str:
    """The identifier a chain starts from: `Order.objects.filter` → Order, `prisma.order.findMany` → order."""
    receiver, _ = callee(_chain(call, family)[-1], family)
    parts = [
        p for p in re.split(r"[.\s]", receiver or "") if p and p not in ("objects", "query", "prisma", "this", "self")
    ]
    if not parts:
        return ""
    name = parts[-1] if receiver and receiver.startswith(("prisma", "this", "self")) else parts[0]
    return re.sub(r"(Repository|Repo|Model|Dao|Table)$", "", name) or name


def _table_from_chain(call: ts.Node, family: str, schema: Schema) -> str | None:
    for link in _chain(call, family):
        _, method = callee(link, family)
        args = arguments(link)
        if not args:
            continue
        first = args[0]
        if method in ("query", "select", "Model", "Table") or (
            family == "javascript" and link is _chain(call, family)[-1]
        ):
            if first.type in STRING_TYPES:
                return schema.table_for(string_value(first))
            name = re.sub(r"[&{}()\s]|\.class$", "", text(first)).split(".")[-1]
            if name:
                return schema.table_for(name)
    root = _root_name(call, family)
    return schema.table_for(root) if root else None


def _keyword_columns(call: ts.Node) -> list[str]:
    args = call.child_by_field_name("arguments")
    names = []
    for arg in args.named_children if args is not None else []:
        if arg.type == "keyword_argument":
            names.append(text(arg.child_by_field_name("name")).split("__")[0])
    return names


def _expression_columns(call: ts.Node, schema: Schema) -> tuple[str | None, list[str]]:
    """`.filter(Order.email == x, Order.status == "paid")` → (orders, [email, status])."""
    table, names = None, []
    for arg in arguments(call):
        for node in [arg, *walk(arg)]:
            if node.type == "comparison_operator" and node.named_children:
                left = node.named_children[0]
                if left.type == "attribute":
                    table = table or schema.table_for(text(left.child_by_field_name("object")).split(".")[-1])
                    names.append(text(left.child_by_field_name("attribute")))
    return table, names


def _object_keys(node: ts.Node) -> list[str]:
    return [
        text(p.child_by_field_name("key") or p).strip("'\"")
        for p in node.named_children
        if p.type in ("pair", "shorthand_property_identifier")
    ]


def _where_object(call: ts.Node) -> list[str]:
    """`{ where: { email, status: 'x' } }` → [email, status]."""
    for arg in arguments(call):
        if arg.type != "object":
            continue
        for pair in arg.named_children:
            if pair.type == "pair" and text(pair.child_by_field_name("key")).strip("'\"") == "where":
                value = pair.child_by_field_name("value")
                if value is not None and value.type == "object":
                    return _object_keys(value)
    return []


def _builder_query(call: ts.Node, family: str, schema: Schema) -> tuple[str | None, list[str], str] | None:
    """(table, predicate columns, the builder's call text) when a call filters through an ORM."""
    _, method = callee(call, family)
    args = arguments(call)
    if family == "python" and method in KEYWORD_FILTERS and _keyword_columns(call):
        return _table_from_chain(call, family, schema), _keyword_columns(call), "keyword filter"
    if family == "python" and method in EXPRESSION_FILTERS:
        table, names = _expression_columns(call, schema)
        return (table or _table_from_chain(call, family, schema), names, "filter expression") if names else None
    if family == "go" and method == "Where" and args and args[0].type in STRING_TYPES:
        fragment = string_value(args[0])
        names = [c for _, c, _ in query_predicates(f"SELECT 1 FROM t WHERE {fragment}")[1]]
        return _table_from_chain(call, family, schema), names, "GORM Where"
    if family == "javascript" and method in KNEX_WHERE and args:
        names = _object_keys(args[0]) if args[0].type == "object" else []
        if args[0].type in STRING_TYPES:
            names = [string_value(args[0]).split(".")[-1]]
        return (_table_from_chain(call, family, schema), names, "query builder where") if names else None
    if family == "javascript" and method in WHERE_OBJECT_CALLS and _where_object(call):
        return _table_from_chain(call, family, schema), _where_object(call), "ORM where object"
    return None


def _unowned_table(schema: Schema, names: list[str]) -> str | None:
    """The one table that has every column, when the builder does not say which table it queries."""
    owners = [t for t in schema.columns if all(schema.column_of(t, n) for n in names)]
    return owners[0] if len(owners) == 1 else None


def _derived_queries(ctx: FileContext, schema: Schema) -> list[tuple[ts.Node, str]]:
    """Spring Data repository methods `findByCustomerEmailAndStatus(…)` as SQL over the entity's table."""
    source_text = "\n".join(ctx.source.lines)
    entity = REPOSITORY_BASE.search(source_text)
    if ctx.source.family != "java" or entity is None:
        return []
    out = []
    for function in ctx.source.functions:
        match = DERIVED.match(function.name or "")
        if not match:
            continue
        props = [DERIVED_SUFFIX.sub("", p) for p in re.split(r"And|Or", match.group(1).split("OrderBy")[0]) if p]
        where = " AND ".join(f"{p[0].lower()}{p[1:]} = ?" for p in props if p)
        out.append((function.node, f"SELECT * FROM {entity.group(1)} WHERE {where}"))
    return out


def find_queries(ctx: FileContext, schema: Schema | None) -> list[PatternHit]:
    if schema is None or not schema.columns:
        return []
    shapes: list[tuple[ts.Node, str, str]] = [(n, sql, "sql_text") for n, sql in sql_literals(ctx)]
    shapes.extend((n, sql, "derived_query") for n, sql in _derived_queries(ctx, schema))
    call_type = ctx.source.grammar.call
    for node in walk(ctx.source.root):
        if node.type != call_type:
            continue
        built = _builder_query(node, ctx.source.family, schema)
        if built is None:
            continue
        table, names, _how = built
        table = table or _unowned_table(schema, names)
        if table is not None and names:
            shapes.append(
                (node, f"SELECT * FROM {table} WHERE {' AND '.join(f'{n} = ?' for n in names)}", "query_builder")
            )
    hits = []
    for node, sql, subkind in shapes:
        problems = [p for p in unindexed_columns(sql, schema) if not p["join_only"]]
        if problems:
            hits.append(_hit(ctx, node, sql, subkind, problems))
    return hits


def _hit(ctx: FileContext, node: ts.Node, sql: str, subkind: str, problems: list[dict[str, object]]) -> PatternHit:
    first = problems[0]
    columns = [str(c) for c in first["columns"]]  # type: ignore[attr-defined]
    clauses = "/".join(str(c) for c in first["clauses"])  # type: ignore[attr-defined]
    how = {"sql_text": "query", "derived_query": "derived repository query", "query_builder": "ORM query"}[subkind]
    detail = (
        f"{how} filters {first['table']} on {', '.join(columns)} ({clauses}) but no index in the migrations starts "
        f"with {'that column' if len(columns) == 1 else 'any of them'}: every call scans the table"
    )
    function = ctx.source.function_at(node)
    strength = 0.8 if subkind == "sql_text" else 0.65  # a builder's table is inferred from names
    data: dict[str, object] = {"query": " ".join(sql.split())[:400], "tables": problems, "table": first["table"]}
    data["columns"] = columns
    hit = ctx.hit("unindexed_query", subkind, node, function, detail, strength, data)
    hit.snippet = " ".join(sql.split())[:240] if subkind == "sql_text" else ctx.source.snippet(line_of(node))
    return hit
