"""Changes from a git repository: merge commits and tags in a period, as `sources/git_source.py`
reads them, saved as git printed them so a snapshot reads back to the same table.

The file opens with `# warroom git changes`, then `# repository:`, `# service:` and `# period:`
lines, then each command (a `# git …` line) followed by its output: `git log --merges` with
fields separated by the unit separator (0x1f) — commit, committer time, author, subject — and
`git for-each-ref refs/tags` — tag, tag time, object, peeled commit, tagger, subject. Tags outside
the period are left out (for-each-ref has no time filter). A merge becomes kind `merge`, a tag
kind `release` with the tag as its version.
"""

from __future__ import annotations

from pathlib import Path

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


def parse_git_changes(text: str, skipped: Skipped) -> tuple[list[Change], dict[str, str]]:
    header: dict[str, str] = {}
    section = ""
    changes: list[Change] = []
    for number, line in lines(text):
        if line.startswith("# git "):
            section = "merges" if " log " in line else "tags" if "for-each-ref" in line else ""
            continue
        if line.startswith("# "):
            key, _, value = line[2:].partition(": ")
            header[key.strip()] = value.strip()
            continue
        fields = line.split(SEPARATOR)
        service = header.get("service") or Path(header.get("repository", "repository")).name
        if section == "merges" and len(fields) == 4:
            sha, time, author, subject = fields
            changes.append(Change(number, f"merge-{sha[:12]}", time, service, "merge", None, sha, author, subject))
        elif section == "tags" and len(fields) == 6:
            tag, time, sha, peeled, tagger, subject = fields
            changes.append(Change(number, f"tag-{tag}", time, service, "release", tag, peeled or sha, tagger, subject))
        else:
            skipped.add("not a line of git's output in the format warroom asked for", number)
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
