"""Write a real git repository from a list of commits with `git fast-import` (one process for the
whole history, deterministic: fixed authors and dates from the scenario clock), then a git bundle
file and/or a checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from warroom.errors import InputError


@dataclass
class Commit:
    message: str
    author: str
    email: str
    time_s: int  # epoch seconds (author and committer date)
    files: dict[str, str | None] = field(default_factory=dict)  # path → content (None: delete)
    label: str = ""  # how the scenario refers to this commit (e.g. "offending")


def _git(args: list[str], cwd: Path, stdin: bytes | None = None) -> bytes:
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
    }
    try:
        result = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, env=env, check=False)
    except FileNotFoundError:
        raise InputError("git is not installed (needed to write the scenario's code repository)") from None
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip().splitlines()
        raise InputError(f"git {args[0]} failed: {detail[-1] if detail else result.returncode}", file=cwd)
    return result.stdout


def _stream(commits: list[Commit], branch: str) -> bytes:
    out: list[bytes] = []
    for mark, commit in enumerate(commits, start=1):
        message = commit.message.encode()
        who = f"{commit.author} <{commit.email}> {commit.time_s} +0000".encode()
        out.append(f"commit refs/heads/{branch}\nmark :{mark}\n".encode())
        out.append(b"author " + who + b"\ncommitter " + who + b"\n")
        out.append(f"data {len(message)}\n".encode() + message + b"\n")
        if mark > 1:
            out.append(f"from :{mark - 1}\n".encode())
        for path in sorted(commit.files):
            content = commit.files[path]
            if content is None:
                out.append(f"D {path}\n".encode())
            else:
                data = content.encode()
                out.append(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")
        out.append(b"\n")
    return b"".join(out)


def write_repository(commits: list[Commit], work: Path, branch: str = "main") -> list[str]:
    """Create a bare repository at `work` holding `commits` in order; return their SHAs."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    _git(["init", "--quiet", "--bare", f"--initial-branch={branch}", "."], work)
    marks = work / "marks"
    _git(["fast-import", "--quiet", f"--export-marks={marks}"], work, stdin=_stream(commits, branch))
    by_mark: dict[int, str] = {}
    for line in marks.read_text().splitlines():
        mark, sha = line.split()
        by_mark[int(mark.lstrip(":"))] = sha
    marks.unlink()
    return [by_mark[index] for index in range(1, len(commits) + 1)]


def write_bundle_file(repo: Path, target: Path) -> None:
    _git(["bundle", "create", "--quiet", str(target.resolve()), "--all"], repo)


def write_checkout(repo: Path, target: Path, branch: str = "main") -> None:
    if target.exists():
        shutil.rmtree(target)
    _git(["clone", "--quiet", "--branch", branch, str(repo.resolve()), str(target.resolve())], repo.parent)
