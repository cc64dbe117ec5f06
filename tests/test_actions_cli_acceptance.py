"""Issue 5 acceptance through the CLI: `warroom respond --execute --approve all` with a site runbook
(warroom.toml) pointed at real local targets — a PostgreSQL with a long query holding a connection,
a loopback service whose health recovers after a restart, a git deploy repository with a bad head —
then the same run without --execute. Secrets planted in the bundle's logs reach no output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from actions_helpers import LongQuery, deploy_repo, git, http_service

pgserver = pytest.importorskip("pgserver")

DB_SECRET = "Cli-Acc3ptance-Db-Pass"
PLANTED = "ghp_CliPlantedToken0123456789abcdefghijk"

SITE_RUNBOOK = """
name: site-checkout-database
description: Our checkout service, its database, its deploy repository.
match:
  fault_types: [missing_index, long_running_queries, db_pool_exhaustion]
steps:
  - id: kill-long-queries
    kind: kill_long_queries
    title: Terminate {service}'s long queries
    risk: medium
    rollback: Not reversible.
    adapter: sql.terminate_long_queries
    params: {url_env: CHECKOUT_DB_URL, min_seconds: 0.5, application: checkout}
  - id: restart-checkout
    kind: restart
    title: Restart {service}
    risk: medium
    rollback: Nothing to undo.
    adapter: http
    params:
      method: POST
      url: "{service_url}/restart"
      backoff_s: 0.05
      verify: {url: "{service_url}/health", expect_status: [200]}
  - id: rollback-deploy
    kind: rollback
    title: Revert the bad release in the deploy repository
    risk: high
    rollback: Revert the revert.
    undo_if_not_recovered: false
    adapter: git.revert
    params: {repo: "{deploy_repo}", commit: HEAD, branch: main}
"""


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="warroom-pg-")
    server = pgserver.get_server(folder, cleanup_mode="stop")
    try:
        yield server.get_uri().replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated missing-index incident (it has long-running queries), with a secret planted in its logs."""
    out = tmp_path_factory.mktemp("scenario") / "bundle"
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "warroom",
            "scenario",
            "generate",
            "missing-index",
            "--seed",
            "1",
            "--scale",
            "small",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"scenario generator unavailable: {made.stderr[-300:]}")
    logs = pl.read_parquet(out / "logs.parquet")
    planted = logs.head(40).with_columns(pl.lit(f"deploy hook failed token={PLANTED}").alias("message"))
    pl.concat([logs, planted]).sort("timestamp").write_parquet(out / "logs.parquet")
    return out


def respond(bundle: Path, root: Path, base: str, repo: Path, good: str, pg_url: str, execute: bool):
    (root / "runbooks").mkdir(exist_ok=True)
    (root / "runbooks" / "site.yaml").write_text(SITE_RUNBOOK)
    (root / "warroom.toml").write_text(
        f"""
[actions]
runbooks = ["runbooks"]
[actions.vars]
service_url = "{base}"
deploy_repo = "{repo}"
[actions.recovery_probe]
http = {{ url = "{base}/health", expect_status = [200] }}
argv = ["git", "-C", "{repo}", "diff", "--quiet", "{good}", "HEAD"]
"""
    )
    env = {
        **os.environ,
        "WARROOM_CONFIG": str(root / "warroom.toml"),
        "CHECKOUT_DB_URL": pg_url.replace("postgres:@", f"postgres:{DB_SECRET}@", 1),
    }
    out = root / "out"
    args = [
        sys.executable,
        "-m",
        "warroom",
        "respond",
        str(bundle),
        "--out",
        str(out),
        "--approve",
        "all",
        "--db",
        f"sqlite:///{root / 'store.db'}",
        "--json",
    ]
    proc = subprocess.run(
        args + (["--execute"] if execute else []), env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    context = json.loads((out / "context.json").read_text())
    texts = {str(p): p.read_text(errors="replace") for p in out.rglob("*") if p.is_file()}
    texts["stdout"], texts["stderr"] = proc.stdout, proc.stderr
    for where, text in texts.items():
        assert DB_SECRET not in text and PLANTED not in text, where
    return context, texts


def test_execute_with_approve_all_fixes_the_real_targets(tmp_path, bundle, pg_url):
    query = LongQuery(pg_url, seconds=120, application="checkout").start(pg_url)
    repo = tmp_path / "deploy"
    commits = deploy_repo(repo)
    with http_service() as (base, state):
        time.sleep(0.6)
        context, texts = respond(bundle, tmp_path, base, repo, commits["good"], pg_url, execute=True)
        mitigation = context["mitigation"]
        taken = {o["action_id"]: o["status"] for o in mitigation["outcomes"]}
        assert set(taken) == {"kill-long-queries", "restart-checkout", "rollback-deploy"}, mitigation["summary"]
        assert mitigation["recovered"] is True and mitigation["target"] == "live"
        assert query.finished.wait(10) and query.error  # the long query was terminated
        assert state.restarts == 1 and state.healthy  # restarted, and the probe passes
        assert f"This reverts commit {commits['bad']}" in git(repo, "log", "-1", "--format=%B")  # rollback commit
        audit_steps = {(e["action_id"], e["step"]) for e in mitigation["audit"]}
        for action in taken:
            assert {(action, "proposed"), (action, "approved"), (action, "executed")} <= audit_steps
        timeline = texts[str(tmp_path / "out" / "timeline.md")]
        for action in taken:
            assert f"{action}: executed" in timeline
        assert "action_verified" in timeline and "communication_sent" in timeline


def test_without_execute_nothing_changes_and_the_report_lists_what_would_run(tmp_path, bundle, pg_url):
    query = LongQuery(pg_url, seconds=600, application="checkout-dry").start(pg_url)  # outlives a slow run
    repo = tmp_path / "deploy"
    commits = deploy_repo(repo)
    with http_service() as (base, state):
        context, _ = respond(bundle, tmp_path, base, repo, commits["good"], pg_url, execute=False)
        mitigation = context["mitigation"]
        assert mitigation["dry_run"] is True
        assert all(o["status"] == "dry_run" for o in mitigation["outcomes"])
        details = " ".join(o["detail"] for o in mitigation["outcomes"])
        assert "would run: pg_terminate_backend" in details and f"would run: POST {base}/restart" in details
        assert not query.finished.is_set() and state.restarts == 0
        assert git(repo, "rev-parse", "HEAD") == commits["bad"]
