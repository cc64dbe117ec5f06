"""The database schema as the repository's migrations build it (SQL files and Alembic's `op.*`
calls): tables, columns and which columns lead an index; and the statements of a migration that
destroy data. Pure functions over file texts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

IDENT = r'"?([A-Za-z_][\w]*)"?'
QUALIFIED = r'(?:"?[A-Za-z_]\w*"?\.)?' + IDENT


@dataclass
class Schema:
    """Tables, columns and index prefixes, from the repository's migrations."""

    columns: dict[str, set[str]] = field(default_factory=dict)
    indexes: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)  # table → name → cols
    sources: dict[str, str] = field(default_factory=dict)  # table → file that created it
    index_sources: dict[str, tuple[str, int]] = field(default_factory=dict)  # index → (file, line) that made it

    def leading(self, table: str) -> set[str]:
        return {cols[0] for cols in self.indexes.get(table, {}).values() if cols}

    def table_for(self, name: str) -> str | None:
        """The table an identifier names: itself, or an ORM model's conventional table
        (`OrderItem` → order_items / order_item / orderitems)."""
        snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
        flat = name.lower()
        for candidate in (flat, snake, *(_plurals(snake)), *(_plurals(flat)), _singular(snake)):
            if candidate in self.columns:
                return candidate
        return None

    def column_of(self, table: str, name: str) -> str | None:
        """The column an identifier names in a table (`customerEmail` → customer_email)."""
        columns = self.columns.get(table, set())
        for candidate in (name.lower(), re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()):
            if candidate in columns:
                return candidate
        return None


def _plurals(word: str) -> tuple[str, ...]:
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return (word[:-1] + "ies",)
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return (word + "es",)
    return (word + "s",)


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") else word


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
# Alembic: op.create_table('t', sa.Column('c', …, primary_key=True|index=True|unique=True), …),
# op.create_index('ix', 't', ['c', …]), op.drop_index('ix', …), op.add_column('t', sa.Column('c', …)).
_OP_CREATE_TABLE = re.compile(r"op\.create_table\(\s*['\"](\w+)['\"]")
_OP_COLUMN = re.compile(r"Column\(\s*['\"](\w+)['\"]([^\n]*)")
_OP_CREATE_INDEX = re.compile(
    r"op\.create_index\(\s*(?:op\.f\()?['\"](\w+)['\"]\)?\s*,\s*['\"](\w+)['\"]\s*,\s*\[([^\]]*)\]"
)
_OP_DROP_INDEX = re.compile(r"op\.drop_index\(\s*(?:op\.f\()?['\"](\w+)['\"]")
_OP_ADD_COLUMN = re.compile(r"op\.add_column\(\s*['\"](\w+)['\"]\s*,\s*sa\.Column\(\s*['\"](\w+)['\"]([^\n]*)")


def _split_top(body: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for pos, char in enumerate(body):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(body[start:pos])
            start = pos + 1
    parts.append(body[start:])
    return [p.strip() for p in parts if p.strip()]


def _cols(spec: str) -> tuple[str, ...]:
    """Index columns as written; an expression (`lower(email)`) indexes its column only for that expression."""
    out = []
    for part in _split_top(spec):
        name = part.strip().strip("\"'").split()[0].lower()
        out.append(name if re.fullmatch(r"[a-z_]\w*", name) else f"expr:{name}")
    return tuple(out)


def strip_sql_comments(sql: str) -> str:
    """Comments blanked out, keeping every newline so offsets still map to lines."""
    sql = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), sql, flags=re.DOTALL)
    return re.sub(r"--[^\n]*", lambda m: " " * len(m.group(0)), sql)


def is_migration(path: str) -> bool:
    lower = path.lower()
    return lower.endswith(".sql") or (
        lower.endswith(".py") and ("alembic" in lower or "/versions/" in lower or "migrations/" in lower)
    )


def parse_schema(files: list[tuple[str, str]]) -> Schema:
    """Apply migrations in path order: CREATE TABLE (primary key, unique), CREATE/DROP INDEX,
    ALTER TABLE ADD PRIMARY KEY/UNIQUE/COLUMN, DROP TABLE; Alembic's equivalents in .py files."""
    schema = Schema()
    for path, raw in sorted(files):
        if path.lower().endswith(".py"):
            _apply_alembic(schema, path, raw)
        else:
            _apply_sql(schema, path, strip_sql_comments(raw))
    return schema


def _apply_sql(schema: Schema, path: str, sql: str) -> None:
    events: list[tuple[int, str, re.Match[str]]] = []
    for name, pattern in (
        ("table", _CREATE_TABLE),
        ("index", _CREATE_INDEX),
        ("drop_index", _DROP_INDEX),
        ("alter", _ALTER_ADD),
        ("add_column", _ADD_COLUMN),
        ("drop_table", _DROP_TABLE),
    ):
        events.extend((m.start(), name, m) for m in pattern.finditer(sql))
    for start, name, match in sorted(events, key=lambda e: e[0]):
        line = sql.count("\n", 0, start) + 1
        if name == "table":
            _create_table(schema, path, sql, match)
        elif name == "index":
            index_name = (match.group(2) or f"anon_{path}_{start}").lower()
            _add_index(schema, match.group(3).lower(), index_name, _cols(match.group(4)), path, line)
        elif name == "drop_index":
            _drop_index(schema, match.group(1).lower())
        elif name == "alter":
            table = match.group(1).lower()
            _add_index(
                schema, table, (match.group(2) or f"{table}_alter_{start}").lower(), _cols(match.group(4)), path, line
            )
        elif name == "add_column":
            column = match.group(2).lower()
            if column not in ("constraint", "primary", "unique", "foreign", "check"):
                schema.columns.setdefault(match.group(1).lower(), set()).add(column)
        elif name == "drop_table":
            schema.columns.pop(match.group(1).lower(), None)
            schema.indexes.pop(match.group(1).lower(), None)


def _create_table(schema: Schema, path: str, sql: str, match: re.Match[str]) -> None:
    table = match.group(1).lower()
    body_start = match.end()
    depth, pos = 1, body_start
    while pos < len(sql) and depth:
        depth += {"(": 1, ")": -1}.get(sql[pos], 0)
        pos += 1
    line = sql.count("\n", 0, match.start()) + 1
    schema.columns[table] = set()
    schema.indexes[table] = {}
    schema.sources[table] = path
    for part in _split_top(sql[body_start : pos - 1]):
        head = part.split()[0].lower().strip('"')
        key = re.match(r"(?:constraint\s+\S+\s+)?(primary\s+key|unique)\s*\(([^)]*)\)", part, re.I)
        if key:
            kind = key.group(1).split()[0].lower()
            _add_index(schema, table, f"{table}_{kind}_{len(schema.indexes[table])}", _cols(key.group(2)), path, line)
            continue
        if head in ("constraint", "check", "foreign", "exclude", "like"):
            continue
        schema.columns[table].add(head)
        if re.search(r"\bprimary\s+key\b|\bunique\b", part, re.I):
            _add_index(schema, table, f"{table}_{head}_key", (head,), path, line)


def _add_index(schema: Schema, table: str, name: str, cols: tuple[str, ...], path: str, line: int) -> None:
    schema.indexes.setdefault(table, {})[name] = cols
    schema.index_sources[name] = (path, line)


def _drop_index(schema: Schema, name: str) -> None:
    for indexes in schema.indexes.values():
        indexes.pop(name, None)


def _apply_alembic(schema: Schema, path: str, source: str) -> None:
    for match in _OP_CREATE_TABLE.finditer(source):
        table = match.group(1).lower()
        end = source.find("\n    op.", match.end())
        body = source[match.end() : end if end > 0 else len(source)]
        schema.columns[table] = set()
        schema.indexes.setdefault(table, {})
        schema.sources[table] = path
        for column in _OP_COLUMN.finditer(body):
            _alembic_column(schema, path, source, table, column.group(1).lower(), column.group(2), match.start())
    for match in _OP_ADD_COLUMN.finditer(source):
        _alembic_column(
            schema, path, source, match.group(1).lower(), match.group(2).lower(), match.group(3), match.start()
        )
    for match in _OP_CREATE_INDEX.finditer(source):
        cols = tuple(c.strip().strip("'\"").lower() for c in match.group(3).split(",") if c.strip())
        line = source.count("\n", 0, match.start()) + 1
        _add_index(schema, match.group(2).lower(), match.group(1).lower(), cols, path, line)
    for match in _OP_DROP_INDEX.finditer(source):
        _drop_index(schema, match.group(1).lower())


def _alembic_column(schema: Schema, path: str, source: str, table: str, column: str, rest: str, at: int) -> None:
    schema.columns.setdefault(table, set()).add(column)
    if re.search(r"\b(primary_key|index|unique)\s*=\s*True", rest):
        _add_index(schema, table, f"{table}_{column}_key", (column,), path, source.count("\n", 0, at) + 1)


# Statements of a migration that destroy data: dropping a table or column, truncating, deleting or
# updating every row (no WHERE), or narrowing a column's type.
DESTRUCTIVE_SQL = (
    (re.compile(r"(?i)\bdrop\s+table\b"), "drop_table", "drops a table and every row in it"),
    (
        re.compile(r"(?i)\bdrop\s+column\b|\balter\s+table\s+\S+\s+drop\s+(?!constraint|index)\w+"),
        "drop_column",
        "drops a column and its data",
    ),
    (re.compile(r"(?i)\btruncate\b"), "truncate", "truncates a table"),
    (re.compile(r"(?i)^\s*delete\s+from\s+[\w.\"]+\s*;"), "delete_all", "deletes every row of a table (no WHERE)"),
    (re.compile(r"(?i)^\s*update\s+[\w.\"]+\s+set\s+[^;]*;"), "update_all", "rewrites every row of a table (no WHERE)"),
    (
        re.compile(r"(?i)\balter\s+column\s+\S+\s+(set\s+data\s+)?type\b"),
        "narrow_type",
        "changes a column's type (may truncate values)",
    ),
)


def destructive_statements(sql: str) -> list[tuple[int, str, str, str]]:
    """(line, subkind, what it does, statement) for each data-destroying statement of a migration."""
    out = []
    for number, line in enumerate(strip_sql_comments(sql).splitlines(), 1):
        code = line.strip()
        if not code:
            continue
        for pattern, subkind, what in DESTRUCTIVE_SQL:
            if pattern.search(code) and not (what.endswith("(no WHERE)") and re.search(r"(?i)\bwhere\b", code)):
                out.append((number, subkind, what, code[:300]))
                break
    return out


def dropped_indexes(before: Schema, after: Schema) -> list[tuple[str, str, tuple[str, ...]]]:
    """(table, index, columns) of the indexes `before` has and `after` lost, while the table stays."""
    lost: list[tuple[str, str, tuple[str, ...]]] = []
    for table, indexes in before.indexes.items():
        if table not in after.columns:
            continue
        kept = after.indexes.get(table, {})
        lost.extend((table, name, cols) for name, cols in indexes.items() if name not in kept)
    return lost
