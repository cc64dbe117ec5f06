"""Git repositories by path as a live change source: merge commits and tags of a period.

Runs `git log --all --merges` (committer time in the period) and `git for-each-ref refs/tags`,
keeps their output as git printed it under a small header (`sources/raw/git_changes.py` reads
it back, so a snapshot holds the same changes).
"""

from __future__ import annotations

import subprocess
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


def git_changes(repo: GitRepoConfig, start: datetime, end: datetime) -> EventRead:
    path = Path(repo.path)
    service = repo.service or path.resolve().name
    log_args = ["log", "--all", "--merges", f"--since={start.isoformat()}", f"--until={end.isoformat()}",
                f"--format={LOG_FORMAT}"]  # fmt: skip
    tag_args = ["for-each-ref", "refs/tags", f"--format={TAG_FORMAT}"]
    text = "\n".join(
        [
            MAGIC,
            f"# repository: {path.resolve()}",
            f"# service: {service}",
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
