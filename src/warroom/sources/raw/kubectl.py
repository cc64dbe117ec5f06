"""Kubernetes rollout history as `kubectl rollout history` prints it.

Two outputs are read: the table (`deployment.apps/NAME`, then `REVISION  CHANGE-CAUSE` rows) and
the details of `--revision=N` (`deployment.apps/NAME with revision #N`, the pod template with its
`kubernetes.io/change-cause` annotation and container images). Several outputs may follow each
other in one file.

kubectl prints no times. A revision whose change-cause holds a time stamp (CI systems often
write `deploy 1.4.2 at 2024-05-27T15:00:00Z`) becomes a change at that time; the others are named
in a limitation (how many, the latest revision and its image), never placed at a guessed time.
Each change: id `NAME#REVISION`, kind `deploy`, service the deployment's name, version the image
tag, description the change-cause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from warroom.sources.raw.changes import Change, change_read
from warroom.sources.raw.reader import RawRead, ReadOptions
from warroom.sources.raw.text import Skipped, first_head_line, lines, read_text
from warroom.sources.raw.times import ISO_TIME

_HEADER = re.compile(r"^(?:deployment|daemonset|statefulset)(?:\.apps)?/(\S+?)(?: with revision #(\d+))?\s*$")
_ROW = re.compile(r"^(\d+)\s+(.*)$")
_IMAGE = re.compile(r"^\s+Image:\s+(\S+)")
_CAUSE = re.compile(r"kubernetes\.io/change-cause:\s*(.*)$")


@dataclass
class Revision:
    line: int
    workload: str
    number: int
    cause: str | None = None
    images: list[str] = field(default_factory=list)


def parse_history(text: str, skipped: Skipped) -> list[Revision]:
    revisions: dict[tuple[str, int], Revision] = {}
    workload: str | None = None
    detail: Revision | None = None
    for number, line in lines(text):
        header = _HEADER.match(line.strip())
        if header:
            workload, detail = header.group(1), None
            if header.group(2):
                key = (workload, int(header.group(2)))
                detail = revisions.setdefault(key, Revision(number, workload, key[1]))
            continue
        if workload is None:
            skipped.add("before any deployment.apps/NAME header", number)
            continue
        if detail is not None:
            annotation = _CAUSE.search(line)
            image = _IMAGE.match(line)
            if annotation:
                detail.cause = annotation.group(1).strip()
            elif image:
                detail.images.append(image.group(1))
            continue
        if line.startswith("REVISION"):
            continue
        row = _ROW.match(line.strip())
        if row is None:
            skipped.add("not a REVISION  CHANGE-CAUSE row", number)
            continue
        revision = revisions.setdefault((workload, int(row.group(1))), Revision(number, workload, int(row.group(1))))
        written = row.group(2).strip()
        revision.cause = revision.cause or (None if written == "<none>" else written)
    return sorted(revisions.values(), key=lambda r: (r.workload, r.number))


def _version(revision: Revision) -> str | None:
    for image in revision.images:
        if ":" in image.rsplit("/", 1)[-1]:
            return image.rsplit(":", 1)[1]
    match = re.search(r"=\S+:([\w.\-]+)", revision.cause or "")
    return match.group(1) if match else None


class KubectlRolloutHistory:
    name = "kubectl rollout history"

    def sniff(self, path: Path, head: bytes) -> bool:
        first = first_head_line(head)
        return first is not None and _HEADER.match(first[1].strip()) is not None

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        skipped = Skipped()
        revisions = parse_history(read_text(path), skipped)
        timed = [r for r in revisions if r.cause and ISO_TIME.search(r.cause)]
        untimed = [r for r in revisions if r not in timed]
        limitations: list[str] = []
        if untimed:
            latest = max(untimed, key=lambda r: r.number)
            image = f", image {latest.images[0]}" if latest.images else ""
            cause = f", '{latest.cause}'" if latest.cause else ""
            limitations.append(
                f"{path.name}: {len(untimed)} rollout revision(s) without a time (kubectl prints none) are not on "
                f"the timeline; latest: {latest.workload} revision {latest.number}{image}{cause}"
            )
        notes = [f"{len(revisions)} revision(s) of {len({r.workload for r in revisions})} workload(s)"]
        if not timed:
            return RawRead(notes=notes, limitations=limitations + skipped.limitations(path, "line"))
        changes = [
            Change(
                line=r.line,
                id=f"{r.workload}#{r.number}",
                time=match.group(0) if (match := ISO_TIME.search(r.cause or "")) else None,
                service=r.workload,
                kind="deploy",
                version=_version(r),
                description=r.cause,
            )
            for r in timed
        ]
        read = change_read(changes, path, skipped, "kubectl rollout history")
        read.notes = notes + read.notes
        read.limitations.extend(limitations)
        return read
