"""Git repositories by path as a live change source: merge commits and tags of a period.

Runs `git log --all --merges --name-only` (committer time in the period; each merge's files against
its first parent) and `git for-each-ref refs/tags`, keeps their output as git printed it under a
small header naming the services the other sources saw (`sources/raw/git_changes.py` reads it
back and gives each merge of a monorepo to the services whose folders it changed, so a snapshot
holds the same changes).
"""

from __future__ import annotations

import subprocess
from collections.abc import Collection
from datetime import datetime
from pathlib import Path

from warroom.errors import InputError
from warroom.sources.captured import EventRead, RawResponse, read_back
from warroom.sources.config import GitRepoConfig
from warroom.sources.contract import Modality, SourceQuery
from warroom.sources.raw.git_changes import LOG_FORMAT, MAGIC, TAG_FORMAT
from warroom.sources.raw.reader import ReadOptions


class GitError(InputError):
    """A repository that cannot be read."""


def _git(repo: Path, args: list[str]) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    except OSError as exc:
        raise GitError(f"cannot run git ({exc.strerror})", file=repo) from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["git failed"])[-1]
        raise GitError(f"not a readable git repository ({reason[:160]})", file=repo)
    return done.stdout


def git_changes(repo: GitRepoConfig, start: datetime, end: datetime, services: Collection[str] = ()) -> EventRead:
    """The repository's merges and tags in [start, end]; `services` are the names the other
    sources saw, which a monorepo's merges are attributed to by the paths they change."""
    path = Path(repo.path)
    service = repo.service or path.resolve().name
    log_args = ["log", "--all", "--merges", "-m", "--first-parent", "--name-only", f"--since={start.isoformat()}",
                f"--until={end.isoformat()}", f"--format={LOG_FORMAT}"]  # fmt: skip
    tag_args = ["for-each-ref", "refs/tags", f"--format={TAG_FORMAT}"]
    owner = [f"# service: {repo.service}"] if repo.service else []
    text = "\n".join(
        [
            MAGIC,
            f"# repository: {path.resolve()}",
            *owner,
            f"# services: {', '.join(sorted(services))}",
            f"# period: {start.isoformat()} .. {end.isoformat()}",
            "# git " + " ".join(log_args),
            _git(path, log_args).rstrip("\n"),
            "# git " + " ".join(tag_args),
            _git(path, tag_args).rstrip("\n"),
        ]
    )
    query = SourceQuery(
        source="git",
        modality=Modality.CHANGES,
        text=f"git log --all --merges and tags of {service}",
        location=str(path.resolve()),
        start=start,
        end=end,
    )
    return read_back([RawResponse(f"git/{service}.changes.txt", (text + "\n").encode())], [query], ReadOptions())
