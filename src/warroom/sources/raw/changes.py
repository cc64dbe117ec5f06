"""Changes from any change shape into the canonical `changes` table (one row per change).

Every change reader (deploy logs, git, kubectl) decodes its shape into `Change` values; times are
read per value (`times.py`) and a change whose time cannot be read is skipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from warroom.sources.canonical import TS
from warroom.sources.contract import Modality, SourceQuery
from warroom.sources.raw.reader import RawRead, RawTable
from warroom.sources.raw.text import Skipped
from warroom.sources.raw.times import epoch_us


@dataclass
class Change:
    line: int
    id: str | None
    time: Any
    service: str | None
    kind: str
    version: str | None = None
    commit: str | None = None
    author: str | None = None
    description: str | None = None


def _distinct_ids(rows: list[tuple[Change, int]]) -> list[str]:
    """Each change's id (its own, else kind-service-version): a log that names a deploy by what it
    deployed repeats the id when the same version is deployed again (a rollback to it, a redeploy),
    and those later deploys, at other times, are numbered (`id#2`) rather than dropped as copies."""
    ids = [c.id or f"{c.kind}-{c.service}-{c.version or (c.commit or '')[:12] or c.line}" for c, _ in rows]
    seen: dict[str, list[int]] = {}
    out = []
    for name, (_, micros) in zip(ids, rows, strict=True):
        times = seen.setdefault(name, [])
        if micros not in times:
            times.append(micros)
        n = times.index(micros) + 1
        out.append(name if n == 1 else f"{name}#{n}")
    return out


def change_read(changes: list[Change], path: Path, skipped: Skipped, what: str, source: str = "bundle") -> RawRead:
    rows: list[tuple[Change, int]] = []
    for change in changes:
        micros = epoch_us(change.time)
        if micros is None:
            skipped.add("time missing or unreadable", change.line)
        elif not change.service:
            skipped.add("no service", change.line)
        else:
            rows.append((change, micros))
    skipped.fail_if_nothing_left(len(rows), path, what)
    frame = pl.DataFrame(
        {
            "id": _distinct_ids(rows),
            "time": pl.Series([m for _, m in rows], dtype=pl.Int64).cast(TS),
            "service": [c.service for c, _ in rows],
            "kind": [c.kind for c, _ in rows],
            "version": pl.Series([c.version for c, _ in rows], dtype=pl.String),
            "commit": pl.Series([c.commit for c, _ in rows], dtype=pl.String),
            "author": pl.Series([c.author for c, _ in rows], dtype=pl.String),
            "description": pl.Series([c.description for c, _ in rows], dtype=pl.String),
        }
    ).sort("time", maintain_order=True)
    kinds = ", ".join(f"{k} {n}" for k, n in frame.get_column("kind").value_counts(sort=True).iter_rows())
    notes = [f"{what}: {frame.height} changes of {frame.get_column('service').n_unique()} service(s) ({kinds})"]
    query = SourceQuery(source=source, modality=Modality.CHANGES, text=f"{path.name}: every change", location=str(path))
    return RawRead(
        tables=[RawTable(Modality.CHANGES, frame, query)], notes=notes, limitations=skipped.limitations(path, "change")
    )
