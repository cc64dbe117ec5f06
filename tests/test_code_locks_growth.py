"""Locks held across slow calls and process-wide growth, per language, with the correct code next
to each: a transaction that commits before the network call, a cache with eviction. A lock finding
points at where the lock is taken (the slow call is its end line); a parameter's declared type
says it is a client (`catalog: Downstream`)."""

from __future__ import annotations

import pytest

from warroom.analysis.code_patterns import analyse_source


def found(language: str, source: str, kind: str) -> set[tuple[str | None, int, str]]:
    return {(h.function, h.line, h.subkind) for h in analyse_source(source.encode(), language, None, {kind})}


LOCKS = [
    (
        "python",
        """def pay(conn, order_id):
    with conn.transaction():
        conn.execute("SELECT * FROM orders WHERE id = %s FOR UPDATE", (order_id,))
        requests.post("https://psp.example/charge", json={"id": order_id})

def pay_fine(conn, order_id):
    with conn.transaction():
        conn.execute("UPDATE orders SET status = 'paying' WHERE id = %s", (order_id,))
    requests.post("https://psp.example/charge", json={"id": order_id})

async def reserve(pool, sku):
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("UPDATE stock SET n = n - 1 WHERE sku = $1", sku)
            await asyncio.sleep(2)

async def reconcile(db, catalog: Downstream):
    async with db.connection() as conn, conn.transaction():
        rows = await db.query(conn, "SELECT id FROM stock FOR UPDATE")
        for (product_id,) in rows:
            await catalog.request("GET", f"/products/{product_id}")
""",
        {
            ("pay", 2, "transaction_across_slow_call"),
            ("reserve", 13, "transaction_across_slow_call"),
            ("reconcile", 18, "transaction_across_slow_call"),
        },
    ),
    (
        "go",
        """package p

func (s *S) Pay(ctx context.Context, id int64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, "SELECT * FROM orders WHERE id = $1 FOR UPDATE", id)
	resp, err := s.httpClient.Do(req)
	_ = resp
	return tx.Commit()
}

func (s *S) Fine(ctx context.Context, id int64) error {
	tx, _ := s.db.BeginTx(ctx, nil)
	_, _ = tx.ExecContext(ctx, "UPDATE orders SET paid = true WHERE id = $1", id)
	if err := tx.Commit(); err != nil {
		return err
	}
	_, err := s.httpClient.Do(req)
	return err
}

func (s *S) Cached(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	return s.m[key]
}
""",
        {("Pay", 4, "transaction_across_slow_call"), ("Cached", 26, "mutex_across_slow_call")},
    ),
    (
        "java",
        """class Payments {
  @Transactional
  public void pay(long id) {
    repo.lockById(id);
    restTemplate.postForObject(url, body, String.class);
  }
  public void fine(long id) {
    repo.save(id);
    restTemplate.postForObject(url, body, String.class);
  }
  public synchronized void refresh() throws Exception {
    Thread.sleep(500);
  }
}""",
        {("pay", 2, "transaction_across_slow_call"), ("refresh", 11, "mutex_across_slow_call")},
    ),
    (
        "javascript",
        """async function pay(client, id) {
  await client.query('BEGIN');
  await client.query('SELECT * FROM orders WHERE id = $1 FOR UPDATE', [id]);
  await fetch('https://psp.example/charge');
  await client.query('COMMIT');
}
async function fine(client, id) {
  await client.query('BEGIN');
  await client.query('UPDATE orders SET paid = true WHERE id = $1', [id]);
  await client.query('COMMIT');
  await fetch('https://psp.example/charge');
}
async function viaCallback(sequelize) {
  await sequelize.transaction(async (t) => {
    await axios.post('https://psp.example/charge');
  });
}
""",
        {("pay", 2, "transaction_across_slow_call"), ("viaCallback", 14, "transaction_across_slow_call")},
    ),
]


@pytest.mark.parametrize(("language", "source", "expected"), LOCKS, ids=[c[0] for c in LOCKS])
def test_lock_held_across_a_slow_call(language: str, source: str, expected: set[object]) -> None:
    assert found(language, source, "lock_held") == expected


GROWTH = [
    ("python", "_CACHE = {}\n\n\ndef handler(request):\n    _CACHE[request.path] = request.body\n    return 1\n", 5),
    (
        "go",
        "package h\n\nvar cache = map[string][]byte{}\n\nfunc remember(k string, v []byte) {\n\tcache[k] = v\n}\n",
        6,
    ),
    (
        "java",
        "class C {\n  private static final Map<String, byte[]> SEEN = new ConcurrentHashMap<>();\n"
        "  void put(String k, byte[] v) {\n    SEEN.put(k, v);\n  }\n}\n",
        4,
    ),
    (
        "javascript",
        "const seen = new Map();\napp.get('/x', (req, res) => {\n  seen.set(req.url, Date.now());\n});\n",
        3,
    ),
    (
        "python",
        "class Store:\n    _by_id = {}\n\n    def add(self, item):\n        self._by_id[item.id] = item\n",
        5,
    ),
]


@pytest.mark.parametrize(("language", "source", "line"), GROWTH, ids=[f"{g[0]}-{i}" for i, g in enumerate(GROWTH)])
def test_process_wide_container_that_only_grows(language: str, source: str, line: int) -> None:
    hits = analyse_source(source.encode(), language, None, {"unbounded_growth"})
    assert [(h.line, h.subkind) for h in hits] == [(line, "process_wide_container")]


@pytest.mark.parametrize(
    ("language", "source"),
    [
        (
            "python",
            "_CACHE = {}\n\n\ndef handler(request):\n    if len(_CACHE) > 100:\n        _CACHE.clear()\n"
            "    _CACHE[request.path] = request.body\n",
        ),
        ("python", "ROUTES = {}\nROUTES['a'] = 1\n\ndef get(k):\n    return ROUTES[k]\n"),
        (
            "go",
            "package h\n\nvar cache = map[string]int{}\n\nfunc f(k string) {\n\tcache[k]++\n\tdelete(cache, k)\n}\n",
        ),
        (
            "javascript",
            "const seen = new Map();\nfunction f(k) {\n  seen.set(k, 1);\n  if (seen.size > 100) seen.clear();\n}\n",
        ),
        ("python", "from functools import lru_cache\n\n@lru_cache(maxsize=1024)\ndef price(sku):\n    return 1\n"),
    ],
)
def test_bounded_containers_are_not_growth(language: str, source: str) -> None:
    assert analyse_source(source.encode(), language, None, {"unbounded_growth"}) == []


def test_unbounded_memoization_and_listener_per_request() -> None:
    memo = "import functools\n\n@functools.cache\ndef render(path, user):\n    return path\n"
    assert found("python", memo, "unbounded_growth") == {("render", 4, "unbounded_memoization")}
    listener = "app.get('/stream', (req, res) => {\n  bus.on('tick', (t) => res.write(t));\n});\n"
    assert found("javascript", listener, "unbounded_growth") == {("GET /stream handler", 2, "listener_per_request")}


def test_a_listener_removed_when_the_request_ends_is_not_growth() -> None:
    source = (
        "app.get('/stream', (req, res) => {\n  const f = (t) => res.write(t);\n  bus.on('tick', f);\n"
        "  req.on('close', () => bus.off('tick', f));\n});\n"
    )
    assert found("javascript", source, "unbounded_growth") == set()
