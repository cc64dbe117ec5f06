"""The services' own git repository: created by `lab up` with an ordinary history by several authors.

The service source ships as package data (templates/shop); data/history.yaml says which commit
added or changed which file, by whom and when. Commits made later (faults, reverts) go through
`commit_files`, so every change the lab makes is an ordinary commit with an author and a date.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from warroom.lab.topology import LabError

TEMPLATE = "templates/shop"
LAB_COMMITTER = ("Shop Deploy Bot", "deploy-bot@shop.example")


def template_text(relative: str) -> str:
    return resources.files("warroom.lab").joinpath(f"{TEMPLATE}/{relative}").read_text(encoding="utf-8")


def git(repo: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        input=stdin,
        check=False,
    )
    if result.returncode != 0:
        raise LabError(f"git {' '.join(args[:2])} failed: {result.stderr.strip()[:300]}", file=repo)
    return result.stdout


def git_bytes(repo: Path, *args: str) -> bytes:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    if result.returncode != 0:
        raise LabError(f"git {' '.join(args[:2])} failed: {result.stderr.decode(errors='replace').strip()[:300]}")
    return result.stdout


def is_ancestor(repo: Path, older: str, newer: str) -> bool:
    result = subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", older, newer], check=False)
    return result.returncode == 0


def _author_env(author: str, when: datetime) -> dict[str, str]:
    name, _, email = author.partition(" <")
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S%z")
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email.rstrip(">"),
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_NAME": LAB_COMMITTER[0],
        "GIT_COMMITTER_EMAIL": LAB_COMMITTER[1],
        "GIT_COMMITTER_DATE": stamp,
    }


def commit_files(repo: Path, files: dict[str, str], author: str, message: str, when: datetime | None = None) -> str:
    """Write the files, commit them as `author`, and return the new commit's sha."""
    for relative, text in files.items():
        target = repo / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    git(repo, "add", "--", *files)
    git(repo, "commit", "--quiet", "-F", "-", env=_author_env(author, when or datetime.now(UTC)), stdin=message)
    return head(repo)


def revert(repo: Path, commit: str, author: str | None = None) -> str:
    """Commit the reverse of `commit` on top of HEAD (by its own author unless another is given);
    HEAD itself when HEAD already undoes it."""
    author = author or git(repo, "log", "-1", "--format=%an <%ae>", commit).strip()
    subject = git(repo, "log", "-1", "--format=%s", commit).strip()
    git(repo, "revert", "--no-commit", commit)
    if not git(repo, "diff", "--cached", "--name-only").strip():
        return head(repo)  # already undone on HEAD (a revert deployed during the incident)
    message = f'Revert "{subject}"\n\nThis reverts commit {commit}.\n'
    git(repo, "commit", "--quiet", "-F", "-", env=_author_env(author, datetime.now(UTC)), stdin=message)
    return head(repo)


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def _file_at_commit(relative: str, spec: dict[str, Any] | None) -> str:
    text = template_text(relative)
    for final, earlier in (spec or {}).get("earlier", []):
        if final not in text:
            raise LabError(f"history: {final[:60]!r} is not in the template", file=relative)
        text = text.replace(final, earlier)
    return text


def create(repo: Path, now: datetime | None = None) -> str:
    """Create the repository with its history (once); returns HEAD."""
    if (repo / ".git").exists():
        return head(repo)
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "config", "user.name", LAB_COMMITTER[0])
    git(repo, "config", "user.email", LAB_COMMITTER[1])
    history = yaml.safe_load(resources.files("warroom.lab").joinpath("data/history.yaml").read_text())
    start = (now or datetime.now(UTC)).replace(microsecond=0)
    for index, step in enumerate(history):
        # Working hours of the day the commit was made, a little later for each commit that day.
        when = (start - timedelta(days=int(step["days_ago"]))).replace(hour=10, minute=0, second=0)
        when += timedelta(minutes=37 * index)
        files = {path: _file_at_commit(path, spec) for path, spec in step["files"].items()}
        commit_files(repo, files, step["author"], step["message"], when)
    return head(repo)


def changed_files(repo: Path, old: str, new: str) -> list[str]:
    return [line for line in git(repo, "diff", "--name-only", old, new).splitlines() if line]


def bundle(repo: Path, target: Path) -> None:
    git(repo, "bundle", "create", str(target), "--all")
