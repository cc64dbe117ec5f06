"""Alertmanager's webhook notifications as the lab received them (byte for byte), for captures."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

_sequence = itertools.count(1)


@dataclass(frozen=True)
class Notification:
    path: Path
    received: float
    status: str


def record(folder: Path, body: bytes) -> Path:
    """Keep one notification; the file name carries the receive time (ms) and a sequence number."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{int(time.time() * 1000)}-{next(_sequence):05d}.json"
    path.write_bytes(body)
    return path


def received(folder: Path, since: float, until: float) -> list[Notification]:
    found = []
    for path in sorted(folder.glob("*.json")):
        stamp = path.stem.split("-", 1)[0]
        if not stamp.isdigit() or not since <= int(stamp) / 1000 <= until:
            continue
        try:
            status = str(json.loads(path.read_bytes()).get("status", ""))
        except (ValueError, AttributeError):
            status = ""
        found.append(Notification(path, int(stamp) / 1000, status))
    return found
