"""git actions on a real deploy repository created with the git CLI."""

from __future__ import annotations

from actions_helpers import deploy_repo, git
from warroom.actions.contract import RunOptions
from warroom.actions.git import GitRevert, GitRollbackToRef

OPTS = RunOptions()


def test_revert_bad_head_verify_and_undo(tmp_path):
    repo = tmp_path / "deploy"
    commits = deploy_repo(repo)
    adapter = GitRevert()
    params = adapter.parse({"repo": str(repo), "commit": commits["bad"], "branch": "main"})
    preview = adapter.preview(params, OPTS)
    assert preview.ok and "new order handler" in preview.detail
    assert git(repo, "rev-parse", "HEAD") == commits["bad"]  # preview changed nothing

    result = adapter.execute(params, OPTS)
    assert result.ok, result.detail
    assert "1.4.1" in (repo / "checkout.yaml").read_text()
    assert f"This reverts commit {commits['bad']}" in git(repo, "log", "-1", "--format=%B")
    assert adapter.verify(params, result, OPTS).ok is True
    assert git(repo, "rev-list", "--count", "HEAD") == "3"  # history kept, nothing rewritten

    undone = adapter.undo(params, result, OPTS)
    assert undone is not None and undone.ok
    assert "1.5.0" in (repo / "checkout.yaml").read_text()


def test_rollback_to_ref_creates_a_commit_with_the_good_tree(tmp_path):
    repo = tmp_path / "deploy"
    commits = deploy_repo(repo)
    (repo / "extra.yaml").write_text("flag: on\n")
    git(repo, "add", "extra.yaml")
    git(repo, "commit", "-q", "-m", "enable flag")
    adapter = GitRollbackToRef()
    params = adapter.parse({"repo": str(repo), "ref": commits["good"]})
    preview = adapter.preview(params, OPTS)
    assert "would roll back 2 commit(s)" in preview.detail
    result = adapter.execute(params, OPTS)
    assert result.ok, result.detail
    assert adapter.verify(params, result, OPTS).ok is True
    assert not (repo / "extra.yaml").exists()
    assert git(repo, "log", "-1", "--format=%s").startswith("Roll back to")
    assert git(repo, "rev-parse", "HEAD^") == result.data["previous_head"]
    undone = adapter.undo(params, result, OPTS)
    assert undone is not None and undone.ok
    assert (repo / "extra.yaml").exists()


def test_refuses_dirty_tree_wrong_branch_and_unknown_ref(tmp_path):
    repo = tmp_path / "deploy"
    deploy_repo(repo)
    adapter = GitRevert()
    wrong_branch = adapter.execute(adapter.parse({"repo": str(repo), "branch": "release"}), OPTS)
    assert not wrong_branch.ok and "expected 'release'" in wrong_branch.detail
    unknown = GitRollbackToRef().execute(GitRollbackToRef().parse({"repo": str(repo), "ref": "v9.9.9"}), OPTS)
    assert not unknown.ok and "unknown revision" in unknown.detail
    (repo / "checkout.yaml").write_text("local edit\n")
    dirty = adapter.execute(adapter.parse({"repo": str(repo)}), OPTS)
    assert not dirty.ok and "uncommitted" in dirty.detail


def test_revert_conflict_is_aborted_and_reported(tmp_path):
    repo = tmp_path / "deploy"
    commits = deploy_repo(repo)
    (repo / "checkout.yaml").write_text("image: checkout:1.6.0\npool_size: 40\n")
    git(repo, "commit", "-q", "-am", "checkout 1.6.0")
    adapter = GitRevert()
    result = adapter.execute(adapter.parse({"repo": str(repo), "commit": commits["bad"]}), OPTS)
    assert not result.ok
    assert git(repo, "status", "--porcelain") == ""  # the failed revert left no half-applied state
