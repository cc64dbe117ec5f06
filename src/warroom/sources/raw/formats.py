"""The shipped readers, in the order they are asked (more specific shapes first), and recognition."""

from __future__ import annotations

from pathlib import Path

from warroom.sources.raw.alertmanager import AlertmanagerPayload
from warroom.sources.raw.reader import SNIFF_BYTES, RawReader
from warroom.sources.raw.v1 import CanonicalTable

READERS: tuple[RawReader, ...] = (AlertmanagerPayload(), CanonicalTable())


def recognise(path: Path) -> RawReader | None:
    """The reader for this file, or None when no reader knows its shape."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    return next((reader for reader in READERS if reader.sniff(path, head)), None)
