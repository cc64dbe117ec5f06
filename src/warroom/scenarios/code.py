"""The services' source code: a Go or Python service per system service, SQL migrations for the
schema, deployment configuration, and the ordinary day-to-day commits that surround a bad one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from warroom.scenarios.system import SQL, Node, System

AUTHORS = [
    ("Ana Souza", "ana.souza@shop.example"),
    ("Mike Rodriguez", "mike.rodriguez@shop.example"),
    ("Priya Natarajan", "priya.n@shop.example"),
    ("Tom Becker", "tom.becker@shop.example"),
    ("Lisa Wang", "lisa.wang@shop.example"),
    ("Kenji Ito", "kenji.ito@shop.example"),
    ("Fatima Zahra", "fatima.zahra@shop.example"),
    ("Ola Nordmann", "ola.nordmann@shop.example"),
]

# The schema as the migrations create it: table → (columns, indexed columns).
SCHEMA: dict[str, tuple[list[str], list[str]]] = {
    "users": (["id BIGSERIAL PRIMARY KEY", "email TEXT NOT NULL", "password_hash TEXT NOT NULL",
               "locked BOOLEAN NOT NULL DEFAULT false", "created_at TIMESTAMPTZ NOT NULL DEFAULT now()"], ["email"]),
    "sessions": (["token TEXT PRIMARY KEY", "user_id BIGINT NOT NULL REFERENCES users(id)",
                  "expires_at TIMESTAMPTZ NOT NULL"], ["user_id"]),
    "products": (["id BIGSERIAL PRIMARY KEY", "category_id INT NOT NULL", "name TEXT NOT NULL",
                  "description TEXT", "price_cents INT NOT NULL", "stock INT NOT NULL DEFAULT 0"], ["category_id"]),
    "inventory": (["product_id BIGINT PRIMARY KEY REFERENCES products(id)", "quantity INT NOT NULL",
                   "warehouse TEXT NOT NULL"], []),
    "cart_items": (["cart_id UUID NOT NULL", "product_id BIGINT NOT NULL REFERENCES products(id)",
                    "quantity INT NOT NULL", "added_at TIMESTAMPTZ NOT NULL DEFAULT now()"], ["cart_id"]),
    "orders": (["id UUID PRIMARY KEY", "customer_id BIGINT NOT NULL REFERENCES users(id)",
                "customer_email TEXT NOT NULL", "total_cents INT NOT NULL", "status TEXT NOT NULL",
                "promo_code TEXT", "created_at TIMESTAMPTZ NOT NULL DEFAULT now()"], ["customer_id"]),
    "payments": (["id BIGSERIAL PRIMARY KEY", "order_id UUID NOT NULL REFERENCES orders(id)",
                  "amount_cents INT NOT NULL", "provider_ref TEXT NOT NULL",
                  "created_at TIMESTAMPTZ NOT NULL DEFAULT now()"], ["order_id"]),
    "promotions": (["code TEXT PRIMARY KEY", "discount_pct INT NOT NULL", "active BOOLEAN NOT NULL"], []),
}  # fmt: skip


def migration_init() -> str:
    lines = ["-- 0001_init.sql: initial schema", "BEGIN;", ""]
    for table, (columns, indexes) in SCHEMA.items():
        lines.append(f"CREATE TABLE {table} (")
        lines.extend(f"    {col}{',' if i < len(columns) - 1 else ''}" for i, col in enumerate(columns))
        lines.append(");")
        lines.extend(f"CREATE INDEX idx_{table}_{col} ON {table} ({col});" for col in indexes)
        lines.append("")
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


def _go_name(op: str) -> str:
    return op[0].upper() + op[1:]


def go_handler(service: str, operation: str, statement: str | None) -> str:
    """A healthy Go handler: the connection is released on every path."""
    body = ""
    if statement:
        body = f"""	conn, err := h.DB.Conn(ctx)
	if err != nil {{
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
		return
	}}
	defer conn.Close()

	rows, err := conn.QueryContext(ctx, `{statement}`, r.URL.Query().Get("id"))
	if err != nil {{
		h.Log.Error("{operation} query failed", "err", err)
		http.Error(w, "query failed", http.StatusInternalServerError)
		return
	}}
	defer rows.Close()
	result := []map[string]any{{}}
	for rows.Next() {{
		result = append(result, map[string]any{{}})
	}}
	writeJSON(w, http.StatusOK, result)
"""
    else:
        body = """	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
"""
    return f"""package handlers

import (
	"database/sql"
	"log/slog"
	"net/http"
)

// {_go_name(operation)}Handler serves {service} {operation}.
type {_go_name(operation)}Handler struct {{
	DB  *sql.DB
	Log *slog.Logger
}}

func (h *{_go_name(operation)}Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {{
	ctx := r.Context()
{body}}}
"""


def _placeholders(statement: str) -> str:
    """PostgreSQL's $n parameters in psycopg2's %s style."""
    for number in (1, 2, 3):
        statement = statement.replace(f"${number}", "%s")
    return statement


def python_handler(service: str, operations: dict[str, str | None]) -> str:
    out = [
        f'"""HTTP handlers of the {service} service."""',
        "",
        "import logging",
        "",
        "from .db import pool",
        "",
        "log = logging.getLogger(__name__)",
        "",
    ]
    for op, statement in operations.items():
        fn = "".join("_" + c.lower() if c.isupper() else c for c in op).lstrip("_")
        out.append("")
        out.append(f"def {fn}(request):")
        if statement:
            out.extend(
                [
                    "    conn = pool.getconn()",
                    "    try:",
                    "        with conn.cursor() as cur:",
                    f'            cur.execute("{_placeholders(statement)}", (request.args.get("id"),))',
                    "            rows = cur.fetchall()",
                    "    finally:",
                    "        pool.putconn(conn)",
                    f'    log.info("{op} done", extra={{"rows": len(rows)}})',
                    '    return {"items": rows}',
                ]
            )
        else:
            out.append('    return {"status": "ok"}')
        out.append("")
    return "\n".join(out)


PY_DB = '''"""Connection pool shared by the handlers."""

import os

from psycopg2.pool import ThreadedConnectionPool

pool = ThreadedConnectionPool(
    minconn=2,
    maxconn=int(os.environ.get("DB_POOL_SIZE", "{pool}")),
    dsn=os.environ["DATABASE_URL"],
)
'''

GO_MAIN = """package main

import (
	"database/sql"
	"log/slog"
	"net/http"
	"os"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

func main() {{
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	db, err := sql.Open("pgx", os.Getenv("DATABASE_URL"))
	if err != nil {{
		log.Error("open database", "err", err)
		os.Exit(1)
	}}
	db.SetMaxOpenConns({pool})
	db.SetConnMaxIdleTime(5 * time.Minute)
	mux := http.NewServeMux()
	registerRoutes(mux, db, log)
	srv := &http.Server{{Addr: ":8080", Handler: mux, ReadTimeout: 10 * time.Second}}
	log.Info("{service} listening", "addr", srv.Addr)
	if err := srv.ListenAndServe(); err != nil {{
		log.Error("server stopped", "err", err)
	}}
}}
"""


def deploy_config(service: str, replicas: int, pool: int, timeouts: dict[str, int], flags: dict[str, bool]) -> str:
    lines = [
        f"# Deployment of {service}",
        f"service: {service}",
        f"replicas: {replicas}",
        "resources:",
        "  cpu: 1000m",
        "  memory: 512Mi",
        "database:",
        f"  pool_size: {pool}",
        "  acquire_timeout_ms: 5000",
        "timeouts_ms:",
    ]
    lines.extend(f"  {dep}: {ms}" for dep, ms in sorted(timeouts.items()))
    lines.append("feature_flags:")
    lines.extend(f"  {flag}: {'true' if on else 'false'}" for flag, on in sorted(flags.items()))
    return "\n".join(lines) + "\n"


def service_operations(system: System) -> dict[str, dict[str, str | None]]:
    """Service → operation → the SQL it runs directly (None if it runs none)."""
    ops: dict[str, dict[str, str | None]] = {}

    def walk(node: Node) -> None:
        stmt = next((c.node.statement for c in node.calls if c.node.service == "database"), None)
        ops.setdefault(node.service, {})
        if node.operation not in ops[node.service] or stmt:
            ops[node.service][node.operation] = stmt
        for call in node.calls:
            walk(call.node)

    for endpoint in system.endpoints:
        walk(endpoint.root)
    return ops


@dataclass
class Tree:
    """The repository's files at one point of its history."""

    files: dict[str, str]

    def copy(self) -> Tree:
        return Tree(dict(self.files))


def handler_path(system: System, service: str, operation: str) -> str:
    lang = system.services[service].language
    if lang == "go":
        return f"services/{service}/internal/handlers/{_snake(operation)}.go"
    return f"services/{service}/app/handlers.py"


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def base_tree(system: System) -> Tree:
    files: dict[str, str] = {
        "README.md": "# shop\n\nMonorepo of the shop's services. "
        "Each service deploys on its own from `services/<name>`.\n"
        "Schema changes go in `db/migrations/` (applied in order by the migrate job).\n",
        "db/migrations/0001_init.sql": migration_init(),
    }
    ops = service_operations(system)
    for name, svc in system.services.items():
        if svc.language is None:
            continue
        timeouts = {dep: 2000 for dep in system.topology().get(name, [])}
        files[f"deploy/{name}.yaml"] = deploy_config(name, svc.replicas, svc.pool_size, timeouts, {})
        service_ops = ops.get(name, {"Fetch": None})
        if svc.language == "go":
            files[f"services/{name}/go.mod"] = (
                f"module shop.example/{name}\n\ngo 1.22\n\nrequire github.com/jackc/pgx/v5 v5.5.4\n"
            )
            files[f"services/{name}/main.go"] = GO_MAIN.format(pool=svc.pool_size or 4, service=name)
            routes = ["package main", "", "import (", '\t"database/sql"', '\t"log/slog"', '\t"net/http"', "",
                      f'\t"shop.example/{name}/internal/handlers"', ")", "",
                      "func registerRoutes(mux *http.ServeMux, db *sql.DB, log *slog.Logger) {"]  # fmt: skip
            for op, stmt in service_ops.items():
                files[f"services/{name}/internal/handlers/{_snake(op)}.go"] = go_handler(name, op, stmt)
                routes.append(f'\tmux.Handle("/{_snake(op)}", &handlers.{_go_name(op)}Handler{{DB: db, Log: log}})')
            routes.append("}")
            files[f"services/{name}/routes.go"] = "\n".join(routes) + "\n"
            files[f"services/{name}/internal/handlers/json.go"] = (
                'package handlers\n\nimport (\n\t"encoding/json"\n\t"net/http"\n)\n\n'
                "func writeJSON(w http.ResponseWriter, status int, v any) {\n"
                '\tw.Header().Set("Content-Type", "application/json")\n\tw.WriteHeader(status)\n'
                "\t_ = json.NewEncoder(w).Encode(v)\n}\n"
            )
        else:
            files[f"services/{name}/requirements.txt"] = "flask==3.0.2\npsycopg2-binary==2.9.9\n"
            files[f"services/{name}/app/__init__.py"] = f'"""The {name} service."""\n'
            files[f"services/{name}/app/db.py"] = PY_DB.replace("{pool}", str(svc.pool_size or 4))
            files[f"services/{name}/app/handlers.py"] = python_handler(name, service_ops)
    return Tree(files)


# Ordinary commits: small, plausible changes that touch one service each.
Edit = Callable[[Tree, System, np.random.Generator], tuple[str, str, dict[str, str | None]]]


def _edit_log_field(tree: Tree, system: System, rng: np.random.Generator) -> tuple[str, str, dict[str, str | None]]:
    candidates = sorted(p for p in tree.files if p.endswith(".go") and "/handlers/" in p and "json.go" not in p)
    path = candidates[int(rng.integers(len(candidates)))]
    service = path.split("/")[1]
    text = tree.files[path].replace(
        "ctx := r.Context()\n", 'ctx := r.Context()\n\th.Log.Debug("request", "path", r.URL.Path)\n', 1
    )
    if text == tree.files[path]:
        text += "\n// Request logging is done by the middleware.\n"
    return service, f"{service}: log request path at debug level", {path: text}


def _edit_bump_dep(tree: Tree, system: System, rng: np.random.Generator) -> tuple[str, str, dict[str, str | None]]:
    mods = sorted(p for p in tree.files if p.endswith("go.mod") or p.endswith("requirements.txt"))
    path = mods[int(rng.integers(len(mods)))]
    service = path.split("/")[1]
    text = tree.files[path]
    if path.endswith("go.mod"):
        patch = int(text.rsplit(".", 1)[-1].strip()) + 1
        new = text.rsplit(".", 1)[0] + f".{patch}\n"
        return service, f"{service}: bump pgx to v5.5.{patch}", {path: new}
    new = text + ("structlog==24.1.0\n" if "structlog" not in text else "")
    new = new if new != text else text.replace("flask==3.0.2", "flask==3.0.3")
    return service, f"{service}: update dependencies", {path: new}


def _edit_config(tree: Tree, system: System, rng: np.random.Generator) -> tuple[str, str, dict[str, str | None]]:
    configs = sorted(p for p in tree.files if p.startswith("deploy/"))
    path = configs[int(rng.integers(len(configs)))]
    service = path.split("/")[1].removesuffix(".yaml")
    text = tree.files[path]
    new = (
        text.replace("memory: 512Mi", "memory: 768Mi") if "512Mi" in text else text.replace("cpu: 1000m", "cpu: 1500m")
    )
    if new == text:
        new = text + "# reviewed resource limits\n"
    return service, f"{service}: adjust resource limits", {path: new}


def _edit_docs(tree: Tree, system: System, rng: np.random.Generator) -> tuple[str, str, dict[str, str | None]]:
    text = (
        tree.files["README.md"] + f"\n- runbook note {int(rng.integers(100, 999))}: check dashboards before paging.\n"
    )
    return "docs", "docs: runbook notes", {"README.md": text}


def _edit_test(tree: Tree, system: System, rng: np.random.Generator) -> tuple[str, str, dict[str, str | None]]:
    services = sorted({p.split("/")[1] for p in tree.files if p.startswith("services/")})
    service = services[int(rng.integers(len(services)))]
    lang = system.services[service].language
    if lang == "go":
        path = f"services/{service}/internal/handlers/handlers_test.go"
        old = tree.files.get(path, 'package handlers\n\nimport "testing"\n')
        n = old.count("func Test") + 1
        text = old + f"\nfunc TestHandler{n}(t *testing.T) {{\n\tt.Parallel()\n}}\n"
    else:
        path = f"services/{service}/tests/test_handlers.py"
        old = tree.files.get(path, '"""Handler tests."""\n')
        n = old.count("def test_") + 1
        text = old + f"\n\ndef test_handler_{n}():\n    assert True\n"
    return service, f"{service}: add handler test", {path: text}


def _edit_migration(tree: Tree, system: System, rng: np.random.Generator) -> tuple[str, str, dict[str, str | None]]:
    existing = sorted(p for p in tree.files if p.startswith("db/migrations/"))
    number = len(existing) + 1
    choices = [
        ("orders", "created_at"), ("payments", "created_at"), ("cart_items", "added_at"), ("sessions", "expires_at"),
    ]  # fmt: skip
    table, col = choices[int(rng.integers(len(choices)))]
    if any(f"idx_{table}_{col} " in tree.files[p] for p in existing):
        body = f"-- {number:04d}: comment only\nCOMMENT ON TABLE {table} IS '{table} of the shop';\n"
        return "database", f"db: document {table}", {f"db/migrations/{number:04d}_comment_{table}.sql": body}
    body = (
        f"-- {number:04d}: index for range scans by time\n"
        f"CREATE INDEX CONCURRENTLY idx_{table}_{col} ON {table} ({col});\n"
    )
    return "database", f"db: index {table}.{col}", {f"db/migrations/{number:04d}_index_{table}_{col}.sql": body}


ORDINARY_EDITS: list[Edit] = [_edit_log_field, _edit_bump_dep, _edit_config, _edit_docs, _edit_test, _edit_migration]


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing `needle`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise ValueError(f"{needle!r} not found")


__all__ = ["AUTHORS", "ORDINARY_EDITS", "SCHEMA", "SQL", "Tree", "base_tree", "handler_path", "line_of"]
