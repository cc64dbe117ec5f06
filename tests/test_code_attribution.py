"""Per-commit attribution on real git repositories (git CLI in tmp_path): in a deploy range of
several commits, each finding names the commit whose diff carries it — a docs-only commit carries
none, a deleted `defer conn.Close()` is found in the commit that deleted it, a migration that drops
an index a query needs is the index's commit — and a helper called from another file's handler is
on a request path."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from warroom.analysis.code import analyse_change, of_another_service

MIGRATION = """CREATE TABLE orders (
    id BIGSERIAL PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    customer_email TEXT NOT NULL
);
CREATE INDEX orders_email_idx ON orders (customer_email);
"""
GO_HANDLER = """package checkout

func (h *Handler) List(ctx context.Context, id int64) error {
	conn, err := h.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return use(conn)
}
"""
GO_LEAK = """
func (h *Handler) Promo(ctx context.Context, code string) error {
	conn, err := h.db.Conn(ctx)
	if err != nil {
		return err
	}
	return use(conn)
}
"""
REPORTS = """def by_email(cur, email):
    cur.execute("SELECT id FROM orders WHERE customer_email = %s", (email,))
    return cur.fetchall()
"""
ROUTES = """from .rank import rank


@app.post("/rank")
def rank_view(request):
    return rank(request.json["items"])
"""
RANK_OK = """def rank(items):
    return sorted(items, key=len)
"""
RANK_SLOW = """def rank(items):
    out = []
    for a in items:
        for b in items:
            if a == b:
                out.append(a)
    return out
"""
CONFIG = "service: checkout\ntimeouts_ms:\n  payment: 2000\n"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def _commit(repo: Path, files: dict[str, str | None], message: str, author: str) -> str:
    for name, text in files.items():
        path = repo / name
        if text is None:
            _git(repo, "rm", "-q", name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        _git(repo, "add", name)
    _git(repo, "-c", f"user.name={author}", "-c", "user.email=dev@example.com", "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    repo = tmp_path_factory.mktemp("attr") / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    shas = {"repo": str(repo)}
    shas["good"] = _commit(
        repo,
        {
            "db/001_orders.sql": MIGRATION,
            "services/checkout/handler.go": GO_HANDLER,
            "services/reports/queries.py": REPORTS,
            "services/ranker/app/routes.py": ROUTES,
            "services/ranker/app/rank.py": RANK_OK,
            "deploy/checkout.yaml": CONFIG,
            "README.md": "# shop\n",
        },
        "Initial services",
        "Ana Ops",
    )
    shas["docs"] = _commit(
        repo, {"README.md": "# shop\n\nHow to deploy.\n", "docs/deploy.md": "Deploy.\n"}, "Docs", "Dee Docs"
    )
    shas["leak"] = _commit(repo, {"services/checkout/handler.go": GO_HANDLER + GO_LEAK}, "Add promo", "Cy Dev")
    shas["config"] = _commit(
        repo, {"deploy/checkout.yaml": CONFIG.replace("2000", "20")}, "Tighten payment timeout", "Eve Ops"
    )
    shas["cpu"] = _commit(repo, {"services/ranker/app/rank.py": RANK_SLOW}, "Rank by duplicates", "Fay Dev")
    shas["deleted_close"] = _commit(
        repo,
        {"services/checkout/handler.go": (GO_HANDLER + GO_LEAK).replace("\tdefer conn.Close()\n", "", 1)},
        "Simplify List",
        "Gus Dev",
    )
    shas["drop_index"] = _commit(
        repo, {"db/002_drop_email_idx.sql": "DROP INDEX orders_email_idx;\n"}, "Drop unused index", "Hal Dba"
    )
    return shas


def test_each_finding_names_the_commit_whose_diff_carries_it(deploy: dict[str, str]) -> None:
    result = analyse_change(Path(deploy["repo"]), deploy["drop_index"], deploy["good"], search_elsewhere=False)
    assert [c.commit for c in result.commits] == [
        deploy[k] for k in ("drop_index", "deleted_close", "cpu", "config", "leak", "docs")
    ]
    carried = {(f.kind, f.subkind, f.file, f.function): f.commit for f in result.findings}
    assert carried == {
        ("resource_leak", "never_released", "services/checkout/handler.go", "Promo"): deploy["leak"],
        ("resource_leak", "never_released", "services/checkout/handler.go", "List"): deploy["deleted_close"],
        ("config_change", "timeout", "deploy/checkout.yaml", None): deploy["config"],
        ("cpu_heavy", "quadratic_comparison", "services/ranker/app/rank.py", "rank"): deploy["cpu"],
        ("unindexed_query", "index_dropped", "db/002_drop_email_idx.sql", None): deploy["drop_index"],
    }
    by_commit = {c.commit: c for c in result.commits}
    assert by_commit[deploy["docs"]].docs_only and by_commit[deploy["docs"]].finding_kinds == []
    assert by_commit[deploy["leak"]].finding_kinds == ["resource_leak"]
    assert by_commit[deploy["leak"]].files == ["services/checkout/handler.go"]
    dropped = next(f for f in result.findings if f.subkind == "index_dropped")
    assert dropped.data["affected"] == ["services/reports/queries.py:2"] and dropped.author == "Hal Dba"
    config = next(f for f in result.findings if f.kind == "config_change")
    assert (config.data["key"], config.data["old"], config.data["new"], config.line) == (
        "timeouts_ms.payment",
        2000,
        20,
        3,
    )


def test_a_helper_called_from_another_files_handler_is_on_the_request_path(deploy: dict[str, str]) -> None:
    result = analyse_change(Path(deploy["repo"]), deploy["cpu"], deploy["config"], search_elsewhere=False)
    (finding,) = result.findings
    assert finding.kind == "cpu_heavy" and finding.on_request_path is True
    assert finding.commit == deploy["cpu"] and finding.line == 4 and finding.end_line is not None


def test_a_docs_only_deploy_carries_no_finding(deploy: dict[str, str]) -> None:
    result = analyse_change(Path(deploy["repo"]), deploy["docs"], deploy["good"])
    assert result.findings == [] and result.commits[0].docs_only


def test_the_same_pattern_elsewhere_is_listed_at_the_bad_commit(deploy: dict[str, str]) -> None:
    result = analyse_change(Path(deploy["repo"]), deploy["leak"], deploy["docs"])
    assert [(f.function, f.commit) for f in result.findings] == [("Promo", deploy["leak"])]
    assert result.same_pattern == []  # List still defers Close at that commit


def test_a_neighbours_files_in_a_shared_deploy_range_are_not_this_services(deploy: dict[str, str]) -> None:
    # ranker's deploy from the shared repository brings checkout's commits too (the lab's payment
    # scale change carried checkout's config revert and was located at config/checkout.yaml)
    analysis = analyse_change(Path(deploy["repo"]), deploy["deleted_close"], deploy["good"], focus="ranker")
    services = {"checkout", "ranker", "reports"}
    files = {f.file for f in analysis.findings if f.in_diff}
    assert {"deploy/checkout.yaml", "services/ranker/app/rank.py"} <= files
    own = {f.file for f in analysis.findings if f.in_diff and not of_another_service(f.file, "ranker", services)}
    assert "services/ranker/app/rank.py" in own
    assert not any("checkout" in f for f in own)
    assert not of_another_service("deploy/services.yaml", "payment", {"payment", "checkout"})  # anyone's
    assert not of_another_service("config/checkout.yaml", "checkout", {"payment", "checkout"})
    # service names with separators, as real systems spell them
    names = {"ts-travel-service", "ts-travel2-service", "ts-order-service"}
    assert of_another_service("ts-order-service/src/Main.java", "ts-travel-service", names)
    assert not of_another_service("ts-travel-service/src/Main.java", "ts-travel-service", names)
    assert not of_another_service("ts-travel2-service/src/Main.java", "ts-travel2-service", names)


def test_the_code_explorer_leads_with_the_location_the_diagnosis_weighed(deploy: dict[str, str]) -> None:
    # The range brings checkout's leak and its config change; the diagnosis blamed the setting:
    # the explorer's report leads with it, not with the first finding of its own ordering.
    from support_specialists import bundle, changes, context
    from warroom.agents.code_explorer import CodeExplorer

    b = bundle("pool_leak", repo=Path(deploy["repo"]), change_frame=changes(deploy["good"], deploy["config"]))
    alone = CodeExplorer().run(context(b, suspect_service="checkout"))
    own_first = alone.outputs["code_findings"][0]
    config = next(f for f in alone.outputs["code_findings"] if f["file"] == "deploy/checkout.yaml")
    assert own_first["file"] != "deploy/checkout.yaml"  # else the case decides nothing
    weighed = {**alone.outputs["suspect_change"], "code_file": config["file"], "code_line": config["line"]}
    report = CodeExplorer().run(context(b, suspect_service="checkout", suspect_change=weighed))
    assert report.outputs["suspect_change"]["code_file"] == "deploy/checkout.yaml"
    assert report.outputs["code_findings"][0]["file"] == "deploy/checkout.yaml"
