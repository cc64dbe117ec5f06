"""Resources acquired without release on some path, per language and node shape, and the correct
code next to each (released on every path) that must not fire."""

from __future__ import annotations

import pytest

from warroom.analysis.code_patterns import analyse_source


def leaks(language: str, source: str) -> set[tuple[str | None, int, str]]:
    return {(h.function, h.line, h.subkind) for h in analyse_source(source.encode(), language, None, {"resource_leak"})}


CASES = [
    (
        "python async: await pool.getconn() never given back",
        "python",
        """async def load(pool, oid):
    conn = await pool.getconn()
    row = await conn.fetchrow("SELECT 1", oid)
    return row

async def safe(pool, oid):
    async with pool.acquire() as conn:
        return await conn.fetchrow("SELECT 1", oid)

async def released(pool, oid):
    conn = await pool.acquire()
    try:
        return await conn.fetchrow("SELECT 1", oid)
    finally:
        await pool.release(conn)
""",
        {("load", 2, "never_released")},
    ),
    (
        "python sync: early return skips putconn; the exception path of a release outside finally",
        "python",
        """def discount(pool, code):
    conn = pool.getconn()
    with conn.cursor() as cur:
        cur.execute("SELECT 1", (code,))
        row = cur.fetchone()
    if row is None:
        return 0
    pool.putconn(conn)
    return row[0]

def lookup(pool, code):
    conn = pool.getconn()
    with conn.cursor() as cur:
        cur.execute("SELECT 1", (code,))
        row = cur.fetchone()
    pool.putconn(conn)
    return row

def fine(pool, code):
    conn = pool.getconn()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1", (code,))
            return cur.fetchone()
    finally:
        pool.putconn(conn)

def opened(path):
    with open(path) as fh:
        return fh.read()
""",
        {("discount", 2, "early_exit"), ("lookup", 12, "exception_path")},
    ),
    (
        "go: Close only on one branch; defer in a closure is a release",
        "go",
        """package h

func (h *H) promo(ctx context.Context, code string) (int, error) {
	conn, err := h.DB.Conn(ctx)
	if err != nil {
		return 0, err
	}
	err = conn.QueryRowContext(ctx, "SELECT 1").Scan(&d)
	if err != nil {
		return 0, err
	}
	conn.Close()
	return d, nil
}

func (h *H) deferred(ctx context.Context) error {
	conn, err := h.DB.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	return use(conn)
}

func (h *H) locked() {
	h.mu.Lock()
	if h.n > 3 {
		return
	}
	h.mu.Unlock()
}

func (h *H) lockedFine() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
}
""",
        {("promo", 4, "early_exit"), ("locked", 26, "early_exit")},
    ),
    (
        "java: close outside finally; try-with-resources and finally are fine",
        "java",
        """class Repo {
  int count(DataSource ds) throws SQLException {
    Connection c = ds.getConnection();
    c.prepareStatement("SELECT 1").execute();
    c.close();
    return 1;
  }
  int managed(DataSource ds) throws SQLException {
    try (Connection c = ds.getConnection()) { return 1; }
  }
  int finallyClosed(DataSource ds) throws SQLException {
    Connection c = ds.getConnection();
    try { return 1; } finally { c.close(); }
  }
}""",
        {("count", 3, "exception_path")},
    ),
    (
        "javascript: release only on the happy path; .finally() and try/finally are fine",
        "javascript",
        """async function load(pool, id) {
  const client = await pool.connect();
  const res = await client.query('SELECT 1', [id]);
  if (!res.rows.length) { return null; }
  client.release();
  return res.rows[0];
}
async function safe(pool) {
  const client = await pool.connect();
  try { return await client.query('SELECT 1'); } finally { client.release(); }
}
function promised(pool) {
  return pool.connect().then((client) => client.query('SELECT 1').finally(() => client.release()));
}
async function chained(pool) {
  const client = await pool.connect();
  return client.query('SELECT 1').finally(() => client.release());
}
""",
        {("load", 2, "early_exit")},
    ),
    (
        "typescript: a typed handler that never releases",
        "typescript",
        """export async function getOrder(pool: Pool, id: string): Promise<Order> {
  const client: PoolClient = await pool.connect();
  const res = await client.query<Order>('SELECT * FROM orders WHERE id = $1', [id]);
  return res.rows[0];
}
""",
        {("getOrder", 2, "never_released")},
    ),
]


@pytest.mark.parametrize(("title", "language", "source", "expected"), CASES, ids=[c[0] for c in CASES])
def test_leaks_and_their_correct_neighbours(title: str, language: str, source: str, expected: set[object]) -> None:
    assert leaks(language, source) == expected


def test_a_resource_handed_to_the_caller_or_an_owner_is_not_a_leak() -> None:
    source = """def open_conn(pool):
    conn = pool.getconn()
    return conn

class Repo:
    def start(self, pool):
        conn = pool.getconn()
        self.conn = conn
"""
    assert leaks("python", source) == set()
