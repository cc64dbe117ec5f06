"""Code explorer on a real git repository built with the git CLI: the diff between the last good
and the bad commit, leaks / unindexed queries / unbounded retries located to file, line and commit,
and the other places in the repository with the same pattern."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from warroom.analysis.code import analyse_change, changed_lines, resolve
from warroom.analysis.code_patterns import analyse_source, parse_schema, unindexed_columns

MIGRATION = """-- orders schema
CREATE TABLE orders (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    status TEXT NOT NULL,
    coupon_code TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX orders_user_id_idx ON orders (user_id, created_at);
"""

GOOD_GO = """package checkout

import (
	"context"
	"database/sql"
)

type Handler struct{ db *sql.DB }

func (h *Handler) ListOrders(ctx context.Context, userID int64) error {
	conn, err := h.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, "SELECT id FROM orders WHERE user_id = $1", userID)
	if err != nil {
		return err
	}
	defer rows.Close()
	return nil
}
"""

LEAKY_HANDLER = """
func (h *Handler) ApplyCoupon(ctx context.Context, code string) error {
	conn, err := h.db.Conn(ctx)
	if err != nil {
		return err
	}
	rows, err := conn.QueryContext(ctx, `SELECT id, status FROM orders
		WHERE coupon_code = $1`, code)
	if err != nil {
		return err
	}
	defer rows.Close()
	return nil
}
"""

OTHER_SERVICE_LEAK = """package inventory

import (
	"context"
	"database/sql"
)

func Reserve(ctx context.Context, db *sql.DB, sku string) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "UPDATE stock SET n = n - 1 WHERE sku = $1", sku)
	return err
}
"""

PY_RETRY = """import time


def charge(client, payment):
    while True:
        try:
            return client.charge(payment)
        except ConnectionError:
            time.sleep(0.5)


def charge_bounded(client, payment, max_attempts=5):
    for attempt in range(max_attempts):
        try:
            return client.charge(payment)
        except ConnectionError:
            time.sleep(0.5)
    raise RuntimeError("payment provider unavailable")
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def _commit(repo: Path, files: dict[str, str], message: str, author: str) -> str:
    for name, text in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        _git(repo, "add", name)
    name, email = author.split("<")
    _git(
        repo,
        "-c",
        f"user.name={name.strip()}",
        "-c",
        f"user.email={email.rstrip('>')}",
        "commit",
        "-q",
        "-m",
        message,
    )
    return _git(repo, "rev-parse", "HEAD")


def build_shop_repo(root: Path) -> dict[str, str]:
    """A small shop monorepo: the checkout handler loses `defer conn.Close()` in one commit of a
    two-commit deploy; inventory already has the same leak."""
    repo = root / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    shas = {}
    shas["base"] = _commit(
        repo,
        {
            "migrations/001_orders.sql": MIGRATION,
            "services/checkout/handler.go": GOOD_GO,
            "services/inventory/reserve.go": OTHER_SERVICE_LEAK,
            "services/payment/client.py": PY_RETRY,
        },
        "Initial services",
        "Ana Ops <ana@example.com>",
    )
    shas["good"] = _commit(repo, {"README.md": "shop\n"}, "Docs", "Ana Ops <ana@example.com>")
    shas["noise"] = _commit(repo, {"services/checkout/version.txt": "2\n"}, "Bump version", "Bo Dev <bo@example.com>")
    shas["bad"] = _commit(
        repo,
        {"services/checkout/handler.go": GOOD_GO + LEAKY_HANDLER},
        "Add coupon endpoint",
        "Cy Dev <cy@example.com>",
    )
    shas["repo"] = str(repo)
    return shas


@pytest.fixture()
def shop(tmp_path: Path) -> dict[str, str]:
    return build_shop_repo(tmp_path)


def test_leak_found_in_diff_with_file_line_commit(shop: dict[str, str]) -> None:
    repo = Path(shop["repo"])
    result = analyse_change(repo, shop["bad"][:10], shop["good"], focus="checkout")
    assert result.good == shop["good"] and result.bad == shop["bad"]
    assert [c.commit for c in result.commits] == [shop["bad"], shop["noise"]]
    leak = result.primary
    assert leak is not None and leak.kind == "resource_leak"
    assert leak.file == "services/checkout/handler.go"
    source = (repo / leak.file).read_text().splitlines()
    assert "h.db.Conn(ctx)" in source[leak.line - 1]
    assert leak.function == "ApplyCoupon"
    assert leak.commit == shop["bad"] and leak.author == "Cy Dev"
    assert "the change in commit" in leak.statement()
    # The untouched, correct ListOrders is not reported.
    assert all(f.function != "ListOrders" for f in result.findings)
    # The same coupon query filters on a column no migration indexes.
    unindexed = [f for f in result.findings if f.kind == "unindexed_query"]
    assert unindexed and unindexed[0].data["tables"][0]["columns"] == ["coupon_code"]  # type: ignore[index]
    # The inventory service has the same leak: listed as another place with the pattern.
    elsewhere = {(f.file, f.kind) for f in result.same_pattern}
    assert ("services/inventory/reserve.go", "resource_leak") in elsewhere


def test_diff_against_parent_when_no_good_version(shop: dict[str, str]) -> None:
    repo = Path(shop["repo"])
    result = analyse_change(repo, shop["bad"], None, search_elsewhere=False)
    assert result.good == shop["noise"]
    assert [f.path for f in result.files] == ["services/checkout/handler.go"]
    ranges = changed_lines(repo, shop["noise"], shop["bad"], ["services/checkout/handler.go"])
    assert ranges["services/checkout/handler.go"][0][0] == len(GOOD_GO.splitlines()) + 1
    assert not result.same_pattern


def test_clean_change_has_no_findings(shop: dict[str, str]) -> None:
    repo = Path(shop["repo"])
    result = analyse_change(repo, shop["noise"], shop["good"])
    assert result.findings == []
    assert resolve(repo, "does-not-exist") is None


def test_python_unbounded_retry_and_bounded_one() -> None:
    hits = analyse_source(PY_RETRY.encode(), "python", None, {"unbounded_retry"})
    assert [(h.function, h.line) for h in hits] == [("charge", 5)]


@pytest.mark.parametrize(
    ("language", "source", "expected"),
    [
        (
            "java",
            """class Repo {
  int count(DataSource ds) throws SQLException {
    Connection c = ds.getConnection();
    PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM orders");
    if (ps == null) { return 0; }
    c.close();
    return 1;
  }
  int safe(DataSource ds) throws SQLException {
    try (Connection c = ds.getConnection()) { return 1; }
  }
}""",
            {("count", 3)},  # the statement dies with the connection: one finding
        ),
        (
            "javascript",
            """async function load(pool, id) {
  const client = await pool.connect();
  const res = await client.query('SELECT * FROM orders WHERE id = $1', [id]);
  return res.rows;
}
async function safe(pool) {
  const client = await pool.connect();
  try { return await client.query('SELECT 1'); } finally { client.release(); }
}""",
            {("load", 2)},
        ),
        (
            "python",
            """def load(pool, oid):
    conn = pool.getconn()
    cur = conn.cursor()
    cur.execute("SELECT * FROM orders WHERE id = %s", (oid,))
    return cur.fetchone()

def safe(pool):
    conn = pool.getconn()
    try:
        return 1
    finally:
        pool.putconn(conn)
""",
            {("load", 2)},  # the cursor dies with the connection: one finding
        ),
    ],
)
def test_leaks_in_other_languages(language: str, source: str, expected: set[tuple[str, int]]) -> None:
    hits = analyse_source(source.encode(), language, None, {"resource_leak"})
    assert {(h.function, h.line) for h in hits} == expected


def test_schema_index_coverage() -> None:
    schema = parse_schema(
        [
            ("m/001.sql", MIGRATION),
            ("m/002.sql", "CREATE INDEX orders_coupon_idx ON orders (coupon_code);\n"),
            ("m/003.sql", "DROP INDEX orders_coupon_idx;\nALTER TABLE orders ADD COLUMN region TEXT;"),
        ]
    )
    assert "region" in schema.columns["orders"]
    assert unindexed_columns("SELECT * FROM orders o WHERE o.user_id = $1 AND status = 'x'", schema) == []
    problems = unindexed_columns("SELECT * FROM orders WHERE coupon_code = $1", schema)
    assert problems and problems[0]["columns"] == ["coupon_code"]
    # Unknown tables are not judged.
    assert unindexed_columns("SELECT * FROM carts WHERE token = $1", schema) == []


def test_code_explorer_agent_names_change_file_line_and_other_places(shop: dict[str, str]) -> None:
    import pickle

    from support_specialists import bundle, changes, context
    from warroom.agents.code_explorer import CodeExplorer
    from warroom.agents.database import DatabaseIncidentSpecialist

    b = bundle("pool_leak", repo=Path(shop["repo"]), change_frame=changes(shop["good"], shop["bad"]))
    db = DatabaseIncidentSpecialist().run(context(b))
    report = CodeExplorer().run(context(b, **db.outputs))
    change = report.outputs["suspect_change"]
    assert change["id"] == "chg-2"
    assert change["code_file"] == "services/checkout/handler.go"
    assert change["code_commit"] == shop["bad"]
    first = report.outputs["code_findings"][0]
    assert first["offending"] and first["kind"] == "resource_leak" and first["function"] == "ApplyCoupon"
    assert "the change in commit" in first["statement"]
    roles = {(f["file"], f["role"]) for f in report.outputs["code_findings"]}
    assert ("services/inventory/reserve.go", "same_pattern") in roles
    assert report.candidates and report.candidates[0].change_id == "chg-2"
    pickle.dumps(CodeExplorer())
    # Without any earlier context the explorer correlates the changes itself.
    alone = CodeExplorer().run(context(b, suspect_service="checkout"))
    assert alone.outputs["suspect_change"]["id"] == "chg-2"
    assert alone.outputs["code_findings"][0]["line"] == first["line"]


def test_code_explorer_without_repository_says_so() -> None:
    from support_specialists import bundle, context
    from warroom.agents.code_explorer import CodeExplorer

    report = CodeExplorer().run(context(bundle("pool_leak"), suspect_service="checkout"))
    assert report.outputs["code_findings"] == []
    assert any("no code repository" in line for line in report.limitations)


def test_release_only_on_some_branches_is_a_leak_on_the_others() -> None:
    source = b"""package h

func (h *H) promo(ctx context.Context, code string) (int, error) {
	conn, err := h.DB.Conn(ctx)
	if err != nil {
		return 0, err
	}
	err = conn.QueryRowContext(ctx, "SELECT 1").Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		conn.Close()
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	conn.Close()
	return d, nil
}

func (h *H) fine(ctx context.Context) error {
	conn, err := h.DB.Conn(ctx)
	if err != nil {
		return err
	}
	if x {
		conn.Close()
		return nil
	}
	conn.Close()
	return nil
}
"""
    hits = analyse_source(source, "go", None, {"resource_leak"})
    assert [(h.function, h.line, h.data["exit_line"]) for h in hits] == [("promo", 4, 14)]
