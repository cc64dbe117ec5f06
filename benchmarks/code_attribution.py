"""Code evidence on a large history: a repository of ~2,000 commits (40 services in Go, Python,
Java and JavaScript, each commit a small edit of one file) and a 5-commit deploy range — a docs
commit, a connection leak, a config change, a quadratic loop and a refactor. Times
`analyse_change(bad, good)` (the diff, parsing the changed files, every detector, per-commit
attribution) with and without the repository-wide "same pattern elsewhere" search, and checks that
every finding names the commit that carries it.

    .venv/bin/python benchmarks/code_attribution.py [--commits 2000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from warroom.analysis.code import analyse_change
from warroom.scenarios.repo import Commit, write_repository

LANGS = ("go", "py", "java", "js")
GO = """package svc{n}

func (h *Handler) Get{k}(ctx context.Context, id int64) error {{
	conn, err := h.db.Conn(ctx)
	if err != nil {{
		return err
	}}
	defer conn.Close()
	h.log.Info("get {k}", "id", id, "rev", {rev})
	return use(conn)
}}
"""
PY = """from .db import pool


def get_{k}(request):
    conn = pool.getconn()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM orders WHERE customer_id = %s", (request.args["id"],))
            return {{"rows": cur.fetchall(), "rev": {rev}}}
    finally:
        pool.putconn(conn)
"""
JAVA = """class Svc{n}Repo{k} {{
  int count(DataSource ds) throws SQLException {{
    try (Connection c = ds.getConnection()) {{
      return {rev};
    }}
  }}
}}
"""
JS = """async function get{k}(pool, id) {{
  const client = await pool.connect();
  try {{
    return (await client.query('SELECT id FROM orders WHERE customer_id = $1', [id])).rows.concat([{rev}]);
  }} finally {{
    client.release();
  }}
}}
module.exports = {{ get{k} }};
"""
TEMPLATES = {"go": GO, "py": PY, "java": JAVA, "js": JS}
MIGRATION = (
    "CREATE TABLE orders (id BIGSERIAL PRIMARY KEY, customer_id BIGINT NOT NULL, customer_email TEXT);\n"
    "CREATE INDEX orders_customer_idx ON orders (customer_id);\n"
)


def _path(service: int, k: int) -> str:
    lang = LANGS[service % len(LANGS)]
    return f"services/svc{service}/handler_{k}.{lang}"


def _file(service: int, k: int, rev: int) -> str:
    return TEMPLATES[LANGS[service % len(LANGS)]].format(n=service, k=k, rev=rev)


def build(repo: Path, commits: int) -> dict[str, str]:
    history = [
        Commit(
            "initial",
            "Ana",
            "ana@example.com",
            1_700_000_000,
            {
                "db/001.sql": MIGRATION,
                "deploy/svc0.yaml": "timeouts_ms:\n  payment: 2000\n",
                "README.md": "# shop\n",
                **{_path(s, k): _file(s, k, 0) for s in range(40) for k in range(5)},
            },
        )
    ]
    for i in range(1, commits - 5):
        s, k = i % 40, (i // 40) % 5
        history.append(
            Commit(f"edit {i}", "Bo", "bo@example.com", 1_700_000_000 + 60 * i, {_path(s, k): _file(s, k, i)})
        )
    t = 1_700_000_000 + 60 * commits
    leak = _file(0, 0, 1).replace("\tdefer conn.Close()\n", "")
    slow = "def rank(items):\n    out = []\n    for a in items:\n        for b in items:\n            if a == b:\n"
    slow += "                out.append(a)\n    return out\n"
    history += [
        Commit("docs", "Dee", "dee@example.com", t + 1, {"README.md": "# shop\n\nDeploying.\n"}, label="docs"),
        Commit("leak", "Cy", "cy@example.com", t + 2, {_path(0, 0): leak}, label="leak"),
        Commit(
            "config",
            "Eve",
            "eve@example.com",
            t + 3,
            {"deploy/svc0.yaml": "timeouts_ms:\n  payment: 20\n"},
            label="config",
        ),
        Commit("cpu", "Fay", "fay@example.com", t + 4, {"services/svc1/rank.py": slow}, label="cpu"),
        Commit("refactor", "Gus", "gus@example.com", t + 5, {_path(2, 1): _file(2, 1, 99_999)}, label="bad"),
    ]
    shas = write_repository(history, repo)
    labels = {c.label: sha for c, sha in zip(history, shas, strict=True) if c.label}
    labels["good"] = shas[-6]
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo.git"
        shas = build(repo, args.commits)
        report: dict[str, object] = {"commits": args.commits, "range_commits": 5, "repeat": args.repeat}
        for label, elsewhere in (("without_same_pattern", False), ("with_same_pattern", True)):
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                result = analyse_change(repo, shas["bad"], shas["good"], search_elsewhere=elsewhere)
                times.append(time.perf_counter() - start)
            carried = {(f.kind, f.subkind): f.commit for f in result.findings}
            expected = {
                ("resource_leak", "never_released"): shas["leak"],
                ("config_change", "timeout"): shas["config"],
                ("cpu_heavy", "quadratic_comparison"): shas["cpu"],
            }
            assert carried == expected, carried
            assert next(c for c in result.commits if c.commit == shas["docs"]).finding_kinds == []
            report[label] = {
                "median_s": round(statistics.median(times), 4),
                "min_s": round(min(times), 4),
                "max_s": round(max(times), 4),
                "findings": len(result.findings),
                "same_pattern": len(result.same_pattern),
            }
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
