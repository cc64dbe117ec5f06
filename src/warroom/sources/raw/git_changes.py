"""Changes from a git repository: merge commits and tags in a period, as `sources/git_source.py`
reads them, saved as git printed them so a snapshot reads back to the same table.

The file opens with `# warroom git changes`, then `# repository:`, `# service:` (when one service
owns the whole repository), `# services:` (the services the other sources named) and `# period:`
lines, then each command (a `# git …` line) followed by its output: `git log --merges --name-only`
with fields separated by the unit separator (0x1f) — commit, committer time, author, subject —
each followed by the files the merge changed against its first parent, and `git for-each-ref
refs/tags` — tag, tag time, object, peeled commit, tagger, subject. Tags outside the period are
left out (for-each-ref has no time filter). A merge becomes kind `merge`, a tag kind `release`
with the tag as its version.

Which service a merge belongs to: the configured one; otherwise, in a repository holding several
services (a monorepo), each named service whose name is a folder of a changed path or the stem of a
changed file (`shop/checkout/orders.py`, `config/payment.yaml`) gets the merge; otherwise the
repository's folder name. A tag is a release of the whole repository.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from warroom.sources.raw.changes import Change, change_read
from warroom.sources.raw.reader import RawRead, ReadOptions
from warroom.sources.raw.text import Skipped, lines, read_text
from warroom.sources.raw.times import epoch_us

MAGIC = "# warroom git changes"
SEPARATOR = "\x1f"
LOG_FORMAT = "%H%x1f%cI%x1f%an%x1f%s"
TAG_FORMAT = "%1f".join(
    (
        "%(refname:strip=2)",
        "%(creatordate:iso-strict)",
        "%(objectname)",
        "%(*objectname)",
        "%(taggername)%(authorname)",
        "%(subject)",
    )
)


@dataclass
class _Merge:
    line: int
    fields: list[str]
    files: list[str] = field(default_factory=list)


def _owners(files: list[str], services: set[str]) -> list[str]:
    """The named services a merge's files belong to: a folder of the path or the file's stem."""
    owners: set[str] = set()
    for name in files:
        path = PurePosixPath(name)
        owners |= services & {*path.parent.parts, path.stem}
    return sorted(owners)


def _merge_changes(merges: list[_Merge], header: dict[str, str]) -> list[Change]:
    fallback = header.get("service") or Path(header.get("repository", "repository")).name
    services = {s.strip() for s in header.get("services", "").split(",") if s.strip()}
    changes: list[Change] = []
    for merge in merges:
        sha, time, author, subject = merge.fields
        owners = [] if header.get("service") else _owners(merge.files, services)
        for owner in owners or [fallback]:
            change_id = f"merge-{sha[:12]}-{owner}" if len(owners) > 1 else f"merge-{sha[:12]}"
            changes.append(Change(merge.line, change_id, time, owner, "merge", None, sha, author, subject))
    return changes


def parse_git_changes(text: str, skipped: Skipped) -> tuple[list[Change], dict[str, str]]:
    header: dict[str, str] = {}
    section = ""
    merges: list[_Merge] = []
    tags: list[tuple[int, list[str]]] = []
    for number, line in lines(text):
        if line.startswith("# git "):
            section = "merges" if " log " in line else "tags" if "for-each-ref" in line else ""
            continue
        if line.startswith("# "):
            key, _, value = line[2:].partition(": ")
            header[key.strip()] = value.strip()
            continue
        fields = line.split(SEPARATOR)
        if section == "merges" and len(fields) == 4:
            merges.append(_Merge(number, fields))
        elif section == "merges" and len(fields) == 1 and merges:
            merges[-1].files.append(line.strip())  # --name-only: a file the merge above changed
        elif section == "tags" and len(fields) == 6:
            tags.append((number, fields))
        else:
            skipped.add("not a line of git's output in the format warroom asked for", number)
    release = header.get("service") or Path(header.get("repository", "repository")).name
    changes = _merge_changes(merges, header)
    for number, (tag, time, sha, peeled, tagger, subject) in tags:
        changes.append(Change(number, f"tag-{tag}", time, release, "release", tag, peeled or sha, tagger, subject))
    return changes, header


def in_period(changes: list[Change], header: dict[str, str]) -> list[Change]:
    since, _, until = header.get("period", "").partition(" .. ")
    low, high = epoch_us(since), epoch_us(until)
    return [
        c
        for c in changes
        if (micros := epoch_us(c.time)) is None or ((low is None or micros >= low) and (high is None or micros <= high))
    ]


class GitChanges:
    name = "git merges and tags (as warroom's git source saves them)"

    def sniff(self, path: Path, head: bytes) -> bool:
        return head.startswith(MAGIC.encode())

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        skipped = Skipped()
        changes, header = parse_git_changes(read_text(path), skipped)
        read = change_read(in_period(changes, header), path, skipped, f"git {header.get('repository', '')}", "git")
        return read
