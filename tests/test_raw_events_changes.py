"""Change readers and the live change sources: deploy logs (JSON lines, CSV, YAML; by file and by
URL from a loopback HTTP server), kubectl rollout history, a real git repository's merges and tags
(read live, saved, read back to the same table), and the manifest's alert block."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from warroom.errors import BundleError
from warroom.sources.captured import save
from warroom.sources.config import DeployLogConfig, GitRepoConfig
from warroom.sources.deploy_feed import DeployFeedError, deploy_log
from warroom.sources.git_source import GitError, git_changes
from warroom.sources.raw.defaults import read_alert_file
from warroom.sources.raw.folder import read_period
from warroom.sources.raw.formats import recognise
from warroom.sources.raw.reader import RawRead, ReadOptions

FIXTURES = Path(__file__).parent / "fixtures" / "raw" / "events"


def _read(path: Path) -> RawRead:
    reader = recognise(path)
    assert reader is not None, path
    return reader.read(path, ReadOptions())


@pytest.mark.parametrize("name", ["deploys.jsonl", "deploys.csv", "deploys.yaml"])
def test_deploy_logs(name: str) -> None:
    rows = _read(FIXTURES / name).tables[0].frame.to_dicts()
    checkout = next(r for r in rows if r["service"] == "checkout" and r["kind"] == "deploy")
    assert checkout["version"] == "1.4.2"
    assert checkout["time"] == datetime(2024, 5, 27, 15, 4, 32, tzinfo=UTC)
    if name != "deploys.csv":
        assert "from 1.4.1" in checkout["description"]
    if name == "deploys.jsonl":
        assert checkout["commit"] == "8414af3c0ffee" and checkout["author"] == "ci"
        assert rows[-1]["kind"] == "rollback"


def test_a_deploy_without_a_readable_time_is_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "deploys.jsonl"
    path.write_text(
        '{"time": "2024-05-27T15:04:32Z", "service": "checkout", "version": "1.4.2"}\n'
        '{"time": "not-a-time", "service": "payment", "version": "2.0.0"}\n'
        '{"service": "auth", "version": "0.9.1"}\n',
        encoding="utf-8",
    )
    read = _read(path)
    assert read.limitations == [
        "deploys.jsonl: 1 change skipped (not a deploy entry (time, service and version or commit); first at line 3)",
        "deploys.jsonl: 1 change skipped (time missing or unreadable; first at line 2)",
    ]
    assert read.tables[0].frame.get_column("service").to_list() == ["checkout"]


def test_kubectl_rollout_history_places_only_revisions_with_a_time() -> None:
    read = _read(FIXTURES / "checkout.rollout.txt")
    rows = read.tables[0].frame.to_dicts()
    assert [(r["id"], r["time"]) for r in rows] == [("checkout#3", datetime(2024, 5, 27, 15, 4, 32, tzinfo=UTC))]
    assert "2 rollout revision(s) without a time" in read.limitations[0]
    assert "checkout revision 2" in read.limitations[0] and "shop/checkout:1.4.1" in read.limitations[0]
    detail = _read(FIXTURES / "checkout.rollout-revision.txt")
    assert not detail.tables and "image shop/checkout:1.4.2" in detail.limitations[0]


def test_manifest_alert_block_as_alert_file() -> None:
    (alert,) = read_alert_file(FIXTURES / "alert.yaml", ReadOptions())
    assert (alert.name, alert.service, alert.labels["source"]) == ("HighErrorRate", "gateway", "manifest")


def test_bad_alert_block_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "alert.yaml"
    path.write_text("alert:\n  name: X\n  fired_at: yesterday\n", encoding="utf-8")
    with pytest.raises(BundleError, match=r"alert.yaml:3: field 'alert.fired_at'"):
        read_alert_file(path, ReadOptions())


def _git(repo: Path, *args: str, when: str = "2024-05-27T15:00:00Z") -> str:
    env = {"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when, "HOME": str(repo.parent), "PATH": "/usr/bin:/bin"}
    identity = ["-c", "user.name=Dev", "-c", "user.email=dev@example.com", "-c", "init.defaultBranch=main"]
    done = subprocess.run(["git", *identity, "-C", str(repo), *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "checkout"
    path.mkdir()
    _git(path, "init", "-q")
    (path / "a.txt").write_text("1\n")
    _git(path, "add", ".")
    _git(path, "commit", "-qm", "base", when="2024-05-26T10:00:00Z")
    _git(path, "tag", "-a", "v1.4.1", "-m", "release 1.4.1", when="2024-05-26T10:00:00Z")
    _git(path, "checkout", "-qb", "feature")
    (path / "a.txt").write_text("2\n")
    _git(path, "commit", "-qam", "hold the connection", when="2024-05-27T14:50:00Z")
    _git(path, "checkout", "-q", "main")
    _git(path, "merge", "--no-ff", "-qm", "Merge pull request #42 from feature", "feature", when="2024-05-27T15:00:00Z")
    _git(path, "tag", "v1.4.2", when="2024-05-27T15:01:00Z")
    return path


def test_git_merges_and_tags_of_a_period_read_back_the_same(repo: Path, tmp_path: Path) -> None:
    start, end = datetime(2024, 5, 27, 14, 0, tzinfo=UTC), datetime(2024, 5, 27, 16, 0, tzinfo=UTC)
    live = git_changes(GitRepoConfig(path=str(repo)), start, end)
    frame = live.tables[0].frame
    assert frame.get_column("kind").to_list() == ["merge", "release"]
    merge, tag = frame.to_dicts()
    assert merge["description"] == "Merge pull request #42 from feature" and merge["service"] == "checkout"
    assert tag["version"] == "v1.4.2" and tag["commit"] == merge["commit"]  # v1.4.1 is before the period
    snapshot = tmp_path / "snapshot"
    save(live.responses, snapshot)
    replayed = read_period(snapshot, ReadOptions()).validated(start).telemetry.changes
    assert replayed is not None
    assert_frame_equal(replayed.drop("commit"), _canonical(frame).drop("commit"))


def test_a_monorepo_merge_belongs_to_the_services_whose_folders_it_changed(tmp_path: Path) -> None:
    repo = tmp_path / "shop"
    (repo / "shop" / "checkout").mkdir(parents=True)
    (repo / "config").mkdir()
    _git(repo, "init", "-q")
    (repo / "README.md").write_text("shop\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "base", when="2024-05-26T10:00:00Z")
    for branch, files, when in (
        ("pool", {"shop/checkout/orders.py": "pool\n", "config/payment.yaml": "flush: 5000\n"}, "2024-05-27T14:40:00Z"),
        ("docs", {"README.md": "the shop\n"}, "2024-05-27T14:50:00Z"),
    ):
        _git(repo, "checkout", "-qb", branch)
        for name, text in files.items():
            (repo / name).write_text(text)
        _git(repo, "add", ".")
        _git(repo, "commit", "-qm", f"change {branch}", when=when)
        _git(repo, "checkout", "-q", "main")
        _git(repo, "merge", "--no-ff", "-qm", f"Merge {branch}", branch, when=when)
    start, end = datetime(2024, 5, 27, 14, 0, tzinfo=UTC), datetime(2024, 5, 27, 16, 0, tzinfo=UTC)
    live = git_changes(GitRepoConfig(path=str(repo)), start, end, {"checkout", "payment", "catalog"})
    rows = live.tables[0].frame.select("service", "description").sort("service").rows()
    # the docs merge touched no service's folder: it stays the repository's; catalog was not touched
    assert rows == [("checkout", "Merge pool"), ("payment", "Merge pool"), ("shop", "Merge docs")]
    owned = git_changes(GitRepoConfig(path=str(repo), service="storefront"), start, end, {"checkout"})
    assert set(owned.tables[0].frame.get_column("service")) == {"storefront"}


def _canonical(frame):  # type: ignore[no-untyped-def]
    from warroom.sources.canonical import TABLES
    from warroom.sources.raw.folder import as_canonical

    return as_canonical(frame, TABLES["changes"])


def test_git_source_on_a_folder_that_is_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not a readable git repository"):
        git_changes(GitRepoConfig(path=str(tmp_path)), datetime.now(UTC), datetime.now(UTC))


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # the test output stays quiet
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(FIXTURES / "deploys.yaml", root / "deploys.yaml")
    handler = lambda *a, **k: _Files(*a, directory=str(root), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_deploy_log_by_url_and_by_file(served: str, tmp_path: Path) -> None:
    by_url = deploy_log(DeployLogConfig(url=f"{served}/deploys.yaml"))
    by_file = deploy_log(DeployLogConfig(path=str(FIXTURES / "deploys.yaml")))
    assert_frame_equal(by_url.tables[0].frame, by_file.tables[0].frame)
    assert by_url.responses[0].body == (FIXTURES / "deploys.yaml").read_bytes()
    with pytest.raises(DeployFeedError, match="answered 404"):
        deploy_log(DeployLogConfig(url=f"{served}/missing.jsonl"))


def test_a_version_deployed_again_is_another_change_not_a_copy(tmp_path: Path) -> None:
    """A deploy log that names a deploy by what it deployed repeats the id when the same version goes
    out again (a rollback to it, later another): the later deploys are numbered, not dropped (the
    lab's second rollback to checkout's first version was lost in replays, and with it the end of
    the incident's period)."""
    path = tmp_path / "deploys.jsonl"
    path.write_text(
        '{"id": "rollback-checkout-1.0", "time": "2024-05-27T15:00:00Z", "service": "checkout", "version": "1.0",'
        ' "kind": "rollback"}\n'
        '{"id": "deploy-checkout-1.1", "time": "2024-05-27T15:10:00Z", "service": "checkout", "version": "1.1"}\n'
        '{"id": "rollback-checkout-1.0", "time": "2024-05-27T15:20:00Z", "service": "checkout", "version": "1.0",'
        ' "kind": "rollback"}\n',
        encoding="utf-8",
    )
    read = _read(path)
    assert read.tables[0].frame.get_column("id").to_list() == [
        "rollback-checkout-1.0",
        "deploy-checkout-1.1",
        "rollback-checkout-1.0#2",
    ]
    assert read.limitations == []
