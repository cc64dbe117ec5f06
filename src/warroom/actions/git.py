"""git actions on a deploy repository: revert a commit, or roll back to a ref — both as new commits.

History is never rewritten (a deploy repository is shared): a rollback is a new commit whose tree is
the tree of the good ref, and an undo is one more commit on top.
"""

from __future__ import annotations

import os
import re

from pydantic import Field, field_validator

from warroom.actions.contract import ActionAdapter, Check, Params, RunOptions, StepResult
from warroom.actions.shell import child_env, run_argv
from warroom.incident import RiskLevel

_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./@^~\-]*$")  # no leading '-': a ref is never an option


class GitParams(Params):
    repo: str
    branch: str | None = None  # checked to be the current branch when given
    author_name: str = "warroom"
    author_email: str = "warroom@localhost"
    push: bool = False
    remote: str = "origin"
    timeout_s: float = Field(default=60.0, gt=0)


class RevertParams(GitParams):
    commit: str = "HEAD"

    @field_validator("commit")
    @classmethod
    def _ref(cls, value: str) -> str:
        if not _REF.match(value):
            raise ValueError(f"{value!r} is not a git revision")
        return value


class RollbackParams(GitParams):
    ref: str

    @field_validator("ref")
    @classmethod
    def _ref(cls, value: str) -> str:
        if not _REF.match(value):
            raise ValueError(f"{value!r} is not a git revision")
        return value


def _git(params: GitParams, options: RunOptions, *args: str) -> StepResult:
    env = child_env(
        options.env or os.environ,
        ["SSH_AUTH_SOCK", "GIT_SSH_COMMAND"],
        {
            "GIT_AUTHOR_NAME": params.author_name,
            "GIT_AUTHOR_EMAIL": params.author_email,
            "GIT_COMMITTER_NAME": params.author_name,
            "GIT_COMMITTER_EMAIL": params.author_email,
            "GIT_TERMINAL_PROMPT": "0",
        },
    )
    return run_argv(["git", "-C", params.repo, *args], timeout_s=params.timeout_s, env=env)


def _out(result: StepResult) -> str:
    return str(result.data.get("stdout", "")).strip()


def _precheck(params: GitParams, options: RunOptions) -> StepResult | None:
    """A failure result when the repository is not in a state to take a new commit."""
    status = _git(params, options, "status", "--porcelain", "--untracked-files=no")
    if not status.ok:
        return status
    if _out(status):
        return StepResult(ok=False, detail=f"{params.repo} has uncommitted changes; refusing to commit on top")
    if params.branch is not None:
        branch = _git(params, options, "symbolic-ref", "--short", "HEAD")
        if _out(branch) != params.branch:
            return StepResult(ok=False, detail=f"{params.repo} is on '{_out(branch)}', expected '{params.branch}'")
    return None


def _head(params: GitParams, options: RunOptions) -> str:
    return _out(_git(params, options, "rev-parse", "HEAD"))


def _push(params: GitParams, options: RunOptions, result: StepResult) -> StepResult:
    if not params.push or not result.ok:
        return result
    pushed = _git(params, options, "push", params.remote, "HEAD")
    data = {**result.data, "pushed": pushed.ok}
    if not pushed.ok:
        return result.model_copy(
            update={"ok": False, "detail": f"{result.detail}; push failed: {pushed.detail}", "data": data}
        )
    return result.model_copy(update={"detail": f"{result.detail}; pushed to {params.remote}", "data": data})


def _commit_tree(params: GitParams, options: RunOptions, tree_of: str, message: str) -> StepResult:
    """A new commit on HEAD whose tree is `tree_of`'s tree, fast-forwarded into the work tree."""
    before = _head(params, options)
    tree = _git(params, options, "rev-parse", f"{tree_of}^{{tree}}")
    if not tree.ok:
        return tree.model_copy(update={"detail": f"unknown revision {tree_of}: {tree.detail}"})
    made = _git(params, options, "commit-tree", _out(tree), "-p", "HEAD", "-m", message)
    if not made.ok:
        return made
    moved = _git(params, options, "merge", "--ff-only", "--quiet", _out(made))
    if not moved.ok:
        return moved
    return StepResult(
        ok=True,
        changed=True,
        detail=f"new commit {_out(made)[:12]} on {before[:12]} with the tree of {tree_of}",
        data={"commit": _out(made), "previous_head": before, "tree_of": tree_of},
    )


class GitRevert(ActionAdapter[RevertParams]):
    name = "git.revert"
    params_model = RevertParams
    risk = RiskLevel.HIGH
    undoable = True
    summary = "git revert a commit in a deploy repository (undo: revert the revert)"

    def describe(self, params: RevertParams) -> str:
        return f"git -C {params.repo} revert --no-edit {params.commit}"

    def preview(self, params: RevertParams, options: RunOptions) -> StepResult:
        shown = _git(params, options, "log", "-1", "--format=%H %s", params.commit)
        if not shown.ok:
            return shown
        return StepResult(ok=True, detail=f"would revert {_out(shown)[:120]}", data={"commit": _out(shown).split()[0]})

    def execute(self, params: RevertParams, options: RunOptions) -> StepResult:
        problem = _precheck(params, options)
        if problem is not None:
            return problem
        target = _out(_git(params, options, "rev-parse", "--verify", f"{params.commit}^{{commit}}"))
        if not target:
            return StepResult(ok=False, detail=f"unknown revision {params.commit}")
        before = _head(params, options)
        reverted = _git(params, options, "revert", "--no-edit", target)
        if not reverted.ok:
            _git(params, options, "revert", "--abort")
            return reverted
        after = _head(params, options)
        result = StepResult(
            ok=True,
            changed=True,
            detail=f"reverted {target[:12]} as {after[:12]}",
            data={"commit": after, "reverted": target, "previous_head": before},
        )
        return _push(params, options, result)

    def verify(self, params: RevertParams, result: StepResult, options: RunOptions) -> Check:
        if not result.ok:
            return Check(ok=False, detail=result.detail)
        body = _out(_git(params, options, "log", "-1", "--format=%B", result.data["commit"]))
        ok = f"This reverts commit {result.data['reverted']}" in body
        return Check(ok=ok, detail="revert commit present" if ok else "HEAD is not the revert commit")

    def undo(self, params: RevertParams, result: StepResult, options: RunOptions) -> StepResult | None:
        if not result.data.get("commit"):
            return None
        again = params.model_copy(update={"commit": result.data["commit"]})
        return self.execute(again, options)


class GitRollbackToRef(ActionAdapter[RollbackParams]):
    name = "git.rollback_to_ref"
    params_model = RollbackParams
    risk = RiskLevel.HIGH
    undoable = True
    summary = "commit the tree of a known-good ref on top of HEAD (undo: commit the previous tree back)"

    def describe(self, params: RollbackParams) -> str:
        return f"git -C {params.repo}: new commit with the tree of {params.ref}"

    def preview(self, params: RollbackParams, options: RunOptions) -> StepResult:
        commits = _git(params, options, "log", "--format=%h %s", f"{params.ref}..HEAD")
        if not commits.ok:
            return commits
        lines = _out(commits).splitlines()
        return StepResult(
            ok=True,
            detail=f"would roll back {len(lines)} commit(s) to {params.ref}",
            data={"rolled_back": lines},
        )

    def execute(self, params: RollbackParams, options: RunOptions) -> StepResult:
        problem = _precheck(params, options)
        if problem is not None:
            return problem
        target = _out(_git(params, options, "rev-parse", "--verify", f"{params.ref}^{{commit}}"))
        if not target:
            return StepResult(ok=False, detail=f"unknown revision {params.ref}")
        result = _commit_tree(params, options, target, f"Roll back to {params.ref} ({target[:12]})\n\nBy warroom.")
        return _push(params, options, result)

    def verify(self, params: RollbackParams, result: StepResult, options: RunOptions) -> Check:
        if not result.ok:
            return Check(ok=False, detail=result.detail)
        same = _git(params, options, "diff", "--quiet", params.ref, "HEAD")
        return Check(
            ok=same.ok,
            detail=f"HEAD's tree equals {params.ref}" if same.ok else f"HEAD differs from {params.ref}",
        )

    def undo(self, params: RollbackParams, result: StepResult, options: RunOptions) -> StepResult | None:
        previous = result.data.get("previous_head")
        if not previous:
            return None
        back = _commit_tree(params, options, previous, f"Undo roll back to {params.ref}\n\nBy warroom.")
        return _push(params, options, back)
